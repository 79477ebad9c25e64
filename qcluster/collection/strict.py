"""Strict mode (a collection's ``strict_mode_config``): limits a request must stay within,
checked before any work is done, with Qdrant's messages.

Violations are :class:`StrictModeError` (400 ``Bad request: <what>. Help: <how to fix>``); the
read / write rate limits (tokens per minute, a bucket holding one minute's worth, refilled
continuously) are :class:`RateLimitedError` (429 with ``Retry-After``). Nothing is checked unless
the config says ``enabled: true``.

What each limit looks at::

    max_query_limit, search_max_hnsw_ef, search_allow_exact,   query / search / recommend /
    search_max_oversampling, search_max_batchsize, max_timeout discover / groups / scroll
    unindexed_filtering_retrieve / _update                     filters of reads / writes, group_by
    filter_max_conditions, condition_max_size                  every filter
    upsert_max_batchsize, max_points_count,                    upserts and vector updates
    max_collection_vector_size_bytes, multivector_config
    (max_vectors), sparse_config (max_length)
    max_payload_index_count                                    payload index creation
    read_rate_limit / write_rate_limit                         1 per query (+ its prefetches),
                                                               ids retrieved, points written
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from qcluster.collection.collection import Collection
from qcluster.collection.strict_rate import bucket
from qcluster.errors import BadRequestError, StrictModeError
from qcluster.models.config import StrictModeConfig
from qcluster.shards.operations import MultiColumn, PointsBatch
from qcluster.shards.sparse.vector import SparseColumn
from qcluster.types import DEFAULT_VECTOR


# ---------------------------------------------------------------------------------- filters
def conditions(flt: Any) -> list[Mapping[str, Any]]:
    """Leaf conditions of filter JSON, nested filters walked into (keys of ``nested`` conditions
    prefixed ``<key>[].``)."""
    out: list[Mapping[str, Any]] = []
    _walk(flt, "", out)
    return out


def _walk(flt: Any, prefix: str, out: list[Mapping[str, Any]]) -> None:
    if not isinstance(flt, Mapping):
        return
    for clause in ("must", "should", "must_not"):
        items = flt.get(clause)
        for c in items if isinstance(items, list) else [items] if isinstance(items, Mapping) else []:
            _leaf(c, prefix, out)
    ms = flt.get("min_should")
    if isinstance(ms, Mapping) and isinstance(ms.get("conditions"), list):
        for c in ms["conditions"]:
            _leaf(c, prefix, out)


def _leaf(c: Any, prefix: str, out: list[Mapping[str, Any]]) -> None:
    if not isinstance(c, Mapping):
        return
    nested = c.get("nested")
    if isinstance(nested, Mapping):
        _walk(nested.get("filter"), f"{prefix}{nested.get('key')}[].", out)
        return
    if "key" not in c and any(k in c for k in ("must", "should", "must_not", "min_should")):
        _walk(c, prefix, out)
        return
    out.append({**c, "key": prefix + str(c["key"])} if prefix and "key" in c else c)


def _condition_size(c: Mapping[str, Any]) -> int:
    match = c.get("match")
    if isinstance(match, Mapping):
        for k in ("any", "except"):
            if isinstance(match.get(k), list):
                return len(match[k])
    poly = c.get("geo_polygon")
    if isinstance(poly, Mapping):
        ext = poly.get("exterior")
        size = len(ext.get("points") or []) if isinstance(ext, Mapping) else 0
        for ring in poly.get("interiors") or []:
            if isinstance(ring, Mapping):
                size += len(ring.get("points") or [])
        return size
    if isinstance(c.get("has_id"), list):
        return len(c["has_id"])
    return 1


def _kinds_for(leaf: Mapping[str, Any]) -> str:
    """The index types that could serve a condition, as Qdrant lists them."""
    match = leaf.get("match")
    if isinstance(match, Mapping):
        if any(k in match for k in ("text", "text_any", "phrase")):
            return "text"
        value = match.get("value", (match.get("any") or match.get("except") or [None])[0])
        if isinstance(value, bool):
            return "bool"
        if isinstance(value, int):
            return "integer"
        return "keyword, uuid"
    if "range" in leaf:
        return "datetime, float, integer"
    if any(k in leaf for k in ("geo_radius", "geo_bounding_box", "geo_polygon")):
        return "geo"
    return "bool, datetime, float, geo, integer, keyword, text, uuid"


def _unserved_prefix(schema: Any, parsed: Any) -> bool:
    """A prefix match on a keyword index built without ``prefix``: outside strict mode it is
    answered by a scan; strict mode wants an index that serves it, as Qdrant's does."""
    from qcluster.shards.filters.conditions import FieldCondition, MatchPrefix

    return (
        isinstance(parsed, FieldCondition)
        and isinstance(parsed.check, MatchPrefix)
        and schema.type == "keyword"
        and not schema.flag("prefix", False)
    )


def _empty_any(leaf: Mapping[str, Any]) -> bool:
    match = leaf.get("match")
    return isinstance(match, Mapping) and any(match.get(k) == [] for k in ("any", "except"))


_MATCHABLE = ("keyword", "integer", "uuid", "bool")
# query kinds that search no vector index: a full scan is not theirs to avoid
_NOT_VECTOR_SEARCHES = ("fusion", "rrf", "order_by", "formula", "sample")


@dataclass
class StrictMode:
    """The strict mode of one collection for one request (every check a no-op when disabled)."""

    col: Collection
    cfg: StrictModeConfig | None = field(init=False)
    _schemas: dict[str, Any] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        cfg = self.col.config.strict_mode_config
        self.cfg = cfg if cfg is not None and cfg.enabled else None

    @property
    def on(self) -> bool:
        return self.cfg is not None

    # ------------------------------------------------------------------ plain limits
    @staticmethod
    def _limit(value: float | None, bound: float | None, name: str) -> None:
        if value is None or bound is None or value <= bound:
            return
        raise StrictModeError(
            f'Limit exceeded {value} > {bound} for "{name}"',
            f'Reduce the "{name}" parameter to or below {bound}.',
            name,
        )

    def query_limit(self, value: int | None) -> None:
        if self.cfg is not None:
            self._limit(value, self.cfg.max_query_limit, "limit")

    def timeout(self, raw: str | float | None) -> None:
        """``?timeout=`` of a request (seconds)."""
        if self.cfg is None or raw is None or self.cfg.max_timeout is None:
            return
        try:
            seconds = int(raw)
        except ValueError:
            return  # the endpoint reports a malformed timeout itself
        self._limit(seconds, self.cfg.max_timeout, "timeout")

    def search_batch(self, n: int) -> None:
        if self.cfg is not None:
            self._limit(n, self.cfg.search_max_batchsize, "search batch size")

    def search_params(self, params: Any) -> None:
        """``params`` of a query (SearchParamsIn or None)."""
        cfg = self.cfg
        if cfg is None or params is None:
            return
        self._limit(params.hnsw_ef, cfg.search_max_hnsw_ef, "hnsw_ef")
        if params.quantization is not None:
            self._limit(params.quantization.oversampling, cfg.search_max_oversampling, "oversampling")
        self.exact(params.exact)

    def exact(self, exact: bool | None) -> None:
        if self.cfg is not None and exact and self.cfg.search_allow_exact is False:
            raise StrictModeError("Exact search disabled!", "Set exact=false.", "exact")

    # ------------------------------------------------------------------ filters and keys
    async def schemas(self) -> dict[str, Any]:
        """Indexed payload keys -> their FieldSchema, over the whole collection."""
        if self._schemas is None:
            from qcluster.shards.payload_index import parse_field_schema

            info = await self.col.info()
            self._schemas = {
                key: parse_field_schema(raw.get("params") or raw["data_type"])
                for key, raw in info.payload_schema.items()
            }
        return self._schemas

    async def filter(self, flt: Any, *, write: bool) -> None:
        cfg = self.cfg
        if cfg is None or flt is None:
            return
        leaves = conditions(flt)
        allowed = cfg.unindexed_filtering_update if write else cfg.unindexed_filtering_retrieve
        if allowed is False:
            await self._indexed(leaves)
        if cfg.filter_max_conditions is not None and len(leaves) > cfg.filter_max_conditions:
            raise StrictModeError(
                f"Filter condition limit reached ({len(leaves)} > {cfg.filter_max_conditions})",
                "Reduce the amount of conditions of your filter.",
                "filter",
            )
        if cfg.condition_max_size is not None:
            biggest = max((_condition_size(c) for c in leaves), default=0)
            if biggest > cfg.condition_max_size:
                raise StrictModeError(
                    f"Condition size limit reached ({biggest} > {cfg.condition_max_size})",
                    "Reduce the size of your condition.",
                    "filter",
                )

    async def _indexed(self, leaves: Iterable[Mapping[str, Any]]) -> None:
        from qcluster.shards.filters import parse_condition
        from qcluster.shards.payload_index import condition_type_error

        schemas = await self.schemas()
        for leaf in leaves:
            key = leaf.get("key")
            if not isinstance(key, str):
                continue
            schema = schemas.get(key)
            if schema is None and "[]" in key:
                schema = schemas.get(key.replace("[]", ""))
            reason = None
            if schema is not None and _empty_any(leaf):
                continue  # matches nothing (or, excepted, everything): any index serves it
            if schema is not None:
                try:
                    parsed = parse_condition(leaf, "filter")
                except Exception:  # a malformed condition: the search reports it itself
                    continue
                reason = condition_type_error(schema, parsed)  # type: ignore[arg-type]
                if reason is None and _unserved_prefix(schema, parsed):
                    reason = "a prefix match needs a keyword index created with prefix: true"
            if schema is None or reason is not None:
                raise StrictModeError(
                    f'Index required but not found for "{key}" of one of the following types: '
                    f"[{_kinds_for(leaf)}]",
                    "Create an index for this key or use a different filter.",
                    "filter",
                )

    async def group_by(self, key: str) -> None:
        """A key the request groups by: it needs an index supporting ``match``."""
        cfg = self.cfg
        if cfg is None or cfg.unindexed_filtering_retrieve is not False:
            return
        schema = (await self.schemas()).get(key)
        if schema is None:
            raise StrictModeError(
                f'Index required but not found for "{key}"',
                "Create an index supporting `match` for this key.",
                "group_by",
            )
        if schema.type not in _MATCHABLE:
            raise StrictModeError(
                f'Index of type "{schema.type.capitalize()}" found for "{key}"',
                "Create an index supporting `match` for this key.",
                "group_by",
            )

    async def full_scan(self, query: Any, using: str | None, flt: Any) -> None:
        """With ``search_allow_exact: false``, a vector search on a dense vector without a global
        HNSW graph (``m = 0``) is refused unless its filter names a tenant-indexed key and the
        per-payload graphs exist (``payload_m > 0``)."""
        cfg = self.cfg
        if cfg is None or cfg.search_allow_exact is not False or query is None:
            return
        if isinstance(query, Mapping) and any(k in query for k in _NOT_VECTOR_SEARCHES):
            return
        name = using or DEFAULT_VECTOR
        params = self.col.config.params
        vector = params.vectors.get(name)
        if vector is None:  # sparse vectors are always indexed; unknown names are reported later
            return
        own = vector.hnsw_config
        collection_hnsw = self.col.config.hnsw_config
        m = own.m if own is not None and own.m is not None else collection_hnsw.m
        if m > 0:
            return
        payload_m = (
            own.payload_m
            if own is not None and own.payload_m is not None
            else collection_hnsw.payload_m
            if collection_hnsw.payload_m is not None
            else m
        )
        label = "" if name == DEFAULT_VECTOR else f" on '{name}'"
        schemas = await self.schemas() if flt is not None else {}
        tenant = any(
            (schema := schemas.get(str(leaf.get("key")))) is not None and schema.flag("is_tenant", False)
            for leaf in conditions(flt)
        )
        if not tenant:
            raise StrictModeError(
                f"Request is forbidden{label} because global vector indexing is disabled (hnsw_config.m = 0)",
                "Use tenant-specific filter, enable global vector indexing or enable strict mode "
                "`search_allow_exact` option",
                "query",
            )
        if payload_m == 0:
            raise StrictModeError(
                f"Request is forbidden{label} because vector indexing is disabled (hnsw_config.m = 0 and "
                "hnsw_config.payload_m = 0)",
                "Enable vector indexing, use a prefetch query with indexed vectors or enable strict mode "
                "`search_allow_exact` option",
                "query",
            )

    async def formula(self, query: Any) -> None:
        """With unindexed filtering off, every payload key a formula reads needs an index."""
        cfg = self.cfg
        if cfg is None or cfg.unindexed_filtering_retrieve is not False:
            return
        if not isinstance(query, Mapping) or "formula" not in query:
            return
        schemas = await self.schemas()
        for key, kinds in formula_keys(query["formula"]):
            if key not in schemas:
                raise StrictModeError(
                    f'Index required but not found for "{key}" of one of the following types: [{kinds}]',
                    "Create an index for this key or use a different formula expression.",
                    "query.formula",
                )

    # ------------------------------------------------------------------ writes
    async def upsert(self, batch: PointsBatch, what: str = "upsert") -> None:
        cfg = self.cfg
        if cfg is None:
            return
        n = len(batch.ids)
        if cfg.upsert_max_batchsize is not None and n > cfg.upsert_max_batchsize:
            if what == "upsert":
                raise StrictModeError(
                    f'Limit exceeded {n} > {cfg.upsert_max_batchsize} for "upsert limit"',
                    f'Reduce the "upsert limit" parameter to or below {cfg.upsert_max_batchsize}.',
                    "points",
                )
            raise StrictModeError(
                f'Limit exceeded {n} > {cfg.upsert_max_batchsize} for "update limit"',
                f'Reduce the "update limit" parameter to or below {cfg.upsert_max_batchsize}.',
                "points",
            )
        self._vector_shapes(batch)
        if what == "upsert":
            await self._collection_size()
        await self.write_cost(n)

    def _vector_shapes(self, batch: PointsBatch) -> None:
        cfg = self.cfg
        assert cfg is not None
        for name, col in batch.vectors.items():
            if isinstance(col, SparseColumn) and cfg.sparse_config and name in cfg.sparse_config:
                limit = cfg.sparse_config[name].max_length
                longest = int((col.indptr[1:] - col.indptr[:-1]).max(initial=0))
                if limit is not None and longest > limit:
                    raise BadRequestError(
                        f"Sparse vector '{name}' has a limit of {limit} indices, but {longest} were provided!",
                        f"vector.{name}",
                    )
            if isinstance(col, MultiColumn) and cfg.multivector_config and name in cfg.multivector_config:
                limit = cfg.multivector_config[name].max_vectors
                longest = int((col.indptr[1:] - col.indptr[:-1]).max(initial=0))
                if limit is not None and longest > limit:
                    raise BadRequestError(
                        f"Multivector '{name}' has a limit of {limit} vectors, but {longest} were provided!",
                        f"vector.{name}",
                    )

    async def _collection_size(self) -> None:
        """Qdrant refuses writes once the collection is at (not past) a size limit."""
        cfg = self.cfg
        assert cfg is not None
        if cfg.max_points_count is None and cfg.max_collection_vector_size_bytes is None:
            return
        points = (await self.col.info()).points_count
        if cfg.max_collection_vector_size_bytes is not None:
            per_point = sum(p.size * 4 for p in self.col.config.params.vectors.values())
            if points * per_point >= cfg.max_collection_vector_size_bytes:
                mb = cfg.max_collection_vector_size_bytes / (1024.0 * 1024.0)
                raise BadRequestError(f"Max vector storage size limit of {mb}MB reached!", "points")
        if cfg.max_points_count is not None and points >= cfg.max_points_count:
            raise BadRequestError(f"Max points count limit of {cfg.max_points_count} reached!", "points")

    async def payload_index(self, key: str) -> None:
        """A new payload index on ``key`` (re-creating an existing one is not counted)."""
        cfg = self.cfg
        if cfg is None or cfg.max_payload_index_count is None:
            return
        schemas = await self.schemas()
        if key not in schemas and len(schemas) >= cfg.max_payload_index_count:
            raise StrictModeError(
                f"Collection already has the maximum number of payload indices ({cfg.max_payload_index_count})",
                "Please delete an existing index before creating a new one.",
                "field_name",
            )

    # ------------------------------------------------------------------ rate limits
    def read_cost(self, cost: int) -> None:
        if self.cfg is not None and self.cfg.read_rate_limit is not None:
            bucket(self.col, "Read", self.cfg.read_rate_limit).take(max(1, cost), "Read")

    async def write_cost(self, cost: int) -> None:
        if self.cfg is not None and self.cfg.write_rate_limit is not None:
            bucket(self.col, "Write", self.cfg.write_rate_limit).take(max(1, cost), "Write")


async def check_query(sm: StrictMode, req: Any) -> int:
    """Every limit a query (QueryIn or PrefetchIn, prefetches included) is under; returns how many
    searches it makes (its read cost)."""
    if not sm.on:
        return 1
    sm.query_limit(req.limit)
    sm.search_params(req.params)
    await sm.filter(req.filter, write=False)
    idf = getattr(req.params, "idf", None)
    corpus = getattr(idf, "corpus", None)
    if corpus is not None:
        await sm.filter(corpus, write=False)
    await sm.formula(req.query)
    prefetch = req.prefetch
    if not prefetch:  # a stage that rescores its prefetches' candidates is no full scan
        await sm.full_scan(req.query, req.using, req.filter)
    cost = _examples(req.query) + len(conditions(req.filter))
    for p in prefetch if isinstance(prefetch, list) else [] if prefetch is None else [prefetch]:
        cost += await check_query(sm, p)
    return cost


def _examples(query: Any) -> int:
    """What a query stage costs to read: the examples it names (recommend / discover / context),
    the vectors of a multivector, 3 for a point named by id (its lookup, the filter leaving it
    out, its vector: a stored multivector counts as one here, its size unknown before the
    lookup), at least 1."""
    if isinstance(query, Mapping) and "nearest" in query:
        query = query["nearest"]
    if isinstance(query, list):
        return max(1, len(query)) if query and isinstance(query[0], list) else 1
    if isinstance(query, int | str) and not isinstance(query, bool):
        return 3
    if not isinstance(query, Mapping):
        return 1
    rec = query.get("recommend")
    if isinstance(rec, Mapping):
        return max(1, len(rec.get("positive") or []) + len(rec.get("negative") or []))
    disc = query.get("discover")
    if isinstance(disc, Mapping):
        return 1 + 2 * len(disc.get("context") or [])
    ctx = query.get("context")
    if isinstance(ctx, list):
        return max(1, 2 * len(ctx))
    return 1


def formula_keys(raw: Any) -> list[tuple[str, str]]:
    """Payload keys a formula expression reads, each with the index types that could serve it."""
    out: list[tuple[str, str]] = []

    def walk(x: Any) -> None:
        if isinstance(x, str):
            if not x.startswith("$score"):
                out.append((x, "float, integer"))
        elif isinstance(x, list):
            for y in x:
                walk(y)
        elif isinstance(x, Mapping):
            if isinstance(x.get("key"), str):  # a condition
                out.append((x["key"], _kinds_for(x)))
                return
            for name, value in x.items():
                if name == "datetime":  # a literal
                    continue
                if name == "datetime_key" and isinstance(value, str):
                    out.append((value, "datetime"))
                elif name == "geo_distance" and isinstance(value, Mapping):
                    if isinstance(value.get("to"), str):
                        out.append((value["to"], "geo"))
                else:
                    walk(value)

    walk(raw)
    return out
