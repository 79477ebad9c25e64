"""Resource quotas (``GET`` / ``PUT /quotas``): limits on resident memory and on the disk holding
the storage directory, persisted in ``<storage>/quotas.json``.

While enabled, a write that adds data (upserts, vector updates, new collections) is refused with
503 once a limit is reached, until usage falls ``release_margin_percent`` points below it (the
hysteresis keeps a resource resting on its limit from flapping). Usage is sampled at most once a
second, from ``/proc`` and ``statvfs``: the check costs a dict lookup on the hot path.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Annotated, Any

from aiohttp import web
from pydantic import Field

from qcluster.api.rest.app import SETTINGS_KEY, ok
from qcluster.api.rest.parse import body
from qcluster.errors import TransientError
from qcluster.models.common import Req
from qcluster.shards.segment_files import read_json, write_json_atomic

DEFAULT_MARGIN = 5
Percent = Annotated[int, Field(ge=1, le=100)]


class QuotaConfigIn(Req):
    enabled: bool = False
    max_resident_memory_percent: Percent | None = None
    max_disk_usage_percent: Percent | None = None
    release_margin_percent: Annotated[int, Field(ge=0, le=100)] | None = None


def _memory_percent() -> int | None:
    try:
        with open("/proc/self/statm") as fh:
            rss_pages = int(fh.read().split()[1])
        total = os.sysconf("SC_PHYS_PAGES")
    except (OSError, ValueError, IndexError):
        return None
    return min(100, round(100 * rss_pages / total)) if total > 0 else None


def _disk_percent(path: Path) -> int | None:
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return None
    return min(100, round(100 * usage.used / usage.total)) if usage.total else None


class Quotas:
    def __init__(self, storage_path: Path):
        self.file = storage_path / "quotas.json"
        self.storage_path = storage_path
        self.config = QuotaConfigIn()
        if self.file.exists():
            self.config = QuotaConfigIn.model_validate(read_json(self.file))
        self._sampled_at = 0.0
        self._usage: dict[str, int | None] = {}
        self._exceeded = {"resident_memory": False, "disk_usage": False}

    def set(self, config: QuotaConfigIn) -> None:
        self.storage_path.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.file, config.model_dump(mode="json"))
        self.config = config
        self._sampled_at = 0.0

    def usage(self) -> dict[str, int | None]:
        now = time.monotonic()
        if now - self._sampled_at >= 1.0:
            self._usage = {
                "resident_memory_percent": _memory_percent(),
                "disk_usage_percent": _disk_percent(self.storage_path),
            }
            self._sampled_at = now
            self._update_exceeded()
        return self._usage

    def _update_exceeded(self) -> None:
        cfg = self.config
        margin = DEFAULT_MARGIN if cfg.release_margin_percent is None else cfg.release_margin_percent
        for key, limit, used in (
            ("resident_memory", cfg.max_resident_memory_percent, self._usage.get("resident_memory_percent")),
            ("disk_usage", cfg.max_disk_usage_percent, self._usage.get("disk_usage_percent")),
        ):
            if limit is None or used is None:
                self._exceeded[key] = False
            elif self._exceeded[key]:
                self._exceeded[key] = used > limit - margin
            else:
                self._exceeded[key] = used >= limit

    def telemetry(self) -> dict[str, Any]:
        """Qdrant's ``QuotaTelemetry``: the configuration and whether each limit is exceeded."""
        self.usage()
        return {"config": self.config.model_dump(mode="json"), "exceeded": dict(self._exceeded)}

    def check_write(self) -> None:
        """Raise when enabled and a limit is reached (503: retry once usage is down)."""
        if not self.config.enabled:
            return
        usage = self.usage()
        for key, field in (
            ("resident_memory", "resident_memory_percent"),
            ("disk_usage", "disk_usage_percent"),
        ):
            if self._exceeded[key]:
                raise TransientError(
                    f"quota exceeded: {key.replace('_', ' ')} at {usage.get(field)}%, the limit is "
                    f"{getattr(self.config, 'max_' + field)}%; writes resume once it is lower"
                )


QUOTAS_KEY = web.AppKey("quotas", Quotas)


async def get_quotas(request: web.Request) -> web.Response:
    quotas = request.app[QUOTAS_KEY]
    return ok(request, {"config": quotas.config.model_dump(mode="json"), "usage": quotas.usage()})


async def put_quotas(request: web.Request) -> web.Response:
    request.app[QUOTAS_KEY].set(await body(request, QuotaConfigIn))
    return ok(request, True)


def register(app: web.Application) -> None:
    app[QUOTAS_KEY] = Quotas(Path(app[SETTINGS_KEY].storage.storage_path))
    app.router.add_get("/quotas", get_quotas)
    app.router.add_put("/quotas", put_quotas)
