"""Validate response bodies against Qdrant's OpenAPI spec (../shared/reference), OpenAPI 3.0 -> JSON Schema."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference"


def _convert(node: Any) -> Any:
    if isinstance(node, list):
        return [_convert(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _convert(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable"):
        if "type" in out:
            t = out["type"]
            out["type"] = [*t, "null"] if isinstance(t, list) else [t, "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        elif not out or set(out) <= {"description", "default"}:
            out = {"type": "null"}
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


@functools.cache
def _spec(version: str) -> dict[str, Any]:
    return _convert(json.loads((REFERENCE / f"qdrant-openapi-{version}.json").read_text()))


def _pointer(*parts: str) -> str:
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def validate(path: str, method: str, body: Any, status: int = 200, version: str = "1.19") -> None:
    spec = _spec(version)
    op = spec["paths"][path][method.lower()]
    responses = op["responses"]
    key = str(status) if str(status) in responses else "default"
    content = responses[key]["content"]["application/json"]["schema"]
    ptr = _pointer("paths", path, method.lower(), "responses", key, "content", "application/json", "schema")
    del content
    registry = Registry().with_resource(
        "urn:qdrant", Resource.from_contents(spec, default_specification=DRAFT202012)
    )
    validator = jsonschema.Draft202012Validator({"$ref": "urn:qdrant" + ptr}, registry=registry)
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
    if errors:
        raise AssertionError(
            f"{method} {path}: response does not match the spec: {errors[0].message} at "
            f"{list(errors[0].path)}\nbody: {json.dumps(body)[:2000]}"
        )
