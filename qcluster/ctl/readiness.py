"""``wait-ready``: the cluster is ready when it has a leader and every replica of every collection
is ``Active``. :func:`not_ready` says why not (pure); :func:`wait_ready` asks again until the
answer is empty or the deadline passes (tenacity), and returns the last reasons."""

from __future__ import annotations

from collections.abc import Callable

from tenacity import RetryCallState, Retrying, retry_if_result, stop_after_delay, wait_fixed

from qcluster.ctl.client import CtlError, RestClient
from qcluster.ctl.views import ClusterView, look

ACTIVE = "Active"


def not_ready(view: ClusterView) -> list[str]:
    reasons = []
    cluster = view.cluster
    if cluster.enabled and (cluster.raft_info is None or cluster.raft_info.leader is None):
        reasons.append("the cluster has no Raft leader")
    for r in view.replicas():
        if r.state != ACTIVE:
            reasons.append(f"collection {r.collection!r} shard {r.shard_id} on peer {r.peer_id} is {r.state}")
    for name, t in view.transfers():
        reasons.append(
            f"collection {name!r} shard {t.shard_id} is being transferred {t.from_peer} -> {t.to_peer}"
        )
    return reasons


def check(client: RestClient) -> list[str]:
    """Reasons the cluster is not ready now (an unreachable or failing server is one)."""
    try:
        return not_ready(look(client))
    except CtlError as exc:
        return [str(exc)]


def wait_ready(
    client: RestClient,
    timeout: float,
    interval: float = 0.5,
    on_attempt: Callable[[list[str]], None] | None = None,
) -> list[str]:
    """Poll until ready (returns ``[]``) or ``timeout`` seconds passed (returns the last reasons)."""

    def last_reasons(state: RetryCallState) -> list[str]:
        assert state.outcome is not None
        result: list[str] = state.outcome.result()
        return result

    def attempt() -> list[str]:
        reasons = check(client)
        if on_attempt is not None:
            on_attempt(reasons)
        return reasons

    retrying = Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(interval),
        retry=retry_if_result(bool),
        retry_error_callback=last_reasons,
    )
    result: list[str] = retrying(attempt)
    return result
