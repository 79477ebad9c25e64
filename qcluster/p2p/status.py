"""The gRPC edge of the error tree: qcluster errors <-> gRPC status codes (both directions)."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import grpc.aio

from qcluster import deadline
from qcluster.errors import (
    AlreadyExistsError,
    BadInputError,
    CancelledError,
    ForbiddenError,
    NotFoundError,
    QClusterError,
    RateLimitedError,
    ShardUnknownError,
    TimeoutError_,
    TransientError,
    UnauthorizedError,
)
from qcluster.logging import get_logger

log = get_logger(__name__)

_TO_STATUS: tuple[tuple[type[QClusterError], grpc.StatusCode], ...] = (
    (TimeoutError_, grpc.StatusCode.DEADLINE_EXCEEDED),
    (ShardUnknownError, grpc.StatusCode.FAILED_PRECONDITION),
    (TransientError, grpc.StatusCode.UNAVAILABLE),
    (BadInputError, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (AlreadyExistsError, grpc.StatusCode.ALREADY_EXISTS),
    (UnauthorizedError, grpc.StatusCode.UNAUTHENTICATED),
    (ForbiddenError, grpc.StatusCode.PERMISSION_DENIED),
    (CancelledError, grpc.StatusCode.CANCELLED),
    (RateLimitedError, grpc.StatusCode.RESOURCE_EXHAUSTED),
)

_FROM_STATUS: dict[grpc.StatusCode, type[QClusterError]] = {
    grpc.StatusCode.DEADLINE_EXCEEDED: TimeoutError_,
    grpc.StatusCode.UNAVAILABLE: TransientError,
    grpc.StatusCode.FAILED_PRECONDITION: ShardUnknownError,
    grpc.StatusCode.INVALID_ARGUMENT: BadInputError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthorizedError,
    grpc.StatusCode.PERMISSION_DENIED: ForbiddenError,
    grpc.StatusCode.CANCELLED: TransientError,
}


def status_for(exc: BaseException) -> grpc.StatusCode:
    for cls, code in _TO_STATUS:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL


def error_from_rpc(exc: grpc.aio.AioRpcError, what: str) -> QClusterError:
    """Translate a failed call into the error tree; raise it ``from exc``."""
    cls = _FROM_STATUS.get(exc.code(), QClusterError)
    return cls(f"{what}: {exc.details() or exc.code().name}")


Handler = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


def guarded(fn: Callable[[Any], Awaitable[Any]], service: str, *, caller_deadline: bool = False) -> Handler:
    """A servicer method as a gRPC handler: a qcluster error becomes its status, anything else is
    a bug that is logged and answered INTERNAL (the peer keeps serving). ``caller_deadline``: the
    call's remaining time becomes the request deadline here, so reads stop at it too."""

    async def handler(request: Any, context: grpc.aio.ServicerContext) -> Any:
        left = context.time_remaining() if caller_deadline else None
        try:
            with deadline.scope(left) if left is not None else contextlib.nullcontext():
                return await fn(request)
        except QClusterError as exc:
            await context.abort(status_for(exc), exc.message)
        except Exception as exc:  # a bug: say so, keep serving
            log.exception(f"{service} call failed", method=getattr(fn, "__name__", "?"))
            await context.abort(grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}")

    return handler
