"""Cluster mode: collections and aliases are agreed through Raft and applied on every peer.

The TOC proposes (``propose_*``); every peer's ``MetadataSync`` (the consensus listener) then
reconciles its local table of contents with the agreed state after each applied event: it creates
collections the state has and this peer lacks and copies the aliases; a collection is dropped only
on its own ``CollectionDeleted`` event, never because the state lacks it (a peer that held local
collections before it joined a cluster keeps them). Reconciling from the whole state makes it
idempotent and covers snapshot installs (``StateReset``) too. A ``CollectionUpdated`` event merges
its diff (only the changed keys) into this peer's config.

A creation returns only once every peer of its placement has created the collection (``WaitApplied``
on each, see :mod:`qcluster.consensus.peer_calls`), or fails naming the peers that did not confirm.

Data placement across peers is the next step: for now each peer holds every shard of every
collection locally; the agreed placement is recorded in the state for the shard layer to use.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from qcluster.consensus import events as ev
from qcluster.consensus import operations as ops
from qcluster.consensus.peer_calls import SyncTarget
from qcluster.consensus.placement import plan_placement
from qcluster.errors import TransientError
from qcluster.json_diff import config_diff, deep_merge
from qcluster.logging import get_logger
from qcluster.models.collections import CollectionConfig

if TYPE_CHECKING:
    from qcluster.consensus.service import ConsensusService
    from qcluster.consensus.state import ClusterState
    from qcluster.toc import TableOfContents

log = get_logger(__name__)

DEFAULT_TIMEOUT = 30.0


class MetadataSync:
    def __init__(self, toc: TableOfContents):
        self.toc = toc
        self.consensus: ConsensusService | None = None
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ listener side
    async def on_event(self, event: Any, state: ClusterState, index: int) -> None:
        if isinstance(event, ev.CollectionDeleted) and event.name not in state.collections:
            async with self._lock:
                await self.toc.delete_local(event.name)
        if isinstance(event, ev.CollectionUpdated):
            await self._apply_update(event.name, event.config_diff)
        await self.reconcile(state)

    async def _apply_update(self, name: str, diff: dict[str, Any]) -> None:
        async with self._lock:
            col = self.toc.collections.get(name)
            if col is None:
                return
            current = col.config.model_dump(mode="json")
            merged = deep_merge(current, diff)
            if merged != current:
                await col.update_config(CollectionConfig.model_validate(merged))
                log.info("collection config updated through consensus", collection=name, diff=diff)

    async def reconcile(self, state: ClusterState | None = None) -> None:
        if state is None:
            if self.consensus is None:
                return
            state = self.consensus.state
        # Each collection on its own, aliases whatever happens to them: one collection that fails
        # to open here (e.g. files left behind by an interrupted delete) must not hold the rest of
        # this peer's metadata back from the agreed state forever. The first failure is re-raised
        # (the reactor logs it); the next event retries.
        failures: list[Exception] = []
        async with self._lock:
            wanted = {name: info.config for name, info in state.collections.items()}
            for name, raw in wanted.items():
                if name not in self.toc.collections:
                    try:
                        await self.toc.create_local(name, CollectionConfig.model_validate(raw))
                    except Exception as exc:
                        failures.append(exc)
            if dict(state.aliases) != self.toc.aliases:
                self.toc.set_aliases(dict(state.aliases))
        if failures:
            raise failures[0]

    # ------------------------------------------------------------------ proposing side
    def _service(self) -> ConsensusService:
        """The consensus service, once it runs (503 before: a peer that is starting must not
        answer from an empty state, e.g. "deleted: false" for a collection it has not loaded)."""
        if self.consensus is None or not self.consensus.running:
            raise TransientError("consensus is not running on this peer yet; retry shortly")
        return self.consensus

    def default_shard_number(self) -> int:
        return max(1, len(self.consensus.state.peers)) if self.consensus is not None else 1

    async def create_collection(
        self, name: str, config: CollectionConfig, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        """Propose the creation, then wait until every peer of the placement has created it."""
        service = self._service()
        factor = config.params.replication_factor
        # Replicas go to peers that are up: a replica placed on a dead peer would make the creation
        # wait for it (and then fail). With too few live peers, place on all and report the laggards.
        live = service.live_peers()
        candidates = live if len(live) >= factor else set(service.state.peers)
        placement = plan_placement(
            sorted(candidates), config.params.shard_number, factor, existing_load=service.state.peer_load()
        )
        op = ops.create_collection(name, config.model_dump(mode="json"), placement, ops.ReplicaState.ACTIVE)
        result = await service.propose(op, timeout)
        holders = sorted({p for peers in placement.values() for p in peers} | {service.peer_id})
        addresses = service.state.peers
        await service.wait_peers_synced(
            {p: addresses.get(p, "") for p in holders},
            SyncTarget(result.index, collection=name),
            timeout,
            f"collection `{name}`",
        )

    async def update_collection(
        self, name: str, config: CollectionConfig, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        """Propose the changed part of the config; every peer merges it into its own."""
        service = self._service()
        col = self.toc.get(name)
        diff = config_diff(col.config.model_dump(mode="json"), config.model_dump(mode="json"))
        if not diff:
            return
        result = await service.propose(ops.update_collection(col.name, diff), timeout)
        await service.wait_synced(result.index, timeout)

    async def delete_collection(self, name: str, timeout: float = DEFAULT_TIMEOUT) -> bool:
        service = self._service()
        if name not in service.state.collections:
            await service.wait_caught_up(min(timeout, 5.0))  # not known yet, or really absent?
            if name not in service.state.collections:
                return False
        result = await service.propose(ops.delete_collection(name), timeout)
        await service.wait_synced(result.index, timeout)
        return True

    async def change_aliases(self, actions: list[ops.AliasAction], timeout: float = DEFAULT_TIMEOUT) -> None:
        result = await self._service().propose(ops.change_aliases(*actions), timeout)
        await self._service().wait_synced(result.index, timeout)
