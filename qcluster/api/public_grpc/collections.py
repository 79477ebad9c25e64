"""``qdrant.Collections``: collections and aliases. Requests become the REST request models and go
to :mod:`qcluster.api.actions.collections`, as the REST handlers' do."""

from __future__ import annotations

from typing import Any

from qcluster.api.actions import cluster as cluster_actions
from qcluster.api.actions import cluster_ops
from qcluster.api.actions import collections as actions
from qcluster.api.actions.validate import M, model
from qcluster.api.public_grpc.collection_config import create_body, info_out, update_body
from qcluster.api.public_grpc.edge import Services, Unimplemented, rpc, timeout_of
from qcluster.api.public_grpc.values import shard_key, to_shard_key
from qcluster.api.public_grpc.wire import collections_service_pb2_grpc, pb
from qcluster.models.collections import (
    ChangeAliasesIn,
    CreateCollection,
    CreateShardKeyIn,
    DropShardKeyIn,
    UpdateCollection,
)

REPLICATE_POINTS = "replicate_points (copying points between shard keys) is not supported by qcluster"
CLUSTER_TIMEOUT = 30.0  # seconds, as REST's POST /collections/{c}/cluster without ?timeout=
_METHODS = {
    pb.StreamRecords: "stream_records",
    pb.Snapshot: "snapshot",
    pb.WalDelta: "wal_delta",
    pb.ReshardingStreamRecords: "resharding_stream_records",  # refused by the shared check
}
# gRPC's oneof field -> REST's operation name
_SETUP_OPS = {"create_shard_key": "create_sharding_key", "delete_shard_key": "drop_sharding_key"}


def _alias_action(a: pb.AliasOperations) -> dict[str, dict[str, str]]:
    kind = a.WhichOneof("action")
    if kind == "create_alias":
        return {
            kind: {"collection_name": a.create_alias.collection_name, "alias_name": a.create_alias.alias_name}
        }
    if kind == "rename_alias":
        r = a.rename_alias
        return {kind: {"old_alias_name": r.old_alias_name, "new_alias_name": r.new_alias_name}}
    if kind == "delete_alias":
        return {kind: {"alias_name": a.delete_alias.alias_name}}
    return {}


def _shard_key_of(entry: dict[str, Any]) -> pb.ShardKey | None:
    key = entry.get("shard_key")
    return None if key is None else to_shard_key(key)


def _state(name: str) -> Any:
    return pb.ReplicaState.Value(name) if name in pb.ReplicaState.keys() else pb.Dead  # noqa: SIM118


def cluster_info_out(info: dict[str, Any]) -> pb.CollectionClusterInfoResponse:
    """``CollectionClusterInfo`` from its REST JSON shape (``actions.cluster``)."""
    return pb.CollectionClusterInfoResponse(
        peer_id=info["peer_id"],
        shard_count=info["shard_count"],
        local_shards=[
            pb.LocalShardInfo(
                shard_id=s["shard_id"],
                points_count=s["points_count"],
                state=_state(s["state"]),
                shard_key=_shard_key_of(s),
            )
            for s in info["local_shards"]
        ],
        remote_shards=[
            pb.RemoteShardInfo(
                shard_id=s["shard_id"],
                peer_id=s["peer_id"],
                state=_state(s["state"]),
                shard_key=_shard_key_of(s),
            )
            for s in info["remote_shards"]
        ],
        shard_transfers=[
            pb.ShardTransferInfo(shard_id=t["shard_id"], sync=t["sync"], **{"from": t["from"], "to": t["to"]})
            for t in info["shard_transfers"]
        ],
    )


def _transfer(t: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"shard_id": t.shard_id, "from_peer_id": t.from_peer_id, "to_peer_id": t.to_peer_id}
    if t.HasField("to_shard_id"):
        out["to_shard_id"] = t.to_shard_id
    method = t.DESCRIPTOR.fields_by_name.get("method")  # optional in moves, plain in restarts
    if method is not None and (not method.has_presence or t.HasField("method")):
        out["method"] = _METHODS.get(t.method, str(t.method))
    return out


def cluster_setup_body(request: pb.UpdateCollectionClusterSetupRequest) -> dict[str, Any]:
    """The body of REST's ``POST /collections/{c}/cluster`` for an ``UpdateCollectionClusterSetup``
    (no operation set: an empty body, which the shared check refuses)."""
    kind = request.WhichOneof("operation")
    if kind is None:
        return {}
    if kind == "replicate_points":
        raise Unimplemented(REPLICATE_POINTS)
    op = getattr(request, kind)
    if kind == "drop_replica":
        return {kind: {"shard_id": op.shard_id, "peer_id": op.peer_id}}
    if kind in _SETUP_OPS:
        key: dict[str, Any] = {"shard_key": shard_key(op.shard_key)}
        for name in ("shards_number", "replication_factor"):
            if name in op.DESCRIPTOR.fields_by_name and op.HasField(name):
                key[name] = getattr(op, name)
        return {_SETUP_OPS[kind]: key}
    return {kind: _transfer(op)}


def _aliases(pairs: list[tuple[str, str]]) -> list[pb.AliasDescription]:
    return [pb.AliasDescription(alias_name=a, collection_name=c) for a, c in pairs]


class CollectionsService(collections_service_pb2_grpc.CollectionsServicer):
    def __init__(self, services: Services) -> None:
        self.services = services

    def _model(self, cls: type[M], data: Any) -> M:
        """``validate.model`` within the peer's ``service.limits``."""
        return model(cls, data, self.services.limits)

    @rpc("Collections")
    async def Get(self, request: pb.GetCollectionInfoRequest) -> pb.GetCollectionInfoResponse:
        col = self.services.toc.get(request.collection_name)
        info = await col.info()
        return pb.GetCollectionInfoResponse(result=info_out(info, col.config))

    @rpc("Collections")
    async def List(self, request: pb.ListCollectionsRequest) -> pb.ListCollectionsResponse:
        names = sorted(self.services.toc.collections)
        return pb.ListCollectionsResponse(collections=[pb.CollectionDescription(name=n) for n in names])

    @rpc("Collections")
    async def Create(self, request: pb.CreateCollection) -> pb.CollectionOperationResponse:
        self.services.quotas.check_write()
        body = self._model(CreateCollection, create_body(request))
        await actions.create(
            self.services.toc, request.collection_name, body, timeout_of(request), self.services.limits
        )
        return pb.CollectionOperationResponse(result=True)

    @rpc("Collections")
    async def Update(self, request: pb.UpdateCollection) -> pb.CollectionOperationResponse:
        body = self._model(UpdateCollection, update_body(request))
        await actions.update(
            self.services.toc, request.collection_name, body, timeout_of(request), self.services.limits
        )
        return pb.CollectionOperationResponse(result=True)

    @rpc("Collections")
    async def Delete(self, request: pb.DeleteCollection) -> pb.CollectionOperationResponse:
        deleted = await self.services.toc.delete(request.collection_name, timeout_of(request))
        return pb.CollectionOperationResponse(result=deleted)

    @rpc("Collections")
    async def UpdateAliases(self, request: pb.ChangeAliases) -> pb.CollectionOperationResponse:
        body = self._model(ChangeAliasesIn, {"actions": [_alias_action(a) for a in request.actions]})
        await actions.change_aliases(self.services.toc, body, timeout_of(request))
        return pb.CollectionOperationResponse(result=True)

    @rpc("Collections")
    async def ListCollectionAliases(self, request: pb.ListCollectionAliasesRequest) -> pb.ListAliasesResponse:
        return pb.ListAliasesResponse(
            aliases=_aliases(actions.aliases(self.services.toc, request.collection_name))
        )

    @rpc("Collections")
    async def ListAliases(self, request: pb.ListAliasesRequest) -> pb.ListAliasesResponse:
        return pb.ListAliasesResponse(aliases=_aliases(actions.aliases(self.services.toc)))

    @rpc("Collections")
    async def CollectionExists(self, request: pb.CollectionExistsRequest) -> pb.CollectionExistsResponse:
        exists = self.services.toc.exists(request.collection_name)
        return pb.CollectionExistsResponse(result=pb.CollectionExists(exists=exists))

    @rpc("Collections")
    async def CollectionClusterInfo(
        self, request: pb.CollectionClusterInfoRequest
    ) -> pb.CollectionClusterInfoResponse:
        consensus = self.services.consensus()
        info = await cluster_actions.collection_cluster_info(
            self.services.toc, consensus, request.collection_name
        )
        return cluster_info_out(info)

    @rpc("Collections")
    async def UpdateCollectionClusterSetup(
        self, request: pb.UpdateCollectionClusterSetupRequest
    ) -> pb.UpdateCollectionClusterSetupResponse:
        req = self._model(cluster_ops.ClusterOperationIn, cluster_setup_body(request))
        timeout = timeout_of(request) or CLUSTER_TIMEOUT
        await cluster_ops.apply(
            self.services.toc,
            self.services.consensus(),
            request.collection_name,
            req,
            timeout,
            self.services.limits,
        )
        return pb.UpdateCollectionClusterSetupResponse(result=True)

    @rpc("Collections")
    async def CreateShardKey(self, request: pb.CreateShardKeyRequest) -> pb.CreateShardKeyResponse:
        r = request.request
        body: dict[str, Any] = {"shard_key": shard_key(r.shard_key)}
        for name in ("shards_number", "replication_factor"):
            if r.HasField(name):
                body[name] = getattr(r, name)
        req = self._model(CreateShardKeyIn, body)
        toc, name = self.services.toc, request.collection_name
        await actions.create_shard_key(
            toc,
            name,
            req.shard_key,
            req.shards_number,
            req.replication_factor,
            timeout_of(request),
            self.services.limits,
        )
        return pb.CreateShardKeyResponse(result=True)

    @rpc("Collections")
    async def DeleteShardKey(self, request: pb.DeleteShardKeyRequest) -> pb.DeleteShardKeyResponse:
        req = self._model(DropShardKeyIn, {"shard_key": shard_key(request.request.shard_key)})
        await actions.delete_shard_key(
            self.services.toc, request.collection_name, req.shard_key, timeout_of(request)
        )
        return pb.DeleteShardKeyResponse(result=True)

    @rpc("Collections")
    async def ListShardKeys(self, request: pb.ListShardKeysRequest) -> pb.ListShardKeysResponse:
        keys = actions.shard_keys(self.services.toc, request.collection_name) or []
        return pb.ListShardKeysResponse(
            shard_keys=[pb.ShardKeyDescription(key=to_shard_key(k)) for k in keys]
        )
