"""Watchdog: replicas heal by themselves, and no replica stays stuck.

Every peer looks after its own replicas, once per ``INTERVAL`` and after every applied event:

* a ``Dead`` replica on this peer with no transfer running for it is recovered: this peer proposes
  a transfer to itself from an ``Active`` replica on a reachable peer, method ``wal_delta`` (which
  falls back to ``stream_records`` by itself), within the incoming / outgoing transfer limits;
* a ``Partial`` replica on this peer with no transfer feeding it (the transfer vanished, e.g. its
  abort could not say what happened to the target) is marked ``Dead``, which the rule above then
  recovers;
* a transfer to this peer whose source peer has been unreachable for ``SOURCE_GRACE`` seconds is
  aborted (its target goes back to ``Dead``, or away when it was created for the transfer).

Every proposal names the state it expects, so two peers acting on the same view cannot undo each
other. Nothing here touches data: it only proposes state changes and transfers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from qcluster.consensus import operations as ops
from qcluster.consensus.operations import TransferRef
from qcluster.errors import QClusterError
from qcluster.logging import get_logger
from qcluster.tasks import cancel_and_wait
from qcluster.types import ReplicaState

if TYPE_CHECKING:
    from qcluster.consensus.service import ConsensusService
    from qcluster.consensus.state import ClusterState

log = get_logger(__name__)
INTERVAL = 1.0
SOURCE_GRACE = 10.0
PROPOSE_TIMEOUT = 10.0


class RecoveryWatchdog:
    def __init__(self, consensus: ConsensusService, incoming_limit: int = 1, outgoing_limit: int = 1):
        self.consensus = consensus
        self.incoming_limit = incoming_limit
        self.outgoing_limit = outgoing_limit
        self._unreachable_since: dict[int, float] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._paused: set[tuple[str, int]] = set()

    @contextlib.asynccontextmanager
    async def paused(self, collection: str, shard_id: int) -> AsyncIterator[None]:
        """Leave this peer's replica of the shard alone meanwhile (a snapshot recovery swaps it)."""
        key = (collection, shard_id)
        self._paused.add(key)
        try:
            yield
        finally:
            self._paused.discard(key)
            self.poke()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="recovery-watchdog")

    def poke(self) -> None:
        self._wake.set()

    async def close(self) -> None:
        await cancel_and_wait(self._task)

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), INTERVAL)
            self._wake.clear()
            if not self.consensus.running or not self.consensus.is_caught_up():
                continue
            try:
                await self.check(self.consensus.state)
            except QClusterError as exc:
                log.info("recovery check could not act now; will retry", error=exc.message)

    async def check(self, state: ClusterState) -> None:
        me = self.consensus.peer_id
        live = self.consensus.live_peers()
        now = time.monotonic()
        for peer in state.peers:
            if peer in live:
                self._unreachable_since.pop(peer, None)
            else:
                self._unreachable_since.setdefault(peer, now)
        incoming = sum(1 for r in state.transfers if r.to_peer == me)
        outgoing = {p: sum(1 for r in state.transfers if r.from_peer == p) for p in state.peers}
        for ref in list(state.transfers):
            since = self._unreachable_since.get(ref.from_peer)
            if ref.to_peer == me and since is not None and now - since > SOURCE_GRACE:
                await self._propose(
                    ops.abort_transfer(
                        ref, f"source peer {ref.from_peer} unreachable for {now - since:.0f} s"
                    ),
                    "aborting a transfer whose source is unreachable",
                    ref,
                )
        for name, sid, replica_state in state.replicas_on_peer(me):
            if (name, sid) in self._paused:
                continue
            if any(r.collection == name and r.shard_id == sid and r.to_peer == me for r in state.transfers):
                continue
            if replica_state is ReplicaState.PARTIAL:
                await self._propose(
                    ops.set_replica_state(name, sid, me, ReplicaState.DEAD, ReplicaState.PARTIAL),
                    "a Partial replica with no transfer feeding it: marking it Dead",
                    TransferRef(name, sid, 0, me),
                )
            elif replica_state is ReplicaState.DEAD and incoming < self.incoming_limit:
                source = self._source(state, name, sid, live, outgoing)
                if source is None:
                    continue
                ref = TransferRef(name, sid, source, me)
                if await self._propose(
                    ops.start_transfer(ref, "wal_delta", sync=True),
                    "recovering a Dead replica of this peer",
                    ref,
                ):
                    incoming += 1
                    outgoing[source] = outgoing.get(source, 0) + 1

    def _source(
        self, state: ClusterState, name: str, sid: int, live: set[int], outgoing: dict[int, int]
    ) -> int | None:
        shard = state.collections[name].shards[sid]
        candidates = [
            p
            for p, st in shard.replicas.items()
            if st is ReplicaState.ACTIVE and p in live and outgoing.get(p, 0) < self.outgoing_limit
        ]
        return min(candidates, key=lambda p: (outgoing.get(p, 0), p), default=None)

    async def _propose(self, op: ops.Op, what: str, ref: TransferRef) -> bool:
        log.info(
            what, collection=ref.collection, shard=ref.shard_id, from_peer=ref.from_peer, to_peer=ref.to_peer
        )
        try:
            await self.consensus.propose(op, PROPOSE_TIMEOUT)
        except QClusterError as exc:
            log.info("proposal not taken", what=what, error=exc.message)
            return False
        return True
