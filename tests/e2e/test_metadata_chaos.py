"""Metadata chaos: while a writer keeps storing cluster metadata keys and creating collections through
random live peers, peers are killed with SIGKILL (the leader every other round) and restarted.
Invariant: every write that was acknowledged is present, with its value, on every peer at the end.

The default run does a few rounds; ``make test-slow`` runs the soak (``-m slow``).
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from qcluster.testing.peer_cluster import ClusterPeer, PeerCluster, rest, wait_for

MAX_COLLECTIONS = 40  # each restart loads them all; the soak is about consensus, not load time


@dataclass
class Writer:
    peers: list[ClusterPeer]
    seed: int
    acked_keys: dict[str, int] = field(default_factory=dict)
    acked_collections: set[str] = field(default_factory=set)
    acked_deleted: set[str] = field(default_factory=set)
    attempts: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        rng = random.Random(self.seed)
        i = 0
        while not self.stop.is_set():
            live = [p for p in self.peers if p.proc is not None and p.proc.poll() is None]
            if not live:
                time.sleep(0.01)
                continue
            peer = rng.choice(live)
            i += 1
            self.attempts += 1
            if i % 25 == 0 and self.acked_collections:
                name = rng.choice(sorted(self.acked_collections))
                status, _ = rest(peer.url, "DELETE", f"/collections/{name}?timeout=3", timeout=6)
                if status == 200:
                    self.acked_collections.discard(name)
                    self.acked_deleted.add(name)
            elif i % 15 == 0 and self.acked_collections:
                target = rng.choice(sorted(self.acked_collections))
                actions = {
                    "actions": [{"create_alias": {"collection_name": target, "alias_name": f"alias-{i}"}}]
                }
                rest(peer.url, "POST", "/collections/aliases?timeout=3", actions, timeout=6)
            elif i % 10 == 0 and len(self.acked_collections) < MAX_COLLECTIONS:
                name = f"col-{i}"
                body = {"vectors": {"size": 2, "distance": "Dot"}}
                status, _ = rest(peer.url, "PUT", f"/collections/{name}?timeout=3", body, timeout=6)
                if status == 200:
                    self.acked_collections.add(name)
            else:
                key = f"key-{i}"
                status, _ = rest(peer.url, "PUT", f"/cluster/metadata/keys/{key}?timeout=3", i, timeout=6)
                if status == 200:
                    self.acked_keys[key] = i


def _missing(peer: ClusterPeer, names: set[str]) -> set[str]:
    _, body = rest(peer.url, "GET", "/collections")
    return names - {c["name"] for c in body["result"]["collections"]}


def _chaos(tmp_path: Path, rounds: int, seed: int) -> None:
    cluster = PeerCluster(tmp_path, secret="chaos")
    rng = random.Random(seed)
    writer: Writer | None = None
    thread: threading.Thread | None = None
    try:
        peers = list(cluster.start(3))
        writer = Writer(peers, seed)
        thread = threading.Thread(target=writer.run, daemon=True)
        thread.start()
        for r in range(rounds):
            leader = cluster.wait_formed(peers)
            victim = cluster.by_id(leader) if r % 2 == 0 else rng.choice(peers)
            before = len(writer.acked_keys)
            victim.kill9()
            # the survivors keep taking writes while the victim is down
            wait_for(lambda before=before: len(writer.acked_keys) > before + 3, 20, "writes with a peer down")
            victim.args = []
            victim.start()
        cluster.wait_formed(peers)
        writer.stop.set()
        thread.join(timeout=30)
        assert writer.acked_keys and writer.acked_collections, (writer.attempts, writer.acked_keys)
        for p in peers:
            wait_for(
                lambda p=p: (
                    set(rest(p.url, "GET", "/cluster/metadata/keys")[1]["result"]) >= set(writer.acked_keys)
                ),
                30,
                f"acknowledged keys on {p.url}",
            )
            for key in rng.sample(sorted(writer.acked_keys), min(20, len(writer.acked_keys))):
                status, body = rest(p.url, "GET", f"/cluster/metadata/keys/{key}")
                assert status == 200 and body["result"] == writer.acked_keys[key], (key, body)
            # a peer that was down when a collection was created creates it as it catches up
            try:
                wait_for(lambda p=p: not _missing(p, writer.acked_collections), 30, "collections")
            except AssertionError:
                agreed = rest(p.url, "GET", "/cluster/telemetry")[1]["result"]["collections"]
                lacking = _missing(p, writer.acked_collections)
                raise AssertionError(
                    f"{p.url} lacks {lacking} (in its agreed state: {sorted(set(agreed) & lacking)})"
                ) from None

        # deleted ones are gone, and all peers converge to the same collections, aliases and keys
        def view(p: ClusterPeer) -> tuple[list[str], list[tuple[str, str]], list[str]]:
            cols = {c["name"] for c in rest(p.url, "GET", "/collections")[1]["result"]["collections"]}
            aliases = sorted(
                (a["alias_name"], a["collection_name"])
                for a in rest(p.url, "GET", "/aliases")[1]["result"]["aliases"]
            )
            keys = rest(p.url, "GET", "/cluster/metadata/keys")[1]["result"]
            return (sorted(cols), aliases, keys)

        wait_for(lambda: len({repr(view(p)) for p in peers}) == 1, 30, "identical metadata on every peer")
        final = view(peers[0])
        assert not writer.acked_deleted & set(final[0]), writer.acked_deleted & set(final[0])
        assert all(target in final[0] for _, target in final[1])
    finally:
        if writer is not None:
            writer.stop.set()
        if thread is not None:
            thread.join(timeout=30)
        cluster.stop()


def test_acknowledged_metadata_survives_kills(tmp_path: Path) -> None:
    _chaos(tmp_path, rounds=3, seed=7)


@pytest.mark.slow
def test_acknowledged_metadata_survives_kills_soak(tmp_path: Path) -> None:
    _chaos(tmp_path, rounds=30, seed=11)
