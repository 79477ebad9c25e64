"""Cluster mode: collections and aliases are agreed through Raft and applied on every peer.

The TOC proposes (``propose_*``); every peer's ``MetadataSync`` (the consensus listener) then
reconciles its local table of contents with the agreed state after each applied event: it creates
collections the state has and this peer lacks and copies the aliases; a collection is dropped only
on its own ``CollectionDeleted`` event, never because the state lacks it (a peer that held local
collections before it joined a cluster keeps them). Reconciling from the whole state makes it
idempotent and covers snapshot installs (``StateReset``) too.

Data placement across peers is the next step: for now each peer holds every shard of every
collection locally; the agreed placement is recorded in the state for the shard layer to use.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from qcluster.consensus import operations as ops
from qcluster.consensus.placement import plan_placement
from qcluster.logging import get_logger
from qcluster.models.collections import CollectionConfig

if TYPE_CHECKING:
    from qcluster.consensus.service import ConsensusService
    from qcluster.consensus.state import ClusterState
    from qcluster.toc import TableOfContents

log = get_logger(__name__)


class MetadataSync:
    def __init__(self, toc: TableOfContents):
        self.toc = toc
        self.consensus: ConsensusService | None = None
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ listener side
    async def on_event(self, event: Any, state: ClusterState, index: int) -> None:
        from qcluster.consensus.events import CollectionDeleted

        if isinstance(event, CollectionDeleted) and event.name not in state.collections:
            async with self._lock:
                await self.toc.delete_local(event.name)
        await self.reconcile(state)

    async def reconcile(self, state: ClusterState | None = None) -> None:
        if state is None:
            if self.consensus is None:
                return
            state = self.consensus.state
        async with self._lock:
            wanted = {name: info.config for name, info in state.collections.items()}
            for name, raw in wanted.items():
                if name not in self.toc.collections:
                    await self.toc.create_local(name, CollectionConfig.model_validate(raw))
            if dict(state.aliases) != self.toc.aliases:
                self.toc.set_aliases(dict(state.aliases))

    # ------------------------------------------------------------------ proposing side
    def _service(self) -> ConsensusService:
        assert self.consensus is not None
        return self.consensus

    def default_shard_number(self) -> int:
        return max(1, len(self._service().state.peers))

    async def create_collection(self, name: str, config: CollectionConfig) -> None:
        service = self._service()
        placement = plan_placement(
            sorted(service.state.peers), config.params.shard_number, config.params.replication_factor
        )
        op = ops.create_collection(name, config.model_dump(mode="json"), placement, ops.ReplicaState.ACTIVE)
        await service.propose(op)
        await self.reconcile()

    async def delete_collection(self, name: str) -> bool:
        service = self._service()
        if name not in service.state.collections:
            return False
        await service.propose(ops.delete_collection(name))
        async with self._lock:
            await self.toc.delete_local(name)
        return True

    async def change_aliases(self, actions: list[ops.AliasAction]) -> None:
        await self._service().propose(ops.change_aliases(*actions))
        await self.reconcile()
