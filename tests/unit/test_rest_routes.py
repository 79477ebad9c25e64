"""The REST route table: no two routes answer the same method and path (so the order routes are
added in only decides how fast aiohttp finds one), and the hot routes are found first."""

from __future__ import annotations

import itertools
import re

from qcluster.api.rest.app import create_app
from qcluster.settings import Settings

PARAM = re.compile(r"\{[^}/]+\}")


def _routes() -> list[tuple[str, str]]:
    app = create_app(None, Settings())  # type: ignore[arg-type]  # routes only: no handler runs
    return [(r.method, r.resource.canonical) for r in app.router.routes() if r.resource is not None]


def _pattern(canonical: str) -> re.Pattern[str]:
    parts = PARAM.split(canonical)
    return re.compile("[^/]+".join(re.escape(p) for p in parts))


def test_no_two_routes_answer_the_same_request() -> None:
    routes = _routes()
    assert len(routes) > 50
    patterns = [(m, c, _pattern(c)) for m, c in routes]
    # every literal segment of any route, as the value of every parameter: e.g. a point id
    # "query" must not make POST .../points/{id} and POST .../points/query both match
    words = [*sorted({w for _, c in routes for w in c.split("/") if w and not PARAM.fullmatch(w)}), "x"]
    clashes = set()
    for method, canonical in routes:
        params = PARAM.findall(canonical)
        for values in itertools.product(words, repeat=min(len(params), 2)):
            path = canonical
            for p, v in zip(params, [*values, *["x"] * len(params)], strict=False):
                path = path.replace(p, v, 1)
            hits = [c for m, c, rx in patterns if m == method and rx.fullmatch(path)]
            if len(hits) > 1:
                clashes.add((method, path, tuple(hits)))
    assert not clashes, sorted(clashes)[:5]


def test_search_routes_are_tried_first() -> None:
    under = [(m, c) for m, c in _routes() if c.startswith("/collections/")]
    first = under[:12]
    for hot in ("/points/query", "/points/search", "/points/query/batch"):
        assert ("POST", "/collections/{collection_name}" + hot) in first, first
