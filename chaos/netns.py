"""A private network for one chaos run: a Linux bridge in the root namespace and one network
namespace per peer, joined to the bridge by a veth pair, each peer with its own address.

::

    root namespace                      namespace qc<run>p0 ... qc<run>pN
      bridge qcb<run>  10.213.S.1/24  ──veth──  qc<run>n0  10.213.S.10/24 (peer 0, ports 6333-6335)
                                      ──veth──  qc<run>n1  10.213.S.11/24 (peer 1) ...

The harness (workload clients, fault injectors, the final-state reader) runs in the root namespace
and reaches every peer through the bridge. Faults act inside a peer's namespace:

- partitions: an nftables table ``inet qcchaos`` drops packets from/to chosen peer addresses
  (client traffic from the bridge address is never dropped);
- link faults: ``tc netem`` (delay, jitter, loss, reordering) where the kernel has ``sch_netem``;
  otherwise random loss with nftables (``numgen random``) and a slow link with an ``htb`` rate
  limit, and the fault records which mechanism it used.

Everything needs root and the ``ip``, ``tc`` and ``nft`` tools: :func:`unavailable_reason` says
what is missing. :meth:`Network.close` removes every namespace, link and rule the run created.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from dataclasses import dataclass, field

NFT_TABLE = "qcchaos"
_runs = 0  # networks made by this process: with the pid, a unique name for each


def unavailable_reason() -> str | None:
    """Why namespaced chaos cannot run here (None when it can)."""
    if os.geteuid() != 0:
        return "network namespaces need root (run as root, or skip the namespaced chaos campaigns)"
    missing = [tool for tool in ("ip", "tc", "nft") if shutil.which(tool) is None]
    if missing:
        return f"missing tools: {', '.join(missing)} (Debian: apt-get install iproute2 nftables)"
    return None


def run(*cmd: str, ns: str | None = None, check: bool = True, stdin: str | None = None) -> str:
    """Run a command (inside namespace ``ns`` when given); its stdout. Failures raise with stderr."""
    full = ["ip", "netns", "exec", ns, *cmd] if ns else list(cmd)
    proc = subprocess.run(full, input=stdin, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(full)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


@dataclass
class Node:
    """One peer's place on the network."""

    index: int
    ns: str
    host_if: str
    ns_if: str
    address: str


@dataclass
class Network:
    run_id: str
    subnet: int  # the third octet of 10.213.S.0/24
    nodes: list[Node] = field(default_factory=list)
    netem_kernel: bool = False
    _created_bridge: bool = False

    @property
    def bridge(self) -> str:
        return f"qcb{self.run_id}"

    @property
    def gateway(self) -> str:
        return f"10.213.{self.subnet}.1"

    @classmethod
    def create(cls, n: int, rng: random.Random | None = None) -> Network:
        """A bridge and ``n`` namespaces on a /24 nobody else routes. Raises when unavailable."""
        reason = unavailable_reason()
        if reason:
            raise RuntimeError(reason)
        r = rng or random.Random()
        global _runs
        _runs += 1
        run_id = f"{(os.getpid() * 16 + _runs) % 0x10000:04x}"
        routes = run("ip", "-4", "route", "show")
        free = [s for s in range(256) if f"10.213.{s}." not in routes]
        net = cls(run_id, r.choice(free))
        try:
            net._setup(n)
        except BaseException:
            net.close()
            raise
        return net

    def _setup(self, n: int) -> None:
        run("ip", "link", "add", self.bridge, "type", "bridge")
        self._created_bridge = True
        run("ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        run("ip", "link", "set", self.bridge, "up")
        for i in range(n):
            node = Node(i, f"qc{self.run_id}p{i}", f"qc{self.run_id}v{i}", f"qc{self.run_id}n{i}",
                        f"10.213.{self.subnet}.{10 + i}")  # fmt: skip
            self.nodes.append(node)
            run("ip", "netns", "add", node.ns)
            run("ip", "link", "add", node.host_if, "type", "veth", "peer", "name", node.ns_if)
            run("ip", "link", "set", node.ns_if, "netns", node.ns)
            run("ip", "link", "set", node.host_if, "master", self.bridge)
            run("ip", "link", "set", node.host_if, "up")
            run("ip", "addr", "add", f"{node.address}/24", "dev", node.ns_if, ns=node.ns)
            run("ip", "link", "set", node.ns_if, "up", ns=node.ns)
            run("ip", "link", "set", "lo", "up", ns=node.ns)
            run("nft", "-f", "-", ns=node.ns, stdin=_NFT_BASE)
        probe = self.nodes[0]
        added = subprocess.run(
            ["ip", "netns", "exec", probe.ns, "tc", "qdisc", "add", "dev", probe.ns_if, "root", "netem",
             "delay", "1ms"], capture_output=True, check=False,
        )  # fmt: skip
        self.netem_kernel = added.returncode == 0
        if self.netem_kernel:
            run("tc", "qdisc", "del", "dev", probe.ns_if, "root", ns=probe.ns, check=False)

    # -- partitions --------------------------------------------------------------------------

    def block(self, at: Node, sources: list[Node], outgoing: bool = True) -> None:
        """Drop at ``at`` every packet from ``sources`` (and, with ``outgoing``, every packet it
        sends to them). ``outgoing=False`` makes a one-way partition: ``sources`` cannot reach
        ``at``, but ``at`` still sends to them."""
        addrs = ", ".join(s.address for s in sources)
        rules = f"add rule inet {NFT_TABLE} input ip saddr {{ {addrs} }} drop\n"
        if outgoing:
            rules += f"add rule inet {NFT_TABLE} output ip daddr {{ {addrs} }} drop\n"
        run("nft", "-f", "-", ns=at.ns, stdin=rules)

    def heal(self, node: Node) -> None:
        """Remove every drop rule and link fault from ``node``."""
        run("nft", "flush", "chain", "inet", NFT_TABLE, "input", ns=node.ns)
        run("nft", "flush", "chain", "inet", NFT_TABLE, "output", ns=node.ns)
        run("tc", "qdisc", "del", "dev", node.ns_if, "root", ns=node.ns, check=False)

    def heal_all(self) -> None:
        for node in self.nodes:
            self.heal(node)

    # -- link faults -------------------------------------------------------------------------

    def degrade(self, node: Node, delay_ms: int, loss_pct: int, rng: random.Random) -> dict[str, object]:
        """Make ``node``'s link slow and lossy; returns what was applied (for the history)."""
        if self.netem_kernel:
            jitter = max(1, delay_ms // 2)
            run("tc", "qdisc", "add", "dev", node.ns_if, "root", "netem", "delay", f"{delay_ms}ms",
                f"{jitter}ms", "loss", f"{loss_pct}%", "reorder", "25%", "50%", ns=node.ns)  # fmt: skip
            return {"mechanism": "tc netem", "delay_ms": delay_ms, "jitter_ms": jitter,
                    "loss_pct": loss_pct, "reorder_pct": 25}  # fmt: skip
        # No sch_netem in this kernel: random loss in both directions with nftables, and a slow
        # egress link (htb rate limit) whose queue adds delay under load.
        rules = (
            f"add rule inet {NFT_TABLE} input iifname {node.ns_if} numgen random mod 100 < {loss_pct} drop\n"
            f"add rule inet {NFT_TABLE} output oifname {node.ns_if} numgen random mod 100 < {loss_pct} drop\n"
        )
        run("nft", "-f", "-", ns=node.ns, stdin=rules)
        rate_kbit = rng.choice([128, 256, 512])
        run(
            "tc", "qdisc", "add", "dev", node.ns_if, "root", "handle", "1:", "htb", "default", "1", ns=node.ns
        )
        run("tc", "class", "add", "dev", node.ns_if, "parent", "1:", "classid", "1:1", "htb", "rate",
            f"{rate_kbit}kbit", "ceil", f"{rate_kbit}kbit", ns=node.ns)  # fmt: skip
        return {"mechanism": "nft loss + htb rate limit (kernel lacks sch_netem)", "loss_pct": loss_pct,
                "rate_kbit": rate_kbit}  # fmt: skip

    # -- teardown ----------------------------------------------------------------------------

    def close(self) -> None:
        """Remove the namespaces and the bridge (peers must be stopped first)."""
        for node in self.nodes:
            run("ip", "link", "del", node.host_if, check=False)
            run("ip", "netns", "del", node.ns, check=False)
        if self._created_bridge:
            run("ip", "link", "del", self.bridge, check=False)
        self.nodes = []


_NFT_BASE = f"""
table inet {NFT_TABLE} {{
    chain input {{ type filter hook input priority 0; policy accept; }}
    chain output {{ type filter hook output priority 0; policy accept; }}
}}
"""
