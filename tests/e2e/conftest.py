from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from qcluster.testing.server import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(Path(tmp_path_factory.mktemp("peer"))).start()
    try:
        yield srv
    finally:
        srv.stop()
