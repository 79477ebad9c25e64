"""Drive the real REST application in-process without sockets: route resolution, the app's own
middlewares and handlers, over a real table of contents on a temporary storage directory.

Unit tests stay socket-free (DESIGN.md); the subprocess e2e tests cover the HTTP transport."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from qcluster.api.rest.app import STATE_KEY, create_app
from qcluster.settings import ServiceSettings, Settings, StorageSettings
from qcluster.toc import TableOfContents
from tests.e2e.openapi_check import Recorder


class _Body:
    """The request body stream: the whole body, then EOF."""

    def __init__(self, data: bytes):
        self._chunks = [data, b""] if data else [b""]

    async def readany(self) -> bytes:
        return self._chunks.pop(0) if self._chunks else b""

    def at_eof(self) -> bool:
        return not self._chunks

    def set_read_chunk_size(self, size: int) -> None:
        pass


class Rest:
    """Calls into the app; every JSON response is validated against the reference OpenAPI spec
    (``recorder``; ``running()`` asserts it stayed clean)."""

    def __init__(self, app: web.Application, settings: Settings):
        self.app = app
        self.settings = settings
        self.recorder = Recorder()

    async def raw(
        self, method: str, path: str, data: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, CIMultiDict[str]]:
        hdrs = CIMultiDict({"Content-Type": "application/json", **(headers or {})})
        limit = self.settings.service.max_request_size_mb * 1024 * 1024

        def request() -> web.Request:
            return make_mocked_request(
                method,
                path,
                headers=hdrs,
                app=self.app,
                payload=_Body(data),
                client_max_size=limit,  # type: ignore[arg-type]
            )

        probe = request()
        match = await self.app.router.resolve(probe)
        match.add_app(self.app)
        req = request()
        req._match_info = match  # what aiohttp's server does after routing
        handler: Any = match.handler
        for mw in reversed(self.app.middlewares):
            handler = functools.partial(mw, handler=handler)
        resp = await handler(req)
        body = bytes((resp.body if isinstance(resp, web.Response) else b"") or b"")
        self.recorder.check(
            method, path.split("?")[0], resp.status, resp.headers.get("Content-Type", ""), body
        )
        return resp.status, body, CIMultiDict(resp.headers)

    async def call(
        self, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        data = b"" if body is None else orjson.dumps(body)
        status, raw, resp_headers = await self.raw(method, path, data, headers)
        if resp_headers.get("Content-Type", "").startswith("application/json"):
            return status, orjson.loads(raw)
        return status, raw.decode()

    async def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        status, out = await self.call(method, path, body, **kw)
        assert status == 200, (method, path, out)
        assert out["status"] == "ok" and isinstance(out["time"], float)
        return out["result"]


def settings_for(tmp_path: Path, **service: Any) -> Settings:
    return Settings(
        service=ServiceSettings(**service),
        storage=StorageSettings(storage_path=tmp_path / "storage", snapshots_path=tmp_path / "snapshots"),
    )


@asynccontextmanager
async def running(tmp_path: Path, **service: Any) -> AsyncIterator[Rest]:
    settings = settings_for(tmp_path, **service)
    toc = TableOfContents(settings.storage)
    await toc.load()
    app = create_app(toc, settings)
    app[STATE_KEY]["ready"] = True
    rest = Rest(app, settings)
    try:
        yield rest
    finally:
        await toc.close()
    rest.recorder.assert_clean()
