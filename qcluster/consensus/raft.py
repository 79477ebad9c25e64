"""The only pysyncobj subclass: one replicated entry point, configured for a metadata plane.

Configuration choices (see :class:`RaftTuning` for the numbers):

* Network: :class:`~qcluster.consensus.transport.GrpcTransport`; Raft rides the p2p gRPC port and
  only peers that passed the secret check reach it. pysyncobj's own password/encryption is not
  used (it needs the ``cryptography`` package and only protects its TCP transport, which is off).
* Encoding: :func:`qcluster.consensus.wire.install` replaces pysyncobj's pickle everywhere
  (messages, log commands, journal metadata); dumps use our own serializer. No pickle, ever.
* No commit batching (``appendEntriesUseBatch=False``): an entry is sent as soon as it is
  proposed and the commit index right after it commits. Commands do not wait for a leader
  (``commandsWaitLeader=False``): the proposer retries instead, under its own deadline.
* Persistence under ``storage/raft/``: ``journal.bin`` (+ ``.meta``: term, vote, commit index)
  and ``dump.bin`` (snapshot; see :mod:`bridge`). No fork: the dump is a small file written by
  the bridge from already-serialised state, so compaction does not stall heartbeats.
* Dynamic membership: peers join and leave with ``addNodeToCluster`` / ``removeNodeFromCluster``.
  pysyncobj node ids are peer ids as strings.

Threading: pysyncobj runs its own tick thread. The replicated ``apply_op`` runs there and only
hands the operation to the loop through the bridge. ``submit``/``add_member``/``remove_member``
may be called from the loop: they only enqueue (pysyncobj's command queue is locked) and their
callbacks run on the raft thread, so callers must hop back with ``call_soon_threadsafe``.
``status`` is a snapshot refreshed on the raft thread every tick; reading it never blocks.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pysyncobj import SyncObj, SyncObjConf, replicated
from pysyncobj.node import Node

from qcluster.consensus import wire
from qcluster.consensus.bridge import ApplyBridge
from qcluster.consensus.info import RaftRole, RaftStatus
from qcluster.consensus.transport import GrpcTransport, RaftLinks

_ROLES = {0: RaftRole.FOLLOWER, 1: RaftRole.CANDIDATE, 2: RaftRole.LEADER}

# pysyncobj FAIL_REASON codes, named
(
    SUCCESS,
    QUEUE_FULL,
    MISSING_LEADER,
    DISCARDED,
    NOT_LEADER,
    LEADER_CHANGED,
    REQUEST_DENIED,
    UNKNOWN_OUTCOME,
) = range(8)
FAIL_NAMES = {
    QUEUE_FULL: "queue full",
    MISSING_LEADER: "no leader",
    DISCARDED: "discarded by a new leader",
    NOT_LEADER: "not leader",
    LEADER_CHANGED: "leader changed",
    REQUEST_DENIED: "denied",
    UNKNOWN_OUTCOME: "unknown outcome",
}

JOURNAL_FILE = "journal.bin"
DUMP_FILE = "dump.bin"


@dataclass(frozen=True, slots=True)
class RaftTuning:
    """Timings measured for a LAN metadata plane: a dead leader is replaced in well under a second."""

    tick_period: float = 0.05  # longest idle sleep of the raft thread (it is woken for messages)
    heartbeat_period: float = 0.05
    election_timeout_min: float = 0.3
    election_timeout_max: float = 0.6
    leader_fallback_timeout: float = 2.0  # a leader without a majority for this long steps down
    log_compaction_min_entries: int = 5000
    log_compaction_min_time: float = 300.0


class MetadataRaft(SyncObj):  # type: ignore[misc]
    def __init__(
        self,
        self_id: int,
        others: Iterable[int],
        raft_dir: Path,
        tuning: RaftTuning,
        bridge: ApplyBridge,
        links: RaftLinks,
        on_status_change: Callable[[RaftStatus, RaftStatus], None] | None = None,
    ) -> None:
        wire.install()
        # Set before SyncObj.__init__: its tick thread may apply journal entries right away.
        self._bridge = bridge
        self._links = links
        self._on_status_change = on_status_change
        self.status = RaftStatus()
        conf = SyncObjConf(
            autoTick=True,
            autoTickPeriod=tuning.tick_period,
            appendEntriesPeriod=tuning.heartbeat_period,
            raftMinTimeout=tuning.election_timeout_min,
            raftMaxTimeout=tuning.election_timeout_max,
            leaderFallbackTimeout=tuning.leader_fallback_timeout,
            connectionTimeout=max(2.0, tuning.election_timeout_max),
            appendEntriesUseBatch=False,
            # Big enough that no metadata entry takes pysyncobj's chunked path.
            appendEntriesBatchSizeBytes=2**22,
            commandsWaitLeader=False,
            dynamicMembershipChange=True,
            journalFile=str(raft_dir / JOURNAL_FILE),
            fullDumpFile=str(raft_dir / DUMP_FILE),
            useFork=False,
            serializer=bridge.write_dump,
            deserializer=bridge.read_dump,
            logCompactionMinEntries=tuning.log_compaction_min_entries,
            logCompactionMinTime=tuning.log_compaction_min_time,
        )
        super().__init__(
            Node(str(self_id)),
            [Node(str(o)) for o in sorted(set(others)) if o != self_id],
            conf,
            nodeClass=Node,
            transportClass=functools.partial(GrpcTransport, links=links),
        )
        self.addOnTickCallback(self._refresh_status)

    @replicated  # type: ignore[untyped-decorator]
    def apply_op(self, op_bytes: bytes) -> int:
        """Runs on the raft thread when the entry commits (and on journal replay)."""
        index = int(self.raftLastApplied) + 1
        self._bridge.committed(index, int(self.raftCurrentTerm), bytes(op_bytes))
        return index

    # ------------------------------------------------------------------ loop-callable

    def submit(self, op_bytes: bytes, callback: Callable[[Any, int], None]) -> None:
        self.apply_op(op_bytes, callback=callback)

    def add_member(self, peer_id: int, callback: Callable[[Any, int], None]) -> None:
        self.addNodeToCluster(Node(str(peer_id)), callback=callback)

    def remove_member(self, peer_id: int, callback: Callable[[Any, int], None]) -> None:
        self.removeNodeFromCluster(Node(str(peer_id)), callback=callback)

    def stop_and_join(self) -> None:
        """Blocking: stop the tick thread and release files. Call via ``asyncio.to_thread``."""
        self.destroy_synchronous()
        journal: Any = getattr(self, "_SyncObj__raftLog", None)
        if journal is not None:  # store term / vote / commit index now, not "within 1 s"
            with contextlib.suppress(OSError):
                journal.onOneSecondTimer()
        notifier = getattr(self, "_SyncObj__pipeNotifier", None)
        for attr in ("_PipeNotifier__pipeR", "_PipeNotifier__pipeW"):
            fd = getattr(notifier, attr, None)
            if isinstance(fd, int):
                with contextlib.suppress(OSError):
                    os.close(fd)

    # ------------------------------------------------------------------ raft thread

    def _term_at(self, index: int) -> int:
        log = getattr(self, "_SyncObj__raftLog", None)
        if log is None:
            return 0
        try:
            first = int(log[0][1])
            return int(log[index - first][2]) if index >= first else 0
        except (TypeError, IndexError):
            return 0

    def _commit_alone(self, status: RaftStatus) -> None:
        """A sole member commits an entry on the tick after it appended it, and pysyncobj then
        sleeps a whole tick first (nobody answers to wake it): wake it at once instead, so a
        one-peer cluster commits in milliseconds, not a tick period. Only for entries of the
        current term (those commit on the next tick; anything else could spin)."""
        if self.otherNodes or status.role is not RaftRole.LEADER:
            return
        log = getattr(self, "_SyncObj__raftLog", None)
        transport = self._links._transport
        if log is None or transport is None or len(log) == 0:
            return
        try:
            last_index, last_term = int(log[-1][1]), int(log[-1][2])
        except (TypeError, IndexError):
            return
        if last_index > status.commit and last_term == status.term:
            transport.wake()

    def _refresh_status(self) -> None:
        raw = self.getStatus()
        leader = raw.get("leader")
        transport = self._links._transport
        new = RaftStatus(
            term=int(raw["raft_term"]),
            commit=int(raw["commit_idx"]),
            last_applied=int(raw["last_applied"]),
            leader=int(leader.id) if leader is not None else None,
            role=_ROLES.get(int(raw["state"]), RaftRole.FOLLOWER),
            members=tuple(sorted(int(n.id) for n in self.otherNodes)),
            connected=transport.connected_ids() if transport is not None else (),
            has_quorum=bool(raw["has_quorum"]),
            leader_commit=raw.get("leader_commit_idx"),
            commit_term=self._term_at(int(raw["commit_idx"])),
        )
        old, self.status = self.status, new
        self._commit_alone(new)
        if self._on_status_change is not None and (old.role, old.leader, old.members) != (
            new.role,
            new.leader,
            new.members,
        ):
            self._on_status_change(old, new)
