"""Fault injectors. Each fault is applied, held for a while, and healed; each is one ``fault``
record in the history (kind, variant, targets, start, end, detail).

Kinds and variants:

- ``kill``: SIGKILL of a random peer or of the leader; restarted from its storage after the hold;
- ``pause``: SIGSTOP of a random peer or of the leader, SIGCONT after the hold;
- ``partition``: ``isolate`` (one peer cut from the others), ``leader`` (the leader isolated),
  ``split`` (a minority cut from the majority), ``oneway`` (one peer's packets to another dropped,
  the other direction intact), ``flap`` (a peer isolated and healed every few hundred ms);
- ``netem``: one peer's link slow and lossy (see :meth:`chaos.netns.Network.degrade`);
- ``disk``: the peer whose storage is on a small tmpfs gets it filled, and freed after the hold.

Clients always reach every peer: partitions cut peer-to-peer links only.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import signal
import threading
from collections.abc import Callable
from typing import Any

from chaos.history import History
from chaos.peers import NsCluster, NsPeer
from qcluster.testing.peer_cluster import wait_for

FAULT_KINDS = ("kill", "pause", "partition", "netem", "disk")
PARTITIONS = ("isolate", "leader", "split", "oneway", "flap")


class Injector:
    def __init__(
        self, cluster: NsCluster, history: History, rng: random.Random, hold: tuple[float, float]
    ) -> None:
        self.cluster = cluster
        self.history = history
        self.rng = rng
        self.hold_range = hold
        self.current = "-"  # what is being injected now (for progress lines)
        self.stop = threading.Event()

    @property
    def net(self) -> Any:
        assert self.cluster.net is not None
        return self.cluster.net

    def _hold(self) -> None:
        self.stop.wait(self.rng.uniform(*self.hold_range))

    def _leader(self) -> NsPeer | None:
        leader = self.cluster.agreed_leader()
        return self.cluster.by_peer_id(leader) if leader is not None else None

    def _pick(self, variant: str) -> NsPeer:
        if variant == "leader":
            leader = self._leader()
            if leader is not None:
                return leader
        return self.rng.choice(self.cluster.live() or self.cluster.peers)

    def inject(self, kind: str) -> dict[str, Any]:
        """Apply one fault of ``kind``, hold it, heal it; returns its history record."""
        start = self.history.now()
        variant, targets, detail = getattr(self, "_" + kind)()
        record = {"t": "fault", "kind": kind, "variant": variant, "targets": targets, "start": start,
                  "end": self.history.now(), "detail": detail}  # fmt: skip
        self.current = "-"
        return self.history.add(record)

    def _announce(self, text: str) -> None:
        self.current = text

    # -- process faults -------------------------------------------------------------------

    def _kill(self) -> tuple[str, list[str], dict[str, Any]]:
        variant = self.rng.choice(["random", "leader"])
        peer = self._pick(variant)
        self._announce(f"kill -9 {peer.name} ({variant})")
        with peer.lock:
            peer.expected_down = True
            peer.kill9()
        self._hold()
        restart(peer)
        return variant, [peer.name], {}

    def _pause(self) -> tuple[str, list[str], dict[str, Any]]:
        variant = self.rng.choice(["random", "leader"])
        peer = self._pick(variant)
        self._announce(f"SIGSTOP {peer.name} ({variant})")
        with peer.lock:
            peer.paused = True
            peer.signal(signal.SIGSTOP)
        try:
            self._hold()
        finally:
            with peer.lock:
                peer.signal(signal.SIGCONT)
                peer.paused = False
        return variant, [peer.name], {}

    # -- network faults -------------------------------------------------------------------

    def _partition(self) -> tuple[str, list[str], dict[str, Any]]:
        variant = self.rng.choice(PARTITIONS)
        nodes = {p.name: p.node for p in self.cluster.peers}
        names = list(nodes)
        if variant == "split":
            self.rng.shuffle(names)
            minority, majority = names[: (len(names) - 1) // 2], names[(len(names) - 1) // 2 :]
            sides = [minority, majority]
            self._announce(f"partition {minority}|{majority}")
            for a in minority:
                self.net.block(nodes[a], [nodes[b] for b in majority])
            for b in majority:
                self.net.block(nodes[b], [nodes[a] for a in minority])
            self._hold()
            detail: dict[str, Any] = {"sides": sides}
        elif variant == "oneway":
            src, dst = self.rng.sample(names, 2)
            self._announce(f"one-way partition {src}->{dst} dropped")
            self.net.block(nodes[dst], [nodes[src]], outgoing=False)
            self._hold()
            detail = {"dropped": f"{src}->{dst}"}
            names = [src, dst]
        else:
            peer = self._pick("leader" if variant == "leader" else "random")
            others = [n for n in names if n != peer.name]
            self._announce(f"partition: {peer.name} isolated ({variant})")
            flips = 0
            if variant == "flap":
                deadline = self.history.now() + self.rng.uniform(*self.hold_range) * 1.5
                while self.history.now() < deadline and not self.stop.is_set():
                    self._isolate(peer.name, others, nodes)
                    self.stop.wait(self.rng.uniform(0.2, 0.8))
                    self._heal_all()
                    self.stop.wait(self.rng.uniform(0.2, 0.8))
                    flips += 1
            else:
                self._isolate(peer.name, others, nodes)
                self._hold()
            detail = {"isolated": peer.name, "flips": flips} if variant == "flap" else {"isolated": peer.name}
            names = [peer.name]
        self._heal_all()
        return variant, names, detail

    def _isolate(self, name: str, others: list[str], nodes: dict[str, Any]) -> None:
        self.net.block(nodes[name], [nodes[o] for o in others])
        for o in others:
            self.net.block(nodes[o], [nodes[name]])

    def _heal_all(self) -> None:
        self.net.heal_all()

    def _netem(self) -> tuple[str, list[str], dict[str, Any]]:
        peer = self.rng.choice(self.cluster.peers)
        delay, loss = self.rng.choice([50, 100, 200]), self.rng.choice([5, 10, 20])
        self._announce(f"slow/lossy link on {peer.name}")
        detail = self.net.degrade(peer.node, delay, loss, self.rng)
        try:
            self._hold()
        finally:
            self.net.heal(peer.node)
        return "degrade", [peer.name], detail

    # -- disk ----------------------------------------------------------------------------------

    def _disk(self) -> tuple[str, list[str], dict[str, Any]]:
        peer = next((p for p in self.cluster.peers if p.tmpfs is not None), None)
        if peer is None or peer.tmpfs is None:
            raise RuntimeError("no peer has its storage on a tmpfs (campaign without disk_peer_mb)")
        self._announce(f"disk full on {peer.name}")
        filler = peer.tmpfs / ".chaos-fill"
        written = fill(filler)
        try:
            self._hold()
        finally:
            with contextlib.suppress(FileNotFoundError):
                filler.unlink()
        return "full", [peer.name], {"filled_bytes": written}


def fill(path: os.PathLike[str] | str) -> int:
    """Write to ``path`` until the file system is full; bytes written."""
    chunk = b"\0" * (1 << 20)
    written = 0
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                written += f.write(chunk) or 0
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(chunk) <= 4096:
                    return written
                chunk = chunk[: len(chunk) // 16]


def restart(peer: NsPeer, timeout: float = 60.0) -> None:
    """Start a peer the harness stopped and wait (bounded) until its consensus runs and knows a
    leader. Not ``/readyz``: that stays 503 while any of its replicas is not Active, which a
    replica left Dead by the faults may never be again."""
    with peer.lock:
        peer.spawn()
        peer.expected_down = False

    def back() -> bool:
        info = peer.info(timeout=1.0)
        return info is not None and info["raft_info"]["leader"] is not None

    with contextlib.suppress(AssertionError):
        wait_for(back, timeout, f"{peer.name} back in the cluster", every=0.2)


def heal_everything(cluster: NsCluster, on_restart: Callable[[NsPeer], None] | None = None) -> None:
    """End every fault: network rules and link faults gone, paused peers resumed, stopped peers
    restarted, filled disks freed."""
    if cluster.net is not None:
        cluster.net.heal_all()
    for peer in cluster.peers:
        peer.signal(signal.SIGCONT)
        peer.paused = False
        if peer.tmpfs is not None:
            with contextlib.suppress(FileNotFoundError):
                (peer.tmpfs / ".chaos-fill").unlink()
    for peer in cluster.peers:
        if not peer.alive():
            restart(peer)
            if on_restart is not None:
                on_restart(peer)
