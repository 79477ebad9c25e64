"""Snapshot endpoints' checks before any work: a file:// location only inside the snapshots
directory, a malformed checksum refused before the upload is read, and ``wait=false`` answered
202 while the snapshot is made in the background."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.unit.rest_harness import Rest, running

C = "/collections/c"


async def _collection(rest: Rest) -> None:
    await rest.ok("PUT", C, {"vectors": {"size": 2, "distance": "Dot"}})
    await rest.ok("PUT", C + "/points?wait=true", {"points": [{"id": i, "vector": [1, i]} for i in range(5)]})


async def _listed(rest: Rest, path: str, count: int) -> list[dict[str, object]]:
    deadline = time.monotonic() + 30
    while True:
        found: list[dict[str, object]] = await rest.ok("GET", path)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.02)


async def test_file_locations_stay_inside_the_snapshots_directory(tmp_path: Path) -> None:
    async with running(tmp_path) as rest:
        await _collection(rest)
        status, out = await rest.call(
            "PUT", "/collections/other/snapshots/recover", {"location": "file:///etc/passwd"}
        )
        assert status == 403
        assert out["status"]["error"].startswith(
            "Forbidden: Snapshot file path must be inside the snapshots directory"
        )
        for location in ("file://whatever.snapshot", "file://./etc/passwd"):
            status, out = await rest.call("PUT", C + "/snapshots/recover", {"location": location})
            assert status == 400, location
            assert (
                out["status"]["error"]
                == "Bad request: Invalid snapshot URI, file path must be absolute or on localhost"
            )
        escape = f"file://{rest.settings.storage.snapshots_path}/../storage/collections/c/config.json"
        status, _ = await rest.call("PUT", C + "/shards/0/snapshots/recover", {"location": escape})
        assert status == 403  # ".." resolved before the check
        status, out = await rest.call(
            "PUT", C + "/snapshots/recover", {"location": "file://localhost/none.snapshot"}
        )
        assert status == 400
        assert out["status"]["error"] == 'Bad request: Snapshot file "/none.snapshot" does not exist'
        made = await rest.ok("POST", C + "/snapshots")
        inside = rest.settings.storage.snapshots_path / "c" / made["name"]
        assert inside.is_file()
        await rest.ok("POST", C + "/points/delete?wait=true", {"points": [0, 1]})
        assert await rest.ok("PUT", C + "/snapshots/recover", {"location": inside.as_uri()}) is True
        assert (await rest.ok("POST", C + "/points/count", {"exact": True}))["count"] == 5


async def test_a_malformed_checksum_is_refused_before_the_upload(tmp_path: Path) -> None:
    async with running(tmp_path) as rest:
        await _collection(rest)
        for path in (C + "/snapshots/upload", C + "/shards/0/snapshots/upload"):
            status, out = await rest.call("POST", path + "?checksum=abc", {"not": "a multipart body"})
            assert status == 422 and "invalid_sha256_hash" in out["status"]["error"], path
        assert (await rest.ok("POST", C + "/points/count", {"exact": True}))["count"] == 5


async def test_wait_false_answers_202_and_the_snapshot_follows(tmp_path: Path) -> None:
    async with running(tmp_path) as rest:
        await _collection(rest)
        for path in (C + "/snapshots", C + "/shards/0/snapshots", "/snapshots"):
            status, out = await rest.call("POST", path + "?wait=false")
            assert status == 202 and out["status"] == "accepted" and "result" not in out
            (snap,) = await _listed(rest, path, 1)
            assert snap["size"] > 0  # type: ignore[operator]
            status, out = await rest.call("DELETE", f"{path}/{snap['name']}?wait=false")
            assert status == 202 and await rest.ok("GET", path) == []  # deleted before the answer
        status, out = await rest.call("POST", "/collections/none/snapshots?wait=false")
        assert status == 404  # a missing collection is refused at once, not in the background
