"""API keys on the public gRPC port: the same keys and rules as the REST middleware.

A call presents its key in the ``api-key`` metadata entry (what qdrant-client sends) or as
``authorization: Bearer <key>``. ``/qdrant.Qdrant/HealthCheck`` is open, like ``/healthz``. The
presented key is compared in constant time against both configured keys every time, so the timing
says nothing about which one matched. The read-only key may call the methods that only read.

Refusals are decided before the request message is decoded::

    no key                     UNAUTHENTICATED    "Must provide an API key or an Authorization bearer token"
    wrong key                  UNAUTHENTICATED    "Invalid API key or JWT"
    read-only key, a write     PERMISSION_DENIED  "Forbidden: the read-only API key cannot modify data"
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import grpc.aio

from qcluster.logging import get_logger

log = get_logger(__name__)

OPEN_METHODS = frozenset({"/qdrant.Qdrant/HealthCheck"})
_READS = {
    "Collections": (
        "Get",
        "List",
        "ListCollectionAliases",
        "ListAliases",
        "CollectionClusterInfo",
        "CollectionExists",
        "ListShardKeys",
    ),
    "Points": (
        "Get",
        "Search",
        "SearchBatch",
        "SearchGroups",
        "Scroll",
        "Recommend",
        "RecommendBatch",
        "RecommendGroups",
        "Discover",
        "DiscoverBatch",
        "Count",
        "Query",
        "QueryBatch",
        "QueryGroups",
        "Facet",
        "SearchMatrixPairs",
        "SearchMatrixOffsets",
    ),
    "Snapshots": ("List", "ListFull"),
}
READ_METHODS = frozenset(f"/qdrant.{svc}/{m}" for svc, methods in _READS.items() for m in methods)

NO_KEY = "Must provide an API key or an Authorization bearer token"
BAD_KEY = "Invalid API key or JWT"
READ_ONLY = "Forbidden: the read-only API key cannot modify data"


def presented_key(metadata: Any) -> str | None:
    bearer = None
    for key, value in metadata or ():
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        if key == "api-key":
            return str(text)
        if key == "authorization" and text[:7].lower() == "bearer ":
            bearer = text[7:].strip()
    return bearer


def _refuse(code: grpc.StatusCode, details: str) -> grpc.RpcMethodHandler:
    async def deny(request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(code, details)

    return grpc.unary_unary_rpc_method_handler(deny)


class ApiKeyInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, api_key: str | None, read_only_key: str | None) -> None:
        self._full = None if api_key is None else api_key.encode()
        self._read = None if read_only_key is None else read_only_key.encode()

    def decide(self, method: str, metadata: Any) -> tuple[grpc.StatusCode, str] | None:
        """None to let the call through, else the refusal (status code, message)."""
        if method in OPEN_METHODS:
            return None
        given = presented_key(metadata)
        if given is None:
            return grpc.StatusCode.UNAUTHENTICATED, NO_KEY
        given_b = given.encode()
        is_full = self._full is not None and hmac.compare_digest(given_b, self._full)
        is_read = self._read is not None and hmac.compare_digest(given_b, self._read)
        if is_full or (is_read and method in READ_METHODS):
            return None
        if is_read:
            return grpc.StatusCode.PERMISSION_DENIED, READ_ONLY
        return grpc.StatusCode.UNAUTHENTICATED, BAD_KEY

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        refusal = self.decide(handler_call_details.method, handler_call_details.invocation_metadata)
        handler = await continuation(handler_call_details)
        if handler is None or refusal is None:
            return handler
        log.info("gRPC call refused", method=handler_call_details.method, status=refusal[0].name)
        return _refuse(*refusal)
