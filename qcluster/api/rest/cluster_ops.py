"""``POST /collections/{c}/cluster``: Qdrant's cluster operations on one collection, run by
:mod:`qcluster.api.actions.cluster_ops` (shared with gRPC ``UpdateCollectionClusterSetup``), and the
progress ``comment`` of the transfers ``GET /collections/{c}/cluster`` lists."""

from __future__ import annotations

import asyncio

from aiohttp import web

from qcluster.api.actions import cluster_ops as actions
from qcluster.api.rest.app import CONSENSUS_KEY, TOC_KEY, ok
from qcluster.api.rest.parse import body, limits, query_int
from qcluster.consensus.operations import TransferRef
from qcluster.errors import QClusterError

PROGRESS_TIMEOUT = 1.0


def _timeout(request: web.Request) -> float:
    value = query_int(request, "timeout", minimum=1)
    return float(value) if value is not None else 30.0


async def cluster_operation(request: web.Request) -> web.Response:
    req = await body(request, actions.ClusterOperationIn)
    consensus = request.app[CONSENSUS_KEY].get("service")
    name = request.match_info["collection_name"]
    await actions.apply(request.app[TOC_KEY], consensus, name, req, _timeout(request), limits(request))
    return ok(request, True)


# ------------------------------------------------------------------ progress on every peer
async def transfer_comments(request: web.Request, collection: str) -> dict[TransferRef, str]:
    """The progress comment of each transfer of ``collection``: from this peer's own driver for
    the ones it sends, asked of the source peer (1 s at most) for the others."""
    service = request.app[CONSENSUS_KEY].get("service")
    driver = request.app[CONSENSUS_KEY].get("transfers")
    if service is None or driver is None:
        return {}
    refs = [r for r in service.state.transfers if r.collection == collection]
    if not refs:
        return {}
    out = {p.ref: p.comment() for p in driver.progress_of(collection)}
    sources = {r.from_peer for r in refs if r not in out and r.from_peer != service.peer_id}
    if sources:
        from qcluster.transfer.progress_client import fetch_progress

        answers = await asyncio.gather(
            *(
                fetch_progress(service.pool, service.state.peers.get(p, ""), collection, PROGRESS_TIMEOUT)
                for p in sources
            ),
            return_exceptions=True,
        )
        for answer in answers:
            if isinstance(answer, dict):
                out.update(answer)
            elif not isinstance(answer, QClusterError | Exception):
                raise answer
    return out


def register(app: web.Application) -> None:
    app.router.add_post("/collections/{collection_name}/cluster", cluster_operation)
