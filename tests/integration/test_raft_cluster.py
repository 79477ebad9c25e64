"""In-process consensus peers (each with its own p2p gRPC server on 127.0.0.1) forming clusters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from qcluster.api.grpc.cluster import ClusterServicer
from qcluster.api.grpc.server import P2pServer
from qcluster.consensus import events as ev
from qcluster.consensus import operations as ops
from qcluster.consensus.identity import load_identity
from qcluster.consensus.placement import plan_placement
from qcluster.consensus.raft import RaftTuning
from qcluster.consensus.reactor import EventHandlers
from qcluster.consensus.service import ConsensusService
from qcluster.consensus.state import ClusterState
from qcluster.errors import BadInputError, NotFoundError, TransientError
from qcluster.testing.consensus_cluster import ConsensusCluster, ConsensusPeer, eventually


def create_op(peer: ConsensusPeer, name: str, rf: int = 2) -> ops.CreateCollection:
    state = peer.service.state
    return ops.create_collection(name, {"vectors": {"size": 4}}, plan_placement(state.peers, None, rf))


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[ConsensusCluster]:
    c = ConsensusCluster(tmp_path)
    yield c
    await c.close()


async def test_three_peers_replicate_fail_over_and_catch_up(cluster: ConsensusCluster) -> None:
    peers = await cluster.start(3)
    assert len({p.peer_id for p in peers}) == 3
    assert all(0 < p.peer_id <= 2**53 for p in peers)
    leader = await cluster.wait_leader()
    follower = next(p for p in peers if p is not leader)

    # proposed through a follower, applied everywhere; the follower reads its own write at once
    result = await follower.service.propose(create_op(follower, "c1"))
    assert isinstance(result.events[0], ev.CollectionCreated)
    assert "c1" in follower.service.state.collections
    await cluster.wait_converged()
    info = leader.service.cluster_info()
    assert info["raft_info"]["role"] == "Leader" and info["raft_info"]["leader"] == leader.peer_id
    assert set(info["peers"]) == {str(p.peer_id) for p in peers}

    # the leader goes away: the other two elect a new one within 3 s and accept writes again
    await leader.stop()
    survivors = cluster.running
    new_leader = await cluster.wait_leader(survivors, timeout=3.0)
    assert new_leader is not leader
    await survivors[0].service.propose(ops.delete_collection("c1"), timeout=5)
    await survivors[1].service.propose(create_op(survivors[1], "c2"), timeout=5)

    # the old leader restarts from its journal and catches up with what it missed
    await leader.start()
    await cluster.wait_converged()
    assert set(leader.service.state.collections) == {"c2"}
    assert leader.service.raft_info().role is not None


async def test_five_peers_elect_a_new_leader_and_converge(cluster: ConsensusCluster) -> None:
    peers = await cluster.start(5)
    leader = await cluster.wait_leader()
    await peers[-1].service.propose(create_op(peers[-1], "five", rf=3))
    await cluster.wait_converged()
    assert all(len(p.service.state.collections["five"].shards) == 5 for p in peers)
    await leader.stop()
    new_leader = await cluster.wait_leader(timeout=3.0)
    await new_leader.service.propose(ops.set_metadata("after", True), timeout=5)
    await cluster.wait_converged()
    assert all(p.service.state.metadata == {"after": True} for p in cluster.running)


async def test_proposal_without_quorum_fails_within_its_timeout(cluster: ConsensusCluster) -> None:
    peers = await cluster.start(3)
    leader = await cluster.wait_leader()
    for p in peers:
        if p is not leader:
            await p.stop()
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TransientError, match="quorum"):
        await leader.service.propose(ops.set_metadata("k", 1), timeout=3.0)
    assert loop.time() - started < 3.0 + 1.0  # bounded by its timeout, not hanging
    assert "k" not in leader.service.state.metadata


async def test_full_restart_keeps_committed_operations(cluster: ConsensusCluster) -> None:
    peers = await cluster.start(3)
    for i in range(5):
        await peers[i % 3].service.propose(ops.set_metadata(f"k{i}", i))
    await peers[0].service.propose(create_op(peers[0], "kept"))
    await cluster.wait_converged()
    before = peers[0].service.state.to_bytes()
    ids = [p.peer_id for p in peers]
    for p in peers:
        await p.stop()
    for p in peers:
        await p.start(bootstrap="http://127.0.0.1:1")  # ignored on restart
    await cluster.wait_leader()
    await cluster.wait_converged()
    assert [p.peer_id for p in peers] == ids
    assert ClusterState.from_bytes(before).collections.keys() == peers[1].service.state.collections.keys()
    assert peers[2].service.state.metadata == {f"k{i}": i for i in range(5)}


async def test_restart_on_a_new_uri_keeps_the_id_and_updates_the_uri(cluster: ConsensusCluster) -> None:
    peers = await cluster.start(3)
    leader = await cluster.wait_leader()
    moved = next(p for p in peers if p is not leader)
    old_id, old_uri = moved.peer_id, moved.uri
    await moved.stop()
    await moved.start(port=0)  # a new free port -> a new URI
    assert moved.peer_id == old_id and moved.uri != old_uri
    identity = load_identity(moved.storage / "raft")
    assert identity is not None and identity.peer_id == old_id and identity.uri == moved.uri
    await eventually(
        lambda: all(p.service.state.peers.get(old_id) == moved.uri for p in peers),
        10,
        "the new uri everywhere",
    )
    await leader.service.propose(ops.set_metadata("reach", "moved"))
    await cluster.wait_converged()
    assert moved.service.state.metadata == {"reach": "moved"}


async def test_lagging_peer_gets_a_snapshot_after_log_compaction(tmp_path: Path) -> None:
    cluster = ConsensusCluster(tmp_path, tuning=RaftTuning(log_compaction_min_entries=8))
    try:
        peers = await cluster.start(3)
        leader = await cluster.wait_leader()
        lagging = next(p for p in peers if p is not leader)
        await lagging.stop()
        for i in range(40):
            await leader.service.propose(ops.set_metadata(f"m{i}", i))
        await leader.service.propose(create_op(leader, "late"))
        assert (leader.storage / "raft" / "dump.bin").exists()
        await lagging.start()
        await cluster.wait_converged(timeout=15)
        assert lagging.service.state.metadata == {f"m{i}": i for i in range(40)}
        assert "late" in lagging.service.state.collections
        # and a restart from its own dump + journal gives the same state again
        await lagging.stop()
        await lagging.start()
        await cluster.wait_converged(timeout=15)
    finally:
        await cluster.close()


async def test_remove_peer(cluster: ConsensusCluster) -> None:
    peers = await cluster.start(3)
    leader = await cluster.wait_leader()
    holder, idle = (p for p in peers if p is not leader)
    await leader.service.propose(ops.create_collection("c", {}, {0: (holder.peer_id,)}))
    with pytest.raises(BadInputError, match="still holds replicas"):
        await leader.service.remove_peer(holder.peer_id)
    with pytest.raises(NotFoundError):
        await leader.service.remove_peer(12345)
    await idle.stop()
    await leader.service.remove_peer(idle.peer_id)
    await eventually(
        lambda: all(idle.peer_id not in p.service.state.peers for p in cluster.running),
        5,
        "peer removed from state",
    )
    assert idle.peer_id not in leader.service.raft_status().members
    # two members left, both up: writes still commit
    await holder.service.propose(ops.set_metadata("after-removal", 1), timeout=5)
    await leader.service.remove_peer(holder.peer_id, force=True)
    assert leader.service.state.collections["c"].shards[0].replicas == {}


async def test_removing_the_leader_hands_leadership_over_first(cluster: ConsensusCluster) -> None:
    peers = await cluster.start(3)
    leader = await cluster.wait_leader()
    asker, other = (p for p in peers if p is not leader)
    await asker.service.remove_peer(leader.peer_id, timeout=45)  # elections are slow on a loaded machine
    assert leader.peer_id not in asker.service.raft_status().members
    await eventually(
        lambda: (
            asker.service.raft_status().leader in (asker.peer_id, other.peer_id)
            and leader.peer_id not in asker.service.state.peers
        ),
        10,
        "a new leader among the remaining peers",
    )
    await other.service.propose(ops.set_metadata("after-leader-removal", 1), timeout=10)
    await eventually(
        lambda: asker.service.state.metadata.get("after-leader-removal") == 1, 5, "write applied on the asker"
    )


class Recorder(EventHandlers):
    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    async def on_collection_created(
        self, event: ev.CollectionCreated, state: ClusterState, index: int
    ) -> None:
        await asyncio.sleep(0)  # a listener may await I/O; order is kept anyway
        self.seen.append((event.name, index))

    async def on_collection_deleted(
        self, event: ev.CollectionDeleted, state: ClusterState, index: int
    ) -> None:
        self.seen.append(("-" + event.name, index))


async def test_listener_gets_events_in_log_order(cluster: ConsensusCluster) -> None:
    await cluster.start(1)
    recorder = Recorder()
    peer = cluster.new_peer(listener=recorder)
    await peer.start(bootstrap=cluster.peers[0].uri)
    for name in ("a", "b"):
        await cluster.peers[0].service.propose(create_op(cluster.peers[0], name, rf=1))
    await cluster.peers[0].service.propose(ops.delete_collection("a"))
    await eventually(lambda: len(recorder.seen) == 3, 5, "three collection events")
    assert [name for name, _ in recorder.seen] == ["a", "b", "-a"]
    assert [i for _, i in recorder.seen] == sorted(i for _, i in recorder.seen)


async def test_reinit_makes_a_survivor_the_sole_member_keeping_its_data(cluster: ConsensusCluster) -> None:
    peers = await cluster.start(3)
    survivor = peers[1]
    await survivor.service.propose(create_op(survivor, "kept", rf=3))
    await survivor.service.propose(ops.set_metadata("m", 1))
    await cluster.wait_converged()
    for p in peers:
        await p.stop()
    survivor.service = ConsensusService(cluster.settings, survivor.storage)
    assert survivor.server is not None
    survivor.server = P2pServer("127.0.0.1", survivor.port, cluster.settings.secret)
    ClusterServicer(survivor.service).register(survivor.server.grpc)
    await survivor.server.start()
    await survivor.service.start(p2p_port=survivor.port, uri=survivor.uri, reinit=True)
    survivor.running = True
    await cluster.wait_leader([survivor])
    state = survivor.service.state
    assert list(state.peers) == [survivor.peer_id]
    assert state.metadata == {"m": 1}
    assert {p for shard in state.collections["kept"].shards.values() for p in shard.replicas} == {
        survivor.peer_id
    }
    await survivor.service.propose(ops.set_metadata("after", 2))
    newcomer = cluster.new_peer()
    await newcomer.start(bootstrap=survivor.uri)
    await cluster.wait_converged()
    assert newcomer.service.state.metadata == {"m": 1, "after": 2}


async def test_waiting_for_peers_names_the_ones_that_do_not_confirm(cluster: ConsensusCluster) -> None:
    from qcluster.consensus.peer_calls import SyncTarget
    from qcluster.errors import TimeoutError_
    from qcluster.testing.server import free_port

    a, b = await cluster.start(2)
    result = await a.service.propose(ops.set_metadata("k", 1))
    # both peers confirm the applied index (b over the WaitApplied RPC)
    await a.service.wait_peers_synced(dict(a.service.state.peers), SyncTarget(result.index), 5.0, "k")
    assert b.service.is_synced(result.index)
    # an index nobody reached, and a peer that is not there: both named, within the timeout
    ghost = 4242
    peers = {b.peer_id: b.uri, ghost: f"http://127.0.0.1:{free_port()}"}
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError_) as info:
        await a.service.wait_peers_synced(peers, SyncTarget(result.index + 1000), 1.0, "the thing")
    assert loop.time() - started < 5.0
    message = info.value.message
    assert (
        "the thing was committed" in message and f"peer {ghost}" in message and f"peer {b.peer_id}" in message
    )
