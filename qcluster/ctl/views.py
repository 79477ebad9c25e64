"""The API shapes ``qcluster ctl`` reads, as Qdrant documents them: ``ClusterStatus``
(``GET /cluster``) and ``CollectionClusterInfo`` (``GET /collections/{name}/cluster``). Fields
the tool does not use are kept (``extra="allow"``) so ``--json`` prints what the server said."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from qcluster.ctl.client import RestClient


class _Shape(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class RaftInfo(_Shape):
    term: int
    commit: int
    pending_operations: int = 0
    leader: int | None = None
    role: str | None = None
    is_voter: bool = True


class PeerInfo(_Shape):
    uri: str


class ClusterStatus(_Shape):
    status: str
    peer_id: int | None = None
    peers: dict[int, PeerInfo] = Field(default_factory=dict)
    raft_info: RaftInfo | None = None

    @property
    def enabled(self) -> bool:
        return self.status == "enabled"


class LocalShard(_Shape):
    shard_id: int
    shard_key: Any = None
    points_count: int = 0
    state: str


class RemoteShard(_Shape):
    shard_id: int
    shard_key: Any = None
    peer_id: int
    state: str


class ShardTransfer(_Shape):
    shard_id: int
    to_shard_id: int | None = None
    from_peer: int = Field(alias="from")
    to_peer: int = Field(alias="to")
    sync: bool = False
    method: str | None = None
    comment: str | None = None


class CollectionCluster(_Shape):
    peer_id: int
    shard_count: int
    local_shards: list[LocalShard] = Field(default_factory=list)
    remote_shards: list[RemoteShard] = Field(default_factory=list)
    shard_transfers: list[ShardTransfer] = Field(default_factory=list)


@dataclass(frozen=True)
class Replica:
    collection: str
    shard_id: int
    peer_id: int
    state: str
    local: bool
    points: int | None  # known for the answering peer's own replicas only


def replicas(name: str, info: CollectionCluster) -> list[Replica]:
    """Every replica of the collection, ordered by shard then peer."""
    out = [Replica(name, s.shard_id, info.peer_id, s.state, True, s.points_count) for s in info.local_shards]
    out += [Replica(name, s.shard_id, s.peer_id, s.state, False, None) for s in info.remote_shards]
    return sorted(out, key=lambda r: (r.shard_id, r.peer_id))


@dataclass(frozen=True)
class ClusterView:
    """One look at the cluster through one peer."""

    url: str
    cluster: ClusterStatus
    collections: dict[str, CollectionCluster]

    def replicas(self) -> Iterator[Replica]:
        for name, info in self.collections.items():
            yield from replicas(name, info)

    def transfers(self) -> Iterator[tuple[str, ShardTransfer]]:
        for name, info in self.collections.items():
            for t in info.shard_transfers:
                yield name, t

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "cluster": self.cluster.model_dump(mode="json", by_alias=True),
            "collections": {n: c.model_dump(mode="json", by_alias=True) for n, c in self.collections.items()},
        }


def collection_path(name: str) -> str:
    return f"/collections/{quote(name, safe='')}"


def collection_names(client: RestClient) -> list[str]:
    listing = client.get("/collections")
    return sorted(c["name"] for c in listing["collections"])


def collection_cluster(client: RestClient, name: str) -> CollectionCluster:
    return CollectionCluster.model_validate(client.get(collection_path(name) + "/cluster"))


def look(client: RestClient) -> ClusterView:
    """``GET /cluster``, the collection list, and each collection's cluster info. A collection
    deleted between the list and its own request is left out."""
    from qcluster.ctl.client import CtlError

    cluster = ClusterStatus.model_validate(client.get("/cluster"))
    collections = {}
    for name in collection_names(client):
        try:
            collections[name] = collection_cluster(client, name)
        except CtlError as exc:
            if exc.status != 404:
                raise
    return ClusterView(client.url, cluster, collections)
