"""``--reinit``: make a surviving peer the sole voter of a new cluster, keeping its data.

Steps (offline, before Raft starts)::

    state = dump (base + tail) + every journal entry after it             (what this peer had)
    state.apply(RemovePeer(p)) for every other peer                      (their replicas go too)
    state.apply(AddPeer / UpdatePeerUri for this peer's current uri)
    delete journal + meta + dump; write a dump holding only that state, membership {self}

Raft then starts as a single-member cluster at term 1 from that snapshot; other peers may join it
with ``--bootstrap``. The journal's last entries are kept even if this peer never learnt that they
committed (pysyncobj stores the commit index lazily, so "committed" would lose recent writes); on
a sole survivor they are the best record there is.
"""

from __future__ import annotations

from pathlib import Path

from qcluster.consensus import operations as ops
from qcluster.consensus import wire
from qcluster.consensus.bridge import SnapshotImage, read_dump_file, write_dump_file
from qcluster.consensus.journal import FileJournal
from qcluster.consensus.op_codec import decode_op
from qcluster.consensus.raft import DUMP_FILE, JOURNAL_FILE
from qcluster.consensus.state import ClusterState
from qcluster.errors import BadInputError, CorruptedStorageError
from qcluster.logging import get_logger

log = get_logger(__name__)

_REGULAR, _NO_OP = b"\x00", b"\x01"  # pysyncobj command type bytes


def recover_state(raft_dir: Path) -> tuple[ClusterState, int]:
    """The state this peer had (dump + every journal entry after it) and its last index."""
    wire.install()
    state, applied = ClusterState(), 0
    dump = raft_dir / DUMP_FILE
    if dump.exists():
        data = read_dump_file(dump)
        image = SnapshotImage(
            int(data["index"]),
            int(data["base_index"]),
            bytes(data["base_state"]),
            tuple((int(i), bytes(b)) for i, b in data["tail"]),
        )
        state, applied = image.materialise(), image.index
    journal_path = raft_dir / JOURNAL_FILE
    if journal_path.exists():
        journal = FileJournal(str(journal_path))  # same format as pysyncobj's
        try:
            for i in range(len(journal)):
                command, index, _term = journal[i]
                if index <= applied or bytes(command[:1]) != _REGULAR:
                    continue
                try:
                    _func, args = wire.loads(bytes(command[1:]))[:2]
                    op = decode_op(bytes(args[0]))
                except (wire.WireError, BadInputError, TypeError, ValueError, IndexError) as exc:
                    raise CorruptedStorageError(f"raft journal entry {index} is damaged: {exc}") from exc
                state.apply(op)
                applied = index
        finally:
            journal._destroy()
    return state, applied


def reinit_storage(raft_dir: Path, peer_id: int, uri: str) -> ClusterState:
    state, applied = recover_state(raft_dir)
    for other in sorted(p for p in state.peers if p != peer_id):
        state.apply(ops.remove_peer(other))
    known = state.peers.get(peer_id)
    if known is None:
        state.apply(ops.add_peer(peer_id, uri))
    elif known != uri:
        state.apply(ops.update_peer_uri(peer_id, uri))
    for name in (JOURNAL_FILE, JOURNAL_FILE + ".meta", DUMP_FILE):
        (raft_dir / name).unlink(missing_ok=True)
    # The snapshot stands for index 3: a new peer's log (one no-op at index 1) can never match the
    # leader's first entry (index 2), so joiners always receive this snapshot instead of the log.
    write_dump_file(
        raft_dir / DUMP_FILE, (_NO_OP, 3, 0), (_NO_OP, 2, 0), [str(peer_id)], 3, state.to_bytes(), []
    )
    log.warning(
        "reinit: this peer is now the only member of a new cluster",
        peer_id=peer_id,
        recovered_index=applied,
        collections=len(state.collections),
    )
    return state
