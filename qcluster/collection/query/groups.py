"""Group-by queries (``/points/query/groups``, legacy ``/search/groups``, ``/recommend/groups``).

The query runs with a widened limit over points that have the ``group_by`` field; hits are
bucketed by the field's values (a point with an array value joins each of its groups), groups are
ordered by their best hit, and the widened search repeats (4x wider each time, up to a cap) while groups
are missing or not full and the last round came back full. ``with_lookup`` fetches, for each
group, the point whose id is the group value from another collection.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from qcluster.collection.collection import Collection
from qcluster.collection.query.context import Hit, Lookup
from qcluster.collection.query.run import merge_filters, run_query
from qcluster.errors import BadInputError
from qcluster.models.query import QueryIn, WithLookupIn
from qcluster.shards.base import PayloadSelector, Record, VectorSelector
from qcluster.types import PointId, parse_point_id

GroupId = str | int
MAX_CANDIDATES = 10_000


@dataclass(slots=True)
class Group:
    id: GroupId
    hits: list[Hit] = field(default_factory=list)
    lookup: Record | None = None


def group_values(payload: Mapping[str, Any] | None, key: str) -> list[GroupId]:
    """Values of ``key`` (dot path, ``[]`` optional) usable as group ids: strings and integers."""
    nodes: list[Any] = [payload or {}]
    for part in key.replace("[]", "").split("."):
        nxt: list[Any] = []
        for node in nodes:
            items = node if isinstance(node, list) else [node]
            for item in items:
                if isinstance(item, Mapping) and part in item:
                    nxt.append(item[part])
        nodes = nxt
    out: list[GroupId] = []
    for node in nodes:
        for v in node if isinstance(node, list) else [node]:
            usable = isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool))
            if usable and v not in out:
                out.append(v)
    return out


def bucket(hits: list[Hit], key: str, group_size: int, limit: int) -> dict[GroupId, list[Hit]]:
    groups: dict[GroupId, list[Hit]] = {}
    for hit in hits:
        for value in group_values(hit.payload, key):
            members = groups.get(value)
            if members is None:
                if len(groups) >= limit:
                    continue
                members = groups[value] = []
            if len(members) < group_size:
                members.append(hit)
    return groups


async def run_groups(
    col: Collection,
    req: QueryIn,
    lookup: Lookup,
    *,
    group_by: str,
    group_size: int,
    limit: int,
    with_lookup: str | WithLookupIn | None,
) -> list[Group]:
    has_key = {"must_not": [{"is_empty": {"key": group_by}}]}
    inner = req.model_copy(
        update={
            "filter": merge_filters(req.filter, has_key),
            "offset": None,
            "with_payload": [group_by],
            "with_vector": False,
        }
    )
    want = min(max(limit * group_size * 2, 10), MAX_CANDIDATES)  # never past the cap, whatever was asked
    while True:
        hits = await run_query(col, inner.model_copy(update={"limit": want}), lookup)
        groups = bucket(hits, group_by, group_size, limit)
        complete = len(groups) >= limit and all(len(m) >= group_size for m in groups.values())
        if complete or len(hits) < want or want >= MAX_CANDIDATES:
            break
        want = min(want * 4, MAX_CANDIDATES)
    out = [Group(value, members) for value, members in groups.items()]
    await _fill_hits(col, out, req)
    if with_lookup is not None:
        await _fill_lookup(out, lookup, with_lookup)
    return out


async def _fill_hits(col: Collection, groups: list[Group], req: QueryIn) -> None:
    """The payload and vectors the request asked for (default: none) on the final hits."""
    payload = PayloadSelector.parse(req.with_payload if req.with_payload is not None else False)
    vector = VectorSelector.parse(req.with_vector)
    ids = list({h.id: None for g in groups for h in g.hits})
    if not payload.enabled and not vector.enabled:
        for g in groups:
            g.hits = [Hit(h.id, h.score, h.version) for h in g.hits]
        return
    recs = {r.id: r for r in await col.retrieve(ids, payload, vector)}
    for g in groups:
        g.hits = [
            Hit(h.id, h.score, h.version, recs[h.id].payload, recs[h.id].vector)
            for h in g.hits
            if h.id in recs
        ]


async def _fill_lookup(groups: list[Group], lookup: Lookup, spec: str | WithLookupIn) -> None:
    if isinstance(spec, str):
        spec = WithLookupIn(collection=spec)
    other = lookup(spec.collection)
    payload = PayloadSelector.parse(True if spec.with_payload is None else spec.with_payload)
    vector = VectorSelector.parse(spec.with_vectors)
    ids: dict[GroupId, PointId] = {}
    for g in groups:
        try:
            ids[g.id] = parse_point_id(g.id)
        except BadInputError:
            continue  # a group value that is no point id has no lookup
    recs = {r.id: r for r in await other.retrieve(list(ids.values()), payload, vector)}
    for g in groups:
        pid = ids.get(g.id)
        if pid is not None:
            g.lookup = recs.get(pid)
