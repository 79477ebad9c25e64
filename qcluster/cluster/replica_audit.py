"""Replica audit: Active replicas that disagree on a write end up agreeing, whoever coordinated it.

A write's coordinator settles the writes that failed (``shards/unsettled.py``), but a coordinator
killed before it could leaves replicas that disagree for good, all Active. So, every ``interval``
seconds, the peer with the lowest id among a shard's Active replicas reads their clock maps (the
highest tick each applied per coordinator clock). A clock they disagree on, with the same ticks
on every replica for longer than a write can take (``settle_after``: the deadline of a send to a
replica, at most 10 s, plus one interval; a send slower than that goes to a replica slow enough to
be worth rebuilding), is no write in flight: its coordinator gave up, or is gone. The
replicas below the highest tick are marked ``Dead`` through consensus, naming those at it as
holders (so the rule for deactivations applies), and recovered from them.

Nothing here touches data: it reads clock maps and proposes state changes that name the state
they replace.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from qcluster.errors import QClusterError
from qcluster.logging import get_logger
from qcluster.shards.clock import ClockMap
from qcluster.shards.unsettled import mark_lacking
from qcluster.tasks import cancel_and_wait
from qcluster.types import ReplicaState

if TYPE_CHECKING:
    from qcluster.shards.replica_set import ReplicaSet
    from qcluster.toc import TableOfContents

log = get_logger(__name__)
Clock = tuple[int, int]  # (coordinator peer id, clock id)
Split = tuple[int, tuple[int, ...], tuple[int, ...]]  # (highest tick, replicas at it, replicas below)


def disagreements(maps: Mapping[int, ClockMap]) -> dict[Clock, Split]:
    """The clocks the replicas (peer -> clock map) disagree on."""
    clocks = {(t.peer_id, t.clock_id) for m in maps.values() for t in m}
    out: dict[Clock, Split] = {}
    for peer_id, clock_id in sorted(clocks):
        ticks = {p: m.tick_of(peer_id, clock_id) for p, m in maps.items()}
        top = max(ticks.values())
        below = tuple(sorted(p for p, t in ticks.items() if t < top))
        if below:
            out[(peer_id, clock_id)] = (top, tuple(sorted(p for p, t in ticks.items() if t == top)), below)
    return out


class ReplicaAudit:
    def __init__(
        self,
        toc: TableOfContents,
        peer_id: Callable[[], int],
        ready: Callable[[], bool],
        interval: float,
        settle_after: float,
    ):
        self._toc = toc
        self._peer_id = peer_id
        self._ready = ready
        self.interval = interval
        self.settle_after = settle_after
        # (collection, shard) -> clock -> (its split, when first seen)
        self._seen: dict[tuple[str, int], dict[Clock, tuple[Split, float]]] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="replica-audit")

    async def close(self) -> None:
        await cancel_and_wait(self._task)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if self._ready():
                await self.audit_all()

    async def audit_all(self) -> None:
        sets = [rs for col in list(self._toc.collections.values()) for rs in list(col.holder.sets.values())]
        keys: set[tuple[str, int]] = set()  # the shards led here this round
        for rs in sets:
            active = sorted(p for p, st in rs.states.items() if st is ReplicaState.ACTIVE)
            if len(active) < 2 or active[0] != self._peer_id():
                continue
            keys.add((rs.collection, rs.shard_id))
            try:
                await self._audit(rs, active)
            except QClusterError as exc:  # a replica out of reach: next round
                log.debug(
                    "replica audit skipped a shard",
                    collection=rs.collection,
                    shard=rs.shard_id,
                    error=exc.message,
                )
        for key in set(self._seen) - keys:
            del self._seen[key]

    async def _audit(self, rs: ReplicaSet, active: list[int]) -> None:
        states, since = rs.states, rs.since  # the view the marks name
        maps = await asyncio.gather(*(rs.replica(p).clock_map() for p in active))
        now = time.monotonic()
        before = self._seen.get((rs.collection, rs.shard_id), {})
        seen: dict[Clock, tuple[Split, float]] = {}
        marks: dict[int, tuple[int, ...]] = {}
        for clock, split in disagreements(dict(zip(active, maps, strict=True))).items():
            prior = before.get(clock)
            first = prior[1] if prior is not None and prior[0] == split else now
            if now - first < self.settle_after:
                seen[clock] = (split, first)
                continue
            top, have, lack = split
            log.warning(
                "Active replicas disagree on a write nobody is settling; marking those without it Dead",
                collection=rs.collection,
                shard=rs.shard_id,
                clock=list(clock),
                tick=top,
                applied_on=list(have),
                missing_on=list(lack),
            )
            for peer in lack:
                marks.setdefault(peer, have)
        self._seen[(rs.collection, rs.shard_id)] = seen
        if marks:
            await mark_lacking(rs, marks, states, since, "an Active replica lacking writes held by peers")
