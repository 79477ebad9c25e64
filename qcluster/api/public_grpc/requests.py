"""Read requests: Qdrant's gRPC messages -> the REST request bodies (as dicts, vectors as float32
arrays), which the servicers validate into the same request models the REST handlers build.

Only fields a message sets are passed on (proto3 ``optional`` / message presence), so defaults are
decided once, by the shared models and actions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qcluster.api.public_grpc.filters import optional_filter
from qcluster.api.public_grpc.values import (
    fields_dict,
    point_id,
    point_ids,
    shard_key_selector,
    timestamp_text,
)
from qcluster.api.public_grpc.vectors import vector_input_json, vector_json
from qcluster.api.public_grpc.wire import pb

_STRATEGY = {pb.AverageVector: "average_vector", pb.BestScore: "best_score", pb.SumScores: "sum_scores"}
_FUSION = {pb.RRF: "rrf", pb.DBSF: "dbsf"}
_SAMPLE = {pb.Random: "random"}


def put(out: dict[str, Any], msg: Any, name: str, conv: Any = None, key: str | None = None) -> None:
    """``out[key or name] = conv(msg.name)`` when ``msg`` has that field and it is set."""
    if name in msg.DESCRIPTOR.fields_by_name and msg.HasField(name):
        value = getattr(msg, name)
        out[key or name] = conv(value) if conv is not None else value


# ------------------------------------------------------------------------------ selectors
def with_payload(sel: pb.WithPayloadSelector) -> Any:
    kind = sel.WhichOneof("selector_options")
    if kind == "enable":
        return sel.enable
    if kind == "include":
        return list(sel.include.fields)
    if kind == "exclude":
        return {"exclude": list(sel.exclude.fields)}
    return None


def with_vectors(sel: pb.WithVectorsSelector) -> Any:
    kind = sel.WhichOneof("selector_options")
    if kind == "enable":
        return sel.enable
    if kind == "include":
        return list(sel.include.names)
    return None


def selector_json(sel: pb.PointsSelector, out: dict[str, Any] | None = None) -> dict[str, Any]:
    """A PointsSelector as REST's ``{"points": [...]}`` or ``{"filter": {...}}``."""
    out = {} if out is None else out
    kind = sel.WhichOneof("points_selector_one_of")
    if kind == "points":
        out["points"] = point_ids(sel.points.ids, "points")
    elif kind == "filter":
        out["filter"] = optional_filter(sel, "filter")
    return out


def params_json(p: pb.SearchParams) -> dict[str, Any]:
    return fields_dict(p)


def lookup_from(loc: pb.LookupLocation) -> dict[str, Any]:
    out: dict[str, Any] = {"collection": loc.collection_name}
    put(out, loc, "vector_name", key="vector")
    return out


def with_lookup(wl: pb.WithLookup) -> dict[str, Any]:
    out: dict[str, Any] = {"collection": wl.collection}
    put(out, wl, "with_payload", with_payload)
    put(out, wl, "with_vectors", with_vectors)
    return out


def order_by(ob: pb.OrderBy) -> dict[str, Any]:
    out: dict[str, Any] = {"key": ob.key}
    if ob.HasField("direction"):
        out["direction"] = "desc" if ob.direction == pb.Desc else "asc"
    if ob.HasField("start_from"):
        sf = ob.start_from
        kind = sf.WhichOneof("value")
        if kind == "timestamp":
            out["start_from"] = timestamp_text(sf.timestamp)
        elif kind is not None:
            out["start_from"] = getattr(sf, kind)
    return out


def shard_key(msg: Any, out: dict[str, Any]) -> dict[str, Any]:
    """``shard_key_selector`` as REST's ``shard_key``, when the request sets one."""
    put(out, msg, "shard_key_selector", shard_key_selector, key="shard_key")
    return out


def _common(msg: Any, out: dict[str, Any]) -> dict[str, Any]:
    """The fields search-like requests share, under their REST names."""
    shard_key(msg, out)
    flt = optional_filter(msg)
    if flt is not None:
        out["filter"] = flt
    put(out, msg, "params", params_json)
    put(out, msg, "score_threshold")
    put(out, msg, "with_payload", with_payload)
    put(out, msg, "with_vectors", with_vectors, key="with_vector")
    put(out, msg, "lookup_from", lookup_from)
    return out


# ------------------------------------------------------------------------------ universal query
def _pairs(ctx: pb.ContextInput) -> list[dict[str, Any]]:
    return [
        {"positive": vector_input_json(p.positive), "negative": vector_input_json(p.negative)}
        for p in ctx.pairs
    ]


def query_json(q: pb.Query) -> Any:
    kind = q.WhichOneof("variant")
    if kind == "nearest":
        return vector_input_json(q.nearest)
    if kind == "recommend":
        r = q.recommend
        spec: dict[str, Any] = {
            "positive": [vector_input_json(v) for v in r.positive],
            "negative": [vector_input_json(v) for v in r.negative],
        }
        if r.HasField("strategy"):
            spec["strategy"] = _STRATEGY.get(r.strategy)
        return {"recommend": spec}
    if kind == "discover":
        d = q.discover
        return {"discover": {"target": vector_input_json(d.target), "context": _pairs(d.context)}}
    if kind == "context":
        return {"context": _pairs(q.context)}
    if kind == "order_by":
        return {"order_by": order_by(q.order_by)}
    if kind == "fusion":
        return {"fusion": _FUSION.get(q.fusion, q.fusion)}
    if kind == "sample":
        return {"sample": _SAMPLE.get(q.sample, q.sample)}
    if kind == "nearest_with_mmr":
        nm = q.nearest_with_mmr
        return {"nearest": vector_input_json(nm.nearest), "mmr": fields_dict(nm.mmr)}
    if kind == "rrf":
        rrf: dict[str, Any] = {}
        put(rrf, q.rrf, "k")
        if q.rrf.weights:
            rrf["weights"] = [float(w) for w in q.rrf.weights]
        return {"rrf": rrf}
    if kind == "relevance_feedback":
        rf = q.relevance_feedback
        naive = rf.strategy.naive
        return {
            "relevance_feedback": {
                "target": vector_input_json(rf.target),
                "feedback": [
                    {"example": vector_input_json(f.example), "score": f.score} for f in rf.feedback
                ],
                "strategy": {"naive": {"a": naive.a, "b": naive.b, "c": naive.c}},
            }
        }
    if kind is None:
        return None
    return {kind: {}}  # formula, text: refused by the query engine, by name


def prefetch_json(p: pb.PrefetchQuery) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if p.prefetch:
        out["prefetch"] = [prefetch_json(x) for x in p.prefetch]
    put(out, p, "query", query_json)
    put(out, p, "using")
    _common(p, out)
    put(out, p, "limit")
    return out


def query_points(q: Any) -> dict[str, Any]:
    """``QueryPoints`` (and the query part of ``QueryPointGroups``) as a REST query body."""
    out = prefetch_json(q)
    put(out, q, "offset")
    return out


def query_groups(q: pb.QueryPointGroups) -> dict[str, Any]:
    out = query_points(q)
    out["group_by"] = q.group_by
    put(out, q, "group_size")
    put(out, q, "with_lookup", with_lookup)
    return out


# ------------------------------------------------------------------------------ legacy requests
def search(s: Any) -> dict[str, Any]:
    """``SearchPoints`` / ``SearchPointGroups``: ``vector`` with ``vector_name`` and, for a sparse
    query, ``sparse_indices``."""
    vec: Any = np.asarray(s.vector, dtype=np.float32)
    if s.HasField("sparse_indices"):
        vec = {"indices": list(s.sparse_indices.data), "values": list(s.vector)}
    if s.HasField("vector_name"):
        vec = {"name": s.vector_name, "vector": vec}
    out = _common(s, {"vector": vec, "limit": s.limit})
    put(out, s, "offset")
    return out


def _examples(ids: Any, vectors: Any, field: str) -> list[Any]:
    return [*point_ids(ids, field), *(vector_json(v) for v in vectors)]


def recommend(r: Any) -> dict[str, Any]:
    """``RecommendPoints`` / ``RecommendPointGroups``: example ids, then example vectors."""
    out: dict[str, Any] = {
        "positive": _examples(r.positive, r.positive_vectors, "positive"),
        "negative": _examples(r.negative, r.negative_vectors, "negative"),
        "limit": r.limit,
    }
    if r.HasField("strategy"):
        out["strategy"] = _STRATEGY.get(r.strategy)
    put(out, r, "using")
    put(out, r, "offset")
    return _common(r, out)


def _example(e: pb.VectorExample) -> Any:
    kind = e.WhichOneof("example")
    if kind == "id":
        return point_id(e.id)
    return vector_json(e.vector) if kind == "vector" else None


def discover(d: pb.DiscoverPoints) -> dict[str, Any]:
    out: dict[str, Any] = {
        "context": [{"positive": _example(p.positive), "negative": _example(p.negative)} for p in d.context],
        "limit": d.limit,
    }
    if d.HasField("target") and d.target.HasField("single"):
        out["target"] = _example(d.target.single)
    put(out, d, "using")
    put(out, d, "offset")
    return _common(d, out)


def grouped(msg: Any, body: dict[str, Any]) -> dict[str, Any]:
    """The group fields of ``Search/RecommendPointGroups`` added to their search body."""
    body.update(group_by=msg.group_by, group_size=msg.group_size)
    put(body, msg, "with_lookup", with_lookup)
    return body


# ------------------------------------------------------------------------------ scroll / count / facet / get
def scroll(s: pb.ScrollPoints) -> dict[str, Any]:
    out: dict[str, Any] = shard_key(s, {})
    flt = optional_filter(s)
    if flt is not None:
        out["filter"] = flt
    put(out, s, "offset", point_id)
    put(out, s, "limit")
    put(out, s, "with_payload", with_payload)
    put(out, s, "with_vectors", with_vectors, key="with_vector")
    put(out, s, "order_by", order_by)
    return out


def search_matrix(m: pb.SearchMatrixPoints) -> dict[str, Any]:
    out: dict[str, Any] = shard_key(m, {})
    flt = optional_filter(m)
    if flt is not None:
        out["filter"] = flt
    for name in ("sample", "limit", "using"):
        put(out, m, name)
    return out


def count(c: pb.CountPoints) -> dict[str, Any]:
    out: dict[str, Any] = shard_key(c, {})
    flt = optional_filter(c)
    if flt is not None:
        out["filter"] = flt
    put(out, c, "exact")
    return out


def facet(f: pb.FacetCounts) -> dict[str, Any]:
    out: dict[str, Any] = shard_key(f, {"key": f.key})
    flt = optional_filter(f)
    if flt is not None:
        out["filter"] = flt
    put(out, f, "limit")
    put(out, f, "exact")
    return out


def get(g: pb.GetPoints) -> dict[str, Any]:
    out: dict[str, Any] = shard_key(g, {"ids": point_ids(g.ids)})
    put(out, g, "with_payload", with_payload)
    put(out, g, "with_vectors", with_vectors, key="with_vector")
    return out
