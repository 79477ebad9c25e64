"""Validate response bodies against Qdrant's OpenAPI spec (``tests/reference``, kept in the repo).

The spec is OpenAPI 3.0: ``nullable`` is turned into JSON Schema ``null`` types, ``$ref`` resolves
into ``components`` through a ``referencing`` registry. A concrete request path is matched to its
path template in the 1.19 spec, else in the 1.18 spec (the legacy endpoints). ``Recorder``
validates every JSON response it is shown (qdrant-client's httpx hook, the e2e ``call`` helper,
the in-process unit harness) and keeps the failures for the test to assert on.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
VERSIONS = ("1.19", "1.18")
# Bodies without Qdrant's envelope (the spec says so too).
UNWRAPPED = frozenset({"/"})


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
    spec: dict[str, Any] = _convert(json.loads((REFERENCE / f"qdrant-openapi-{version}.json").read_text()))
    return spec


@functools.cache
def _registry(version: str) -> Registry:
    return Registry().with_resource(
        "urn:qdrant", Resource.from_contents(_spec(version), default_specification=DRAFT202012)
    )


def _pointer(*parts: str) -> str:
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


@functools.cache
def _templates(version: str) -> list[tuple[re.Pattern[str], str, int]]:
    out = []
    for template in _spec(version)["paths"]:
        params = template.count("{")
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        out.append((re.compile(pattern), template, params))
    return out


def template_for(method: str, path: str) -> tuple[str, str] | None:
    """(path template, spec version) for a concrete path: the most literal match, 1.19 first."""
    for version in VERSIONS:
        ops = _spec(version)["paths"]
        found = [
            (params, -len(template), template)
            for pattern, template, params in _templates(version)
            if pattern.match(path) and method.lower() in ops[template]
        ]
        if found:
            return min(found)[2], version
    return None


@functools.cache
def _validator(version: str, template: str, method: str, key: str) -> jsonschema.Draft202012Validator | None:
    responses = _spec(version)["paths"][template][method]["responses"]
    content = responses.get(key, {}).get("content", {})
    if "application/json" not in content:
        return None
    ptr = _pointer("paths", template, method, "responses", key, "content", "application/json", "schema")
    return jsonschema.Draft202012Validator({"$ref": "urn:qdrant" + ptr}, registry=_registry(version))


def validate(path: str, method: str, body: Any, status: int = 200, version: str = "1.19") -> None:
    """Raise AssertionError when ``body`` does not match the spec for ``method path`` (a path
    template) and ``status``; also checks qcluster's envelope."""
    method = method.lower()
    responses = _spec(version)["paths"][path][method]["responses"]
    key = str(status)
    if key not in responses:
        key = "4XX" if 400 <= status < 500 and "4XX" in responses else "default"
    validator = _validator(version, path, method, key)
    if validator is not None:
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
        if errors:
            raise AssertionError(
                f"{method.upper()} {path} ({status}): response does not match the spec: {errors[0].message} "
                f"at {list(errors[0].path)}\nbody: {json.dumps(body)[:2000]}"
            )
    _check_envelope(path, method, body, status)


def _check_envelope(path: str, method: str, body: Any, status: int) -> None:
    if path in UNWRAPPED and status < 400:
        return
    where = f"{method.upper()} {path} ({status})"
    assert isinstance(body, dict), f"{where}: body is not an object: {body!r}"
    assert isinstance(body.get("time"), float), f"{where}: no float `time`: {body!r}"
    if status == 202:  # work accepted, going on in the background (?wait=false)
        assert body.get("status") == "accepted", f"{where}: not an accepted envelope: {body!r}"
    elif status < 400:
        assert body.get("status") == "ok" and "result" in body, f"{where}: not an ok envelope: {body!r}"
    else:
        error = body.get("status", {}).get("error") if isinstance(body.get("status"), dict) else None
        assert isinstance(error, str) and error, f"{where}: no status.error message: {body!r}"


@dataclass
class Recorder:
    """Validates every JSON response shown to it; ``failures`` holds what did not match."""

    checked: int = 0
    failures: list[str] = field(default_factory=list)
    templates: set[tuple[str, str]] = field(default_factory=set)

    def check(self, method: str, path: str, status: int, content_type: str, raw: bytes) -> None:
        if "application/json" not in content_type:
            return
        found = template_for(method, path)
        if found is None:
            if status in (404, 405):  # an unknown route or method: the error envelope still holds
                try:
                    _check_envelope(path, method.lower(), json.loads(raw), status)
                except AssertionError as exc:
                    self.failures.append(str(exc))
                return
            self.failures.append(f"{method} {path}: no such endpoint in the reference specs")
            return
        template, version = found
        try:
            validate(template, method, json.loads(raw), status, version)
        except AssertionError as exc:
            self.failures.append(str(exc))
        self.checked += 1
        self.templates.add((method.upper(), template))

    def assert_clean(self) -> None:
        assert not self.failures, "\n\n".join(self.failures[:5])
