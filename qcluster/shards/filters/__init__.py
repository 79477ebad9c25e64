"""Qdrant's filter language: parsing, the reference semantics, vectorised evaluation."""

from qcluster.shards.filters.conditions import Filter
from qcluster.shards.filters.evaluate import SegmentView, evaluate
from qcluster.shards.filters.parse import parse_filter
from qcluster.shards.filters.reference import matches

__all__ = ["Filter", "SegmentView", "check_index_types", "evaluate", "matches", "parse_filter"]


def check_index_types(flt: Filter, kinds: dict[str, str]) -> None:
    """Reject a condition that cannot apply to its field's indexed type (a range on a keyword
    index, ...), naming the key: such a query is a mistake, not an empty result."""
    from qcluster.errors import BadInputError
    from qcluster.shards.filters.conditions import FieldCondition, Nested
    from qcluster.shards.payload_index import condition_type_error

    def walk(f: Filter, prefix: str) -> None:
        conds = (*f.must, *f.should, *f.must_not, *(f.min_should.conditions if f.min_should else ()))
        for c in conds:
            if isinstance(c, Filter):
                walk(c, prefix)
            elif isinstance(c, Nested):
                walk(c.filter, f"{prefix}{c.key}[].")
            elif isinstance(c, FieldCondition):
                key = prefix + c.key
                kind = kinds.get(key)
                reason = None if kind is None else condition_type_error(kind, c.check)
                if reason is not None:
                    raise BadInputError(f"filter on `{key}`: {reason}", key)

    walk(flt, "")
