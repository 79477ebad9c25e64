"""``qcluster ctl [--url URL] [--api-key KEY] [--timeout S] COMMAND [--json] ...``

Commands: ``status``, ``wait-ready``, ``transfers``, ``move``, ``replicate``, ``drop``, ``abort``,
``drain``. ``--url`` defaults to ``$QCLUSTER_URL`` or http://localhost:6333, ``--api-key`` to
``$QCLUSTER_API_KEY``. Exit status: 0 done, 1 the server refused or the cluster did not get ready,
2 bad usage. Errors are the server's own words, on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import asdict
from typing import Any

import orjson
from rich.console import Console
from rich.progress import TaskID

from qcluster.ctl import readiness, render, shard_ops
from qcluster.ctl.client import CtlError, RestClient
from qcluster.ctl.comment import parse_comment
from qcluster.ctl.views import ShardTransfer, look

DEFAULT_URL = "http://localhost:6333"


def _print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n")


def _fail(console: Console, message: str) -> int:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return 1


class Ctl:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.client = RestClient(args.url, args.api_key, args.timeout)
        self.out = Console(highlight=False)
        self.err = Console(stderr=True, highlight=False)

    # -------------------------------------------------------------------------- reading
    def status(self) -> int:
        view = look(self.client)
        if self.args.json:
            _print_json(view.to_json())
        else:
            self.out.print(render.status_tree(view))
        return 0

    def wait_ready(self) -> int:
        started = time.monotonic()
        status = None if self.args.json else self.err.status("waiting for the cluster to be ready")

        def show(reasons: list[str]) -> None:
            if status is not None and reasons:
                status.update(f"waiting ({time.monotonic() - started:.0f}s): {reasons[0]}")

        if status is not None:
            status.start()
        try:
            reasons = readiness.wait_ready(self.client, self.args.wait_timeout, self.args.interval, show)
        finally:
            if status is not None:
                status.stop()
        elapsed = round(time.monotonic() - started, 2)
        if self.args.json:
            _print_json({"ready": not reasons, "reasons": reasons, "seconds": elapsed})
        elif not reasons:
            self.out.print(f"ready after {elapsed:g}s: every replica is Active")
        else:
            self.err.print(f"[bold red]not ready[/] after {self.args.wait_timeout:g}s:")
            for reason in reasons:
                self.err.print(f"  - {reason}", highlight=False, soft_wrap=True)
        return 0 if not reasons else 1

    def transfers(self) -> int:
        view = look(self.client)
        listed = list(view.transfers())
        if self.args.json:
            _print_json(
                [
                    {
                        "collection": name,
                        **t.model_dump(mode="json", by_alias=True),
                        "progress": _progress_json(t),
                    }
                    for name, t in listed
                ]
            )
            return 0
        if not listed:
            self.out.print("no shard transfers")
            return 0
        if self.args.once:
            for name, t in listed:
                self.out.print(render.describe(name, t), f"  {t.comment or ''}", highlight=False)
            return 0
        return self._follow_transfers()

    def _follow_transfers(self) -> int:
        """Live bars until no transfer is listed any more (or the timeout passes)."""
        deadline = time.monotonic() + self.args.follow_timeout
        with render.transfer_progress(self.out) as progress:
            bars: dict[tuple[str, int, int, int], TaskID] = {}
            while True:
                current = {
                    (n, t.shard_id, t.from_peer, t.to_peer): (n, t) for n, t in look(self.client).transfers()
                }
                for key in [k for k in bars if k not in current]:  # finished or aborted
                    render.finish_bar(progress, bars.pop(key))
                for key, (name, t) in current.items():
                    if key not in bars:
                        bars[key] = render.new_bar(progress, render.describe(name, t))
                    render.show_transfer(progress, bars[key], t)
                if not current:
                    return 0
                if time.monotonic() >= deadline:
                    return _fail(self.err, f"transfers still running after {self.args.follow_timeout:g}s")
                time.sleep(self.args.interval)

    # -------------------------------------------------------------------------- changing
    def shard_op(self) -> int:
        a = self.args
        op = {
            "move": "move_shard",
            "replicate": "replicate_shard",
            "drop": "drop_replica",
            "abort": "abort_transfer",
        }[a.command]
        body = shard_ops.shard_request(
            op,
            a.shard,
            from_peer=getattr(a, "from_peer", None),
            to_peer=getattr(a, "to_peer", None),
            peer=getattr(a, "peer", None),
            method=getattr(a, "method", None),
        )
        result = shard_ops.send(self.client, a.collection, body)
        if a.json:
            _print_json({"request": body, "result": result})
        else:
            self.out.print(f"{op} accepted for collection {a.collection!r} shard {a.shard}")
        return 0

    def drain(self) -> int:
        a = self.args
        view = look(self.client)
        try:
            moves = shard_ops.plan_drain(view, a.peer)
            done: list[dict[str, Any]] = []
            if moves:
                self._run_moves(moves, done)
            shard_ops.remove_peer(self.client, a.peer, a.timeout)
        except shard_ops.DrainRefused as exc:
            if a.json:
                _print_json(
                    {"peer": a.peer, "removed": False, "moved": done if moves else [], "error": str(exc)}
                )
            return _fail(self.err, f"{exc}; peer {a.peer} was not removed")
        if a.json:
            _print_json({"peer": a.peer, "removed": True, "moved": done})
        else:
            self.out.print(f"peer {a.peer} drained ({len(moves)} replica(s) moved) and removed")
        return 0

    def _run_moves(self, moves: list[shard_ops.Move], done: list[dict[str, Any]]) -> None:
        with render.transfer_progress(self.err) as progress:
            overall = progress.add_task(
                f"drain peer {self.args.peer}", total=len(moves), records="", eta=None, stage=""
            )
            for move in moves:
                shard_ops.start_move(self.client, move)  # refused: nothing shown for this move
                bar = render.new_bar(
                    progress, f"{move.collection}/{move.shard_id}: {move.from_peer} -> {move.to_peer}"
                )

                def update(t: ShardTransfer | None, bar: TaskID = bar) -> None:
                    if t is not None:
                        render.show_transfer(progress, bar, t)

                shard_ops.wait_move(self.client, move, self.args.move_timeout, self.args.interval, update)
                render.finish_bar(progress, bar)
                progress.advance(overall)
                done.append(vars(move))


def _progress_json(t: ShardTransfer) -> dict[str, Any]:
    return asdict(parse_comment(t.comment))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qcluster ctl", description="Operate a qcluster (or Qdrant) cluster over REST."
    )
    parser.add_argument(
        "--url", default=os.environ.get("QCLUSTER_URL", DEFAULT_URL), help="any peer's REST URL"
    )
    parser.add_argument(
        "--api-key", default=os.environ.get("QCLUSTER_API_KEY"), help="the API key, if the cluster has one"
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per HTTP request (default 30)")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON instead of the terminal view")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "status", parents=[common], help="peers, Raft term/commit/leader, shards and replica states"
    )
    wait = sub.add_parser("wait-ready", parents=[common], help="wait until every replica is Active")
    wait.add_argument(
        "--timeout", dest="wait_timeout", type=float, default=300.0, help="seconds (default 300)"
    )
    wait.add_argument("--interval", type=float, default=0.5, help="seconds between checks (default 0.5)")
    tr = sub.add_parser("transfers", parents=[common], help="shard transfers, with live progress bars")
    tr.add_argument("--once", action="store_true", help="list them once instead of following them")
    tr.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes (default 1)")
    tr.add_argument("--follow-timeout", type=float, default=3600.0, help="stop following after this (s)")
    for name, helptext in (
        ("move", "move a replica to another peer"),
        ("replicate", "copy a replica to another peer"),
    ):
        op = sub.add_parser(name, parents=[common], help=helptext)
        op.add_argument("collection")
        op.add_argument("shard", type=int)
        op.add_argument("from_peer", type=int)
        op.add_argument("to_peer", type=int)
        op.add_argument(
            "--method", choices=["stream_records", "snapshot", "wal_delta", "resharding_stream_records"]
        )
    drop = sub.add_parser("drop", parents=[common], help="drop a replica")
    drop.add_argument("collection")
    drop.add_argument("shard", type=int)
    drop.add_argument("peer", type=int)
    abort = sub.add_parser("abort", parents=[common], help="abort a shard transfer")
    abort.add_argument("collection")
    abort.add_argument("shard", type=int)
    abort.add_argument("from_peer", type=int)
    abort.add_argument("to_peer", type=int)
    drain = sub.add_parser("drain", parents=[common], help="move every replica off a peer, then remove it")
    drain.add_argument("peer", type=int)
    drain.add_argument("--interval", type=float, default=1.0, help="seconds between progress checks")
    drain.add_argument("--move-timeout", type=float, default=3600.0, help="seconds allowed per replica move")
    return parser


COMMANDS = {
    "status": Ctl.status,
    "wait-ready": Ctl.wait_ready,
    "transfers": Ctl.transfers,
    "move": Ctl.shard_op,
    "replicate": Ctl.shard_op,
    "drop": Ctl.shard_op,
    "abort": Ctl.shard_op,
    "drain": Ctl.drain,
}


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    ctl = Ctl(args)
    try:
        return COMMANDS[args.command](ctl)
    except CtlError as exc:
        if getattr(args, "json", False):
            _print_json({"error": str(exc), "status": exc.status})
        return _fail(ctl.err, str(exc))
