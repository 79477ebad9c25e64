"""Hostile input over Qdrant's public gRPC API of a real ``qcluster serve``: the same bounds as REST
(they live in the shared actions and request models), answered INVALID_ARGUMENT naming the field
and the bound, or clamped to what the collection holds; after each case the peer still answers
and its data is intact."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from qdrant_client import grpc as pb

from qcluster.testing.server import ServerProcess

POINTS = 30


class Stubs:
    def __init__(self, channel: grpc.Channel) -> None:
        self.root = pb.QdrantStub(channel)
        self.collections = pb.CollectionsStub(channel)
        self.points = pb.PointsStub(channel)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(Path(tmp_path_factory.mktemp("hostile-grpc"))).start()
    try:
        yield srv
        assert srv.proc is not None and srv.proc.poll() is None, srv.log_tail()
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def stubs(server: ServerProcess) -> Iterator[Stubs]:
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    yield Stubs(channel)
    channel.close()


@pytest.fixture(scope="module")
def collection(stubs: Stubs) -> str:
    stubs.collections.Create(
        pb.CreateCollection(
            collection_name="h",
            vectors_config=pb.VectorsConfig(params=pb.VectorParams(size=4, distance=pb.Dot)),
        )
    )
    stubs.points.Upsert(
        pb.UpsertPoints(
            collection_name="h",
            wait=True,
            points=[
                pb.PointStruct(
                    id=pb.PointId(num=i),
                    vectors=pb.Vectors(vector=pb.Vector(dense=pb.DenseVector(data=[1.0, i, 0.5, 0.0]))),
                    payload={"n": pb.Value(integer_value=i)},
                )
                for i in range(POINTS)
            ],
        )
    )
    return "h"


@pytest.fixture(autouse=True)
def healthy_after(stubs: Stubs, collection: str) -> Iterator[None]:
    yield
    stubs.root.HealthCheck(pb.HealthCheckRequest(), timeout=30)
    count = stubs.points.Count(pb.CountPoints(collection_name=collection, exact=True), timeout=30)
    assert count.result.count == POINTS


def _refused(call: object, *words: str) -> None:
    with pytest.raises(grpc.RpcError) as info:
        call()  # type: ignore[operator]
    err = info.value
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (err.code(), err.details())
    for word in words:
        assert word in str(err.details()), (word, err.details())


def _nested(depth: int) -> pb.Filter:
    flt = pb.Filter(must=[pb.Condition(field=pb.FieldCondition(key="n", match=pb.Match(integer=1)))])
    for _ in range(depth - 1):
        flt = pb.Filter(must=[pb.Condition(filter=flt)])
    return flt


def _search(collection: str, **kw: object) -> pb.SearchPoints:
    return pb.SearchPoints(collection_name=collection, vector=[1.0, 0.0, 0.0, 0.0], **kw)  # type: ignore[arg-type]


def test_a_huge_limit_returns_every_point_there_is(stubs: Stubs, collection: str) -> None:
    found = stubs.points.Search(_search(collection, limit=10**9, params=pb.SearchParams(hnsw_ef=2**40)))
    assert len(found.result) == POINTS
    query = pb.QueryPoints(
        collection_name=collection,
        query=pb.Query(nearest=pb.VectorInput(dense=pb.DenseVector(data=[1.0, 0.0, 0.0, 0.0]))),
        limit=2**62,
        offset=2**40,
    )
    assert list(stubs.points.Query(query).result) == []
    page = stubs.points.Scroll(pb.ScrollPoints(collection_name=collection, limit=2**31))
    assert len(page.result) == POINTS


def test_a_deep_filter_is_refused_naming_the_bound(stubs: Stubs, collection: str) -> None:
    # 40 levels: beyond max_filter_depth (32), within protobuf's own nesting limit (100)
    deep = _nested(40)
    _refused(lambda: stubs.points.Search(_search(collection, limit=3, filter=deep)), "max_filter_depth")
    _refused(
        lambda: stubs.points.Count(pb.CountPoints(collection_name=collection, filter=deep)),
        "max_filter_depth",
    )
    _refused(lambda: stubs.points.Scroll(pb.ScrollPoints(collection_name=collection, filter=deep)), "filter")
    # at the bound it runs
    ok = stubs.points.Search(_search(collection, limit=3, filter=_nested(32)))
    assert [p.id.num for p in ok.result] == [1]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def test_a_filter_deeper_than_protobuf_allows_is_refused(
    server: ServerProcess, stubs: Stubs, collection: str
) -> None:
    """Bytes the client library cannot even build (protobuf stops at 100 levels): the peer's
    decoder refuses them, and the peer goes on."""
    must = pb.Filter.DESCRIPTOR.fields_by_name["must"].number
    inner_filter = pb.Condition.DESCRIPTOR.fields_by_name["filter"].number
    flt = _nested(1).SerializeToString()
    for _ in range(500):
        flt = _field(must, _field(inner_filter, flt))
    raw = _search(collection, limit=3).SerializeToString()
    raw += _field(pb.SearchPoints.DESCRIPTOR.fields_by_name["filter"].number, flt)
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        call = channel.unary_unary(
            "/qdrant.Points/Search",
            request_serializer=lambda b: b,
            response_deserializer=pb.SearchResponse.FromString,
        )
        with pytest.raises(grpc.RpcError) as info:
            call(raw, timeout=30)
    assert info.value.code() != grpc.StatusCode.OK


def test_too_many_searches_in_a_batch_are_refused(stubs: Stubs, collection: str) -> None:
    batch = pb.SearchBatchPoints(
        collection_name=collection, search_points=[_search(collection, limit=1) for _ in range(1001)]
    )
    _refused(lambda: stubs.points.SearchBatch(batch), "searches", "max_batch_queries")
    fine = pb.SearchBatchPoints(
        collection_name=collection, search_points=[_search(collection, limit=1) for _ in range(10)]
    )
    assert len(stubs.points.SearchBatch(fine).result) == 10


def test_absurd_collection_configs_are_refused(stubs: Stubs, collection: str) -> None:
    huge = pb.CreateCollection(
        collection_name="huge",
        vectors_config=pb.VectorsConfig(params=pb.VectorParams(size=4, distance=pb.Dot)),
        shard_number=10**6,
    )
    _refused(lambda: stubs.collections.Create(huge), "shard_number", "max_shard_number")
    wide = pb.CreateCollection(
        collection_name="wide",
        vectors_config=pb.VectorsConfig(params=pb.VectorParams(size=4, distance=pb.Dot)),
        hnsw_config=pb.HnswConfigDiff(m=100_000),
    )
    _refused(lambda: stubs.collections.Create(wide), "hnsw_config.m", "max_hnsw_m")
    names = stubs.collections.List(pb.ListCollectionsRequest())
    assert [c.name for c in names.collections] == [collection]
