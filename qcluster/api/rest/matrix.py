"""``/points/search/matrix/pairs`` and ``/points/search/matrix/offsets``: the distance matrix of a
sample of points (``api/actions/query.py``), in Qdrant's two response shapes."""

from __future__ import annotations

import numpy as np
from aiohttp import web

from qcluster.api.actions import query as actions
from qcluster.api.rest.app import TOC_KEY, ok
from qcluster.api.rest.parse import body
from qcluster.collection.query.matrix import Matrix
from qcluster.models.query import SearchMatrixIn


async def _matrix(request: web.Request) -> Matrix:
    col = request.app[TOC_KEY].get(request.match_info["collection_name"])
    req = await body(request, SearchMatrixIn, required=False)
    return await actions.matrix(col, req, request.query.get("timeout"))


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
