"""Payload indexes: keyword, integer, float, bool, geo, text, datetime, uuid."""

from qcluster.shards.payload_index.field_index import FieldIndex
from qcluster.shards.payload_index.schema import FieldSchema, condition_type_error, parse_field_schema


def build_index(key: str, schema: FieldSchema) -> FieldIndex:
    return FieldIndex(key, schema)


__all__ = ["FieldIndex", "FieldSchema", "build_index", "condition_type_error", "parse_field_schema"]
