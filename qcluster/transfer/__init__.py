"""Shard transfers between peers (to come: driver, record streaming, snapshots, WAL delta); see
docs/architecture.md."""
