"""Which replica states take part in what: written by coordinators, fed by a transfer's source,
counted for acknowledgements (and trusted as holding the shard's data), read."""

from __future__ import annotations

from qcluster.types import ReplicaState

# A Partial replica (the target of a transfer) is not written by coordinators: the transfer's
# source feeds it, in the source's order (see qcluster/transfer/proxy.py).
UPDATABLE = frozenset(
    {
        ReplicaState.ACTIVE,
        ReplicaState.INITIALIZING,
        ReplicaState.LISTENER,
        ReplicaState.RESHARDING,
    }
)
# Transfer targets: coordinators rely on the transfer's source to forward writes to them.
FED = frozenset({ReplicaState.PARTIAL})
# Replicas that count for write_consistency_factor and can be the source of truth.
COUNTED = frozenset({ReplicaState.ACTIVE, ReplicaState.INITIALIZING})
READABLE = frozenset({ReplicaState.ACTIVE})
