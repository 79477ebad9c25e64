"""Hostile requests for the resource-safety suites (``test_hostile_input.py``, ``test_hostile_cluster.py``):
well-formed JSON that passes the schema but asks a peer for too much (deep and wide filters, huge
numbers in every numeric field, huge payloads, id lists and batches, absurd collection configs).

Each case says what a safe peer answers (a 4xx that names the bound, or a 2xx with the data
clamped to what exists); :func:`send` asserts it answered below 500 within ``ANSWER_WITHIN``
seconds, and :func:`assert_healthy` that the peer still serves and lost no point.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

# Generous: the bound is "answers at all, and soon", not a speed claim (2 cores shared by many
# processes while the suite runs). Before the fix several of these cases took > 30 s or killed
# the peer.
ANSWER_WITHIN = 30.0
DIM = 8
POINTS = 300
VEC = [0.5] * DIM
HUGE_INTS = (2**63 - 1, 2**64 - 1, -(2**63))
HUGE_FLOATS = (1e308, -1e308)


def vec(i: int) -> list[float]:
    return [float((i * 7 + j * 3) % 11) / 11.0 + 0.01 for j in range(DIM)]


def payload(i: int) -> dict[str, Any]:
    return {"n": i, "g": i % 10, "tag": f"t{i % 5}", "loc": {"lat": 1.0, "lon": 2.0}}


def send(base: str, method: str, path: str, body: Any = None, *, raw: bytes | None = None) -> tuple[int, Any]:
    """One request; asserts an answer below 500 within ``ANSWER_WITHIN`` seconds."""
    content = raw if raw is not None else (None if body is None else orjson.dumps(body))
    headers = {"content-type": "application/json"} if content is not None else {}
    started = time.monotonic()
    with httpx.Client(base_url=base, timeout=ANSWER_WITHIN + 30) as client:
        resp = client.request(method, path, content=content, headers=headers)
    took = time.monotonic() - started
    try:
        out: Any = resp.json()
    except ValueError:
        out = resp.text
    assert resp.status_code < 500, (method, path, resp.status_code, str(out)[:500])
    assert took < ANSWER_WITHIN, (method, path, f"answered after {took:.1f}s")
    return resp.status_code, out


def error_of(out: Any) -> str:
    return (
        str(out["status"]["error"]) if isinstance(out, dict) and isinstance(out.get("status"), dict) else ""
    )


def seed(base: str, name: str = "c") -> None:
    """Collection ``name``: POINTS points with payloads, integer index on ``n``, keyword on ``tag``."""
    status, out = send(base, "PUT", f"/collections/{name}", {"vectors": {"size": DIM, "distance": "Cosine"}})
    assert status == 200, out
    points = [{"id": i, "vector": vec(i), "payload": payload(i)} for i in range(POINTS)]
    assert send(base, "PUT", f"/collections/{name}/points?wait=true", {"points": points})[0] == 200
    for key, schema in (("n", "integer"), ("tag", "keyword"), ("g", "integer")):
        body = {"field_name": key, "field_schema": schema}
        assert send(base, "PUT", f"/collections/{name}/index?wait=true", body)[0] == 200


def assert_healthy(base: str, name: str = "c") -> None:
    """The peer answers, and collection ``name`` still holds every point as seeded."""
    with httpx.Client(base_url=base, timeout=ANSWER_WITHIN) as client:
        assert client.get("/healthz").status_code == 200
        info = client.get(f"/collections/{name}").json()["result"]
        assert info["points_count"] == POINTS, info
        got = client.post(f"/collections/{name}/points", json={"ids": [0, POINTS - 1], "with_vector": True})
        recs = {r["id"]: r for r in got.json()["result"]}
        assert recs[POINTS - 1]["payload"] == payload(POINTS - 1)
        assert [round(x, 4) for x in recs[0]["vector"]] != []
        hits = client.post(f"/collections/{name}/points/query", json={"query": vec(7), "limit": 3})
        assert hits.status_code == 200 and len(hits.json()["result"]["points"]) == 3


# ------------------------------------------------------------------------------ bodies
def deep_filter(depth: int, clause: str = "must") -> bytes:
    """``{"must": [{"must": [... {"key": "g", "match": {"value": 1}} ...]}]}``, ``depth`` levels,
    built as text (a JSON encoder would itself recurse)."""
    leaf = '{"key": "g", "match": {"value": 1}}'
    return (f'{{"{clause}": [' * depth + leaf + "]}" * depth).encode()


def deep_nested(depth: int) -> bytes:
    """``nested`` conditions inside each other, ``depth`` filter levels."""
    text = '{"key": "x", "match": {"value": 1}}'
    for _ in range(depth - 1):
        text = f'{{"nested": {{"key": "a", "filter": {{"must": [{text}]}}}}}}'
    return f'{{"must": [{text}]}}'.encode()


def deep_value(depth: int) -> bytes:
    return b'{"a": ' * depth + b"1" + b"}" * depth


def with_raw(fields: dict[str, Any], **raw: bytes) -> bytes:
    """A JSON object of ``fields`` plus fields given as raw JSON text."""
    parts = [orjson.dumps(k) + b": " + orjson.dumps(v) for k, v in fields.items()]
    parts += [orjson.dumps(k) + b": " + v for k, v in raw.items()]
    return b"{" + b", ".join(parts) + b"}"


def wide_filter(n: int, clause: str = "should", key: str = "g") -> dict[str, Any]:
    return {clause: [{"key": key, "match": {"value": 10_000 + i}} for i in range(n)]}


# ------------------------------------------------------------------------------ numeric sweep
READ_TEMPLATES: list[tuple[str, dict[str, Any]]] = [
    (
        "/points/query",
        {
            "query": VEC,
            "limit": 10,
            "offset": 1,
            "score_threshold": 0.0,
            "params": {"hnsw_ef": 64, "quantization": {"oversampling": 2.0}},
        },
    ),
    ("/points/query", {"prefetch": [{"query": VEC, "limit": 20}], "query": {"fusion": "rrf"}, "limit": 5}),
    (
        "/points/query",
        {
            "prefetch": [{"query": VEC, "limit": 20}, {"query": vec(3), "limit": 30}],
            "query": {"rrf": {"k": 2, "weights": [1.0, 2.0]}},
            "limit": 5,
        },
    ),
    (
        "/points/query",
        {"query": {"nearest": VEC, "mmr": {"diversity": 0.5, "candidates_limit": 50}}, "limit": 5},
    ),
    (
        "/points/query",
        {"query": {"recommend": {"positive": [1, 2], "negative": [3], "strategy": "best_score"}}, "limit": 5},
    ),
    (
        "/points/query",
        {"query": {"discover": {"target": 1, "context": [{"positive": 2, "negative": 3}]}}, "limit": 4},
    ),
    ("/points/query", {"query": {"order_by": {"key": "n", "start_from": 5}}, "limit": 5}),
    ("/points/query", {"query": {"sample": "random"}, "limit": 5}),
    (
        "/points/query",
        {
            "query": VEC,
            "limit": 3,
            "filter": {
                "must": [
                    {"key": "loc", "geo_radius": {"center": {"lat": 1.0, "lon": 2.0}, "radius": 1000.0}},
                    {"key": "n", "range": {"gte": 1, "lt": 200}},
                    {"key": "n", "values_count": {"gte": 1, "lte": 3}},
                ],
                "min_should": {"conditions": [{"key": "g", "match": {"value": 1}}], "min_count": 1},
            },
        },
    ),
    ("/points/query/groups", {"query": VEC, "group_by": "g", "group_size": 3, "limit": 4}),
    ("/points/query/batch", {"searches": [{"query": VEC, "limit": 3, "offset": 2}]}),
    ("/points/search", {"vector": VEC, "limit": 5, "offset": 1, "params": {"hnsw_ef": 32}}),
    ("/points/search/groups", {"vector": VEC, "group_by": "g", "group_size": 2, "limit": 3}),
    ("/points/recommend", {"positive": [1], "limit": 5, "offset": 0}),
    ("/points/recommend/groups", {"positive": [1], "group_by": "g", "group_size": 2, "limit": 3}),
    ("/points/discover", {"target": 1, "context": [{"positive": 2, "negative": 3}], "limit": 5, "offset": 1}),
    ("/points/scroll", {"limit": 10, "offset": 5, "filter": {"must": [{"key": "n", "range": {"gte": 1}}]}}),
    ("/points/scroll", {"limit": 10, "order_by": {"key": "n", "start_from": 3}}),
    ("/points/count", {"filter": {"must": [{"key": "n", "values_count": {"gte": 1}}]}}),
    ("/facet", {"key": "tag", "limit": 3}),
    ("/points", {"ids": [1, 2, 3]}),
]

CONFIG_TEMPLATE: dict[str, Any] = {
    "vectors": {"size": DIM, "distance": "Cosine", "hnsw_config": {"m": 8, "ef_construct": 50}},
    "shard_number": 2,
    "replication_factor": 1,
    "write_consistency_factor": 1,
    "hnsw_config": {
        "m": 16,
        "ef_construct": 64,
        "full_scan_threshold": 10,
        "max_indexing_threads": 1,
        "payload_m": 16,
    },
    "wal_config": {"wal_capacity_mb": 4, "wal_segments_ahead": 0},
    "optimizers_config": {
        "deleted_threshold": 0.2,
        "vacuum_min_vector_number": 1000,
        "default_segment_number": 1,
        "max_segment_size": 100000,
        "indexing_threshold": 1,
        "flush_interval_sec": 5,
        "max_optimization_threads": 1,
    },
    "quantization_config": {"scalar": {"type": "int8", "quantile": 0.99}},
}


def numeric_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Paths to every number in ``value`` (of a vector, only its first element)."""
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield path
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from numeric_paths(v, (*path, k))
    elif isinstance(value, list):
        numbers = bool(value) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        for i, v in enumerate(value[:1] if numbers and len(value) == DIM else value):
            yield from numeric_paths(v, (*path, i))


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: replaced(value[head], rest, new)}
    out = list(value)
    out[head] = replaced(out[head], rest, new)
    return out


@dataclass
class Sweep:
    """Every (template, numeric field, huge value) combination, as requests; with ``cycle``, one
    value per field, taken in turn from ``values`` (every value still meets many fields)."""

    templates: list[tuple[str, dict[str, Any]]]
    values: tuple[Any, ...]
    cycle: bool = False

    def __iter__(self) -> Iterator[tuple[str, dict[str, Any], str]]:
        turn = 0
        for path, body in self.templates:
            for where in numeric_paths(body):
                chosen = (self.values[turn % len(self.values)],) if self.cycle else self.values
                turn += 1
                for v in chosen:
                    name = f"{path} {'.'.join(map(str, where))}={v!r}"
                    yield path, replaced(body, where, v), name


def sweep_reads(base: str, collection: str, values: tuple[Any, ...], cycle: bool = False) -> dict[int, int]:
    """Every read template with each of its numbers replaced by each huge value: all answer below
    500. Returns a histogram of the statuses."""
    statuses: dict[int, int] = {}
    for path, body, _ in Sweep(READ_TEMPLATES, values, cycle):
        status, _ = send(base, "POST", f"/collections/{collection}{path}", body)
        statuses[status] = statuses.get(status, 0) + 1
    return statuses


def sweep_configs(base: str, values: tuple[Any, ...], cycle: bool = False) -> dict[int, int]:
    """Collection configs with each number replaced by each huge value: refused with a 4xx, or
    created, usable (upsert, index build, query) and then deleted."""
    statuses: dict[int, int] = {}
    for i, (_, body, name) in enumerate(Sweep([("", CONFIG_TEMPLATE)], values, cycle)):
        coll = f"sweep{i}"
        status, out = send(base, "PUT", f"/collections/{coll}", body)
        statuses[status] = statuses.get(status, 0) + 1
        if status != 200:
            assert 400 <= status < 500 and error_of(out), (name, out)
            continue
        points = [{"id": j, "vector": vec(j)} for j in range(40)]
        assert send(base, "PUT", f"/collections/{coll}/points?wait=true", {"points": points})[0] == 200, name
        status, out = send(base, "POST", f"/collections/{coll}/points/query", {"query": VEC, "limit": 3})
        assert status == 200 and len(out["result"]["points"]) == 3, (name, out)
        assert send(base, "DELETE", f"/collections/{coll}")[0] == 200
    return statuses
