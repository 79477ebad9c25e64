"""Real ``qcluster serve`` peers, each in its own network namespace with the standard ports
(REST 6333, gRPC 6334, p2p 6335 on its own address), and the views of them the harness needs:
who is alive, who leads, what each peer's Raft reports.

A peer may keep its storage on a small tmpfs (``disk_mb``) so a fault can fill its disk.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

from chaos.netns import Network, Node
from qcluster.testing.peer_cluster import rest, wait_for
from qcluster.testing.server import ServerProcess

REST_PORT, GRPC_PORT, P2P_PORT = 6333, 6334, 6335
SECRET = "chaos-secret"


class NsPeer(ServerProcess):
    def __init__(self, name: str, node: Node, workdir: Path, args: list[str], log_level: str) -> None:
        env = {
            "QDRANT__CLUSTER__ENABLED": "true",
            "QDRANT__CLUSTER__SECRET": SECRET,
            "QDRANT__CLUSTER__P2P__PORT": str(P2P_PORT),
            "QDRANT__SERVICE__GRPC_PORT": str(GRPC_PORT),
            "QDRANT__LOG_LEVEL": log_level,
            "PYTHONFAULTHANDLER": "1",  # a fatal signal (SIGBUS, SIGSEGV) leaves its stacks in the log
        }
        super().__init__(workdir, env=env, port=REST_PORT, args=args, host=node.address,
                         prefix=["ip", "netns", "exec", node.ns])  # fmt: skip
        self.name = name
        self.node = node
        self.expected_down = False  # killed by the harness and not restarted yet
        self.paused = False
        self.tmpfs: Path | None = None
        self.lock = threading.Lock()  # one fault at a time touches the process

    @property
    def p2p_uri(self) -> str:
        return f"http://{self.node.address}:{P2P_PORT}"

    @property
    def storage(self) -> Path:
        return self.workdir / "storage"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def info(self, timeout: float = 2.0) -> dict[str, Any] | None:
        status, body = rest(self.url, "GET", "/cluster", timeout=timeout)
        return body["result"] if status == 200 and isinstance(body, dict) else None

    def mount_tmpfs(self, size_mb: int) -> None:
        self.storage.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(self.storage)], check=True
        )
        self.tmpfs = self.storage

    def unmount(self) -> None:
        if self.tmpfs is not None:
            subprocess.run(["umount", "-l", str(self.tmpfs)], check=False)
            self.tmpfs = None

    def signal(self, sig: signal.Signals) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)


class NsCluster:
    """``n`` peers on a fresh :class:`Network`: the first with ``--uri``, the others joining it."""

    def __init__(
        self, root: Path, n: int, log_level: str | None = None, disk_peer_mb: int | None = None
    ) -> None:
        self.root = root
        self.n = n
        # CHAOS_PEER_LOG_LEVEL=INFO keeps the peers' transfer and recovery steps in their logs
        self.log_level = log_level or os.environ.get("CHAOS_PEER_LOG_LEVEL", "WARNING")
        self.disk_peer_mb = disk_peer_mb
        self.net: Network | None = None
        self.peers: list[NsPeer] = []

    def start(self, timeout: float = 90.0) -> list[NsPeer]:
        self.net = Network.create(self.n)
        first = self.net.nodes[0]
        for node in self.net.nodes:
            name = f"p{node.index}"
            args = ["--uri", f"http://{node.address}:{P2P_PORT}"]
            if node.index > 0:
                args += ["--bootstrap", f"http://{first.address}:{P2P_PORT}"]
            peer = NsPeer(name, node, self.root / name, args, self.log_level)
            if self.disk_peer_mb is not None and node.index == self.n - 1:
                peer.mount_tmpfs(self.disk_peer_mb)
            self.peers.append(peer)
            peer.start(timeout)
            peer.args = []  # restarts come back from storage
        self.wait_formed(timeout)
        return self.peers

    def live(self) -> list[NsPeer]:
        return [p for p in self.peers if p.alive()]

    def views(self, peers: list[NsPeer] | None = None) -> dict[str, dict[str, Any] | None]:
        return {p.name: p.info() for p in (peers if peers is not None else self.peers)}

    def agreed_leader(self) -> int | None:
        """The leader every reachable live peer names, when they agree and all peers are listed."""
        views = [v for v in self.views(self.live()).values()]
        if not views or any(v is None for v in views):
            return None
        leaders = {v["raft_info"]["leader"] for v in views if v is not None}
        if len(leaders) != 1 or None in leaders:
            return None
        return int(leaders.pop())

    def wait_formed(self, timeout: float = 60.0) -> int:
        def formed() -> int | None:
            views = list(self.views().values())
            if any(v is None or len(v["peers"]) < self.n for v in views):
                return None
            return self.agreed_leader()

        return int(wait_for(formed, timeout, f"{self.n} peers agreeing on a leader", every=0.2))

    def by_peer_id(self, peer_id: int) -> NsPeer | None:
        for p in self.live():
            info = p.info()
            if info is not None and int(info["peer_id"]) == peer_id:
                return p
        return None

    def stop(self) -> None:
        """Stop every peer, then unmount and remove the network (each step even if one fails)."""
        for p in self.peers:
            p.signal(signal.SIGCONT)  # a paused peer cannot handle SIGTERM
            with contextlib.suppress(Exception):
                p.stop(timeout=10)
            p.kill9()
        for p in self.peers:
            p.unmount()
        if self.net is not None:
            self.net.close()
            self.net = None
