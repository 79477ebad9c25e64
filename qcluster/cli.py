"""Command line: ``qcluster [serve] [--uri URI] [--bootstrap URI] [--config-path FILE] [--reinit]``.

With no subcommand it serves, so it can stand in wherever the ``qdrant`` binary is started. Other
subcommands: ``ctl`` (operate a running cluster over REST, :mod:`qcluster.ctl`), ``probe`` (a
container health check, :mod:`qcluster.probe`), ``k8s-entrypoint`` (serve as a StatefulSet pod,
:mod:`qcluster.k8s`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import sys
import warnings

from qcluster.logging import get_logger, setup_logging
from qcluster.settings import load_settings

# Subcommands that are not the server: name -> module with ``main(argv) -> int``.
TOOLS = {"ctl": "qcluster.ctl.cli", "probe": "qcluster.probe", "k8s-entrypoint": "qcluster.k8s"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qcluster", description="qcluster: a vector database speaking Qdrant's API"
    )
    parser.add_argument("command", nargs="?", default="serve", choices=["serve"])
    parser.add_argument("--config-path", default=None, help="YAML config file (Qdrant's config.yaml layout)")
    parser.add_argument("--uri", default=None, help="this peer's p2p URI, e.g. http://host:6335")
    parser.add_argument("--bootstrap", default=None, help="p2p URI of a peer of the cluster to join")
    parser.add_argument(
        "--reinit", action="store_true", help="make this peer the sole voter of a new cluster"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in TOOLS:
        module = importlib.import_module(TOOLS[argv[0]])
        return int(module.main(argv[1:]))
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        settings = load_settings(args.config_path)
    setup_logging(settings.log_level)
    log = get_logger("qcluster.cli")
    for w in caught:
        log.warning(str(w.message))
    from qcluster.node import ClusterArgs, Node

    cluster_args = ClusterArgs(uri=args.uri, bootstrap=args.bootstrap, reinit=args.reinit)
    if (args.uri or args.reinit) and not settings.cluster.enabled and not args.bootstrap:
        log.warning("--uri/--reinit act in cluster mode only (cluster.enabled: true)")
    from qcluster.errors import QClusterError

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(Node(settings, cluster_args).run())
    except QClusterError as exc:  # a configuration the peer cannot start with: say why, no traceback
        name = getattr(exc, "field", None)
        field = f" ({name})" if name else ""
        log.error(f"cannot start: {exc.message}{field}")
        return 2
    return 0
