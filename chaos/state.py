"""Reads the final state of every replica, in the checker's format (see :mod:`chaos.checker`).

- metadata (replica group ``meta``): every peer's collections, aliases and cluster metadata keys,
  each read from that peer's own REST API;
- points (group ``pt:<collection>``): every point a peer holds, read with a scroll through that
  peer, and the states of its local replicas from ``GET /collections/{c}/cluster``.

The point read is where a per-replica read goes once peers forward reads to other replicas:
:func:`read_points` is the one place to change (today a peer's scroll reads only its own shards).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from chaos.workload import Target, point_value
from qcluster.testing.peer_cluster import rest

TIMEOUT = 10.0


class ReadError(RuntimeError):
    pass


def _get(url: str, path: str, method: str = "GET", body: Any = None) -> Any:
    status, answer = rest(url, method, path, body, timeout=TIMEOUT)
    if status != 200 or not isinstance(answer, dict):
        raise ReadError(f"{method} {url}{path}: {status} {str(answer)[:200]}")
    return answer["result"]


def read_meta(peer: Target) -> dict[str, Any]:
    objects: dict[str, Any] = {}
    for col in _get(peer.url, "/collections")["collections"]:
        objects[f"col:{col['name']}"] = True
    for alias in _get(peer.url, "/aliases")["aliases"]:
        objects[f"alias:{alias['alias_name']}"] = alias["collection_name"]
    for key in _get(peer.url, "/cluster/metadata/keys"):
        objects[f"key:{key}"] = _get(peer.url, f"/cluster/metadata/keys/{quote(key, safe='')}")
    return objects


def read_points(peer: Target, collection: str) -> dict[str, Any]:
    objects: dict[str, Any] = {}
    offset: Any = None
    while True:
        body = {"limit": 500, "with_payload": True, "with_vector": True, "offset": offset}
        page = _get(peer.url, f"/collections/{collection}/points/scroll", "POST", body)
        for point in page["points"]:
            objects[f"pt:{collection}:{point['id']}"] = point_value(point)
        offset = page.get("next_page_offset")
        if offset is None:
            return objects


def read_shard_states(peer: Target, collection: str) -> list[dict[str, Any]]:
    info = _get(peer.url, f"/collections/{collection}/cluster")
    return [
        {"replica": peer.name, "collection": collection, "shard": s["shard_id"], "state": s["state"]}
        for s in info["local_shards"]
    ]


def read_final(peers: Sequence[Target], point_collections: Sequence[str]) -> dict[str, Any]:
    """The state of every replica on ``peers``; raises :class:`ReadError` when a peer cannot answer."""
    replicas: list[dict[str, Any]] = []
    inactive: list[dict[str, Any]] = []
    for peer in peers:
        replicas.append({"replica": peer.name, "group": "meta", "objects": read_meta(peer)})
        for col in point_collections:
            replicas.append({"replica": peer.name, "group": f"pt:{col}", "objects": read_points(peer, col)})
            inactive += [s for s in read_shard_states(peer, col) if s["state"] != "Active"]
    return {"replicas": replicas, "inactive": inactive}
