"""Writes whose outcome is unknown on some replicas, settled so the Active replicas agree.

A write that failed on every replica counted for it, or whose holders changed before its failed
replicas could be marked Dead, is not acknowledged. But a timeout or a lost answer does not say
whether a replica applied it: some may hold it and some not, all still Active, and reads would
then depend on the replica asked, for good (Qdrant's "failed write half-applied"). Either outcome
is allowed for a write that was not acknowledged, as long as every Active replica ends with the
same one. So its coordinator settles it:

* the write's clock is retired (never lent again), so the clock's tick on a replica tells for
  good whether that replica applied the write;
* after a short delay (a send that reached a peer just before its deadline finishes applying;
  one that arrives after it is refused, see ``points_internal.Update``), the coordinator reads
  that tick from every replica the agreed state counts as holding the shard's data;
* when some have applied the write and others have not, those without it are marked Dead
  through consensus, naming those with it as holders (so the rule for deactivations applies:
  not when the holders changed state since), and recovery rebuilds them from an Active replica,
  which holds the write.

Reads of replicas fail transiently while a peer is cut off; the check is retried with back-off
for ``SETTLE_FOR`` seconds. A coordinator that dies before its check leaves the write unsettled:
this is the narrow case left to a background repair comparing whole clock maps (not built).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from qcluster.errors import HoldersGoneError, QClusterError, TransientError
from qcluster.logging import get_logger
from qcluster.retry import until_done
from qcluster.shards.clock import ClockTag
from qcluster.shards.replica_env import FailedReplica, attested
from qcluster.shards.replica_roles import COUNTED
from qcluster.tasks import cancel_and_wait
from qcluster.types import ReplicaState

if TYPE_CHECKING:
    from qcluster.shards.replica_set import ReplicaSet

log = get_logger(__name__)
SETTLE_DELAY = 1.0
SETTLE_FOR = 300.0


def split_by_tick(ticks: Mapping[int, int], tag: ClockTag) -> tuple[list[int], list[int]]:
    """(replicas that applied the write tagged ``tag``, those that did not), by their tick of
    its clock (retired after the write, so a tick at or above ``tag.tick`` means applied)."""
    have = sorted(p for p, t in ticks.items() if t >= tag.tick)
    lack = sorted(p for p, t in ticks.items() if t < tag.tick)
    return have, lack


async def mark_lacking(
    rs: ReplicaSet,
    marks: Mapping[int, tuple[int, ...]],
    states: Mapping[int, ReplicaState],
    since: Mapping[int, int],
    why: str,
) -> None:
    """Mark every replica of ``marks`` Dead through consensus, naming the replicas that hold the
    writes it lacks (``marks[peer]``) as holders, in the view ``states`` / ``since`` were read
    in. Holders or other replicas changed meanwhile: a transient error (look again)."""
    results = await asyncio.gather(
        *(
            rs.env.deactivate(
                attested(
                    FailedReplica(rs.collection, rs.shard_id, peer, states[peer], f"{why} {list(holders)}"),
                    holders,
                    states,
                    since,
                )
            )
            for peer, holders in marks.items()
        ),
        return_exceptions=True,
    )
    for result in results:
        if isinstance(result, HoldersGoneError):  # the view moved on: look again
            raise TransientError(f"{result.message}; checking the replicas again")
        if isinstance(result, BaseException):
            raise result


class Settler:
    """Settles the unacknowledged writes of one replica set (see the module docstring). One
    worker per replica set checks every pending write in a round: one clock map per replica."""

    def __init__(self, rs: ReplicaSet, delay: float = SETTLE_DELAY):
        self._rs = rs
        self._delay = delay
        self._pending: dict[ClockTag, float] = {}  # tag -> monotonic time it was failed at
        self._worker: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        return len(self._pending)

    def settle_later(self, tag: ClockTag) -> None:
        self._pending[tag] = time.monotonic()
        if self._worker is None or self._worker.done():
            name = f"settle:{self._rs.collection}:{self._rs.shard_id}"
            self._worker = asyncio.get_running_loop().create_task(self._work(), name=name)

    async def wait(self) -> None:
        """Until every pending write is settled or given up (tests)."""
        while self._worker is not None and not self._worker.done():
            await asyncio.shield(self._worker)

    async def _work(self) -> None:
        rs = self._rs
        while self._pending:
            # sends that reached a peer just before their deadline finish applying
            await asyncio.sleep(max(0.0, min(self._pending.values()) + self._delay - time.monotonic()))
            try:
                async for attempt in until_done(SETTLE_FOR):
                    with attempt:
                        await self._round()
            except QClusterError as exc:
                log.error(
                    "could not settle writes that failed on some replicas; they may disagree on them",
                    collection=rs.collection,
                    shard=rs.shard_id,
                    writes=len(self._pending),
                    error=exc.message,
                )
                self._pending.clear()

    async def _round(self) -> None:
        rs = self._rs
        ripe = time.monotonic() - self._delay
        tags = [tag for tag, failed_at in self._pending.items() if failed_at <= ripe]
        states, since = rs.states, rs.since  # one agreed view for the whole round
        peers = [p for p in sorted(states) if states[p] in COUNTED]
        maps = await asyncio.gather(*(rs.replica(p).clock_map() for p in peers))
        marks: dict[int, tuple[int, ...]] = {}  # peer to mark Dead -> replicas that hold a write it lacks
        for tag in tags:
            have, lack = split_by_tick(
                {p: m.tick_of(tag.peer_id, tag.clock_id) for p, m in zip(peers, maps, strict=True)}, tag
            )
            if have and lack:
                log.warning(
                    "a write that failed is applied on some replicas only; marking the others Dead",
                    collection=rs.collection,
                    shard=rs.shard_id,
                    tag=tag.as_list(),
                    applied_on=have,
                    missing_on=lack,
                )
                for peer in lack:
                    marks.setdefault(peer, tuple(have))
        await mark_lacking(rs, marks, states, since, "missing a write that failed but was applied on peers")
        for tag in tags:
            self._pending.pop(tag, None)

    async def close(self) -> None:
        await cancel_and_wait(self._worker)
