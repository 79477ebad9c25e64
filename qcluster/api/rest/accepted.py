"""``?wait=false`` on endpoints that create something slowly (snapshots): the work goes on in the
background (held and drained on shutdown with the writes that outlive their deadline,
``deadlines.in_background``) and the client gets Qdrant's ``202 {"status": "accepted"}`` at once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from qcluster.api.rest.app import STARTED_KEY, json_response, ok
from qcluster.api.rest.deadlines import in_background
from qcluster.api.rest.parse import query_bool


async def answer(request: web.Request, make: Callable[[], Awaitable[Any]], what: str) -> web.Response:
    """``make()``'s result (``?wait=true``, the default), or 202 while it runs in the background."""
    if query_bool(request, "wait", True):
        return ok(request, await make())
    in_background(request, make(), f"{what} (wait=false)")
    return _accepted(request)


def done(request: web.Request, result: Any) -> web.Response:
    """The answer to quick work already done (a delete): ``result``, or with ``?wait=false``
    Qdrant's 202 (the work is finished all the same: nothing is left to wait for)."""
    return ok(request, result) if query_bool(request, "wait", True) else _accepted(request)


def _accepted(request: web.Request) -> web.Response:
    started = request.get(STARTED_KEY, time.perf_counter())
    return json_response({"status": "accepted", "time": time.perf_counter() - started}, 202)
