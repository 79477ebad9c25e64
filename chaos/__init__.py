"""The chaos harness: real peers in network namespaces under injected faults, a recorded history,
and a checker. ``python -m chaos`` runs campaigns (see ``__main__``).

Modules: ``netns`` (bridge, namespaces, nftables and tc), ``peers`` (peers in namespaces),
``faults`` (injectors), ``workload`` (clients) and ``history`` (JSON lines), ``state`` (reads every
replica), ``checker`` (pure invariants), ``campaign`` (a run end to end), ``report`` (CHAOS.md).
"""
