"""``qdrant.Snapshots``: collection and full snapshots (create, list, delete). Downloading and
recovering are REST only, in Qdrant's API as here."""

from __future__ import annotations

from typing import Any

from qcluster.api.actions import snapshots as actions
from qcluster.api.public_grpc.edge import Services, rpc
from qcluster.api.public_grpc.values import to_timestamp
from qcluster.api.public_grpc.wire import pb, snapshots_service_pb2_grpc


def description(d: dict[str, Any]) -> pb.SnapshotDescription:
    out = pb.SnapshotDescription(name=d["name"], size=int(d["size"]))
    if d.get("creation_time"):
        out.creation_time.CopyFrom(to_timestamp(d["creation_time"]))
    if d.get("checksum") is not None:
        out.checksum = d["checksum"]
    return out


class SnapshotsService(snapshots_service_pb2_grpc.SnapshotsServicer):
    def __init__(self, services: Services) -> None:
        self.services = services

    @rpc("Snapshots")
    async def Create(self, request: pb.CreateSnapshotRequest) -> pb.CreateSnapshotResponse:
        made = await self.services.snapshots.create_collection_snapshot(request.collection_name)
        return pb.CreateSnapshotResponse(snapshot_description=description(made))

    @rpc("Snapshots")
    async def List(self, request: pb.ListSnapshotsRequest) -> pb.ListSnapshotsResponse:
        found = actions.list_collection(self.services.toc, self.services.snapshots, request.collection_name)
        return pb.ListSnapshotsResponse(snapshot_descriptions=[description(d) for d in found])

    @rpc("Snapshots")
    async def Delete(self, request: pb.DeleteSnapshotRequest) -> pb.DeleteSnapshotResponse:
        snaps = self.services.snapshots
        actions.delete_collection(self.services.toc, snaps, request.collection_name, request.snapshot_name)
        return pb.DeleteSnapshotResponse()

    @rpc("Snapshots")
    async def CreateFull(self, request: pb.CreateFullSnapshotRequest) -> pb.CreateSnapshotResponse:
        made = await self.services.snapshots.create_full_snapshot()
        return pb.CreateSnapshotResponse(snapshot_description=description(made))

    @rpc("Snapshots")
    async def ListFull(self, request: pb.ListFullSnapshotsRequest) -> pb.ListSnapshotsResponse:
        found = actions.list_full(self.services.snapshots)
        return pb.ListSnapshotsResponse(snapshot_descriptions=[description(d) for d in found])

    @rpc("Snapshots")
    async def DeleteFull(self, request: pb.DeleteFullSnapshotRequest) -> pb.DeleteSnapshotResponse:
        actions.delete_full(self.services.snapshots, request.snapshot_name)
        return pb.DeleteSnapshotResponse()
