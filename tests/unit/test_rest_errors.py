"""Error responses: Qdrant's status codes, message prefixes and envelope; bad input changes nothing."""

from __future__ import annotations

from pathlib import Path

import orjson
import pydantic
import pytest

from qcluster.api.rest.parse import FormatError, location, validation_error
from qcluster.errors import UnprocessableInputError
from qcluster.models.query import QueryBatchIn, QueryIn
from tests.unit.rest_harness import Rest, running

C = {"vectors": {"size": 4, "distance": "Dot"}}
GOOD = {"points": [{"id": 1, "vector": [1, 2, 3, 4], "payload": {"k": "v"}}]}


async def _seeded(rest: Rest) -> None:
    await rest.ok("PUT", "/collections/c", C)
    await rest.ok("PUT", "/collections/c/points?wait=true", GOOD)


async def _unchanged(rest: Rest) -> None:
    page = await rest.ok("POST", "/collections/c/points/scroll", {"with_vector": True})
    assert page["points"] == [{"id": 1, "payload": {"k": "v"}, "vector": [1.0, 2.0, 3.0, 4.0]}]
    assert [c["name"] for c in (await rest.ok("GET", "/collections"))["collections"]] == ["c"]


CASES = [
    # (method, path, body or raw bytes, status, exact message or substring)
    ("PUT", "/collections/c/points", b"{not json", 400, "Format error in JSON body: "),
    ("PUT", "/collections/c/points", b"", 400, "Format error in JSON body: EOF"),
    ("PUT", "/collections/c/points", [1, 2], 400, "Format error in JSON body: expected a JSON object"),
    (
        "PUT",
        "/collections/c/points",
        {"points": [{"id": 2, "vector": [1, 2, 3]}]},
        400,
        "Wrong input: Vector dimension error: expected dim: 4, got 3",
    ),
    ("PUT", "/collections/c/points", {"points": [{"id": -5, "vector": [1, 2, 3, 4]}]}, 400, "points[0].id"),
    (
        "PUT",
        "/collections/c/points",
        {"points": [{"id": "nope", "vector": [1, 2, 3, 4]}]},
        400,
        "Unable to parse UUID",
    ),
    (
        "PUT",
        "/collections/c/points",
        {"points": [{"id": 3, "vector": ["a", 2, 3, 4]}]},
        400,
        "points[0].vector",
    ),
    (
        "PUT",
        "/collections/c/points",
        {"points": [{"vector": [1, 2, 3, 4]}]},
        400,
        "points[0].id: missing field",
    ),
    (
        "PUT",
        "/collections/c/points",
        {"points": [{"id": 3, "vector": {"x": [1, 2, 3, 4]}}]},
        400,
        "Not existing vector name error: x",
    ),
    (  # a malformed sparse vector under an unknown name: the body's shape is refused first
        "PUT",
        "/collections/c/points/vectors",
        {"points": [{"id": 1, "vector": {"x": {"indices": [0, 1], "values": [0.0]}}}]},
        422,
        "Validation error in JSON body: [points[0].vector.?.values: Validation error: must be the same",
    ),
    (
        "POST",
        "/collections/c/points/batch",
        {
            "operations": [
                {"upsert": {"batch": {"ids": [1], "vectors": {"x": [{"indices": [0], "values": []}]}}}}
            ]
        },
        422,
        "Validation error",
    ),
    (
        "PUT",
        "/collections/c/points",
        {"points": [{"id": 3, "vector": [1, 2, 3, float("nan")]}]},
        400,
        "finite",
    ),
    ("PUT", "/collections/nope/points", GOOD, 404, "Not found: Collection `nope` doesn't exist!"),
    ("GET", "/collections/nope", None, 404, "Not found: Collection `nope` doesn't exist!"),
    (
        "GET",
        "/collections/" + "n" * 256 + "/points/1",
        None,
        422,
        "Validation error in path parameters: [collection_name: must be at most 255 characters, got 256]",
    ),
    ("POST", "/collections/c/points/scroll", {"limit": -1}, 400, "Format error in JSON body: limit"),
    (
        "POST",
        "/collections/c/points/scroll",
        {"limit": 0},
        422,
        "Validation error in JSON body: [limit: value 0 invalid, must be 1 or larger]",
    ),
    ("POST", "/collections/c/points/scroll", {"limit": "5"}, 400, "limit: Input should be a valid integer"),
    ("POST", "/collections/c/points/query", {"query": [1, 2, 3, 4], "limit": -3}, 400, "limit"),
    ("POST", "/collections/c/points/query", {"query": [1, 2, 3, 4], "offset": -1}, 400, "offset"),
    (
        "POST",
        "/collections/c/points/query",
        {"query": [1, 2]},
        400,
        "Vector dimension error: expected dim: 4, got 2",
    ),
    ("POST", "/collections/c/points/query", {"query": 999}, 404, "Not found: No point with id 999 found"),
    (
        "POST",
        "/collections/c/points/query",
        {"query": [1, 2, 3, 4], "using": "x"},
        400,
        "Not existing vector name error: x",
    ),
    (
        "POST",
        "/collections/c/points/query",
        {"query": {"formula": {"sum": []}}},
        400,
        "formula queries need `prefetch`",
    ),
    ("POST", "/collections/c/points/query", {"query": {"fusion": "rrf"}}, 400, "need `prefetch`"),
    ("POST", "/collections/c/points/query", {"query": {"bogus": 1}}, 400, "unknown query kind"),
    (
        "POST",
        "/collections/c/points/query/batch",
        {"searches": [{"limit": 0}]},
        422,
        "searches[0].limit: value 0 invalid",
    ),
    (
        "POST",
        "/collections/c/points/scroll",
        {"filter": {"must": [{"key": "k", "matchh": {"value": "v"}}]}},
        400,
        "matchh",
    ),
    (
        "POST",
        "/collections/c/points/count",
        {"filter": {"must": [{"key": "k", "rangee": {"lt": 3}}]}},
        400,
        "rangee",
    ),
    ("POST", "/collections/c/points/count", {"exact": 1}, 400, "exact: Input should be a valid boolean"),
    (
        "PUT",
        "/collections/c2",
        {"vectors": {"size": 0, "distance": "Cosine"}},
        422,
        "[vectors.size: value 0 invalid, must be from 1 to 65536]",
    ),
    ("PUT", "/collections/c2", {"vectors": {"size": -1, "distance": "Cosine"}}, 400, "vectors.size"),
    (
        "PUT",
        "/collections/c2",
        {"vectors": {"size": 70000, "distance": "Cosine"}},
        422,
        "Validation error in JSON body: [vectors.size: value 70000 invalid, must be from 1 to 65536]",
    ),
    ("PUT", "/collections/c2", {"vectors": {"size": 4, "distance": "Hamming"}}, 400, "vectors.distance"),
    ("PUT", "/collections/c2", {"vectors": {"size": 4}}, 400, "vectors.distance: missing field"),
    ("PUT", "/collections/c2", {"vectors": {}}, 422, "at least one vector"),
    (
        "PUT",
        "/collections/c2",
        {"vectors": {"a": {"size": 4, "distance": "Dot"}}, "sparse_vectors": {"a": {}}},
        422,
        "Dense and sparse vector names must be unique - duplicate found with 'a'",
    ),
    ("PUT", "/collections/c2", {"sparse_vectors": {"": {}}}, 422, "Sparse vector name cannot be empty"),
    (
        "PUT",
        "/collections/c2",
        {"sparse_vectors": {"s": {"index": {"datatype": "turbo4"}}}},
        422,
        "sparse vectors do not support",
    ),
    ("PUT", "/collections/a%2Fb", C, 400, "not a valid name"),
    ("PUT", "/collections/c", C, 409, "Collection `c` already exists!"),
    (
        "POST",
        "/collections/c/points/payload",
        {"payload": {"a": 1}},
        400,
        "Either list of point ids or filter must be provided",
    ),
    (
        "POST",
        "/collections/c/points/payload?wait=true",
        {"payload": {"a": 1}, "points": [42]},
        404,
        "No point with id 42 found",
    ),
    (
        "POST",
        "/collections/c/points/batch",
        {"operations": [{"upsert": GOOD}, {"explode": {}}]},
        400,
        "operations[1]",
    ),
    (
        "POST",
        "/collections/c/points/batch",
        {"operations": [{"delete": {"points": [1]}}, {"upsert": {"points": [{"id": 9, "vector": [1]}]}}]},
        400,
        "Vector dimension error",
    ),
    (
        "POST",
        "/collections/aliases",
        {"actions": [{"create_alias": {"collection_name": "zz", "alias_name": "a"}}]},
        404,
        "Collection `zz` doesn't exist!",
    ),
    (
        "POST",
        "/collections/aliases",
        {"actions": [{"delete_alias": {"alias_name": "never"}}]},
        404,
        "Alias never does not exists!",
    ),
    ("POST", "/collections/c/points/query/groups", {"query": [1, 2, 3, 4]}, 400, "group_by: missing field"),
    ("PUT", "/collections/c/index", {"field_name": "k"}, 400, "needs a schema"),
    ("PUT", "/collections/c/index", {"field_name": "k", "field_schema": "vector"}, 400, "Wrong input"),
    (
        "PUT",
        "/collections/c/index",
        {"field_name": "k", "field_schema": {"type": "integer", "lookup": False, "range": False}},
        422,
        "Validation error: the 'lookup' and 'range' capabilities can't be both disabled",
    ),
    ("GET", "/collections/c/points/77", None, 404, "Not found: Point with id 77 does not exists!"),
    ("GET", "/no/such/endpoint", None, 404, "Not found: no such endpoint GET /no/such/endpoint"),
    ("DELETE", "/collections/c/points", None, 405, "not allowed"),
    (
        "PUT",
        "/quotas",
        {"enabled": True, "max_disk_usage_percent": 0},
        422,
        "max_disk_usage_percent: value 0 invalid",
    ),
]


async def test_bad_input_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    """Every case answers its documented status and a message naming the problem; after each
    one the data is unchanged and the peer keeps serving."""
    async with running(tmp_path) as rest:
        await _seeded(rest)
        for method, path, payload, status, needle in CASES:
            if isinstance(payload, bytes):
                code, raw, _ = await rest.raw(method, path, payload)
                out = orjson.loads(raw)
            else:
                code, out = await rest.call(method, path, payload)
            case = (method, path, payload)
            assert code == status, (case, out)
            assert isinstance(out["time"], float) and "result" not in out, (case, out)
            assert needle in out["status"]["error"], (case, needle, out)
            await _unchanged(rest)


async def test_body_over_the_limit_is_413(tmp_path: Path) -> None:
    async with running(tmp_path, max_request_size_mb=1) as rest:
        await _seeded(rest)
        big = {
            "points": [{"id": i, "vector": [0.5] * 4, "payload": {"pad": "x" * 1000}} for i in range(2000)]
        }
        code, out = await rest.call("PUT", "/collections/c/points", big)
        assert code == 413 and out["status"]["error"].startswith("Payload too large:")
        await _unchanged(rest)


def test_error_locations_are_qdrant_style() -> None:
    assert location(("searches", 0, "limit")) == "searches[0].limit"
    assert location(("vectors", "~named", "img", "size")) == "vectors.img.size"
    with pytest.raises(pydantic.ValidationError) as info:
        QueryBatchIn.model_validate(
            {"searches": [{"limit": 0}, {"limit": 2, "offset": 0}, {"limit": 0}]}, strict=True
        )
    err = validation_error(info.value)
    assert isinstance(err, UnprocessableInputError)
    assert err.message == (
        "[searches[0].limit: value 0 invalid, must be 1 or larger; searches[2].limit: value 0 invalid, must be 1 or larger]"
    )


def test_type_errors_win_over_range_errors() -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        QueryIn.model_validate({"limit": 0, "offset": "x"}, strict=True)
    err = validation_error(info.value)
    assert isinstance(err, FormatError)
    assert err.user_message().startswith("Format error in JSON body: offset:")
