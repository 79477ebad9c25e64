"""The source replica's forward proxy during a transfer.

While the target is filled and caught up, writes to the source replica are only recorded in its
WAL (which the transfer pins and replays). The catch-up ends under the proxy's lock: it sends the
last WAL records, then turns forwarding on, so from then on every write is applied here and then
sent to the target *in the same order*, each with its clock tag. Writes hold the lock while they
are forwarded (the one place a lock is held across a remote call: it is what keeps the target's
order equal to the source's).

A failed forward does not by itself fail the client's write (the source and the other replicas
have it), but the target must not stay a replica that lacks an acknowledged write: before the
write is acknowledged, the target is marked ``Dead`` through consensus (``fence``), which also
stops the transfer from finishing (a finish needs a ``Partial`` target) or, when the finish is
already agreed but this peer has not applied it yet, takes the new ``Active`` replica out until
it is recovered. When that cannot be agreed (this peer is cut off), the write fails instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from qcluster.errors import QClusterError
from qcluster.shards.base import ShardOperation, UpdateResult
from qcluster.shards.clock import ClockTag
from qcluster.shards.operations import UpdateOperation
from qcluster.shards.remote_shard import RemoteShard


class ForwardProxy:
    def __init__(
        self,
        local: ShardOperation,
        target: RemoteShard,
        fence: Callable[[QClusterError], Awaitable[None]],
    ):
        self.local = local
        self.target = target
        self.lock = asyncio.Lock()
        self.forwarding = False
        self.failure: QClusterError | None = None
        self._fence = fence

    async def update(
        self, op: UpdateOperation, wait: bool = True, tag: ClockTag | None = None
    ) -> UpdateResult:
        async with self.lock:
            result = await self.local.update(op, wait, tag)
            if self.forwarding and self.failure is None:
                try:
                    await self.target.update(op, True, tag, forwarded=True)
                except QClusterError as exc:
                    self.failure = exc
                    await self._fence(exc)  # raises when the target cannot be marked Dead
            return result
