"""In-process consensus peers for tests: each with its own p2p gRPC server on 127.0.0.1.

::

    cluster = ConsensusCluster(tmp_path)
    a, b, c = await cluster.start(3)             # a is the first peer, b and c join through it
    leader = await cluster.wait_leader()
    await b.service.propose(ops.create_collection(...))
    await cluster.wait_converged()               # every running peer holds the same state
    await cluster.close()

Everything polls a condition against a deadline (:func:`eventually`); nothing sleeps to sync.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from qcluster.api.grpc.cluster import ClusterServicer
from qcluster.api.grpc.server import P2pServer
from qcluster.consensus.raft import RaftTuning
from qcluster.consensus.reactor import ConsensusListener
from qcluster.consensus.service import ConsensusService
from qcluster.p2p.channels import make_uri
from qcluster.settings import ClusterSettings

DEFAULT_SECRET = "test-cluster-secret"


async def eventually(
    condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.02
) -> None:
    """Poll ``condition`` until it holds; AssertionError naming ``what`` after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(interval)


@dataclass
class ConsensusPeer:
    name: str
    storage: Path
    settings: ClusterSettings
    tuning: RaftTuning | None
    listener: ConsensusListener | None = None
    port: int = 0
    server: P2pServer | None = None
    service: ConsensusService = field(init=False)
    running: bool = False

    @property
    def uri(self) -> str:
        return make_uri("127.0.0.1", self.port)

    @property
    def peer_id(self) -> int:
        return self.service.peer_id

    async def start(
        self, bootstrap: str | None = None, port: int | None = None, timeout: float = 20.0
    ) -> None:
        """Serve p2p (on ``port``, the previous port, or a free one) and start consensus."""
        if port is not None:
            self.port = port
        self.service = ConsensusService(
            self.settings, self.storage, tuning=self.tuning, listener=self.listener
        )
        self.server = P2pServer("127.0.0.1", self.port, self.settings.secret)
        ClusterServicer(self.service).register(self.server.grpc)
        self.port = await self.server.start()
        try:
            await self.service.start(p2p_port=self.port, uri=self.uri, bootstrap=bootstrap, timeout=timeout)
        except BaseException:
            await self.service.stop()
            await self.server.stop(0)
            raise
        self.running = True

    async def stop(self) -> None:
        """Close the port first (peers see the connection drop, as with a crash), then stop Raft."""
        if not self.running:
            return
        self.running = False
        assert self.server is not None
        await self.server.stop(0)
        await self.service.stop()


class ConsensusCluster:
    def __init__(
        self, root: Path, secret: str | None = DEFAULT_SECRET, tuning: RaftTuning | None = None
    ) -> None:
        self.root = root
        self.settings = ClusterSettings(enabled=True, secret=secret, allow_insecure_p2p=secret is None)
        self.tuning = tuning
        self.peers: list[ConsensusPeer] = []

    def new_peer(self, listener: ConsensusListener | None = None) -> ConsensusPeer:
        name = f"peer{len(self.peers)}"
        peer = ConsensusPeer(name, self.root / name, self.settings, self.tuning, listener)
        self.peers.append(peer)
        return peer

    async def start(self, n: int) -> list[ConsensusPeer]:
        first = self.new_peer()
        await first.start()
        await self.wait_leader([first])
        await eventually(lambda: first.peer_id in first.service.state.peers, 10, "the first peer to register")
        joined = [first]
        for _ in range(n - 1):
            peer = self.new_peer()
            await peer.start(bootstrap=joined[-1].uri)  # through a follower too: joins are forwarded
            joined.append(peer)
        await self.wait_converged()
        return joined

    @property
    def running(self) -> list[ConsensusPeer]:
        return [p for p in self.peers if p.running]

    def leader_of(self, peers: list[ConsensusPeer]) -> ConsensusPeer | None:
        """The peer every one of ``peers`` names as leader, if they agree on one of them."""
        leaders = {p.service.raft_status().leader for p in peers}
        if len(leaders) != 1:
            return None
        leader_id = leaders.pop()
        return next((p for p in peers if p.peer_id == leader_id), None)

    async def wait_leader(
        self, peers: list[ConsensusPeer] | None = None, timeout: float = 10.0
    ) -> ConsensusPeer:
        group = peers if peers is not None else self.running
        await eventually(lambda: self.leader_of(group) is not None, timeout, "an agreed leader")
        leader = self.leader_of(group)
        assert leader is not None
        return leader

    def converged(self) -> bool:
        peers = self.running
        if not peers or not all(p.service.is_caught_up() for p in peers):
            return False
        first = peers[0].service.state.to_bytes()
        return all(p.service.state.to_bytes() == first for p in peers[1:])

    async def wait_converged(self, timeout: float = 10.0) -> None:
        await eventually(self.converged, timeout, "every running peer to hold the same state")

    async def close(self) -> None:
        for peer in reversed(self.peers):
            await peer.stop()
