"""The checker: a history (see :mod:`chaos.history`) and the final state read from every replica in,
a list of violations out. Pure: no sockets, no clocks.

Final state::

    {"replicas": [{"replica": "p0", "group": "meta", "objects": {"key:a": 3, "col:c": true}},
                  {"replica": "p0", "group": "pt:c", "objects": {"pt:c:7": {"w": 12, "p": null}}}],
     "inactive": [{"replica": "p1", "collection": "c", "shard": 0, "state": "Dead"}],
     "recovery": {"converged": true, "seconds": 2.5, "deadline": 60.0}}

A replica group holds the objects of one kind of replicated data: ``meta`` (keys, collections,
aliases: every peer holds all of it) or ``pt:<collection>`` (``pt:<collection>#<shard>`` when the
reader can tell shards apart: an object then belongs to the shard groups that hold it, or to all of
them when none does). An object is checked against every replica of its group.

Invariants, and the violation ``kind`` each one reports:

- ``lost``: the last acknowledged write of an object is not what a replica holds (absent, or an
  older value), and no indeterminate write after it explains what it holds;
- ``resurrected``: the last acknowledged operation deleted the object, yet a replica holds a value
  written before that delete;
- ``failed_applied``: a replica holds a value only a failed (definitely refused) write produced;
- ``unexpected``: a replica holds a value no operation wrote;
- ``partial``: an indeterminate write of several objects is visible (on some replica) for some of
  them and for others on none (judged on objects it was the last write of); reported as
  ``partial_across_shards`` when the applied and the missing objects live on different shards (a
  batch is atomic per shard, as in Qdrant: one shard can take it while another fails);
- ``divergent``: replicas of one group hold different objects or values;
- ``not_active``: a replica is not ``Active`` after recovery (lost, resurrected and unexpected
  values are then judged on the Active replicas of its shard only, or, when none is Active, on the
  best of its replicas);
- ``not_converged``: the replicas did not converge within the recovery deadline;
- ``two_leaders``: two peers were seen leading the same Raft term;
- ``crash``: a peer process died without the harness killing it.

Indeterminate operations may take effect at any moment after they start, even after later
operations on the same object (a timed-out write can still commit): the checker allows every such
order (:func:`possible_values`, linear in the object's history).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from chaos.history import FAILED, INDETERMINATE, OK

ABSENT = "\x00absent"

Value = str  # canonical JSON of an object's value, or ABSENT


def canon(value: Any) -> Value:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def group_of(obj: str) -> str:
    if obj.startswith("pt:"):
        return "pt:" + obj[3:].rsplit(":", 1)[0]
    return "meta"


@dataclass(frozen=True)
class Step:
    op_id: int
    outcome: str
    effect: dict[str, Any]


def apply(effect: dict[str, Any], value: Value) -> Value:
    kind = effect["op"]
    if kind == "put":
        return canon(effect["value"])
    if kind == "del":
        return ABSENT
    if kind == "merge":
        if value == ABSENT:
            return ABSENT
        base = json.loads(value)
        return canon({**base, **effect["value"]})
    raise ValueError(f"unknown effect {kind!r}")


def possible_values(steps: list[Step]) -> set[Value]:
    """Every value the object may hold after ``steps`` (in the client's order), in one pass.

    Acknowledged operations apply in order; an indeterminate one applies at any moment after it
    started, even after later operations, or never; a failed one never. The final value is the
    last writer (put/del) that applied, then the last merge that applied after it (merges are
    assumed to set the same fields, as the workload's payload updates all set ``p``):

    - absent: when nothing acknowledged wrote, the last acknowledged writer deleted, or an
      indeterminate delete applied last;
    - the last acknowledged put, merged with the last acknowledged merge after it (or nothing
      when there is none), or with any indeterminate merge applied later;
    - any indeterminate put applied after the last acknowledged writer, alone, merged with any
      indeterminate merge, or with the last acknowledged merge if that one came after both.
    """
    ok_writers = [i for i, s in enumerate(steps) if s.outcome == OK and s.effect["op"] != "merge"]
    ok_merges = [i for i, s in enumerate(steps) if s.outcome == OK and s.effect["op"] == "merge"]
    indet = [i for i, s in enumerate(steps) if s.outcome == INDETERMINATE]
    indet_merges = [steps[i].effect for i in indet if steps[i].effect["op"] == "merge"]
    out: set[Value] = set()

    def after_put(put: dict[str, Any], merges: list[dict[str, Any]], bare: bool) -> None:
        base = apply(put, ABSENT)
        if bare:
            out.add(base)
        for m in merges:
            out.add(apply(m, base))

    last = ok_writers[-1] if ok_writers else None
    if last is None or steps[last].effect["op"] == "del":
        out.add(ABSENT)
    else:
        later_ok = [i for i in ok_merges if i > last]
        after_put(steps[last].effect, [steps[i].effect for i in later_ok[-1:]] + indet_merges, not later_ok)
    for j in indet:
        effect = steps[j].effect
        if effect["op"] == "del":
            out.add(ABSENT)
        elif effect["op"] == "put":
            # it applies after the last acknowledged writer; an acknowledged merge follows it only
            # if that merge came after both
            tail = [steps[ok_merges[-1]].effect] if ok_merges and ok_merges[-1] > max(j, last or 0) else []
            after_put(effect, tail + indet_merges, True)
    return out


def _explain(steps: list[Step], observed: Value) -> str:
    """Name the violation when ``observed`` is not a possible value."""
    acked = [s for s in steps if s.outcome == OK]
    producers = {s.outcome for s in steps if s.effect["op"] == "put" and canon(s.effect["value"]) == observed}
    if observed != ABSENT and not producers and not any(s.effect["op"] == "merge" for s in steps):
        return "unexpected"
    if producers == {FAILED}:
        return "failed_applied"
    if acked and acked[-1].effect["op"] == "del" and observed != ABSENT:
        return "resurrected"
    if acked:
        return "lost"
    return "unexpected"


def _histories(records: Iterable[dict[str, Any]]) -> dict[str, list[Step]]:
    per_obj: dict[str, list[Step]] = defaultdict(list)
    ops = sorted((r for r in records if r["t"] == "op"), key=lambda r: (r["start"], r["id"]))
    for r in ops:
        for obj, effect in (r.get("effects") or {}).items():
            per_obj[obj].append(Step(int(r["id"]), r["outcome"], effect))
    return per_obj


def check(records: list[dict[str, Any]], final: dict[str, Any]) -> list[dict[str, Any]]:
    """All violations of the history against the final state (empty: every invariant holds)."""
    out: list[dict[str, Any]] = []
    histories = _histories(records)
    replicas = final.get("replicas", [])
    by_group: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rep in replicas:
        by_group[rep["group"]].append(rep)

    inactive = {(e["replica"], f"pt:{e['collection']}#{e['shard']}") for e in final.get("inactive", [])}

    def covering(obj: str) -> list[list[dict[str, Any]]]:
        """Who must hold ``obj`` as the history says, as a list of alternatives per group: each
        Active replica of its group on its own (a replica known not to be Active is reported as
        such, not as losing every write it missed); when none is Active, all of them together
        (the object is lost only if no replica holds an allowed value)."""
        base = group_of(obj)
        groups = [g for g in by_group if g == base or g.startswith(base + "#")]
        holding = [g for g in groups if any(obj in rep["objects"] for rep in by_group[g])]
        out: list[list[dict[str, Any]]] = []
        for g in holding or groups:
            active = [rep for rep in by_group[g] if (rep["replica"], g) not in inactive]
            out += [[rep] for rep in active] if active else [by_group[g]]
        return out

    def observed(rep: dict[str, Any], obj: str) -> Value:
        return ABSENT if obj not in rep["objects"] else canon(rep["objects"][obj])

    objects = set(histories) | {obj for rep in replicas for obj in rep["objects"]}
    for obj in sorted(objects):
        steps = histories.get(obj, [])
        allowed = possible_values(steps)
        for alternatives in covering(obj):
            if any(observed(rep, obj) in allowed for rep in alternatives):
                continue
            rep = alternatives[0]
            acked = [s.op_id for s in steps if s.outcome == OK]
            out.append({
                "kind": _explain(steps, observed(rep, obj)), "object": obj,
                "replica": rep["replica"] if len(alternatives) == 1 else "+".join(r["replica"] for r in alternatives),
                "observed": rep["objects"].get(obj), "last_acknowledged_op": acked[-1] if acked else None,
            })  # fmt: skip

    def holding(obj: str) -> set[str]:
        return {g for g, reps in by_group.items() if any(obj in rep["objects"] for rep in reps)}

    out += _partial(records, histories, covering, observed, holding)
    out += _divergent(by_group)
    out += [{"kind": "not_active", **entry} for entry in final.get("inactive", [])]
    recovery = final.get("recovery") or {}
    if recovery and not recovery.get("converged", True):
        out.append({"kind": "not_converged", "deadline": recovery.get("deadline"),
                    "detail": recovery.get("detail")})  # fmt: skip
    out += _leaders(records)
    out += [{"kind": "crash", "peer": r["peer"], "rc": r.get("rc"), "at": r.get("at")}
            for r in records if r["t"] == "crash"]  # fmt: skip
    return out


def _partial(
    records: list[dict[str, Any]],
    histories: dict[str, list[Step]],
    covering: Callable[[str], list[list[dict[str, Any]]]],
    observed: Callable[[dict[str, Any], str], Value],
    groups: Callable[[str], set[str]],
) -> list[dict[str, Any]]:
    """Indeterminate multi-object puts must be all-or-nothing where they are still observable (on
    objects they were the last write of): visible somewhere for some objects, nowhere for others,
    is a partial write."""
    out = []
    for r in records:
        effects = r.get("effects") or {}
        if r["t"] != "op" or r["outcome"] != INDETERMINATE or len(effects) < 2:
            continue
        if any(e["op"] != "put" for e in effects.values()):
            continue
        if any([s.op_id for s in histories[obj] if s.outcome != FAILED][-1] != r["id"] for obj in effects):
            continue
        seen = {
            obj: any(observed(rep, obj) == canon(e["value"]) for alt in covering(obj) for rep in alt)
            for obj, e in effects.items()
        }
        if any(seen.values()) and not all(seen.values()):
            visible = sorted(o for o, v in seen.items() if v)
            missing = sorted(o for o, v in seen.items() if not v)
            # which shard holds an object (any value): a batch whose shards are all known and the
            # applied part on other shards than the rest is atomic per shard, as Qdrant's is
            shards = {o: {g for g in groups(o) if "#" in g} for o in effects}
            seen_on = set().union(*(shards[o] for o in visible))
            split = all(len(shards[o]) == 1 for o in effects) and not (
                seen_on & set().union(*(shards[o] for o in missing))
            )
            # or the answer named the shard that failed, and the applied part is elsewhere
            failed = {g.split("#")[0] + f"#{n}" for n in re.findall(r"shard (\d+) of", str(r.get("error")))
                      for g in seen_on}  # fmt: skip
            split = split or bool(
                failed and all(len(shards[o]) == 1 for o in visible) and not seen_on & failed
            )
            out.append({"kind": "partial_across_shards" if split else "partial", "op": r["id"],
                        "visible": visible, "missing": missing})  # fmt: skip
    return out


def _divergent(by_group: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    out = []
    for group, reps in sorted(by_group.items()):
        if len(reps) < 2:
            continue
        keys = set().union(*(rep["objects"] for rep in reps))
        differing = sorted(k for k in keys if len({canon(rep["objects"].get(k, ABSENT)) for rep in reps}) > 1)
        if differing:
            out.append({"kind": "divergent", "group": group, "replicas": [rep["replica"] for rep in reps],
                        "differing": len(differing), "sample": differing[:5]})  # fmt: skip
    return out


def _leaders(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At most one leader per term, from peers reporting themselves ``Leader`` (a follower's view of
    the leader can lag its term during an election, so only self-reports count)."""
    by_term: dict[int, set[int]] = defaultdict(set)
    for r in records:
        if r["t"] == "observe" and r.get("role") == "Leader" and r.get("term") is not None:
            by_term[int(r["term"])].add(int(r["peer_id"]))
    return [{"kind": "two_leaders", "term": term, "leaders": sorted(leaders)}
            for term, leaders in sorted(by_term.items()) if len(leaders) > 1]  # fmt: skip


def summarize(violations: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for v in violations:
        out[v["kind"]] += 1
    return dict(out)
