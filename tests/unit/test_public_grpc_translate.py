"""The public gRPC translation layer, no sockets: protobuf requests -> the REST request bodies the
shared models validate, results -> protobuf, packed floats <-> numpy, API-key decisions."""

from __future__ import annotations

import numpy as np
import pytest
from qdrant_client import grpc as pb
from qdrant_client.conversions.conversion import GrpcToRest

from qcluster.api.actions.cluster_ops import ClusterOperationIn
from qcluster.api.actions.points import upsert_batch
from qcluster.api.actions.validate import adapt, model
from qcluster.api.public_grpc import auth, collection_config, requests, updates
from qcluster.api.public_grpc.collections import cluster_setup_body
from qcluster.api.public_grpc.edge import Unimplemented, message
from qcluster.api.public_grpc.filters import filter_json
from qcluster.api.public_grpc.points import UPSERT
from qcluster.api.public_grpc.values import payload_to_py, py_to_payload, py_to_value, value_to_py
from qcluster.api.public_grpc.vectors import dense, unnamed_dense, vectors_output
from qcluster.errors import BadInputError, FormatError, UnprocessableInputError
from qcluster.models.collections import CreateCollection, config_from_create
from qcluster.models.query import QueryIn, RecommendIn, ScrollIn, SearchIn
from qcluster.shards.filters.parse import parse_filter
from qcluster.types import DEFAULT_VECTOR


def _dense_vectors(values: list[float]) -> pb.Vectors:
    return pb.Vectors(vector=pb.Vector(dense=pb.DenseVector(data=values)))


# ------------------------------------------------------------------------------ values
def test_payload_round_trip_keeps_integers_apart_from_doubles() -> None:
    payload = {"i": 3, "f": 2.5, "s": "x", "b": True, "n": None, "l": [1, "a", {"d": 0.5}], "big": 2**70}
    back = payload_to_py(py_to_payload(payload))
    assert back == {**payload, "big": float(2**70)}
    assert isinstance(back["i"], int) and isinstance(back["f"], float) and back["b"] is True
    assert value_to_py(pb.Value()) is None
    assert py_to_value(False).WhichOneof("kind") == "bool_value"


# ------------------------------------------------------------------------------ vectors
@pytest.mark.parametrize("dim", [1, 4, 31, 32, 300, 1536])
def test_packed_floats_decode_bit_exact(dim: int) -> None:
    rng = np.random.default_rng(dim)
    rows = rng.standard_normal((7, dim)).astype(np.float32)
    msgs = [pb.DenseVector(data=r.tolist()) for r in rows]
    assert np.array_equal(dense(msgs[3]), rows[3])
    points = [pb.PointStruct(vectors=pb.Vectors(vector=pb.Vector(dense=m))) for m in msgs]
    matrix = unnamed_dense(points)
    assert matrix is not None and matrix.dtype == np.float32 and np.array_equal(matrix, rows)
    # responses: packed bytes parsed back by protobuf give the same floats
    out = vectors_output({DEFAULT_VECTOR: rows[0]}, single_unnamed=True)
    assert out is not None and np.array_equal(np.asarray(out.vector.dense.data, np.float32), rows[0])


def test_other_shapes_leave_the_fast_path() -> None:
    def point(v: pb.Vector) -> pb.PointStruct:
        return pb.PointStruct(vectors=pb.Vectors(vector=v))

    same = point(pb.Vector(dense=pb.DenseVector(data=[1, 2])))
    assert unnamed_dense([same, point(pb.Vector(dense=pb.DenseVector(data=[1])))]) is None
    # the deprecated flat form of the same floats, a named vector: per point, not one matrix
    assert unnamed_dense([same, point(pb.Vector(data=[1, 2]))]) is None
    named = pb.PointStruct(
        vectors=pb.Vectors(
            vectors=pb.NamedVectors(vectors={"a": pb.Vector(dense=pb.DenseVector(data=[1, 2]))})
        )
    )
    assert unnamed_dense([same, named]) is None
    assert dense(pb.DenseVector()).shape == (0,)


def test_upsert_fast_path_is_one_matrix_and_validates_like_rest() -> None:
    cfg = config_from_create(model(CreateCollection, {"vectors": {"size": 3, "distance": "Dot"}}), 1)
    points = [
        pb.PointStruct(
            id=pb.PointId(num=i), vectors=_dense_vectors([i, 1.0, 2.0]), payload=py_to_payload({"i": i})
        )
        for i in range(4)
    ]
    body = updates.upsert(pb.UpsertPoints(collection_name="c", points=points))
    assert set(body) == {"batch"} and isinstance(body["batch"]["vectors"], np.ndarray)
    batch = upsert_batch(adapt(UPSERT, body), _Col(cfg))  # type: ignore[arg-type]
    assert batch.ids == (0, 1, 2, 3) and batch.payloads == ({"i": 0}, {"i": 1}, {"i": 2}, {"i": 3})
    assert np.array_equal(batch.vectors[DEFAULT_VECTOR].data[:, 0], [0, 1, 2, 3])
    wrong = [pb.PointStruct(id=pb.PointId(num=9), vectors=_dense_vectors([1.0, 2.0]))]
    with pytest.raises(BadInputError, match="expected dim: 3, got 2"):
        upsert_batch(adapt(UPSERT, updates.upsert(pb.UpsertPoints(points=wrong))), _Col(cfg))  # type: ignore[arg-type]
    sparse = pb.Vectors(vector=pb.Vector(sparse=pb.SparseVector(indices=[1], values=[1.0])))
    body = updates.upsert(pb.UpsertPoints(points=[pb.PointStruct(id=pb.PointId(num=1), vectors=sparse)]))
    with pytest.raises(BadInputError, match="Conversion between sparse and regular vectors failed"):
        upsert_batch(adapt(UPSERT, body), _Col(cfg))  # type: ignore[arg-type]


class _Col:
    def __init__(self, config: object) -> None:
        self.config = config


# ------------------------------------------------------------------------------ filters
def test_filters_become_rest_filter_json_the_shared_parser_takes() -> None:
    f = pb.Filter(
        must=[
            pb.Condition(field=pb.FieldCondition(key="color", match=pb.Match(keyword="red"))),
            pb.Condition(field=pb.FieldCondition(key="n", range=pb.Range(gte=1, lt=5))),
            pb.Condition(has_id=pb.HasIdCondition(has_id=[pb.PointId(num=1), pb.PointId(num=2)])),
        ],
        should=[
            pb.Condition(
                field=pb.FieldCondition(
                    key="tags", match=pb.Match(keywords=pb.RepeatedStrings(strings=["a", "b"]))
                )
            ),
            pb.Condition(is_empty=pb.IsEmptyCondition(key="x")),
            pb.Condition(
                nested=pb.NestedCondition(
                    key="arr", filter=pb.Filter(must_not=[pb.Condition(is_null=pb.IsNullCondition(key="y"))])
                )
            ),
        ],
        must_not=[
            pb.Condition(
                field=pb.FieldCondition(
                    key="k", match=pb.Match(except_integers=pb.RepeatedIntegers(integers=[3]))
                )
            )
        ],
        min_should=pb.MinShould(
            conditions=[pb.Condition(has_vector=pb.HasVectorCondition(has_vector=""))], min_count=1
        ),
    )
    got = filter_json(f)
    assert got == {
        "must": [
            {"key": "color", "match": {"value": "red"}},
            {"key": "n", "range": {"lt": 5.0, "gte": 1.0}},
            {"has_id": [1, 2]},
        ],
        "should": [
            {"key": "tags", "match": {"any": ["a", "b"]}},
            {"is_empty": {"key": "x"}},
            {"nested": {"key": "arr", "filter": {"must_not": [{"is_null": {"key": "y"}}]}}},
        ],
        "must_not": [{"key": "k", "match": {"except": [3]}}],
        "min_should": {"conditions": [{"has_vector": ""}], "min_count": 1},
    }
    parse_filter(got)  # the shared parser takes it as it takes REST's
    ts = pb.DatetimeRange()
    ts.gt.FromJsonString("2024-01-02T03:04:05Z")
    dt_filter = filter_json(
        pb.Filter(must=[pb.Condition(field=pb.FieldCondition(key="at", datetime_range=ts))])
    )
    assert dt_filter == {"must": [{"key": "at", "range": {"gt": "2024-01-02T03:04:05Z"}}]}
    parse_filter(dt_filter)
    with pytest.raises(BadInputError, match="substring"):
        parse_filter(
            filter_json(
                pb.Filter(
                    must=[pb.Condition(field=pb.FieldCondition(key="t", match=pb.Match(substring="x")))]
                )
            )
        )


# ------------------------------------------------------------------------------ read requests
def test_query_with_prefetch_and_fusion_is_the_rest_query_body() -> None:
    q = pb.QueryPoints(
        collection_name="c",
        prefetch=[
            pb.PrefetchQuery(
                query=pb.Query(nearest=pb.VectorInput(dense=pb.DenseVector(data=[1, 0]))), limit=5
            ),
            pb.PrefetchQuery(query=pb.Query(nearest=pb.VectorInput(id=pb.PointId(num=7))), using="img"),
        ],
        query=pb.Query(fusion=pb.RRF),
        limit=3,
        offset=1,
        with_payload=pb.WithPayloadSelector(exclude=pb.PayloadExcludeSelector(fields=["big"])),
        with_vectors=pb.WithVectorsSelector(include=pb.VectorsSelector(names=["img"])),
        params=pb.SearchParams(hnsw_ef=64, exact=False),
        score_threshold=0.5,
    )
    body = requests.query_points(q)
    assert body["query"] == {"fusion": "rrf"} and body["limit"] == 3 and body["offset"] == 1
    assert body["with_payload"] == {"exclude": ["big"]} and body["with_vector"] == ["img"]
    assert body["params"] == {"hnsw_ef": 64, "exact": False}
    assert np.array_equal(body["prefetch"][0]["query"], [1.0, 0.0]) and body["prefetch"][1]["query"] == 7
    req = model(QueryIn, body)
    assert isinstance(req.prefetch, list) and req.prefetch[1].using == "img"
    rec = pb.Query(
        recommend=pb.RecommendInput(
            positive=[pb.VectorInput(id=pb.PointId(uuid="6a1c6b2e-1d4e-4c4c-9a55-0c3ab0d4f8d1"))],
            negative=[pb.VectorInput(dense=pb.DenseVector(data=[0, 1]))],
            strategy=pb.BestScore,
        )
    )
    spec = requests.query_json(rec)["recommend"]
    assert spec["strategy"] == "best_score" and spec["positive"] == ["6a1c6b2e-1d4e-4c4c-9a55-0c3ab0d4f8d1"]
    mmr = requests.query_json(
        pb.Query(
            nearest_with_mmr=pb.NearestInputWithMmr(
                nearest=pb.VectorInput(id=pb.PointId(num=1)), mmr=pb.Mmr(diversity=0.5, candidates_limit=30)
            )
        )
    )
    assert mmr == {"nearest": 1, "mmr": {"diversity": 0.5, "candidates_limit": 30}}
    assert requests.query_json(pb.Query(formula=pb.Formula())) == {"formula": {}}
    feedback = pb.Query(
        relevance_feedback=pb.RelevanceFeedbackInput(
            target=pb.VectorInput(id=pb.PointId(num=3)),
            feedback=[pb.FeedbackItem(example=pb.VectorInput(id=pb.PointId(num=4)), score=0.5)],
            strategy=pb.FeedbackStrategy(naive=pb.NaiveFeedbackStrategy(a=1.0, b=0.5, c=2.0)),
        )
    )
    assert requests.query_json(feedback) == {
        "relevance_feedback": {
            "target": 3,
            "feedback": [{"example": 4, "score": 0.5}],
            "strategy": {"naive": {"a": 1.0, "b": 0.5, "c": 2.0}},
        }
    }


def test_legacy_requests_and_scroll() -> None:
    s = pb.SearchPoints(collection_name="c", vector=[1, 2], vector_name="img", limit=4, offset=2)
    body = requests.search(s)
    assert body["vector"]["name"] == "img" and np.array_equal(body["vector"]["vector"], [1, 2])
    assert model(SearchIn, body).offset == 2
    r = pb.RecommendPoints(
        collection_name="c",
        positive=[pb.PointId(num=1)],
        positive_vectors=[pb.Vector(dense=pb.DenseVector(data=[1, 0]))],
        limit=3,
        strategy=pb.SumScores,
    )
    rb = requests.recommend(r)
    assert rb["positive"][0] == 1 and np.array_equal(rb["positive"][1], [1, 0]) and rb["negative"] == []
    assert model(RecommendIn, rb).strategy == "sum_scores"
    scroll = pb.ScrollPoints(
        collection_name="c",
        offset=pb.PointId(num=10),
        limit=5,
        order_by=pb.OrderBy(key="n", direction=pb.Desc, start_from=pb.StartFrom(integer=3)),
    )
    sc = model(ScrollIn, requests.scroll(scroll))
    assert sc.offset == 10 and sc.limit == 5
    assert requests.scroll(scroll)["order_by"] == {"key": "n", "direction": "desc", "start_from": 3}
    with pytest.raises(UnprocessableInputError, match="limit"):
        model(SearchIn, requests.search(pb.SearchPoints(collection_name="c", vector=[1.0], limit=0)))


# ------------------------------------------------------------------------------ collections
def test_create_collection_and_config_round_trip_through_the_client_parser() -> None:
    req = pb.CreateCollection(
        collection_name="c",
        vectors_config=pb.VectorsConfig(
            params_map=pb.VectorParamsMap(
                map={"img": pb.VectorParams(size=4, distance=pb.Dot, datatype=pb.Float16, on_disk=True)}
            )
        ),
        shard_number=2,
        hnsw_config=pb.HnswConfigDiff(m=8, ef_construct=50),
        optimizers_config=pb.OptimizersConfigDiff(
            indexing_threshold=1000, max_optimization_threads=pb.MaxOptimizationThreads(value=2)
        ),
        wal_config=pb.WalConfigDiff(wal_capacity_mb=8),
        quantization_config=pb.QuantizationConfig(scalar=pb.ScalarQuantization(type=pb.Int8, quantile=0.99)),
        metadata=py_to_payload({"owner": "e2e"}),
    )
    create = model(CreateCollection, collection_config.create_body(req))
    cfg = config_from_create(create, 1)
    assert cfg.params.shard_number == 2 and cfg.hnsw_config.m == 8
    assert cfg.optimizer_config.max_optimization_threads == 2
    assert (
        cfg.quantization_config is not None
        and cfg.quantization_config.model_dump()["scalar"]["quantile"] == 0.99
    )
    # what the peer answers parses with qdrant-client's own converter into the same values
    rest = GrpcToRest.convert_collection_config(collection_config.config_out(cfg))
    assert rest.params.shard_number == 2 and rest.hnsw_config.m == 8 and rest.metadata == {"owner": "e2e"}
    img = rest.params.vectors["img"]  # type: ignore[index]
    assert img.size == 4 and img.distance.value == "Dot" and img.datatype.value == "float16"
    assert rest.optimizer_config.max_optimization_threads == 2
    assert rest.quantization_config.scalar.quantile == pytest.approx(0.99)  # type: ignore[union-attr]
    unknown = pb.CreateCollection(
        collection_name="c", vectors_config=pb.VectorsConfig(params=pb.VectorParams(size=4))
    )
    with pytest.raises(FormatError, match="distance"):
        model(CreateCollection, collection_config.create_body(unknown))


# ------------------------------------------------------------------------------ edge
def test_error_messages_are_qdrants() -> None:
    assert message(UnprocessableInputError("[limit: value 0 invalid, must be 1 or larger]")) == (
        "Validation error in body: [limit: value 0 invalid, must be 1 or larger]"
    )
    assert message(BadInputError("Vector dimension error: expected dim: 4, got 2")).startswith(
        "Wrong input: "
    )
    assert message(FormatError("x: bad")) == "Wrong input: x: bad"


def test_api_key_decisions() -> None:
    both = auth.ApiKeyInterceptor("full", "ro")
    upsert, query = "/qdrant.Points/Upsert", "/qdrant.Points/Query"
    assert both.decide("/qdrant.Qdrant/HealthCheck", ()) is None
    assert both.decide(query, ())[0].name == "UNAUTHENTICATED"  # type: ignore[index]
    assert both.decide(query, (("api-key", "nope"),))[0].name == "UNAUTHENTICATED"  # type: ignore[index]
    assert both.decide(query, (("api-key", "ro"),)) is None
    assert both.decide(upsert, (("api-key", "ro"),))[0].name == "PERMISSION_DENIED"  # type: ignore[index]
    assert both.decide(upsert, (("authorization", "Bearer full"),)) is None
    only_ro = auth.ApiKeyInterceptor(None, "ro")
    assert only_ro.decide(upsert, (("api-key", "full"),))[0].name == "UNAUTHENTICATED"  # type: ignore[index]


# ------------------------------------------------------------------------------ cluster setup
def test_cluster_setup_is_the_rest_cluster_operation_body() -> None:
    def body(**op: object) -> dict[str, object]:
        return cluster_setup_body(pb.UpdateCollectionClusterSetupRequest(collection_name="c", **op))  # type: ignore[arg-type]

    move = body(move_shard=pb.MoveShard(shard_id=1, from_peer_id=2, to_peer_id=3))
    assert move == {"move_shard": {"shard_id": 1, "from_peer_id": 2, "to_peer_id": 3}}
    rep = body(
        replicate_shard=pb.ReplicateShard(shard_id=0, from_peer_id=2, to_peer_id=3, method=pb.WalDelta)
    )
    assert rep["replicate_shard"] == {
        "shard_id": 0,
        "from_peer_id": 2,
        "to_peer_id": 3,
        "method": "wal_delta",
    }
    req = model(ClusterOperationIn, rep)
    assert req.replicate_shard is not None and req.replicate_shard.method == "wal_delta"
    # a restart's method is not optional on the wire: its default is stream_records
    restart = body(restart_transfer=pb.RestartTransfer(shard_id=0, from_peer_id=2, to_peer_id=3))
    assert restart["restart_transfer"] == {
        "shard_id": 0,
        "from_peer_id": 2,
        "to_peer_id": 3,
        "method": "stream_records",
    }
    abort = body(
        abort_transfer=pb.AbortShardTransfer(shard_id=0, to_shard_id=4, from_peer_id=2, to_peer_id=3)
    )
    assert abort == {"abort_transfer": {"shard_id": 0, "to_shard_id": 4, "from_peer_id": 2, "to_peer_id": 3}}
    assert body(drop_replica=pb.Replica(shard_id=5, peer_id=6)) == {
        "drop_replica": {"shard_id": 5, "peer_id": 6}
    }
    create = body(create_shard_key=pb.CreateShardKey(shard_key=pb.ShardKey(keyword="eu"), shards_number=2))
    assert create == {"create_sharding_key": {"shard_key": "eu", "shards_number": 2}}
    drop = body(delete_shard_key=pb.DeleteShardKey(shard_key=pb.ShardKey(number=7)))
    assert drop == {"drop_sharding_key": {"shard_key": 7}}
    assert body() == {}
    with pytest.raises(Unimplemented, match="replicate_points"):
        body(replicate_points=pb.ReplicatePoints(from_shard_key=pb.ShardKey(keyword="a")))
    with pytest.raises(FormatError, match=r"drop_replica\.shard_id"):
        model(ClusterOperationIn, {"drop_replica": {"shard_id": -1, "peer_id": 1}})
