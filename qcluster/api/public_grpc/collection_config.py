"""Collection configuration between Qdrant's gRPC messages and the REST models: create / update
requests in (as REST bodies, validated by the shared models), config and info out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format

from qcluster.api.public_grpc.values import fields_dict, payload_to_py, py_to_payload
from qcluster.api.public_grpc.wire import pb
from qcluster.models.collections import CollectionConfig
from qcluster.models.config import (
    HnswConfig,
    HnswConfigDiff,
    OptimizersConfig,
    QuantizationConfig,
    SparseVectorParams,
    VectorParams,
)
from qcluster.shards.base import ShardInfo
from qcluster.types import DEFAULT_VECTOR

_STATUS = {"green": pb.Green, "yellow": pb.Yellow, "red": pb.Red, "grey": pb.Grey}
_COMPARATORS = {pb.MaxSim: "max_sim"}
_INDEX_PARAMS = {
    "keyword": ("keyword_index_params", pb.KeywordIndexParams),
    "integer": ("integer_index_params", pb.IntegerIndexParams),
    "float": ("float_index_params", pb.FloatIndexParams),
    "geo": ("geo_index_params", pb.GeoIndexParams),
    "text": ("text_index_params", pb.TextIndexParams),
    "bool": ("bool_index_params", pb.BoolIndexParams),
    "datetime": ("datetime_index_params", pb.DatetimeIndexParams),
    "uuid": ("uuid_index_params", pb.UuidIndexParams),
}


# ------------------------------------------------------------------------------ requests in
def _same(name: str) -> str:
    return name


def _vector_params(p: pb.VectorParams) -> dict[str, Any]:
    out = fields_dict(p)
    out["size"] = p.size
    out["distance"] = pb.Distance.Name(p.distance)  # Cosine / Euclid / Dot / Manhattan as in REST
    if p.HasField("quantization_config"):
        out["quantization_config"] = fields_dict(p.quantization_config)
    if p.HasField("multivector_config"):
        out["multivector_config"] = {
            "comparator": _COMPARATORS.get(p.multivector_config.comparator, "max_sim")
        }
    return out


def _sparse_vectors(c: pb.SparseVectorConfig) -> dict[str, Any]:
    """``sparse_vectors_config``: ``{name: {index, modifier}}`` as in REST."""
    raw: dict[str, Any] = fields_dict(c).get("map", {})
    return raw


def _strict_mode(c: pb.StrictModeConfig) -> dict[str, Any]:
    """``strict_mode_config``: REST's shape (its per-vector maps are one level less deep)."""
    out = fields_dict(c)
    for key in ("multivector_config", "sparse_config"):
        if isinstance(out.get(key), dict):
            out[key] = out[key].get(key, {})
    return out


def _optimizers(o: pb.OptimizersConfigDiff) -> dict[str, Any]:
    out = fields_dict(o)
    threads = out.pop("max_optimization_threads", None)
    legacy = out.pop("deprecated_max_optimization_threads", None)
    if isinstance(threads, dict) and "value" in threads:
        out["max_optimization_threads"] = threads["value"]
    elif legacy is not None:
        out["max_optimization_threads"] = legacy
    return out


def _quantization_diff(q: pb.QuantizationConfigDiff) -> Any:
    return "Disabled" if q.WhichOneof("quantization") == "disabled" else fields_dict(q)


def create_body(req: pb.CreateCollection) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if req.HasField("vectors_config"):
        vc = req.vectors_config
        kind = vc.WhichOneof("config")
        if kind == "params":
            out["vectors"] = _vector_params(vc.params)
        elif kind == "params_map":
            out["vectors"] = {name: _vector_params(p) for name, p in vc.params_map.map.items()}
    for name in ("shard_number", "replication_factor", "write_consistency_factor", "on_disk_payload"):
        if req.HasField(name):
            out[name] = getattr(req, name)
    if req.HasField("hnsw_config"):
        out["hnsw_config"] = fields_dict(req.hnsw_config)
    if req.HasField("wal_config"):
        out["wal_config"] = fields_dict(req.wal_config)
    if req.HasField("optimizers_config"):
        out["optimizers_config"] = _optimizers(req.optimizers_config)
    if req.HasField("quantization_config"):
        out["quantization_config"] = fields_dict(req.quantization_config)
    if req.HasField("sharding_method"):
        out["sharding_method"] = pb.ShardingMethod.Name(req.sharding_method).lower()
    if req.HasField("sparse_vectors_config") and req.sparse_vectors_config.map:
        out["sparse_vectors"] = _sparse_vectors(req.sparse_vectors_config)
    if req.HasField("strict_mode_config"):
        out["strict_mode_config"] = _strict_mode(req.strict_mode_config)
    if req.metadata:
        out["metadata"] = payload_to_py(req.metadata)
    return out


def _vector_diff(d: pb.VectorParamsDiff) -> dict[str, Any]:
    out = fields_dict(d)
    if d.HasField("quantization_config"):
        out["quantization_config"] = _quantization_diff(d.quantization_config)
    return out


def update_body(req: pb.UpdateCollection) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if req.HasField("vectors_config"):
        vc = req.vectors_config
        kind = vc.WhichOneof("config")
        if kind == "params":
            out["vectors"] = {DEFAULT_VECTOR: _vector_diff(vc.params)}
        elif kind == "params_map":
            out["vectors"] = {name: _vector_diff(d) for name, d in vc.params_map.map.items()}
    if req.HasField("optimizers_config"):
        out["optimizers_config"] = _optimizers(req.optimizers_config)
    if req.HasField("params"):
        out["params"] = fields_dict(req.params)
    if req.HasField("hnsw_config"):
        out["hnsw_config"] = fields_dict(req.hnsw_config)
    if req.HasField("quantization_config"):
        out["quantization_config"] = _quantization_diff(req.quantization_config)
    if req.HasField("sparse_vectors_config") and req.sparse_vectors_config.map:
        out["sparse_vectors"] = _sparse_vectors(req.sparse_vectors_config)
    if req.HasField("strict_mode_config"):
        out["strict_mode_config"] = _strict_mode(req.strict_mode_config)
    if req.metadata:
        out["metadata"] = payload_to_py(req.metadata)
    return out


# ------------------------------------------------------------------------------ config out
def _hnsw(h: HnswConfig | HnswConfigDiff) -> pb.HnswConfigDiff:
    return pb.HnswConfigDiff(**h.model_dump(exclude_none=True))


def _quantization(q: QuantizationConfig) -> pb.QuantizationConfig:
    raw = q.model_dump(exclude_none=True)
    kind, body = next(iter(raw.items()))
    if kind == "scalar":
        body["type"] = pb.Int8
        return pb.QuantizationConfig(scalar=pb.ScalarQuantization(**body))
    if kind == "product":
        body["compression"] = pb.CompressionRatio.Value(body["compression"])
        return pb.QuantizationConfig(product=pb.ProductQuantization(**body))
    return pb.QuantizationConfig(binary=pb.BinaryQuantization(**body))


def _vector_params_out(p: VectorParams) -> pb.VectorParams:
    out = pb.VectorParams(size=p.size, distance=pb.Distance.Value(p.distance))
    if p.hnsw_config is not None:
        out.hnsw_config.CopyFrom(_hnsw(p.hnsw_config))
    if p.quantization_config is not None:
        out.quantization_config.CopyFrom(_quantization(p.quantization_config))
    if p.on_disk is not None:
        out.on_disk = p.on_disk
    if p.datatype is not None:
        out.datatype = pb.Datatype.Value(p.datatype.capitalize())
    if p.multi:
        out.multivector_config.comparator = pb.MaxSim
    return out


def _sparse_params_out(p: SparseVectorParams) -> pb.SparseVectorParams:
    out = pb.SparseVectorParams()
    if p.index is not None:
        index = p.index.model_dump(exclude_none=True)
        for key in ("datatype", "memory"):
            index.pop(key, None)  # enums qcluster keeps only for REST round trips
        out.index.CopyFrom(pb.SparseIndexConfig(**index))
    if p.modifier is not None:
        out.modifier = pb.Idf if p.modifier == "idf" else getattr(pb, "None")
    return out


def _optimizers_out(o: OptimizersConfig) -> pb.OptimizersConfigDiff:
    raw = o.model_dump(exclude_none=True)
    threads = raw.pop("max_optimization_threads", None)
    out = pb.OptimizersConfigDiff(**raw)
    if threads is None:
        out.max_optimization_threads.setting = pb.MaxOptimizationThreads.Auto
    else:
        out.max_optimization_threads.value = threads
    return out


def config_out(cfg: CollectionConfig) -> pb.CollectionConfig:
    p = cfg.params
    if cfg.single_unnamed:
        vectors = pb.VectorsConfig(params=_vector_params_out(p.vectors[DEFAULT_VECTOR]))
    else:
        named = {name: _vector_params_out(v) for name, v in p.vectors.items()}
        vectors = pb.VectorsConfig(params_map=pb.VectorParamsMap(map=named))
    out = pb.CollectionConfig(
        params=pb.CollectionParams(
            shard_number=p.shard_number,
            on_disk_payload=p.on_disk_payload,
            vectors_config=vectors,
            replication_factor=p.replication_factor,
            write_consistency_factor=p.write_consistency_factor,
        ),
        hnsw_config=_hnsw(cfg.hnsw_config),
        optimizer_config=_optimizers_out(cfg.optimizer_config),
        wal_config=pb.WalConfigDiff(**cfg.wal_config.model_dump(exclude_none=True)),
        metadata=py_to_payload(cfg.metadata),
    )
    if p.sparse_vectors:
        sparse = {name: _sparse_params_out(v) for name, v in p.sparse_vectors.items()}
        out.params.sparse_vectors_config.CopyFrom(pb.SparseVectorConfig(map=sparse))
    if p.sharding_method is not None:
        out.params.sharding_method = pb.Custom if p.sharding_method == "custom" else pb.Auto
    if cfg.quantization_config is not None:
        out.quantization_config.CopyFrom(_quantization(cfg.quantization_config))
    return out


def _index_params(params: Mapping[str, Any]) -> pb.PayloadIndexParams | None:
    kind = params.get("type")
    if kind not in _INDEX_PARAMS:
        return None
    field, cls = _INDEX_PARAMS[kind]
    body = {
        k: v.capitalize() if k in ("tokenizer", "memory") and isinstance(v, str) else v
        for k, v in params.items()
    }
    body.pop("type", None)
    try:
        msg = json_format.ParseDict(body, cls(), ignore_unknown_fields=True)
    except json_format.ParseError:
        return None
    return pb.PayloadIndexParams(**{field: msg})


def _schema_info(info: Mapping[str, Any]) -> pb.PayloadSchemaInfo:
    kind = str(info.get("data_type", "")).capitalize()
    known = kind in pb.PayloadSchemaType.keys()  # noqa: SIM118 - an enum wrapper, not a dict
    out = pb.PayloadSchemaInfo(
        data_type=pb.PayloadSchemaType.Value(kind) if known else pb.UnknownType,
        points=int(info.get("points", 0)),
    )
    params = info.get("params")
    if isinstance(params, Mapping):
        converted = _index_params(params)
        if converted is not None:
            out.params.CopyFrom(converted)
    return out


def info_out(info: ShardInfo, cfg: CollectionConfig) -> pb.CollectionInfo:
    return pb.CollectionInfo(
        status=_STATUS.get(info.status, pb.UnknownCollectionStatus),
        optimizer_status=pb.OptimizerStatus(
            ok=info.optimizer_error is None, error=info.optimizer_error or ""
        ),
        segments_count=info.segments_count,
        points_count=info.points_count,
        indexed_vectors_count=info.indexed_vectors_count,
        payload_schema={k: _schema_info(v) for k, v in info.payload_schema.items()},
        config=config_out(cfg),
    )
