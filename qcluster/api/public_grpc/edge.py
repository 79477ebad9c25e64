"""The edge of the public gRPC services: what every RPC shares.

:func:`rpc` wraps a servicer method. It counts the call as in flight (``shards.load``), answers
with the response's ``time`` filled in, records the ``grpc_responses*`` metrics (by endpoint and status code), and turns a failure
into the gRPC status Qdrant returns, with Qdrant's message::

    BadInputError (and subclasses)   INVALID_ARGUMENT  "Wrong input: ..." /
                                                       "Validation error in body: [field: reason]"
    NotFoundError                    NOT_FOUND         "Not found: ..."
    AlreadyExistsError               ALREADY_EXISTS
    TransientError                   UNAVAILABLE       (no quorum, quota reached: retry later)
    TimeoutError_                    DEADLINE_EXCEEDED
    not implemented by qcluster      UNIMPLEMENTED     (replicate_points, search matrices)
    anything else                    INTERNAL          "Service internal error: ..." (logged)

A request's ``read_consistency`` applies to every shard read it makes (``read_scope``, as REST's
``?consistency=``). Nothing a request carries reaches the process as an unhandled exception.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
import grpc.aio

from qcluster import deadline
from qcluster.api.public_grpc.wire import pb
from qcluster.collection.read_scope import parse_consistency, read_scope
from qcluster.errors import FormatError, QClusterError, UnprocessableInputError, is_transient
from qcluster.logging import get_logger
from qcluster.metrics import Metrics
from qcluster.models.bounds import DEFAULT_LIMITS
from qcluster.p2p.status import status_for
from qcluster.settings import LimitsSettings
from qcluster.shards import load
from qcluster.shards.replica_env import Consistency
from qcluster.snapshots import Snapshots
from qcluster.toc import TableOfContents

log = get_logger(__name__)
Handler = Callable[[Any, Any], Awaitable[Any]]


class WriteQuota(Protocol):
    def check_write(self) -> None: ...


@dataclass(frozen=True)
class Services:
    """What the servicers call: the same objects the REST handlers use."""

    toc: TableOfContents
    metrics: Metrics
    quotas: WriteQuota
    snapshots: Snapshots
    consensus: Callable[[], Any] = lambda: None  # the consensus service in cluster mode, else None
    limits: LimitsSettings = DEFAULT_LIMITS  # service.limits: the bounds every request is held to


class Unimplemented(Exception):
    """An RPC of Qdrant's API that qcluster does not offer (answered UNIMPLEMENTED)."""


def message(exc: QClusterError) -> str:
    """Qdrant's text for an error on gRPC (its REST text, but validation errors say ``body``)."""
    if isinstance(exc, UnprocessableInputError):
        text = exc.message if exc.message.startswith("[") else f"[{exc.message}]"
        return f"Validation error in body: {text}"
    if isinstance(exc, FormatError):
        return f"Wrong input: {exc.message}"
    return exc.user_message()


_HAS_TIME: dict[type[Any], bool] = {}


def _stamp(response: Any, seconds: float) -> None:
    cls = type(response)
    has = _HAS_TIME.get(cls)
    if has is None:
        has = _HAS_TIME[cls] = "time" in cls.DESCRIPTOR.fields_by_name
    if has:
        response.time = seconds


# Reads of ``qdrant.Points``: they run under a deadline (``qcluster.deadline``), so shard work
# stops at its next check once it has passed. Writes keep going once started (applied whole).
READS = frozenset(
    {
        "Get",
        "Scroll",
        "Count",
        "Facet",
        "Search",
        "SearchBatch",
        "SearchGroups",
        "Query",
        "QueryBatch",
        "QueryGroups",
        "Recommend",
        "RecommendBatch",
        "RecommendGroups",
        "Discover",
        "DiscoverBatch",
    }
)


def read_deadline(request: Any, context: grpc.aio.ServicerContext, limits: LimitsSettings) -> float:
    """Seconds a read may take: the request's ``timeout``, else the call's gRPC deadline, else
    ``read_timeout_sec``; never more than ``max_timeout_sec``."""
    seconds = timeout_of(request)
    if seconds is None:
        remaining = context.time_remaining()
        seconds = float(remaining) if remaining is not None else float(limits.read_timeout_sec)
    return max(0.0, min(seconds, float(limits.max_timeout_sec)))


def rpc(service: str) -> Callable[[Handler], Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[Any]]]:
    """Decorate ``async def Method(self, request)`` of a servicer of ``qdrant.<service>``
    (the servicer has ``self.services: Services``)."""

    def wrap(fn: Handler) -> Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[Any]]:
        endpoint = f"/qdrant.{service}/{fn.__name__}"
        is_read = service == "Points" and fn.__name__ in READS

        @functools.wraps(fn)
        async def handler(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            load.enter()
            try:
                consistency = consistency_of(request)
                limits: LimitsSettings = self.services.limits
                with contextlib.ExitStack() as scopes:
                    if is_read:
                        scopes.enter_context(deadline.scope(read_deadline(request, context, limits)))
                    if consistency is not None:
                        scopes.enter_context(read_scope(consistency))
                    response = await fn(self, request)
            except QClusterError as exc:
                if is_transient(exc):
                    log.warning("gRPC call failed; retryable", endpoint=endpoint, error=exc.message)
                elif exc.http_status >= 500:
                    log.error("gRPC call failed", endpoint=endpoint, error=exc.message)
                code = status_for(exc)
                await context.abort(code, message(exc))
            except Unimplemented as exc:
                code = grpc.StatusCode.UNIMPLEMENTED
                await context.abort(code, str(exc))
            except Exception as exc:
                log.exception("unhandled error in a gRPC call", endpoint=endpoint)
                code = grpc.StatusCode.INTERNAL
                await context.abort(code, f"Service internal error: {exc}")
            finally:
                load.leave()
                self.services.metrics.observe_grpc(endpoint, code.name, time.perf_counter() - started)
            _stamp(response, time.perf_counter() - started)
            return response

        return handler

    return wrap


_CONSISTENCY: dict[int, Consistency] = {pb.All: "all", pb.Majority: "majority", pb.Quorum: "quorum"}
_ORDERING = {pb.Weak: "weak", pb.Medium: "medium", pb.Strong: "strong"}


def _has(request: Any, field: str) -> bool:
    return field in request.DESCRIPTOR.fields_by_name and bool(request.HasField(field))


def consistency_of(request: Any) -> Consistency | None:
    """A read's ``read_consistency`` (a number of replicas, majority, quorum or all), if set."""
    if not _has(request, "read_consistency"):
        return None
    rc = request.read_consistency
    if rc.WhichOneof("value") == "factor":
        return parse_consistency(rc.factor, "read_consistency")
    return _CONSISTENCY.get(rc.type) if rc.WhichOneof("value") == "type" else None


def ordering_of(request: Any) -> str | None:
    """A write's ``ordering`` (weak / medium / strong), if set."""
    return _ORDERING.get(request.ordering.type) if _has(request, "ordering") else None


def timeout_of(request: Any) -> float | None:
    """A request's ``timeout`` (seconds) for operations through consensus, when it sets one."""
    if _has(request, "timeout"):
        return float(request.timeout) if request.timeout > 0 else None
    return None


def wait_of(request: Any) -> bool:
    return bool(request.HasField("wait") and request.wait)
