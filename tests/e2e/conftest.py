"""One ``qcluster serve`` subprocess per test module (free ports, a temporary storage directory,
ready once ``/readyz`` answers 200), and a recorder that validates every JSON response the
module's tests receive against the reference OpenAPI spec; it must stay clean."""

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
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(Path(tmp_path_factory.mktemp("peer"))).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def client(server: ServerProcess, recorder: Recorder) -> Iterator[QdrantClient]:
    c = recording_client(server.url, recorder)
    yield c
    c.close()


@pytest.fixture(scope="module")
def api(server: ServerProcess, recorder: Recorder) -> Api:
    return Api(server.url, recorder)
