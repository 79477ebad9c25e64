"""The chaos checker must be able to fail: histories with a lost write, a resurrected delete, a
divergent replica, a partial indeterminate batch, two leaders in one term and a crash are each
reported; a clean history with indeterminate operations either way is not."""

from __future__ import annotations

import random
from typing import Any

from chaos.checker import ABSENT, Step, apply, check, possible_values, summarize
from chaos.history import FAILED, INDETERMINATE, OK


class H:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.t = 0.0

    def op(self, outcome: str, effects: dict[str, Any], kind: str = "write") -> int:
        self.t += 1
        op_id = len(self.records) + 1
        self.records.append({"t": "op", "id": op_id, "client": 0, "peer": "p0", "kind": kind,
                             "start": self.t, "end": self.t + 0.5, "outcome": outcome, "effects": effects})  # fmt: skip
        return op_id


def put(v: Any) -> dict[str, Any]:
    return {"op": "put", "value": v}


DEL = {"op": "del"}


def final(*replicas: tuple[str, str, dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"replicas": [{"replica": r, "group": g, "objects": o} for r, g, o in replicas], **extra}


def kinds(violations: list[dict[str, Any]]) -> dict[str, int]:
    return summarize(violations)


def test_clean_history_passes() -> None:
    h = H()
    h.op(OK, {"key:a": put(1)})
    h.op(INDETERMINATE, {"key:a": put(2)})  # may or may not have applied
    h.op(OK, {"key:b": put(1)})
    h.op(OK, {"key:b": DEL})
    h.op(FAILED, {"key:c": put(9)})
    for a in (1, 2):
        state = final(("p0", "meta", {"key:a": a}), ("p1", "meta", {"key:a": a}))
        assert check(h.records, state) == [], a


def test_lost_write_reported() -> None:
    h = H()
    h.op(OK, {"pt:c:1": put({"w": 1, "p": None})})
    h.op(OK, {"pt:c:1": put({"w": 2, "p": None})})
    state = final(
        ("p0", "pt:c", {"pt:c:1": {"w": 2, "p": None}}), ("p1", "pt:c", {"pt:c:1": {"w": 1, "p": None}})
    )
    v = check(h.records, state)
    lost = [x for x in v if x["kind"] == "lost"]
    assert len(lost) == 1 and lost[0]["replica"] == "p1" and lost[0]["object"] == "pt:c:1"
    assert lost[0]["last_acknowledged_op"] == 2
    # absent on a replica is lost too
    v = check(h.records, final(("p0", "pt:c", {})))
    assert kinds(v) == {"lost": 1}


def test_resurrection_reported() -> None:
    h = H()
    h.op(OK, {"key:k": put(5)})
    h.op(OK, {"key:k": DEL})
    v = check(h.records, final(("p0", "meta", {}), ("p1", "meta", {"key:k": 5})))
    assert [x["kind"] for x in v if x.get("replica") == "p1"] == ["resurrected"]
    assert kinds(v) == {"resurrected": 1, "divergent": 1}


def test_indeterminate_write_may_apply_after_a_later_delete() -> None:
    """A timed-out write can commit after the client's next operation: not a resurrection."""
    h = H()
    h.op(INDETERMINATE, {"key:k": put(5)})
    h.op(OK, {"key:k": DEL})
    assert check(h.records, final(("p0", "meta", {"key:k": 5}))) == []
    assert check(h.records, final(("p0", "meta", {}))) == []


def test_divergent_replica_reported() -> None:
    h = H()
    h.op(INDETERMINATE, {"pt:c:1": put({"w": 1})})
    # each replica is individually possible, but they disagree
    v = check(h.records, final(("p0", "pt:c#0", {"pt:c:1": {"w": 1}}), ("p1", "pt:c#0", {})))
    assert kinds(v) == {"divergent": 1}
    assert v[0]["group"] == "pt:c#0" and v[0]["differing"] == 1


def test_failed_write_applied_and_unknown_value() -> None:
    h = H()
    h.op(FAILED, {"key:x": put(7)})
    v = check(h.records, final(("p0", "meta", {"key:x": 7, "key:y": 1})))
    assert sorted(x["kind"] for x in v) == ["failed_applied", "unexpected"]


def test_merge_semantics() -> None:
    h = H()
    h.op(OK, {"pt:c:1": put({"w": 1, "p": None})})
    h.op(OK, {"pt:c:1": {"op": "merge", "value": {"p": 2}}})
    assert check(h.records, final(("p0", "pt:c", {"pt:c:1": {"w": 1, "p": 2}}))) == []
    assert kinds(check(h.records, final(("p0", "pt:c", {"pt:c:1": {"w": 1, "p": None}})))) == {"lost": 1}
    # a merge into an absent object leaves it absent
    assert possible_values([]) == {"\x00absent"}


def test_partial_indeterminate_batch_reported() -> None:
    h = H()
    h.op(INDETERMINATE, {"pt:c:1": put({"w": 1}), "pt:c:2": put({"w": 1})})
    v = check(h.records, final(("p0", "pt:c", {"pt:c:1": {"w": 1}})))
    assert kinds(v) == {"partial": 1}
    assert v[0]["visible"] == ["pt:c:1"] and v[0]["missing"] == ["pt:c:2"]
    assert check(h.records, final(("p0", "pt:c", {"pt:c:1": {"w": 1}, "pt:c:2": {"w": 1}}))) == []


def test_two_leaders_crash_inactive_and_not_converged() -> None:
    records: list[dict[str, Any]] = [
        {"t": "observe", "peer": "p0", "peer_id": 1, "term": 3, "leader": 1, "role": "Leader"},
        {"t": "observe", "peer": "p1", "peer_id": 2, "term": 3, "leader": 2, "role": "Leader"},
        {"t": "observe", "peer": "p2", "peer_id": 3, "term": 4, "leader": 3, "role": "Leader"},
        {"t": "crash", "peer": "p2", "rc": -11, "at": 5.0},
    ]
    state = final(
        inactive=[{"replica": "p1", "collection": "c", "shard": 0, "state": "Dead"}],
        recovery={"converged": False, "deadline": 60.0},
    )
    v = check(records, state)
    assert kinds(v) == {"two_leaders": 1, "crash": 1, "not_active": 1, "not_converged": 1}
    assert next(x for x in v if x["kind"] == "two_leaders")["leaders"] == [1, 2]


def test_shard_groups_cover_objects_they_hold() -> None:
    """With per-shard groups, an object is checked on the replicas of the shard holding it."""
    h = H()
    h.op(OK, {"pt:c:1": put({"w": 1})})
    h.op(OK, {"pt:c:2": put({"w": 2})})
    state = final(
        ("p0", "pt:c#0", {"pt:c:1": {"w": 1}}), ("p1", "pt:c#0", {"pt:c:1": {"w": 1}}),
        ("p1", "pt:c#1", {"pt:c:2": {"w": 2}}), ("p2", "pt:c#1", {"pt:c:2": {"w": 2}}),
    )  # fmt: skip
    assert check(h.records, state) == []
    h.op(OK, {"pt:c:3": put({"w": 3})})  # acknowledged, on no shard at all
    assert kinds(check(h.records, state)) == {"lost": 4}


def test_dead_replica_is_not_active_not_lost() -> None:
    """A replica known to be Dead is reported once as not Active; lost writes are judged on the
    Active replicas of its shard (and on the best of them when none is Active)."""
    h = H()
    h.op(OK, {"pt:c:1": put({"w": 1})})
    dead = {"replica": "p1", "collection": "c", "shard": 0, "state": "Dead"}
    state = final(("p0", "pt:c#0", {"pt:c:1": {"w": 1}}), ("p1", "pt:c#0", {}), inactive=[dead])
    assert kinds(check(h.records, state)) == {"not_active": 1, "divergent": 1}
    state = final(("p0", "pt:c#0", {}), ("p1", "pt:c#0", {}), inactive=[dead])
    assert kinds(check(h.records, state)) == {"not_active": 1, "lost": 1}
    both = [dead, {**dead, "replica": "p0"}]
    state = final(("p0", "pt:c#0", {}), ("p1", "pt:c#0", {}), inactive=both)
    assert kinds(check(h.records, state)) == {"not_active": 2, "lost": 1}
    # no replica Active, but one still holds the acknowledged write: behind, not lost
    state = final(("p0", "pt:c#0", {"pt:c:1": {"w": 1}}), ("p1", "pt:c#0", {}), inactive=both)
    assert kinds(check(h.records, state)) == {"not_active": 2, "divergent": 1}


def _reference(steps: list[Step]) -> set[str]:
    """Brute force: every subset of the indeterminate ops, each applied at any point at or after
    its own position (ok ops in order), enumerated over reachable (value, pending) states."""
    states: set[tuple[str, frozenset[int]]] = {(ABSENT, frozenset())}

    def closure(cur: set[tuple[str, frozenset[int]]]) -> set[tuple[str, frozenset[int]]]:
        seen, todo = set(cur), list(cur)
        while todo:
            value, pending = todo.pop()
            for i in pending:
                nxt = (apply(steps[i].effect, value), pending - {i})
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    for i, step in enumerate(steps):
        if step.outcome == OK:
            states = {(apply(step.effect, v), p) for v, p in closure(states)}
        elif step.outcome == INDETERMINATE:
            states = {(v, p | {i}) for v, p in states}
    return {v for v, _ in closure(states)}


def test_possible_values_matches_brute_force() -> None:
    rng = random.Random(16)
    for _ in range(3000):
        steps = []
        for i in range(rng.randint(0, 7)):
            kind = rng.choice(["put", "put", "del", "merge"])
            effect: dict[str, Any] = {"op": kind}
            if kind == "put":
                effect["value"] = {"w": i, "p": None}
            elif kind == "merge":
                effect["value"] = {"p": i}
            steps.append(Step(i, rng.choice([OK, OK, FAILED, INDETERMINATE]), effect))
        assert possible_values(steps) == _reference(steps), steps


def test_partial_across_shards_is_told_apart() -> None:
    """A batch applied on one shard and not on another (whose objects the replicas hold with older
    values) is per-shard atomicity, reported as such; within one shard it is a partial write."""
    h = H()
    h.op(OK, {"pt:c:1": put({"w": 1}), "pt:c:2": put({"w": 1})})
    h.op(INDETERMINATE, {"pt:c:1": put({"w": 2}), "pt:c:2": put({"w": 2})})
    split = final(("p0", "pt:c#0", {"pt:c:1": {"w": 2}}), ("p0", "pt:c#1", {"pt:c:2": {"w": 1}}))
    assert kinds(check(h.records, split)) == {"partial_across_shards": 1}
    same = final(("p0", "pt:c#0", {"pt:c:1": {"w": 2}, "pt:c:2": {"w": 1}}))
    assert kinds(check(h.records, same)) == {"partial": 1}
    # a never-written object's shard is unknown, unless the answer named the shard that failed
    h2 = H()
    h2.op(OK, {"pt:c:1": put({"w": 1})})
    h2.op(INDETERMINATE, {"pt:c:1": put({"w": 2}), "pt:c:9": put({"w": 2})})
    one = final(("p0", "pt:c#0", {"pt:c:1": {"w": 2}}), ("p0", "pt:c#1", {}))
    assert kinds(check(h2.records, one)) == {"partial": 1}
    h2.records[-1]["error"] = "shard 1 of `c` has no replica that can take writes"
    assert kinds(check(h2.records, one)) == {"partial_across_shards": 1}
