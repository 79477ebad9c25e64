"""Which shards a Collection has and which of their replicas live here: its placement.

In cluster mode the placement is agreed through consensus and this peer's replicas are matched to
it (``sync``). On a single peer every shard is local and Active: ``config.json`` lists the shard
ids and keys (absent before custom sharding existed: shards ``0..shard_number-1``), and a shard key
added or dropped here changes the shards, then the list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from qcluster.errors import AlreadyExistsError, NotFoundError
from qcluster.shards.shard_holder import ShardPlacement
from qcluster.types import ReplicaState, ShardKey

if TYPE_CHECKING:
    from qcluster.collection.collection import Collection


class Topology:
    def __init__(self, col: Collection):
        self.col = col

    async def sync(self, placement: Mapping[int, ShardPlacement], *, destructive: bool) -> list[int]:
        """Match this peer's local replicas to the agreed placement (cluster mode)."""
        return await self.col.holder.sync(placement, destructive=destructive)

    def single_peer_placement(self, shards: Any = None) -> dict[int, ShardPlacement]:
        """The placement ``config.json``'s list of ``shards`` describes (None: the config's
        ``shard_number`` shards, no keys)."""
        me = {self.col.holder.env.peer_id: ReplicaState.ACTIVE}
        if shards is None:
            return {sid: ShardPlacement(me) for sid in range(self.col.config.params.shard_number)}
        return {int(sid): ShardPlacement(me, key) for sid, key in shards}

    async def add_shard_key(self, key: ShardKey, shard_number: int) -> None:
        holder = self.col.holder
        placement = {
            sid: ShardPlacement({holder.env.peer_id: ReplicaState.ACTIVE}, rs.shard_key)
            for sid, rs in holder.sets.items()
        }
        if any(p.shard_key == key for p in placement.values()):
            raise AlreadyExistsError(f"Shard key {key} already exists")
        first = max(placement, default=-1) + 1
        for sid in range(first, first + shard_number):
            placement[sid] = ShardPlacement({holder.env.peer_id: ReplicaState.ACTIVE}, key)
        await holder.sync(placement, destructive=True)
        self.col.save_config(placement)

    async def drop_shard_key(self, key: ShardKey) -> None:
        holder = self.col.holder
        placement = {
            sid: ShardPlacement({holder.env.peer_id: ReplicaState.ACTIVE}, rs.shard_key)
            for sid, rs in holder.sets.items()
            if rs.shard_key != key
        }
        if len(placement) == len(holder.sets):
            raise NotFoundError(f"Shard key {key} not found")
        await holder.sync(placement, destructive=True)
        self.col.save_config(placement)
