"""Reads the final state of every replica, in the checker's format (see :mod:`chaos.checker`).

- metadata (replica group ``meta``): every peer's collections, aliases and cluster metadata keys,
  each read from that peer's own REST API;
- points (group ``pt:<collection>#<shard>``): every point of every replica of every shard, each
  replica read on its own peer over the p2p ``PointsInternal.Scroll`` (the REST scroll reads one
  replica per shard), with the replica states of the agreed placement (``/cluster/telemetry``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from chaos.peers import SECRET
from chaos.workload import Target, point_value
from qcluster.errors import QClusterError
from qcluster.p2p.channels import ChannelPool
from qcluster.shards.base import ALL_PAYLOAD, ALL_VECTORS, ScrollRequest
from qcluster.shards.remote_shard import RemoteShard
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


def _vector(raw: Any) -> list[float] | None:
    if raw is None:
        return None
    vec = raw.get("") if isinstance(raw, dict) else raw
    return None if vec is None else [float(x) for x in vec]


async def _scroll_replica(
    pool: ChannelPool, collection: str, sid: int, peer_id: int, uri: str
) -> dict[str, Any]:
    shard = RemoteShard(collection, sid, peer_id, lambda: uri, pool, timeout=TIMEOUT)
    objects: dict[str, Any] = {}
    offset: Any = None
    while True:
        try:
            page = await shard.scroll(ScrollRequest(offset, 500, None, ALL_PAYLOAD, ALL_VECTORS))
        except QClusterError as exc:
            raise ReadError(f"scroll of {collection}#{sid} on peer {peer_id} ({uri}): {exc}") from exc
        for rec in page.points:
            point = {"payload": rec.payload, "vector": _vector(rec.vector)}
            objects[f"pt:{collection}:{rec.id}"] = point_value(point)
        offset = page.next_page_offset
        if offset is None:
            return objects


async def _scroll_all(jobs: list[tuple[str, int, int, str]]) -> list[dict[str, Any]]:
    pool = ChannelPool(SECRET)
    try:
        return await asyncio.gather(*(_scroll_replica(pool, *job) for job in jobs))
    finally:
        await pool.close()


def read_points(
    peers: Sequence[Target], collections: Sequence[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every replica of every shard of ``collections`` (one group per shard), and the replicas
    whose agreed state is not Active."""
    names = {int(_get(p.url, "/cluster")["peer_id"]): p.name for p in peers}
    telemetry = _get(peers[0].url, "/cluster/telemetry")
    uris = {int(pid): entry["uri"] for pid, entry in telemetry["cluster"]["peers"].items()}
    jobs, groups, inactive = [], [], []
    for col in collections:
        for shard in telemetry["collections"][col]["shards"]:
            for replica in shard["replicas"]:
                pid, name = (
                    int(replica["peer_id"]),
                    names.get(int(replica["peer_id"]), str(replica["peer_id"])),
                )
                jobs.append((col, int(shard["id"]), pid, uris[pid]))
                groups.append((name, f"pt:{col}#{shard['id']}"))
                if replica["state"] != "Active":
                    inactive.append({"replica": name, "collection": col, "shard": shard["id"],
                                     "state": replica["state"]})  # fmt: skip
    contents = asyncio.run(_scroll_all(jobs))
    replicas = [{"replica": name, "group": group, "objects": objects}
                for (name, group), objects in zip(groups, contents, strict=True)]  # fmt: skip
    return replicas, inactive


def read_final(peers: Sequence[Target], point_collections: Sequence[str]) -> dict[str, Any]:
    """The state of every replica on ``peers``; raises :class:`ReadError` when a peer cannot answer."""
    replicas = [{"replica": p.name, "group": "meta", "objects": read_meta(p)} for p in peers]
    inactive: list[dict[str, Any]] = []
    if point_collections:
        points, inactive = read_points(peers, point_collections)
        replicas += points
    return {"replicas": replicas, "inactive": inactive}
