"""Propose an operation and wait until this peer has applied it.

``propose(op, timeout)`` steps::

    encode (size check) ─▶ wait for a quorum (short grace, then TransientError)
        ─▶ submit to pysyncobj (it forwards to the leader over the Raft transport)
        ─▶ wait for: this peer applies op.request_id ──────────────▶ result (events)
                     pysyncobj says "failed / outcome unknown" ───▶ resubmit, same request id
                     no answer for RESUBMIT_AFTER ────────────────▶ resubmit, same request id
        ─▶ deadline passes ───────────────────────────────────────▶ TimeoutError_

Resubmitting is safe because the state ignores a request id it has applied (bounded dedup
table), so an ambiguous outcome is always resolved by trying again. The result comes from this
peer's own apply, so a caller on a follower reads its own write afterwards. An operation the
state rejected (``OpRejected``) raises the matching error (not found, already exists, bad input).

Cancellation: cancelling ``propose`` stops waiting; an already submitted operation may still be
applied later (exactly once).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from qcluster.consensus import events as ev
from qcluster.consensus.info import RaftStatus
from qcluster.consensus.op_codec import encode_op
from qcluster.consensus.operations import Op
from qcluster.consensus.raft import FAIL_NAMES, QUEUE_FULL, SUCCESS
from qcluster.errors import (
    AlreadyExistsError,
    BadInputError,
    CancelledError,
    NotFoundError,
    TimeoutError_,
    TransientError,
)
from qcluster.logging import get_logger

log = get_logger(__name__)

DEFAULT_TIMEOUT = 10.0  # seconds a consensus operation may take unless its caller says otherwise
MAX_OP_BYTES = 1024 * 1024
RESUBMIT_AFTER = 1.0
RETRY_DELAY = 0.05
QUORUM_GRACE = 1.0

Submit = Callable[[bytes, Callable[[Any, int], None]], None]


@dataclass(frozen=True, slots=True)
class ProposalResult:
    index: int  # the Raft log index the operation was applied at (0: found in a snapshot)
    events: tuple[ev.Event, ...]

    @property
    def stale(self) -> bool:
        """True when a replica change met a different state than it expected (a no-op)."""
        return any(isinstance(e, ev.ReplicaStateStale) for e in self.events)

    @property
    def refused(self) -> bool:
        """True when a replica change made for a write found none of the write's holders taking
        writes any more (the write must fail)."""
        return any(isinstance(e, ev.ReplicaChangeRefused) for e in self.events)


def raise_for_rejection(events: tuple[ev.Event, ...]) -> None:
    for e in events:
        if isinstance(e, ev.OpRejected):
            if e.code == "not_found":
                raise NotFoundError(e.message)
            if e.code == "already_exists":
                raise AlreadyExistsError(e.message)
            raise BadInputError(e.message)


class Proposer:
    def __init__(
        self, loop: asyncio.AbstractEventLoop, submit: Submit, status: Callable[[], RaftStatus]
    ) -> None:
        self._loop = loop
        self._submit = submit
        self._status = status
        self._waiters: dict[str, asyncio.Future[ProposalResult]] = {}
        self._closed = False

    @property
    def pending(self) -> int:
        return len(self._waiters)

    # ------------------------------------------------------------------ called by the apply path

    def on_applied(self, request_id: str, index: int, events: list[ev.Event]) -> None:
        fut = self._waiters.get(request_id)
        if fut is not None and not fut.done():
            fut.set_result(ProposalResult(index, tuple(events)))

    def on_reset(self, applied_requests: Any) -> None:
        """After a snapshot: every waiter whose request id the snapshot contains is done."""
        for rid, fut in self._waiters.items():
            if rid in applied_requests and not fut.done():
                fut.set_result(ProposalResult(0, (ev.DuplicateOp(rid),)))

    def close(self) -> None:
        self._closed = True
        for fut in self._waiters.values():
            if not fut.done():
                fut.set_exception(CancelledError("consensus is shutting down"))

    # ------------------------------------------------------------------ propose

    async def propose(self, op: Op, timeout: float) -> ProposalResult:
        data = encode_op(op)
        if len(data) > MAX_OP_BYTES:
            raise BadInputError(f"operation is {len(data)} bytes; the limit is {MAX_OP_BYTES}", "op")
        if self._closed:
            raise CancelledError("consensus is shutting down")
        deadline = self._loop.time() + timeout
        fut = self._waiters.get(op.request_id)
        owner = fut is None
        if fut is None:
            fut = self._waiters[op.request_id] = self._loop.create_future()
        try:
            result = await self._drive(op, data, fut, deadline, timeout)
        finally:
            if owner and self._waiters.get(op.request_id) is fut:
                del self._waiters[op.request_id]
        raise_for_rejection(result.events)
        return result

    async def _drive(
        self, op: Op, data: bytes, fut: asyncio.Future[ProposalResult], deadline: float, timeout: float
    ) -> ProposalResult:
        attempts = 0
        last_error = "no answer yet"
        while not fut.done():
            await self._wait_quorum(fut, deadline)
            if fut.done():
                break
            attempts += 1
            answer: asyncio.Future[int] = self._loop.create_future()
            self._submit(data, self._answer_callback(answer))
            remaining = deadline - self._loop.time()
            waitables: set[asyncio.Future[Any]] = {fut, answer}
            done, _ = await asyncio.wait(waitables, timeout=min(RESUBMIT_AFTER, max(remaining, 0.0)))
            if fut in done:
                break
            if answer.done():
                code = answer.result()
                if code == SUCCESS:
                    # Applied on the raft thread; the loop-side apply is queued just before this
                    # answer, so the waiter resolves at once.
                    await asyncio.wait({fut}, timeout=max(deadline - self._loop.time(), 0.0))
                    continue
                if code == QUEUE_FULL:
                    raise TransientError("consensus command queue is full; retry later")
                last_error = FAIL_NAMES.get(code, f"failure {code}")
            else:
                answer.cancel()
                last_error = "no answer from the leader"
            if self._loop.time() >= deadline:
                break
            log.debug("proposal retried", kind=op.KIND, request_id=op.request_id, reason=last_error)
            await asyncio.wait({fut}, timeout=min(RETRY_DELAY, max(deadline - self._loop.time(), 0.0)))
        if fut.done():
            return fut.result()
        st = self._status()
        raise TimeoutError_(
            f"consensus operation {op.KIND} was not applied within {timeout:g}s "
            f"({attempts} attempts, last: {last_error}; leader: {st.leader}, term {st.term}, "
            f"quorum: {'yes' if st.has_quorum else 'no'})"
        )

    async def _wait_quorum(self, fut: asyncio.Future[ProposalResult], deadline: float) -> None:
        """Return when a quorum is visible; raise TransientError when none appears shortly."""
        give_up = min(deadline, self._loop.time() + QUORUM_GRACE)
        while not self._status().has_quorum:
            if fut.done():
                return
            if self._loop.time() >= give_up:
                st = self._status()
                reachable = len(st.connected) + 1
                voters = len(st.members) + 1
                raise TransientError(
                    f"no quorum: {reachable} of {voters} raft members reachable "
                    f"(need {voters // 2 + 1}); metadata operations are unavailable"
                )
            await asyncio.wait({fut}, timeout=RETRY_DELAY)

    def _answer_callback(self, answer: asyncio.Future[int]) -> Callable[[Any, int], None]:
        loop = self._loop

        def settle(code: int) -> None:
            if not answer.done():
                answer.set_result(code)

        def callback(result: Any, error: int) -> None:  # raft thread
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, int(error))

        return callback
