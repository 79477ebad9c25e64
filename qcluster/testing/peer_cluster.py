"""A cluster of real ``qcluster serve`` subprocesses on 127.0.0.1, started the way Qdrant's own
multi-peer harness starts peers (env ``QDRANT__CLUSTER__ENABLED``, ``QDRANT__CLUSTER__P2P__PORT``,
``QDRANT__SERVICE__GRPC_PORT``, ``QDRANT__SERVICE__HTTP_PORT``, ``QDRANT__LOG_LEVEL``; the first
peer with ``--uri``, the others with ``--bootstrap``; storage relative to each peer's directory).
For e2e tests and ``bench/consensus.py``. Waits are deadline-bounded polls.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qcluster.testing.server import ServerProcess, free_port


def rest(
    url: str,
    method: str,
    path: str,
    body: Any = None,
    timeout: float = 60.0,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One JSON request; (status, decoded body or text). Connection errors give (0, reason)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except OSError as exc:
        return 0, str(exc)
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def wait_for(cond: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    """Poll ``cond`` until it returns something truthy (returned) or raise after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"{what}: not reached within {timeout:g}s (last: {last!r})")


class ClusterPeer(ServerProcess):
    def __init__(self, workdir: Path, p2p_port: int, env: dict[str, str], args: list[str]) -> None:
        self.p2p_port = p2p_port
        super().__init__(workdir, env={**env, "QDRANT__CLUSTER__P2P__PORT": str(p2p_port)}, args=args)

    @property
    def p2p_uri(self) -> str:
        return f"http://127.0.0.1:{self.p2p_port}"

    def set_p2p_port(self, port: int) -> None:
        self.p2p_port = port
        self.extra_env["QDRANT__CLUSTER__P2P__PORT"] = str(port)

    def info(self, timeout: float = 5.0) -> dict[str, Any] | None:
        status, body = rest(self.url, "GET", "/cluster", timeout=timeout)
        return body["result"] if status == 200 else None

    def peer_id(self) -> int:
        info = wait_for(self.info, 30, "GET /cluster")
        return int(info["peer_id"])


class PeerCluster:
    def __init__(self, root: Path, secret: str | None = None, log_level: str = "WARNING") -> None:
        self.root = root
        self.peers: list[ClusterPeer] = []
        self.env = {
            "QDRANT__CLUSTER__ENABLED": "true",
            "QDRANT__LOG_LEVEL": log_level,
        }
        if secret is not None:
            self.env["QDRANT__CLUSTER__SECRET"] = secret

    def new_peer(self, bootstrap: ClusterPeer | None = None, own_uri: bool = True) -> ClusterPeer:
        """Create (not start) the next peer: the first one gets ``--uri``, the others
        ``--bootstrap`` (the given peer, else the first) and, with ``own_uri``, their own ``--uri``
        (without it the cluster infers the joining peer's address, as Qdrant does)."""
        p2p = free_port()
        env = dict(self.env)  # ServerProcess picks free HTTP and gRPC ports
        args = ["--uri", f"http://127.0.0.1:{p2p}"] if own_uri or not self.peers else []
        if self.peers:
            args += ["--bootstrap", (bootstrap or self.peers[0]).p2p_uri]
        peer = ClusterPeer(self.root / f"peer{len(self.peers)}", p2p, env, args)
        self.peers.append(peer)
        return peer

    def start(self, n: int, timeout: float = 60.0) -> list[ClusterPeer]:
        for _ in range(n):
            self.new_peer().start(timeout)
        self.wait_formed(self.peers)
        return self.peers

    def wait_formed(self, peers: list[ClusterPeer], timeout: float = 60.0) -> int:
        """Every peer lists all of ``peers`` and they agree on a leader; returns the leader id."""

        def formed() -> int | None:
            views = [p.info() for p in peers]
            if any(v is None for v in views):
                return None
            leaders = {v["raft_info"]["leader"] for v in views if v is not None}
            if len(leaders) != 1 or None in leaders:
                return None
            if any(len(v["peers"]) < len(peers) for v in views if v is not None):
                return None
            return int(leaders.pop())

        return int(wait_for(formed, timeout, f"{len(peers)} peers agreeing on a leader"))

    def agreed_leader(
        self, peers: list[ClusterPeer] | None = None, exclude: int | None = None, timeout: float = 30.0
    ) -> int:
        group = peers if peers is not None else self.running()

        def agreed() -> int | None:
            seen = set()
            for p in group:
                info = p.info(timeout=2)
                seen.add(info["raft_info"]["leader"] if info else None)
            if len(seen) == 1:
                (leader,) = seen
                if leader is not None and leader != exclude:
                    return int(leader)
            return None

        return int(wait_for(agreed, timeout, "an agreed leader"))

    def running(self) -> list[ClusterPeer]:
        return [p for p in self.peers if p.proc is not None and p.proc.poll() is None]

    def by_id(self, peer_id: int) -> ClusterPeer:
        for p in self.running():
            if p.peer_id() == peer_id:
                return p
        raise KeyError(peer_id)

    def stop(self) -> None:
        """Stop every peer (each one even when stopping another fails)."""
        errors = []
        for p in reversed(self.peers):
            try:
                p.stop()
            except Exception as exc:  # keep going: no peer may be left running
                errors.append(exc)
        if errors:
            raise errors[0]
