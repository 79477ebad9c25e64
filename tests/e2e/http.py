"""A small HTTP helper for e2e tests (httpx comes with qdrant-client); responses are validated
by the module's recorder."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from qdrant_client import QdrantClient

from .openapi_check import Recorder


def call(
    base: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
    recorder: Recorder | None = None,
    verify: Any = True,
) -> tuple[int, Any]:
    with httpx.Client(base_url=base, timeout=60, verify=verify) as client:
        if raw is not None:
            resp = client.request(
                method, path, content=raw, headers={"content-type": "application/json", **(headers or {})}
            )
        else:
            resp = client.request(method, path, json=body, headers=headers)
    if recorder is not None:
        recorder.check(
            method,
            resp.request.url.path,
            resp.status_code,
            resp.headers.get("content-type", ""),
            resp.content,
        )
    try:
        return resp.status_code, resp.json()
    except ValueError:
        return resp.status_code, resp.text


class Api:
    def __init__(self, base: str, recorder: Recorder):
        self.base = base
        self.recorder = recorder

    def call(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return call(self.base, method, path, body, recorder=self.recorder, **kw)

    def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        status, out = self.call(method, path, body, **kw)
        assert status == 200, (method, path, out)
        assert out["status"] == "ok" and isinstance(out["time"], float)
        return out["result"]


def response_hook(recorder: Recorder) -> Callable[[httpx.Response], None]:
    """An httpx response hook that shows every response to ``recorder``."""

    def on_response(resp: httpx.Response) -> None:
        resp.read()
        recorder.check(
            resp.request.method,
            resp.request.url.path,
            resp.status_code,
            resp.headers.get("content-type", ""),
            resp.content,
        )

    return on_response


def recording_client(url: str, recorder: Recorder, *, prefer_grpc: bool = False, **kw: Any) -> QdrantClient:
    """The official client (REST mode unless ``prefer_grpc``); every REST response it gets goes
    through ``recorder`` (in gRPC mode: the calls qdrant-client makes over REST regardless, such
    as snapshot recovery)."""
    return QdrantClient(
        url=url,
        prefer_grpc=prefer_grpc,
        timeout=60,
        event_hooks={"response": [response_hook(recorder)]},
        **kw,
    )
