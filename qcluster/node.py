"""Composition root: builds the services of one peer from Settings and runs them.

Start order: storage (TOC loads collections, replaying WALs) -> REST listener (answers /healthz
at once; /readyz turns 200 once storage is loaded). Stop order is the reverse; SIGTERM / SIGINT
stop the peer cleanly (shards flush), and ``kill -9`` loses nothing acknowledged (WAL replay).
"""

from __future__ import annotations

import asyncio
import signal
import ssl

from aiohttp import web

from qcluster.api.rest.app import STATE_KEY, create_app
from qcluster.logging import get_logger
from qcluster.settings import Settings
from qcluster.toc import TableOfContents

log = get_logger(__name__)


class Node:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.toc = TableOfContents(settings.storage)
        self.app = create_app(self.toc, settings)
        self._runner: web.AppRunner | None = None
        self._stop = asyncio.Event()

    def _ssl(self) -> ssl.SSLContext | None:
        if not self.settings.service.enable_tls:
            return None
        tls = self.settings.tls
        if tls.cert is None or tls.key is None:
            raise SystemExit("service.enable_tls needs tls.cert and tls.key")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(tls.cert), str(tls.key))
        return ctx

    async def start(self) -> None:
        svc = self.settings.service
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, svc.host, svc.http_port, ssl_context=self._ssl(), reuse_address=True)
        await site.start()
        log.info("REST listening", host=svc.host, port=svc.http_port, tls=svc.enable_tls)
        await self.toc.load()
        self.app[STATE_KEY]["ready"] = True
        log.info("peer ready", storage=str(self.settings.storage.storage_path))

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        await self.toc.close()
        log.info("peer stopped")

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        await self.start()
        try:
            await self._stop.wait()
        finally:
            await self.stop()
