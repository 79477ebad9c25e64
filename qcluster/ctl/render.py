"""What ``qcluster ctl`` shows on a terminal (rich): the status tree, transfer tables and progress
bars. Plain text when the output is not a terminal."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
)
from rich.text import Text
from rich.tree import Tree

from qcluster.ctl.comment import parse_comment
from qcluster.ctl.views import ClusterView, ShardTransfer, replicas

STATE_STYLE = {"Active": "green", "Dead": "bold red", "Partial": "yellow", "Initializing": "cyan"}


def _state(state: str) -> Text:
    return Text(state, style=STATE_STYLE.get(state, "magenta"))


def status_tree(view: ClusterView) -> Tree:
    c = view.cluster
    if c.enabled and c.raft_info is not None:
        raft = c.raft_info
        leader = raft.leader if raft.leader is not None else "none"
        title = Text.assemble(
            ("Cluster ", "bold"),
            f"via {view.url} (peer {c.peer_id}): term {raft.term}, commit {raft.commit}, leader {leader}",
        )
    else:
        title = Text.assemble(("Single peer ", "bold"), f"via {view.url} (cluster mode disabled)")
    root = Tree(title)
    if c.enabled:
        peers = root.add(Text(f"Peers ({len(c.peers)})", style="bold"))
        for pid, peer in sorted(c.peers.items()):
            tags = []
            if c.raft_info is not None and pid == c.raft_info.leader:
                tags.append("leader")
            if pid == c.peer_id:
                tags.append("answering")
            peers.add(
                Text.assemble(str(pid), f"  {peer.uri}", (f"  [{', '.join(tags)}]" if tags else "", "cyan"))
            )
    cols = root.add(Text(f"Collections ({len(view.collections)})", style="bold"))
    for name, info in view.collections.items():
        node = cols.add(Text.assemble((name, "bold"), f"  {info.shard_count} shard(s)"))
        by_shard: dict[int, Tree] = {}
        for r in replicas(name, info):
            shard = by_shard.get(r.shard_id)
            if shard is None:
                shard = by_shard[r.shard_id] = node.add(f"shard {r.shard_id}")
            detail = f"  local, {r.points} points" if r.local else ""
            shard.add(Text.assemble(f"peer {r.peer_id}  ", _state(r.state), detail))
        for t in info.shard_transfers:
            node.add(Text.assemble(("transfer ", "yellow"), describe(name, t)))
    return root


def describe(collection: str, t: ShardTransfer) -> str:
    method = f" ({t.method})" if t.method else ""
    kind = "sync" if t.sync else "move"
    return f"{collection}/{t.shard_id}: {t.from_peer} -> {t.to_peer} {kind}{method}"


class EtaColumn(ProgressColumn):
    """The server's ETA when its comment has one, else rich's estimate from the rate seen here."""

    def render(self, task: Task) -> Text:
        eta = task.fields.get("eta")
        if eta is None:
            eta = task.time_remaining
        return Text("ETA -" if eta is None else f"ETA {eta:.0f}s", style="cyan")


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        unit = task.fields.get("unit") or "records"
        return Text("" if task.speed is None else f"{task.speed:.0f} {unit}/s", style="green")


def transfer_progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[records]}"),
        RateColumn(),
        EtaColumn(),
        TextColumn("{task.fields[stage]}", style="dim"),
        console=console,
        transient=False,
    )


def new_bar(progress: Progress, description: str) -> TaskID:
    return progress.add_task(description, total=None, records="", eta=None, stage="starting")


def show_transfer(progress: Progress, task: TaskID, t: ShardTransfer) -> None:
    """Update a bar from one listing of a transfer: records done of total when the comment says
    (a comment without them leaves the last known counts), and the stage (or the raw comment)."""
    p = parse_comment(t.comment)
    if p.total is not None:
        progress.update(
            task, completed=p.done or 0, total=p.total, records=f"{p.done}/{p.total} {p.unit}", unit=p.unit
        )
    progress.update(task, eta=p.eta_seconds, stage=p.stage or (t.comment or ""))


def finish_bar(progress: Progress, task: TaskID) -> None:
    total = progress.tasks[task].total or 1
    progress.update(task, completed=total, total=total, eta=0.0, stage="done")
