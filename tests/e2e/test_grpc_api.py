"""Qdrant's public gRPC API of a real ``qcluster serve`` beyond what qdrant-client's happy paths
cover (those run in test_qdrant_client.py / test_client_filters_snapshots.py with
``prefer_grpc=True``): bad input gets INVALID_ARGUMENT / NOT_FOUND with Qdrant's messages, API keys
give UNAUTHENTICATED / PERMISSION_DENIED, TLS, and nothing a client sends takes the peer down."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client import grpc as pb

from qcluster.testing.certs import have_openssl, self_signed
from qcluster.testing.server import ServerProcess


def _pid(i: int) -> pb.PointId:
    return pb.PointId(num=i)


def _dense(values: list[float]) -> pb.Vectors:
    return pb.Vectors(vector=pb.Vector(dense=pb.DenseVector(data=values)))


class Stubs:
    def __init__(self, channel: grpc.Channel) -> None:
        self.channel = channel
        self.root = pb.QdrantStub(channel)
        self.collections = pb.CollectionsStub(channel)
        self.points = pb.PointsStub(channel)
        self.snapshots = pb.SnapshotsStub(channel)


def _refused(call: object, code: grpc.StatusCode) -> str:
    """The details of a call that must fail with ``code``."""
    with pytest.raises(grpc.RpcError) as info:
        call()  # type: ignore[operator]
    err = info.value
    assert err.code() == code, (err.code(), err.details())
    return str(err.details())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(Path(tmp_path_factory.mktemp("grpc-peer"))).start()
    try:
        yield srv
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
            collection_name="g",
            vectors_config=pb.VectorsConfig(params=pb.VectorParams(size=4, distance=pb.Cosine)),
        )
    )
    stubs.points.Upsert(
        pb.UpsertPoints(
            collection_name="g",
            wait=True,
            points=[
                pb.PointStruct(
                    id=_pid(i), vectors=_dense([1.0, i, 0.0, 1.0]), payload={"n": pb.Value(integer_value=i)}
                )
                for i in range(10)
            ],
        )
    )
    return "g"


def test_bad_input_is_invalid_argument_naming_the_field(stubs: Stubs, collection: str) -> None:
    wrong_dim = pb.UpsertPoints(
        collection_name=collection,
        wait=True,
        points=[pb.PointStruct(id=_pid(50), vectors=_dense([1.0, 2.0]))],
    )
    msg = _refused(lambda: stubs.points.Upsert(wrong_dim), grpc.StatusCode.INVALID_ARGUMENT)
    assert msg.startswith("Wrong input: Vector dimension error: expected dim: 4, got 2"), msg
    nan = pb.UpsertPoints(
        collection_name=collection,
        wait=True,
        points=[pb.PointStruct(id=_pid(51), vectors=_dense([1.0, float("nan"), 0.0, 0.0]))],
    )
    msg = _refused(lambda: stubs.points.Upsert(nan), grpc.StatusCode.INVALID_ARGUMENT)
    assert "finite" in msg, msg
    zero_limit = pb.QueryPoints(
        collection_name=collection,
        query=pb.Query(nearest=pb.VectorInput(dense=pb.DenseVector(data=[1, 0, 0, 0]))),
        limit=0,
    )
    msg = _refused(lambda: stubs.points.Query(zero_limit), grpc.StatusCode.INVALID_ARGUMENT)
    assert msg == "Validation error in body: [limit: value 0 invalid, must be 1 or larger]", msg
    bad_size = pb.CreateCollection(
        collection_name="bad",
        vectors_config=pb.VectorsConfig(params=pb.VectorParams(size=0, distance=pb.Dot)),
    )
    msg = _refused(lambda: stubs.collections.Create(bad_size), grpc.StatusCode.INVALID_ARGUMENT)
    assert msg.startswith("Validation error in body: [vectors.size: value 0 invalid"), msg
    substring = pb.Filter(
        must=[pb.Condition(field=pb.FieldCondition(key="n", match=pb.Match(substring="x")))]
    )
    msg = _refused(
        lambda: stubs.points.Count(pb.CountPoints(collection_name=collection, filter=substring)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "substring" in msg, msg
    bad_uuid = pb.GetPoints(collection_name=collection, ids=[pb.PointId(uuid="not-a-uuid")])
    msg = _refused(lambda: stubs.points.Get(bad_uuid), grpc.StatusCode.INVALID_ARGUMENT)
    assert "UUID" in msg, msg
    sparse = pb.QueryPoints(
        collection_name=collection,
        query=pb.Query(nearest=pb.VectorInput(sparse=pb.SparseVector(indices=[1], values=[1.0]))),
    )
    msg = _refused(lambda: stubs.points.Query(sparse), grpc.StatusCode.INVALID_ARGUMENT)
    assert "Conversion between sparse and regular vectors failed" in msg, msg
    no_selector = pb.SetPayloadPoints(collection_name=collection, payload={"a": pb.Value(integer_value=1)})
    msg = _refused(lambda: stubs.points.SetPayload(no_selector), grpc.StatusCode.INVALID_ARGUMENT)
    assert msg == "Wrong input: Either list of point ids or filter must be provided", msg
    # nothing of the refused writes is stored
    count = stubs.points.Count(pb.CountPoints(collection_name=collection, exact=True))
    assert count.result.count == 10


def test_missing_things_are_not_found(stubs: Stubs, collection: str) -> None:
    msg = _refused(
        lambda: stubs.collections.Get(pb.GetCollectionInfoRequest(collection_name="nope")),
        grpc.StatusCode.NOT_FOUND,
    )
    assert msg == "Not found: Collection `nope` doesn't exist!", msg
    recommend = pb.QueryPoints(
        collection_name=collection,
        query=pb.Query(recommend=pb.RecommendInput(positive=[pb.VectorInput(id=_pid(999))])),
    )
    msg = _refused(lambda: stubs.points.Query(recommend), grpc.StatusCode.NOT_FOUND)
    assert msg == "Not found: No point with id 999 found", msg
    update = pb.UpdatePointVectors(
        collection_name=collection,
        wait=True,
        points=[pb.PointVectors(id=_pid(999), vectors=_dense([1, 0, 0, 0]))],
    )
    _refused(lambda: stubs.points.UpdateVectors(update), grpc.StatusCode.NOT_FOUND)
    _refused(
        lambda: stubs.collections.Create(
            pb.CreateCollection(
                collection_name=collection,
                vectors_config=pb.VectorsConfig(params=pb.VectorParams(size=4, distance=pb.Dot)),
            )
        ),
        grpc.StatusCode.ALREADY_EXISTS,
    )


def test_search_matrix_pairs_and_offsets(stubs: Stubs, collection: str) -> None:
    def cosine(a: int, b: int) -> float:  # the collection's vectors are [1, i, 0, 1]
        return (2 + a * b) / math.sqrt((2 + a * a) * (2 + b * b))

    request = pb.SearchMatrixPoints(collection_name=collection, sample=4, limit=2)
    pairs = stubs.points.SearchMatrixPairs(request).result.pairs
    assert len(pairs) == 8 and len({p.a.num for p in pairs}) == 4
    for p in pairs:
        assert p.a.num != p.b.num and p.score == pytest.approx(cosine(p.a.num, p.b.num), rel=1e-5)
    offsets = stubs.points.SearchMatrixOffsets(request).result
    ids = [p.num for p in offsets.ids]
    assert len(set(ids)) == 4 and len(offsets.scores) == 8
    for r, c, score in zip(offsets.offsets_row, offsets.offsets_col, offsets.scores, strict=True):
        assert r != c and score == pytest.approx(cosine(ids[r], ids[c]), rel=1e-5)
    msg = _refused(
        lambda: stubs.points.SearchMatrixPairs(pb.SearchMatrixPoints(collection_name=collection, sample=1)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "sample" in msg, msg


def test_cluster_setup_on_a_single_peer(stubs: Stubs, collection: str) -> None:
    def setup(name: str = collection, **op: object) -> pb.UpdateCollectionClusterSetupResponse:
        request = pb.UpdateCollectionClusterSetupRequest(collection_name=name, **op)  # type: ignore[arg-type]
        return stubs.collections.UpdateCollectionClusterSetup(request)

    move = pb.MoveShard(shard_id=0, from_peer_id=1, to_peer_id=2)
    msg = _refused(lambda: setup(move_shard=move), grpc.StatusCode.INVALID_ARGUMENT)
    assert "cluster mode is disabled" in msg
    assert "exactly one of" in _refused(setup, grpc.StatusCode.INVALID_ARGUMENT)
    _refused(lambda: setup("nope", move_shard=move), grpc.StatusCode.NOT_FOUND)


def test_garbage_never_takes_the_peer_down(stubs: Stubs, server: ServerProcess, collection: str) -> None:
    raw = stubs.channel.unary_unary("/qdrant.Points/Upsert")
    for junk in (b"\xff\xff\xff", b"\x0a\xff\xff\xff\xff\x0f", b"\x1a\x05\x0a\x03\x08\x01"):
        with pytest.raises(grpc.RpcError) as info:
            raw(junk)
        # refused by gRPC's own decoding, before any handler runs (grpc.aio calls it UNKNOWN)
        assert info.value.code() in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL), info.value
    unknown = stubs.channel.unary_unary("/qdrant.Points/NoSuchMethod")
    with pytest.raises(grpc.RpcError) as info:
        unknown(b"")
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    # a message above service.max_request_size_mb (32 MB) is refused before it is decoded
    big = pb.UpsertPoints(
        collection_name=collection,
        points=[
            pb.PointStruct(
                id=_pid(1000),
                vectors=_dense([0.5] * 4),
                payload={"p": pb.Value(string_value="x" * (33 << 20))},
            )
        ],
    )
    _refused(lambda: stubs.points.Upsert(big), grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert server.proc is not None and server.proc.poll() is None
    assert stubs.root.HealthCheck(pb.HealthCheckRequest()).title == "qdrant - vector search engine"
    assert stubs.points.Count(pb.CountPoints(collection_name=collection)).result.count == 10


def test_api_keys(tmp_path: Path) -> None:
    env = {"QDRANT__SERVICE__API_KEY": "full-secret", "QDRANT__SERVICE__READ_ONLY_API_KEY": "ro-secret"}
    srv = ServerProcess(tmp_path / "peer", env=env).start()
    channel = grpc.insecure_channel(f"127.0.0.1:{srv.grpc_port}")
    try:
        s = Stubs(channel)
        full, ro = [("api-key", "full-secret")], [("api-key", "ro-secret")]
        # the health check is open, like /healthz
        assert s.root.HealthCheck(pb.HealthCheckRequest()).version
        msg = _refused(
            lambda: s.collections.List(pb.ListCollectionsRequest()), grpc.StatusCode.UNAUTHENTICATED
        )
        assert msg == "Must provide an API key or an Authorization bearer token"
        msg = _refused(
            lambda: s.collections.List(pb.ListCollectionsRequest(), metadata=[("api-key", "wrong")]),
            grpc.StatusCode.UNAUTHENTICATED,
        )
        assert msg == "Invalid API key or JWT"
        create = pb.CreateCollection(
            collection_name="k",
            vectors_config=pb.VectorsConfig(params=pb.VectorParams(size=2, distance=pb.Dot)),
        )
        msg = _refused(lambda: s.collections.Create(create, metadata=ro), grpc.StatusCode.PERMISSION_DENIED)
        assert "read-only" in msg
        assert s.collections.Create(create, metadata=full).result
        bearer = [("authorization", "Bearer ro-secret")]
        assert [
            c.name for c in s.collections.List(pb.ListCollectionsRequest(), metadata=bearer).collections
        ] == ["k"]
        upsert = pb.UpsertPoints(
            collection_name="k", wait=True, points=[pb.PointStruct(id=_pid(1), vectors=_dense([1, 0]))]
        )
        _refused(lambda: s.points.Upsert(upsert, metadata=ro), grpc.StatusCode.PERMISSION_DENIED)
        # qdrant-client with the key (it warns about sending a key without TLS)
        with pytest.warns(UserWarning, match="insecure"):
            client = QdrantClient(
                url=srv.url,
                grpc_port=srv.grpc_port,
                prefer_grpc=True,
                https=False,
                api_key="full-secret",
                check_compatibility=False,
            )
        client.upsert("k", points=[models.PointStruct(id=1, vector=[1, 0])])
        assert client.count("k").count == 1
        client.close()
        assert s.points.Count(pb.CountPoints(collection_name="k"), metadata=ro).result.count == 1
    finally:
        channel.close()
        srv.stop()


def test_tls(tmp_path: Path) -> None:
    if not have_openssl():
        pytest.skip("openssl is not installed")
    cert, key = self_signed(tmp_path / "certs")
    env = {
        "QDRANT__SERVICE__ENABLE_TLS": "true",
        "QDRANT__TLS__CERT": str(cert),
        "QDRANT__TLS__KEY": str(key),
    }
    srv = ServerProcess(tmp_path / "peer", env=env, scheme="https").start()
    try:
        creds = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        with grpc.secure_channel(f"127.0.0.1:{srv.grpc_port}", creds) as channel:
            s = Stubs(channel)
            assert s.collections.List(pb.ListCollectionsRequest()).collections == []
        with grpc.insecure_channel(f"127.0.0.1:{srv.grpc_port}") as plain:
            with pytest.raises(grpc.RpcError) as info:
                pb.CollectionsStub(plain).List(pb.ListCollectionsRequest(), timeout=5)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        srv.stop()


def test_custom_sharding_ordering_and_consistency_through_the_client(server: ServerProcess) -> None:
    """Shard keys, write ordering and read consistency travel over gRPC into the same requests
    REST builds: tenants stay on their own shard keys."""
    client = QdrantClient(
        url=server.url, grpc_port=server.grpc_port, prefer_grpc=True, timeout=60, check_compatibility=False
    )
    try:
        client.create_collection(
            "tenants",
            vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT),
            sharding_method=models.ShardingMethod.CUSTOM,
        )
        assert client.get_collection("tenants").config.params.sharding_method == models.ShardingMethod.CUSTOM
        for key in ("acme", 7):
            assert client.create_shard_key("tenants", shard_key=key)
        assert {k.key for k in client.list_shard_keys("tenants").shard_keys or []} == {"acme", 7}
        for key, ids in (("acme", range(20)), (7, range(100, 130))):
            client.upsert(
                "tenants",
                points=[
                    models.PointStruct(id=i, vector=[1.0, float(i)], payload={"t": str(key)}) for i in ids
                ],
                shard_key_selector=key,
                ordering=models.WriteOrdering.STRONG,
            )
        assert client.count("tenants", shard_key_selector="acme").count == 20
        assert client.count("tenants", shard_key_selector=7).count == 30
        assert client.count("tenants").count == 50
        layout = client.collection_cluster_info("tenants")
        assert layout.shard_count == 2 and layout.remote_shards == []
        assert {(s.shard_key, s.points_count) for s in layout.local_shards} == {("acme", 20), (7, 30)}
        hits = client.query_points(
            "tenants",
            query=[1.0, 1.0],
            limit=100,
            shard_key_selector=7,
            consistency=models.ReadConsistencyType.MAJORITY,
            with_payload=True,
        ).points
        assert len(hits) == 30 and {h.payload["t"] for h in hits} == {"7"}  # type: ignore[index]
        with pytest.raises(grpc.RpcError) as info:  # a shard key the collection does not have
            client.upsert(
                "tenants", points=[models.PointStruct(id=1, vector=[1, 1])], shard_key_selector="nope"
            )
        assert info.value.code() == grpc.StatusCode.NOT_FOUND and "nope" in str(info.value.details())
        with pytest.raises(grpc.RpcError) as info:  # none on a collection with custom sharding
            client.upsert("tenants", points=[models.PointStruct(id=1, vector=[1, 1])])
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "shard_key" in str(
            info.value.details()
        )
        assert client.delete_shard_key("tenants", shard_key="acme")
        assert client.count("tenants").count == 30
    finally:
        client.close()


def test_strict_mode_applies_to_grpc_requests(stubs: Stubs) -> None:
    """Strict mode set through gRPC is enforced on gRPC reads and writes, with REST's messages."""
    stubs.collections.Create(
        pb.CreateCollection(
            collection_name="strict",
            vectors_config=pb.VectorsConfig(params=pb.VectorParams(size=4, distance=pb.Dot)),
            strict_mode_config=pb.StrictModeConfig(
                enabled=True, max_query_limit=5, unindexed_filtering_retrieve=False, max_timeout=10
            ),
        )
    )
    stubs.points.Upsert(
        pb.UpsertPoints(
            collection_name="strict",
            wait=True,
            points=[pb.PointStruct(id=_pid(i), vectors=_dense([1.0, i, 0.0, 1.0])) for i in range(8)],
        )
    )
    query = pb.Query(nearest=pb.VectorInput(dense=pb.DenseVector(data=[1.0, 0.0, 0.0, 0.0])))
    big = pb.QueryPoints(collection_name="strict", query=query, limit=6)
    msg = _refused(lambda: stubs.points.Query(big), grpc.StatusCode.INVALID_ARGUMENT)
    assert msg.startswith('Bad request: Limit exceeded 6 > 5 for "limit"'), msg
    slow = pb.QueryPoints(collection_name="strict", query=query, limit=5, timeout=60)
    msg = _refused(lambda: stubs.points.Query(slow), grpc.StatusCode.INVALID_ARGUMENT)
    assert 'for "timeout"' in msg, msg
    unindexed = pb.Filter(must=[pb.Condition(field=pb.FieldCondition(key="n", match=pb.Match(integer=1)))])
    scroll = pb.ScrollPoints(collection_name="strict", filter=unindexed, limit=3)
    msg = _refused(lambda: stubs.points.Scroll(scroll), grpc.StatusCode.INVALID_ARGUMENT)
    assert "Index required but not found" in msg, msg
    assert len(stubs.points.Query(pb.QueryPoints(collection_name="strict", query=query, limit=5)).result) == 5
    info = stubs.collections.Get(pb.GetCollectionInfoRequest(collection_name="strict"))
    assert info.result.points_count == 8


def test_sparse_and_multivector_collection_config_round_trips(stubs: Stubs) -> None:
    stubs.collections.Create(
        pb.CreateCollection(
            collection_name="kinds",
            vectors_config=pb.VectorsConfig(
                params_map=pb.VectorParamsMap(
                    map={
                        "late": pb.VectorParams(
                            size=2,
                            distance=pb.Dot,
                            multivector_config=pb.MultiVectorConfig(comparator=pb.MaxSim),
                        )
                    }
                )
            ),
            sparse_vectors_config=pb.SparseVectorConfig(map={"text": pb.SparseVectorParams(modifier=pb.Idf)}),
        )
    )
    params = stubs.collections.Get(pb.GetCollectionInfoRequest(collection_name="kinds")).result.config.params
    assert params.vectors_config.params_map.map["late"].HasField("multivector_config")
    assert params.sparse_vectors_config.map["text"].modifier == pb.Idf
    stubs.collections.Update(
        pb.UpdateCollection(
            collection_name="kinds",
            sparse_vectors_config=pb.SparseVectorConfig(
                map={"text": pb.SparseVectorParams(modifier=getattr(pb, "None"))}
            ),
        )
    )
    params = stubs.collections.Get(pb.GetCollectionInfoRequest(collection_name="kinds")).result.config.params
    assert params.sparse_vectors_config.map["text"].modifier == getattr(pb, "None")
