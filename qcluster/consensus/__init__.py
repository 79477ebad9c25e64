"""Raft and the agreed cluster state: pure ``ClusterState.apply`` over typed operations, placement,
the proposer, membership, the pysyncobj wrapper and its transport on the p2p port; see
docs/architecture.md."""
