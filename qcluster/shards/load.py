"""A process-wide hint of how many client requests are in flight (maintained by the API edge).

Reads that are cheap run inline on the event loop when the peer is otherwise idle (a thread
hop costs ~0.1-0.2 ms here, as much as an HNSW search), and go to the search threads when
several requests are in flight, so both cores work.
"""

from __future__ import annotations

_inflight = 0


def enter() -> None:
    global _inflight
    _inflight += 1


def leave() -> None:
    global _inflight
    _inflight -= 1


def busy() -> bool:
    return _inflight > 1
