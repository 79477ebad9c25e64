"""``/points/search/matrix/pairs`` and ``/points/search/matrix/offsets``: the distance matrix of a
sample of points (``collection/query/matrix.py``), in Qdrant's two response shapes."""

from __future__ import annotations

import numpy as np
from aiohttp import web

from qcluster.api.rest.app import TOC_KEY, ok
from qcluster.api.rest.parse import body
from qcluster.collection.query.matrix import Matrix, search_matrix
from qcluster.collection.strict import StrictMode, conditions
from qcluster.models.query import SearchMatrixIn


async def _matrix(request: web.Request) -> Matrix:
    col = request.app[TOC_KEY].get(request.match_info["collection_name"])
    req = await body(request, SearchMatrixIn, required=False)
    sm = StrictMode(col)
    if sm.on:
        sm.timeout(request.query.get("timeout"))
        sm.query_limit((req.sample or 10) * (req.limit or 3))
        await sm.filter(req.filter, write=False)
        sm.read_cost(1 + len(conditions(req.filter)))
    return await search_matrix(col, flt=req.filter, sample=req.sample, limit=req.limit, using=req.using)


async def pairs(request: web.Request) -> web.Response:
    m = await _matrix(request)
    return ok(
        request,
        {"pairs": [{"a": m.ids[r], "b": m.ids[c], "score": np.float32(s)} for r, c, s in m.entries]},
    )


async def offsets(request: web.Request) -> web.Response:
    m = await _matrix(request)
    return ok(
        request,
        {
            "offsets_row": [r for r, _, _ in m.entries],
            "offsets_col": [c for _, c, _ in m.entries],
            "scores": np.array([s for _, _, s in m.entries], dtype=np.float32),
            "ids": m.ids,
        },
    )


def register(app: web.Application) -> None:
    base = "/collections/{collection_name}/points/search/matrix"
    app.router.add_post(base + "/pairs", pairs)
    app.router.add_post(base + "/offsets", offsets)
