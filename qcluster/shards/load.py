"""A process-wide hint of how many client requests are in flight (maintained by the API edge).

Reads that are cheap run inline on the event loop when the peer is otherwise idle (a thread
hop costs ~0.1-0.2 ms here, as much as an HNSW search), and go to the search threads when
several requests are in flight, so both cores work.
"""

from __future__ import annotations

import asyncio

_inflight = 0


def enter() -> None:
    global _inflight
    _inflight += 1


async def arrive() -> None:
    """``enter``, then one loop turn, so the requests that arrived with this one are counted too
    before any of them decides where to search: a handler that searches inline never yields, so
    without this turn each request of a burst would find itself alone and every search would run
    on the loop, one at a time, leaving the other core idle."""
    enter()
    await asyncio.sleep(0)


def leave() -> None:
    global _inflight
    _inflight -= 1


def busy() -> bool:
    return _inflight > 1
