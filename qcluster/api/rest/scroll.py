"""Scroll, count and facet endpoints (what they do: :mod:`qcluster.api.actions.points`)."""

from __future__ import annotations

from aiohttp import web

from qcluster.api.actions import points as actions
from qcluster.api.rest.app import TOC_KEY, ok, ok_built
from qcluster.api.rest.parse import body, limits
from qcluster.api.rest.render import record_json
from qcluster.collection import Collection
from qcluster.models.query import CountIn, FacetIn, ScrollIn


def _col(request: web.Request) -> Collection:
    return request.app[TOC_KEY].get(request.match_info["collection_name"])


def _timeout(request: web.Request) -> str | None:
    return request.query.get("timeout")


async def scroll(request: web.Request) -> web.Response:
    col = _col(request)
    res = await actions.scroll(
        col, await body(request, ScrollIn, required=False), limits(request), _timeout(request)
    )
    return await ok_built(
        request,
        lambda: {
            "points": [record_json(r, col) for r in res.points],
            "next_page_offset": res.next_page_offset,
        },
        len(res.points),
    )


async def count(request: web.Request) -> web.Response:
    col = _col(request)
    counted = await actions.count(col, await body(request, CountIn, required=False), _timeout(request))
    return ok(request, {"count": counted})


async def facet(request: web.Request) -> web.Response:
    col = _col(request)
    hits = await actions.facet(col, await body(request, FacetIn), _timeout(request))
    return ok(request, {"hits": [{"value": v, "count": c} for v, c in hits]})


def register(app: web.Application) -> None:
    r = app.router
    base = "/collections/{collection_name}/points"
    r.add_post(base + "/scroll", scroll)
    r.add_post(base + "/count", count)
    r.add_post("/collections/{collection_name}/facet", facet)
