"""Server-side authentication of peer calls: the shared cluster secret in call metadata.

Every RPC of the p2p port passes through :class:`SecretAuthInterceptor` before its handler runs.
A call whose ``x-qcluster-secret`` entry is missing or wrong is answered UNAUTHENTICATED, and no
request message of it is ever decoded (the refusing handler does not read the request stream).
The comparison is constant-time (:func:`hmac.compare_digest`).
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import grpc.aio

from qcluster.logging import get_logger
from qcluster.p2p.channels import SECRET_HEADER

log = get_logger(__name__)

DENIED_MESSAGE = "missing or wrong cluster secret"


async def _deny_unary(request: Any, context: grpc.aio.ServicerContext) -> None:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, DENIED_MESSAGE)


async def _deny_streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, DENIED_MESSAGE)
    yield None  # pragma: no cover - abort raises


def _refusing_handler(handler: Any) -> Any:
    if handler.response_streaming:
        factory = (
            grpc.stream_stream_rpc_method_handler
            if handler.request_streaming
            else grpc.unary_stream_rpc_method_handler
        )
        return factory(_deny_streaming)
    factory = (
        grpc.stream_unary_rpc_method_handler
        if handler.request_streaming
        else grpc.unary_unary_rpc_method_handler
    )
    return factory(_deny_unary)


def secret_matches(metadata: Any, secret: bytes) -> bool:
    for key, value in metadata or ():
        if key == SECRET_HEADER:
            got = value.encode("utf-8") if isinstance(value, str) else bytes(value)
            return hmac.compare_digest(got, secret)
    return False


class SecretAuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("the cluster secret must not be empty")
        self._secret = secret.encode("utf-8")

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None or secret_matches(handler_call_details.invocation_metadata, self._secret):
            return handler
        log.warning("p2p call refused: bad cluster secret", method=handler_call_details.method)
        return _refusing_handler(handler)
