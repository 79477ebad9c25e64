"""Shared pieces of the REST request models: base class, point ids, tagged unions.

Request models are validated in pydantic's strict mode (``model_validate(data, strict=True)``), so
like Qdrant's serde they refuse ``"5"`` for an integer and ``1`` for a boolean. Errors are sorted
at the REST edge (``api/rest/parse.py``) into Qdrant's two kinds: *format* errors (wrong type,
missing field, unknown enum variant, negative unsigned: 400 ``Format error in JSON body``) and
*validation* errors (a well-typed value out of range: 422 ``Validation error in JSON body``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
)
from pydantic_core import PydanticCustomError

from qcluster.models.bounds import bounded_length, check_filter, check_json_depth
from qcluster.types import MAX_U64, PointId

# Error type used by custom validators for a value of the wrong shape (-> 400 format error).
FORMAT_ERROR = "format"
# Prefix of union-branch tags; the REST edge drops them from error locations.
TAG = "~"


def between(low: int, high: int) -> AfterValidator:
    """An integer from ``low`` to ``high``, refused with Qdrant's message naming both bounds
    (pydantic's own bound errors name only the one passed). Negative numbers are better left to
    ``Field(ge=0)``: Qdrant refuses them as a format error."""

    def check(value: int) -> int:
        if not low <= value <= high:
            raise ValueError(f"value {value} invalid, must be from {low} to {high}")
        return value

    return AfterValidator(check)


class Req(BaseModel):
    """Base of request bodies: unknown fields are ignored, as Qdrant's serde does."""

    model_config = ConfigDict(extra="ignore", frozen=True)


def _point_id(value: Any) -> PointId:
    if isinstance(value, bool):
        raise PydanticCustomError(FORMAT_ERROR, "point id must be an unsigned integer or a UUID")
    if isinstance(value, int):
        if 0 <= value <= MAX_U64:
            return value
        raise PydanticCustomError(
            FORMAT_ERROR, "point id {value} is not an unsigned 64-bit integer", {"value": value}
        )
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise PydanticCustomError(
                FORMAT_ERROR, "Unable to parse UUID: {value}", {"value": value}
            ) from None
    raise PydanticCustomError(FORMAT_ERROR, "point id must be an unsigned integer or a UUID")


PointIdIn = Annotated[PointId, BeforeValidator(_point_id)]
Limit = Annotated[int, Field(ge=1)]
Usize = Annotated[int, Field(ge=0)]
# Filter JSON: its depth and number of conditions are bounded here; the filter engine parses it.
FilterIn = Annotated[dict[str, Any], AfterValidator(check_filter)]
# A JSON object that is stored (payloads, metadata): its nesting depth is bounded.
JsonObjectIn = Annotated[dict[str, Any], AfterValidator(check_json_depth)]
PointIdsIn = Annotated[list[PointIdIn], bounded_length("max_points_per_request", "number of point ids")]


def with_vector_field(default: Any) -> Any:
    """``with_vector``, also spelled ``with_vectors`` (Qdrant's serde alias)."""
    return Field(default, validation_alias=AliasChoices("with_vector", "with_vectors"))


def tagged(choose: Callable[[Any], str], expected: str = "a known variant") -> Discriminator:
    """A callable discriminator whose tags start with ``TAG`` (hidden from error locations)."""

    def pick(value: Any) -> str:
        return TAG + choose(value)

    return Discriminator(pick, custom_error_type=FORMAT_ERROR, custom_error_message=f"expected {expected}")


def tag(name: str) -> Tag:
    return Tag(TAG + name)


def one_or_many(value: Any) -> str:
    return "many" if isinstance(value, list) else "one"
