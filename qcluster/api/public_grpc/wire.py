"""Qdrant's public gRPC wire contract: the generated modules qdrant-client ships
(``qdrant_client/grpc``: messages and servicer base classes), loaded without running
``qdrant_client/__init__``.

Importing ``qdrant_client.grpc`` the usual way runs the package's ``__init__`` first, which imports
the whole client (hundreds of pydantic models): 1-3 s of CPU at every peer start, for nothing the
server uses. So the generated modules are loaded from that same directory as one package under
this module's name (``importlib``: a package whose ``__path__`` is the directory; the generated
files import each other relatively). The message classes are the very ones ``qdrant_client.grpc``
has (upb keeps one class per descriptor, and both load the same descriptors), so the two mix freely
in one process, as tests and benchmarks do. Static types come from qdrant-client's stubs.

    from qcluster.api.public_grpc.wire import pb                 # messages and enums
    from qcluster.api.public_grpc.wire import points_service_pb2_grpc   # a servicer base
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

PACKAGE = f"{__name__}.generated"


def _load() -> ModuleType:
    loaded = sys.modules.get(PACKAGE)
    if loaded is not None:
        return loaded
    client = importlib.util.find_spec("qdrant_client")  # locates the package, runs nothing
    if client is None or client.origin is None:
        raise ImportError("qdrant-client is not installed: its generated gRPC modules are the wire contract")
    folder = Path(client.origin).parent / "grpc"
    spec = importlib.util.spec_from_file_location(
        PACKAGE, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load qdrant-client's generated gRPC modules from {folder}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[PACKAGE]
        raise
    return module


if TYPE_CHECKING:
    from qdrant_client import grpc as pb
    from qdrant_client.grpc import (
        collections_service_pb2_grpc,
        points_service_pb2_grpc,
        qdrant_pb2_grpc,
        snapshots_service_pb2_grpc,
    )
else:
    pb = _load()
    collections_service_pb2_grpc = sys.modules[f"{PACKAGE}.collections_service_pb2_grpc"]
    points_service_pb2_grpc = sys.modules[f"{PACKAGE}.points_service_pb2_grpc"]
    qdrant_pb2_grpc = sys.modules[f"{PACKAGE}.qdrant_pb2_grpc"]
    snapshots_service_pb2_grpc = sys.modules[f"{PACKAGE}.snapshots_service_pb2_grpc"]

__all__ = [
    "collections_service_pb2_grpc",
    "pb",
    "points_service_pb2_grpc",
    "qdrant_pb2_grpc",
    "snapshots_service_pb2_grpc",
]
