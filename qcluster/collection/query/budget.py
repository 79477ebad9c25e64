"""What a read would hold in memory, estimated before it runs, and refused above
``service.limits.max_response_mb``.

Sizes in a request (``limit``, ``offset``, ``group_size``, prefetch limits) are clamped to what
the collection holds by the shards themselves (``shard_read.py``): a limit beyond the collection
returns every match and allocates no more than the data. What stays is the product: a batch of
queries that each return the whole collection, with vectors, or an example query that rescores
thousands of candidates against thousands of examples. So each request is described as a few
:class:`Want` (points x bytes per point); when their sum is above the budget, the collection's
point count is fetched once, the wants are clamped to it, and a request still above the budget
is refused with a 400 naming the field and the bound, before any search runs.

The bytes per point are estimates, on the generous side: ``POINT_BYTES`` for the Python objects
and JSON of a point id and score, ``PAYLOAD_BYTES`` for a payload (its real size is not known
before it is read), ``VECTOR_BYTES`` per vector dimension (float32 plus its JSON text).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qcluster.collection.collection import Collection
from qcluster.errors import BadInputError
from qcluster.models.query import PrefetchIn, QueryIn
from qcluster.settings import LimitsSettings
from qcluster.shards.base import CountRequest, PayloadSelector, VectorSelector
from qcluster.types import DEFAULT_VECTOR

POINT_BYTES = 200
PAYLOAD_BYTES = 1024
VECTOR_BYTES = 12
CANDIDATES_PER_RESULT = 4  # example queries search this many candidates per wanted point (+16)
EXAMPLE_KINDS = ("recommend", "discover", "context")


@dataclass(frozen=True, slots=True)
class Want:
    """``points`` points of ``per_point`` bytes each; ``points`` is what the request asks, before
    clamping to the collection; ``fixed`` bytes do not shrink with the collection."""

    points: int
    per_point: int
    field: str
    fixed: int = 0

    def bytes(self, collection_points: int | None = None) -> int:
        n = self.points if collection_points is None else min(self.points, collection_points)
        return n * self.per_point + self.fixed


def _dims(col: Collection, selector: VectorSelector) -> int:
    if not selector.enabled:
        return 0
    vectors = col.config.params.vectors
    names = vectors if selector.names is None else [n for n in selector.names if n in vectors]
    return sum(vectors[n].size for n in names)


def point_bytes(col: Collection, with_payload: Any, with_vector: Any) -> int:
    """Estimated bytes of one returned point (bad selectors are reported later, by the query)."""
    try:
        payload = PayloadSelector.parse(with_payload).enabled
        dims = _dims(col, VectorSelector.parse(with_vector))
    except BadInputError:
        return POINT_BYTES
    return POINT_BYTES + (PAYLOAD_BYTES if payload else 0) + VECTOR_BYTES * dims


def records_want(col: Collection, points: int, with_payload: Any, with_vector: Any, field: str) -> Want:
    return Want(points, point_bytes(col, with_payload, with_vector), field)


def _examples(query: Mapping[str, Any]) -> int:
    count = 0
    for key in EXAMPLE_KINDS:
        spec = query.get(key)
        if key == "context" and isinstance(spec, list):
            count += 2 * len(spec)
        elif isinstance(spec, Mapping):
            for part in ("positive", "negative", "context"):
                items = spec.get(part)
                if isinstance(items, list):
                    count += len(items) * (2 if part == "context" else 1)
            count += 1 if "target" in spec else 0
    return count


def query_wants(col: Collection, req: QueryIn, field: str, default_payload: Any = False) -> list[Want]:
    """The wants of one universal query: its result, every prefetch, and the candidates an
    example query rescores."""
    using = req.using or DEFAULT_VECTOR
    params = col.config.params.vectors.get(using)
    dim = params.size if params is not None else 0
    wanted = (req.limit or 10) + (req.offset or 0)
    payload = default_payload if req.with_payload is None else req.with_payload
    wants = [Want(wanted, point_bytes(col, payload, req.with_vector), f"{field}limit")]
    stack: list[tuple[PrefetchIn, str]] = [(req, field)]
    while stack:
        node, where = stack.pop()
        top = node is req
        limit = (node.limit or 10) + ((req.offset or 0) if top else 0)
        if not top:
            wants.append(Want(limit, POINT_BYTES + 4 * dim, f"{where}limit"))
        query = node.query
        if isinstance(query, Mapping) and any(k in query for k in EXAMPLE_KINDS):
            examples = _examples(query)
            candidates = (examples + 1) * (CANDIDATES_PER_RESULT * limit + 16)
            wants.append(Want(candidates, POINT_BYTES + 4 * dim + 8 * examples, f"{where}query"))
        elif isinstance(query, Mapping) and isinstance(query.get("mmr"), Mapping):
            pool = query["mmr"].get("candidates_limit")
            pool = pool if isinstance(pool, int) and not isinstance(pool, bool) else 0
            wants.append(Want(max(pool, limit), POINT_BYTES + 8 * dim, f"{where}query.mmr"))
        children = node.prefetch
        items: Sequence[PrefetchIn] = (
            [] if children is None else children if isinstance(children, list) else [children]
        )
        stack.extend((p, f"{where}prefetch.") for p in items)
    return wants


def groups_wants(
    col: Collection, req: QueryIn, group_size: int, limit: int, max_candidates: int, field: str = ""
) -> list[Want]:
    """A group-by query: its groups' hits, and the candidates it buckets."""
    hits = Want(limit * group_size, point_bytes(col, req.with_payload, req.with_vector), f"{field}group_size")
    candidates = Want(max_candidates, POINT_BYTES + PAYLOAD_BYTES, f"{field}limit")
    inner = req.model_copy(update={"limit": min(max_candidates, limit * group_size), "offset": None})
    return [hits, candidates, *query_wants(col, inner, field)[1:]]


async def check_budget(col: Collection, wants: Sequence[Want], limits: LimitsSettings) -> None:
    """Refuse (400) a read whose estimated memory is above ``max_response_mb``, counting every
    want clamped to the collection's size."""
    budget = limits.max_response_mb * 2**20
    if sum(w.bytes() for w in wants) <= budget:
        return
    points = await col.count(CountRequest(filter=None, exact=True))
    total = sum(w.bytes(points) for w in wants)
    if total <= budget:
        return
    worst = max(wants, key=lambda w: w.bytes(points))
    field = worst.field.rstrip(".") or "limit"
    raise BadInputError(
        f"{field}: this request would hold about {total // 2**20} MB of results "
        f"({min(worst.points, points)} points of ~{worst.per_point} bytes here), above the bound of "
        f"{limits.max_response_mb} MB (service.limits.max_response_mb); ask for fewer points, page "
        "with offset, or leave vectors and payload out",
        field,
    )
