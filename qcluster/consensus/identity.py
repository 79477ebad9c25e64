"""This peer's persisted identity and last known membership, under ``storage/raft/``.

``peer.json``  {"peer_id", "uri"}: written before the first join attempt, so a retried or
               restarted join keeps the same id; a restart keeps it whatever ``--uri`` says.
``peers.json`` {"peers": [[id, uri], ...]}: the membership last seen in the cluster state,
               rewritten whenever it changes; on restart it seeds the Raft members and their
               addresses (the journal then corrects them) and tells "already joined" apart.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import orjson

from qcluster.consensus.operations import MAX_PEER_ID
from qcluster.errors import CorruptedStorageError

PEER_FILE = "peer.json"
PEERS_FILE = "peers.json"


def new_peer_id() -> int:
    """A random peer id in [1, 2^53] (exact in JSON numbers, as Qdrant's are)."""
    return secrets.randbelow(MAX_PEER_ID) + 1


@dataclass(frozen=True, slots=True)
class PeerIdentity:
    peer_id: int
    uri: str


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _read_json(path: Path) -> object:
    try:
        return orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, orjson.JSONDecodeError) as exc:
        raise CorruptedStorageError(f"cannot read {path}: {exc}") from exc


def load_identity(raft_dir: Path) -> PeerIdentity | None:
    raw = _read_json(raft_dir / PEER_FILE)
    if raw is None:
        return None
    if not (
        isinstance(raw, dict) and isinstance(raw.get("peer_id"), int) and isinstance(raw.get("uri"), str)
    ):
        raise CorruptedStorageError(f"{raft_dir / PEER_FILE} does not hold a peer identity")
    return PeerIdentity(raw["peer_id"], raw["uri"])


def save_identity(raft_dir: Path, identity: PeerIdentity) -> None:
    _write_atomic(raft_dir / PEER_FILE, orjson.dumps({"peer_id": identity.peer_id, "uri": identity.uri}))


def load_peers(raft_dir: Path) -> dict[int, str] | None:
    raw = _read_json(raft_dir / PEERS_FILE)
    if raw is None:
        return None
    try:
        assert isinstance(raw, dict)
        return {int(pid): str(uri) for pid, uri in raw["peers"]}
    except (AssertionError, KeyError, TypeError, ValueError) as exc:
        raise CorruptedStorageError(f"{raft_dir / PEERS_FILE} does not hold a peer list") from exc


def save_peers(raft_dir: Path, peers: dict[int, str]) -> None:
    _write_atomic(
        raft_dir / PEERS_FILE, orjson.dumps({"peers": sorted([pid, uri] for pid, uri in peers.items())})
    )
