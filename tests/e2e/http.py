"""A tiny HTTP helper for e2e tests (httpx comes with qdrant-client)."""

from __future__ import annotations

from typing import Any

import httpx


def call(
    base: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    with httpx.Client(base_url=base, timeout=30) as client:
        if raw is not None:
            resp = client.request(
                method, path, content=raw, headers={"content-type": "application/json", **(headers or {})}
            )
        else:
            resp = client.request(method, path, json=body, headers=headers)
    try:
        return resp.status_code, resp.json()
    except ValueError:
        return resp.status_code, resp.text
