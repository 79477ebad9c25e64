"""Cluster mode: collections, aliases and replica placements agreed through Raft, applied locally.

The TOC proposes (``create_collection`` ...); every peer's ``MetadataSync`` (the consensus listener)
then reconciles its local table of contents with the agreed state after each applied event
(``reconcile``): it creates the collections the state has and this peer lacks, makes each
collection's local replicas match the placement (opening the shards this peer holds, dropping the
ones it no longer holds), copies the aliases and merges config updates. Reconciling from the whole
live state makes it idempotent and covers snapshot installs (``StateReset``) too.

Destructive steps (dropping a collection or a local replica, replacing a stale incarnation of a
collection) happen only once this peer has caught up with the leader: while it replays old log
entries after a restart, an intermediate state would delete data that a later entry gives back.
Until then the reconcile only creates; a background task reconciles again once caught up.

Replica lifecycle on this peer: a replica created for a new collection or shard key starts
``Initializing``; once its local shard exists, this peer proposes ``Active`` for it (naming
``Initializing`` as the state it replaces). A replica the state says is ``Active`` but whose local
data this peer had to create empty (its directory was lost) is proposed ``Dead``, so recovery
fills it instead of it serving empty answers.

A creation returns only once every peer of its placement has created the collection and every
replica is ``Active``, or fails naming what is missing. A collection kept from before the peer
joined a cluster (no agreed incarnation) is never dropped because the state lacks it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from qcluster.consensus import events as ev
from qcluster.consensus import operations as ops
from qcluster.consensus.peer_calls import SyncTarget
from qcluster.consensus.placement import plan_placement
from qcluster.errors import QClusterError, TimeoutError_, TransientError
from qcluster.json_diff import config_diff, deep_merge
from qcluster.logging import get_logger
from qcluster.models.collections import CollectionConfig
from qcluster.retry import until_done
from qcluster.shards.shard_holder import ShardPlacement
from qcluster.types import ReplicaState, ShardKey

if TYPE_CHECKING:
    from qcluster.collection import Collection
    from qcluster.consensus.service import ConsensusService
    from qcluster.consensus.state import ClusterState
    from qcluster.consensus.state_records import CollectionInfo
    from qcluster.toc import TableOfContents
    from qcluster.transfer.driver import TransferDriver
    from qcluster.transfer.recovery import RecoveryWatchdog

log = get_logger(__name__)

DEFAULT_TIMEOUT = 30.0
CATCH_UP_POLL = 0.2


def placement_of(info: CollectionInfo) -> dict[int, ShardPlacement]:
    return {
        sid: ShardPlacement(dict(s.replicas), s.shard_key, dict(s.since)) for sid, s in info.shards.items()
    }


class MetadataSync:
    def __init__(self, toc: TableOfContents):
        self.toc = toc
        self.consensus: ConsensusService | None = None
        self._lock = asyncio.Lock()
        self._changed = asyncio.Condition()
        self._pending_full = False
        self._follow_up: asyncio.Task[None] | None = None
        self._proposals: dict[tuple[str, int, ReplicaState], asyncio.Task[None]] = {}
        self.transfers: TransferDriver | None = None  # runs the transfers this peer sends
        self.watchdog: RecoveryWatchdog | None = None  # recovers this peer's Dead replicas

    # ------------------------------------------------------------------ listener side
    async def on_event(self, event: Any, state: ClusterState, index: int) -> None:
        if isinstance(event, ev.CollectionDeleted) and event.name not in state.collections:
            col = self.toc.collections.get(event.name)
            if col is not None and col.created_at is None:  # kept from before: old rule
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
            merged = deep_merge(current, diff, drop_none=True)
            if merged != current:
                await col.schema.update_config(CollectionConfig.model_validate(merged))
                log.info("collection config updated through consensus", collection=name, diff=diff)

    def caught_up(self) -> bool:
        return self.consensus is not None and self.consensus.is_caught_up()

    async def reconcile(self, state: ClusterState | None = None) -> None:
        if state is None:
            if self.consensus is None:
                return
            state = self.consensus.state
        destructive = self.caught_up()
        async with self._lock:
            # a copy: the state changes while this awaits
            for name, info in list(state.collections.items()):
                await self._reconcile_collection(name, info, destructive)
            if destructive:
                for name, col in list(self.toc.collections.items()):
                    if name not in state.collections and col.created_at is not None:
                        log.info("collection deleted through consensus: dropping it here", collection=name)
                        await self.toc.delete_local(name)
            if dict(state.aliases) != self.toc.aliases:
                self.toc.set_aliases(dict(state.aliases))
        if not destructive:
            self._schedule_full_reconcile()
        if self.transfers is not None and destructive:  # not while replaying old entries
            self.transfers.sync(state)
        if self.watchdog is not None:
            self.watchdog.poke()
        async with self._changed:
            self._changed.notify_all()

    async def _reconcile_collection(self, name: str, info: CollectionInfo, destructive: bool) -> None:
        col = self.toc.collections.get(name)
        if col is not None and col.created_at is not None and col.created_at != info.created_at:
            if not destructive:
                return  # a stale incarnation; replaced once caught up
            log.info("replacing a stale incarnation of a collection", collection=name)
            await self.toc.delete_local(name)
            col = None
        placement = placement_of(info)
        try:
            if col is None:
                config = CollectionConfig.model_validate(info.config)
                col = await self.toc.create_local(name, config, placement, info.created_at)
            else:
                await col.topology.sync(placement, destructive=destructive)
        except (QClusterError, OSError) as exc:
            # OSError too: a collection whose local files cannot be opened (left half-deleted by
            # an interrupted delete, a full disk) must not stop the rest of the reconcile, or this
            # peer's aliases and other collections never converge (found by the chaos harness)
            message = exc.message if isinstance(exc, QClusterError) else str(exc)
            log.error("applying the agreed placement failed; will retry", collection=name, error=message)
            self._schedule_full_reconcile()
            return
        self._settle_new_replicas(col, info, destructive)

    def _settle_new_replicas(self, col: Collection, info: CollectionInfo, destructive: bool) -> None:
        """Activate this peer's new replicas; report Active replicas whose data was lost."""
        me = self.consensus.peer_id if self.consensus is not None else 0
        fresh = col.holder.created_fresh
        for sid, shard in info.shards.items():
            state = shard.replicas.get(me)
            rs = col.holder.sets.get(sid)
            if state is None or rs is None or rs.local is None:
                continue
            if state is ReplicaState.INITIALIZING:
                fresh.discard(sid)
                self._propose_state(col.name, sid, self._serving_state(), ReplicaState.INITIALIZING)
            elif sid in fresh and destructive:
                fresh.discard(sid)
                if state is ReplicaState.ACTIVE:
                    log.warning(
                        "an Active replica of this peer had no data on disk; reporting it Dead",
                        collection=col.name,
                        shard=sid,
                    )
                    self._propose_state(col.name, sid, ReplicaState.DEAD, ReplicaState.ACTIVE)

    def _serving_state(self) -> ReplicaState:
        """The state a new replica of this peer turns into once created."""
        listener = self.toc.storage.node_type == "Listener"
        return ReplicaState.LISTENER if listener else ReplicaState.ACTIVE

    def _propose_state(self, name: str, sid: int, state: ReplicaState, from_state: ReplicaState) -> None:
        key = (name, sid, state)
        if key in self._proposals or self.consensus is None:
            return
        consensus = self.consensus

        async def propose() -> None:
            try:
                async for attempt in until_done(60.0):
                    with attempt:
                        if consensus.state.replica_state(name, sid, consensus.peer_id) != from_state:
                            return
                        op = ops.set_replica_state(name, sid, consensus.peer_id, state, from_state)
                        await consensus.propose(op, DEFAULT_TIMEOUT)
            except QClusterError as exc:
                log.warning(
                    "replica state change not taken",
                    collection=name,
                    shard=sid,
                    state=state,
                    error=exc.message,
                )
            finally:
                self._proposals.pop(key, None)

        self._proposals[key] = asyncio.get_running_loop().create_task(propose(), name=f"replica-state:{key}")

    def _schedule_full_reconcile(self) -> None:
        """Reconcile again, destructively, once this peer has caught up."""
        self._pending_full = True
        if self._follow_up is not None and not self._follow_up.done():
            return

        async def follow_up() -> None:
            while self._pending_full and self.consensus is not None and self.consensus.running:
                if self.caught_up():
                    self._pending_full = False
                    await self.reconcile()
                    continue
                await asyncio.sleep(CATCH_UP_POLL)

        self._follow_up = asyncio.get_running_loop().create_task(follow_up(), name="metadata-sync-catch-up")

    async def close(self) -> None:
        tasks = [t for t in (self._follow_up, *self._proposals.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, QClusterError):
                await task

    # ------------------------------------------------------------------ proposing side
    def _service(self) -> ConsensusService:
        """The consensus service, once it runs (503 before: a peer that is starting must not
        answer from an empty state, e.g. "deleted: false" for a collection it has not loaded)."""
        if self.consensus is None or not self.consensus.running:
            raise TransientError("consensus is not running on this peer yet; retry shortly")
        return self.consensus

    def default_shard_number(self) -> int:
        return max(1, len(self.consensus.state.peers)) if self.consensus is not None else 1

    def _placement(
        self, service: ConsensusService, shard_ids: list[int], factor: int
    ) -> dict[int, tuple[int, ...]]:
        # Replicas go to peers that are up: a replica placed on a dead peer would make the creation
        # wait for it (and then fail). With too few live peers, place on all and report the laggards.
        live = service.live_peers()
        candidates = live if len(live) >= factor else set(service.state.peers)
        return plan_placement(
            sorted(candidates),
            len(shard_ids),
            factor,
            existing_load=service.state.peer_load(),
            first_shard_id=shard_ids[0] if shard_ids else 0,
        )

    async def create_collection(
        self, name: str, config: CollectionConfig, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        """Propose the creation, then wait until every replica exists and is Active."""
        service = self._service()
        factor = config.params.replication_factor
        custom = config.params.sharding_method == "custom"
        placement = (
            {} if custom else self._placement(service, list(range(config.params.shard_number)), factor)
        )
        op = ops.create_collection(name, config.model_dump(mode="json"), placement, ReplicaState.INITIALIZING)
        result = await service.propose(op, timeout)
        await self._wait_ready(service, name, placement, result.index, timeout, f"collection `{name}`")

    async def create_shard_key(
        self, name: str, key: ShardKey, shard_number: int, factor: int, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        service = self._service()
        info = service.state.collections.get(name)
        if info is None:
            raise TransientError(f"collection `{name}` is not known to consensus yet")
        first = max(info.shards, default=-1) + 1
        placement = self._placement(service, list(range(first, first + shard_number)), factor)
        op = ops.create_shard_key(name, key, placement, ReplicaState.INITIALIZING)
        result = await service.propose(op, timeout)
        await self._wait_ready(
            service, name, placement, result.index, timeout, f"shard key {key!r} of `{name}`"
        )

    async def delete_shard_key(self, name: str, key: ShardKey, timeout: float = DEFAULT_TIMEOUT) -> None:
        service = self._service()
        result = await service.propose(ops.delete_shard_key(name, key), timeout)
        addresses = service.state.peers
        await service.wait_peers_synced(
            {p: addresses.get(p, "") for p in sorted(service.live_peers())},
            SyncTarget(result.index),
            timeout,
            f"deletion of shard key {key!r} of `{name}`",
        )

    async def _wait_ready(
        self,
        service: ConsensusService,
        name: str,
        placement: dict[int, tuple[int, ...]],
        index: int,
        timeout: float,
        what: str,
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # every peer holding a replica, and every other peer reachable now: a client balanced over
        # the peers finds the change on whichever it asks next
        holders = sorted({p for peers in placement.values() for p in peers} | service.live_peers())
        addresses = service.state.peers
        await service.wait_peers_synced(
            {p: addresses.get(p, "") for p in holders}, SyncTarget(index, collection=name), timeout, what
        )

        def pending() -> list[str]:
            info = service.state.collections.get(name)
            if info is None:
                return ["the collection was deleted meanwhile"]
            return [
                f"shard {sid} on peer {peer}: {st.value}"
                for sid in placement
                for peer, st in sorted(info.shards[sid].replicas.items() if sid in info.shards else ())
                if st not in (ReplicaState.ACTIVE, ReplicaState.LISTENER)
            ]

        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: not pending()), max(0.0, deadline - loop.time())
                )
            except TimeoutError:
                raise TimeoutError_(
                    f"{what} was created, but not every replica turned Active within {timeout:g}s: "
                    + "; ".join(pending()[:10])
                ) from None

    async def update_collection(
        self, name: str, config: CollectionConfig, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        """Propose the changed part of the config (removed vector names included); every peer
        merges it into its own (and rebuilds its shards when the vector names changed)."""
        service = self._service()
        col = self.toc.get(name)
        diff = config_diff(col.config.model_dump(mode="json"), config.model_dump(mode="json"), removals=True)
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
