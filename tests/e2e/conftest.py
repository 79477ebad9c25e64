"""One ``qcluster serve`` subprocess per test module (free ports, a temporary storage directory,
ready once ``/readyz`` answers 200), and a recorder that validates every JSON response the
module's tests receive against the reference OpenAPI spec; it must stay clean.

``client`` is qdrant-client over REST; a module that parametrizes ``transport`` (indirectly, at
module scope) runs its tests a second time with ``prefer_grpc=True`` against a peer of its own::

    pytestmark = pytest.mark.parametrize("transport", ["rest", "grpc"], indirect=True, scope="module")
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from qcluster.testing.server import ServerProcess

from .http import Api, recording_client
from .openapi_check import Recorder


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    yield rec
    rec.assert_clean()


@pytest.fixture(scope="module")
def transport(request: pytest.FixtureRequest) -> str:
    """How ``client`` talks to the peer: "rest" unless the module parametrizes it."""
    return str(getattr(request, "param", "rest"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, transport: str) -> Iterator[ServerProcess]:
    srv = ServerProcess(Path(tmp_path_factory.mktemp("peer"))).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def client(server: ServerProcess, recorder: Recorder, transport: str) -> Iterator[QdrantClient]:
    c = recording_client(server.url, recorder, grpc_port=server.grpc_port, prefer_grpc=transport == "grpc")
    yield c
    c.close()


@pytest.fixture(scope="module")
def api(server: ServerProcess, recorder: Recorder) -> Api:
    return Api(server.url, recorder)
