"""API keys: full and read-only keys, both header forms, open health endpoints."""

from __future__ import annotations

from pathlib import Path

from tests.unit.rest_harness import running

FULL = {"api-key": "full-secret"}
RO = {"api-key": "ro-secret"}
CREATE = {"vectors": {"size": 2, "distance": "Dot"}}


async def test_keys_gate_reads_and_writes(tmp_path: Path) -> None:
    async with running(tmp_path, api_key="full-secret", read_only_api_key="ro-secret") as rest:
        for path in ("/", "/healthz", "/livez", "/readyz"):
            assert (await rest.call("GET", path))[0] == 200, path
        code, out = await rest.call("GET", "/collections")
        assert (
            code == 401
            and out["status"]["error"] == "Must provide an API key or an Authorization bearer token"
        )
        code, out = await rest.call("GET", "/collections", headers={"api-key": "wrong"})
        assert code == 401 and "Invalid API key" in out["status"]["error"]
        assert (await rest.call("GET", "/metrics"))[0] == 401
        assert (await rest.call("GET", "/collections", headers={"Authorization": "Bearer full-secret"}))[
            0
        ] == 200
        assert (await rest.call("GET", "/collections", headers={"Authorization": "bearer ro-secret"}))[
            0
        ] == 200
        # a prefix or a longer string of the key is no key
        assert (await rest.call("GET", "/collections", headers={"api-key": "full-secre"}))[0] == 401
        assert (await rest.call("GET", "/collections", headers={"api-key": "full-secret!"}))[0] == 401

        code, out = await rest.call("PUT", "/collections/a", CREATE, headers=RO)
        assert code == 403 and "read-only" in out["status"]["error"]
        assert (await rest.call("GET", "/collections/a/exists", headers=RO))[1]["result"] == {"exists": False}
        await rest.ok("PUT", "/collections/a", CREATE, headers=FULL)
        await rest.ok(
            "PUT", "/collections/a/points?wait=true", {"points": [{"id": 1, "vector": [1, 0]}]}, headers=FULL
        )

        # read-only POSTs pass with the read-only key, writing POSTs do not
        for path, body in (
            ("/collections/a/points/count", {}),
            ("/collections/a/points/scroll", {}),
            ("/collections/a/points/query", {"query": [1, 0]}),
            ("/collections/a/points/query/batch", {"searches": [{"query": [1, 0]}]}),
            ("/collections/a/points/search", {"vector": [1, 0], "limit": 1}),
            ("/collections/a/points", {"ids": [1]}),
        ):
            assert (await rest.call("POST", path, body, headers=RO))[0] == 200, path
        for method, path, body in (
            ("POST", "/collections/a/points/delete", {"points": [1]}),
            ("POST", "/collections/a/points/payload", {"payload": {"x": 1}, "points": [1]}),
            ("PUT", "/collections/a/points", {"points": [{"id": 2, "vector": [0, 1]}]}),
            ("DELETE", "/collections/a", None),
            ("POST", "/collections/aliases", {"actions": []}),
            ("POST", "/snapshots", None),
        ):
            assert (await rest.call(method, path, body, headers=RO))[0] == 403, (method, path)
        assert (await rest.ok("POST", "/collections/a/points/count", {}, headers=RO))["count"] == 1


async def test_without_keys_everything_is_open(tmp_path: Path) -> None:
    async with running(tmp_path) as rest:
        await rest.ok("PUT", "/collections/a", CREATE)
        assert (await rest.call("GET", "/metrics"))[0] == 200


async def test_read_only_key_alone_still_refuses_writes(tmp_path: Path) -> None:
    async with running(tmp_path, read_only_api_key="ro-secret") as rest:
        assert (await rest.call("GET", "/collections", headers=RO))[0] == 200
        assert (await rest.call("PUT", "/collections/a", CREATE, headers=RO))[0] == 403
        assert (await rest.call("GET", "/collections"))[0] == 401
