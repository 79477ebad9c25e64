"""A small synchronous REST client for ``qcluster ctl``: Qdrant's envelope in, the error message
out. Every failure is a :class:`CtlError` carrying the HTTP status (0: the peer was not reached)
and the server's own words."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import orjson


class CtlError(Exception):
    def __init__(self, status: int, message: str, method: str = "", path: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.method = method
        self.path = path

    @property
    def unreachable(self) -> bool:
        return self.status == 0

    def __str__(self) -> str:
        where = f"{self.method} {self.path}: " if self.path else ""
        if self.unreachable:
            return f"{where}cannot reach the server ({self.message})"
        return f"{where}HTTP {self.status}: {self.message}"


def _error_text(raw: bytes) -> str:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode(errors="replace").strip() or "(empty body)"
    if isinstance(body, dict):
        status = body.get("status")
        if isinstance(status, dict) and "error" in status:
            return str(status["error"])
        if "error" in body:
            return str(body["error"])
    return raw.decode(errors="replace").strip()


@dataclass(frozen=True)
class RestClient:
    url: str
    api_key: str | None = None
    timeout: float = 30.0

    def request(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None) -> Any:
        """The ``result`` of a Qdrant-shaped answer (the whole body when it has none)."""
        target = self.url.rstrip("/") + path
        if query:
            target += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        data = None if body is None else orjson.dumps(body)
        req = urllib.request.Request(target, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.api_key:
            req.add_header("api-key", self.api_key)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise CtlError(exc.code, _error_text(exc.read()), method, path) from None
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CtlError(0, str(reason), method, path) from None
        try:
            answer = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            raise CtlError(200, f"not a JSON answer: {raw[:200]!r}", method, path) from None
        if isinstance(answer, dict) and "result" in answer:
            return answer["result"]
        return answer

    def get(self, path: str, **query: Any) -> Any:
        return self.request("GET", path, query=query)

    def post(self, path: str, body: Any, **query: Any) -> Any:
        return self.request("POST", path, body, query=query)

    def delete(self, path: str, **query: Any) -> Any:
        return self.request("DELETE", path, query=query)
