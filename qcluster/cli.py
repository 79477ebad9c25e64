"""Command line: ``qcluster [serve] [--uri ...] [--bootstrap ...] [--config-path ...] [--reinit]``."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qcluster", description=__doc__)
    parser.add_argument("command", nargs="?", default="serve", choices=["serve"])
    parser.add_argument("--config-path", default=None)
    parser.add_argument("--uri", default=None)
    parser.add_argument("--bootstrap", default=None)
    parser.add_argument("--reinit", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    print(f"qcluster {args.command}: not implemented yet", file=sys.stderr)
    return 2
