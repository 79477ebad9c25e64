"""Concurrent clients: each a thread sending operations through random peers over REST and
recording every one in the history with its outcome and its effects on the objects it writes.

Each client owns its objects (its metadata keys, collection names, aliases and a range of point ids
in every point collection), so the operations on one object are sequential and the checker can
order them. Values name the operation that wrote them: a metadata key holds the op id, a point's
payload ``{"w": op}`` (and ``"p": op`` after a payload update) with a vector derived from ``w``.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chaos.history import OK, History, classify
from qcluster.testing.peer_cluster import rest

REQUEST_TIMEOUT = 3  # seconds, passed to the server as ?timeout=
SOCKET_TIMEOUT = 6.0  # the client gives up after this: indeterminate
KEYS_PER_CLIENT = 24
COLLECTIONS_PER_CLIENT = 4
ALIASES_PER_CLIENT = 4
IDS_PER_CLIENT = 60
DIM = 4

META_MIX = {"key_put": 50, "key_del": 15, "col_create": 8, "col_del": 5, "alias_put": 12, "alias_del": 5}
POINT_MIX = {"upsert": 40, "delete": 12, "set_payload": 14, "search": 14, "key_put": 10, "col_create": 4,
             "col_del": 2, "alias_put": 4}  # fmt: skip


def vector_of(w: int) -> list[float]:
    """The vector an upsert with op id ``w`` writes (exact in float32)."""
    return [float(w % 1000), float(w // 1000 % 1000), 1.0, 0.5]


def point_value(point: dict[str, Any]) -> dict[str, Any]:
    """What the checker compares for one point read back: the ops that wrote it, and whether its
    vector is the one its upsert wrote."""
    payload = point.get("payload") or {}
    value: dict[str, Any] = {"w": payload.get("w"), "p": payload.get("p")}
    w = payload.get("w")
    vec = point.get("vector")
    if isinstance(w, int) and vec is not None and list(vec) != vector_of(w):
        value["vector_mismatch"] = True
    return value


@dataclass
class Target:
    name: str
    url: str


@dataclass
class Client:
    index: int
    history: History
    peers: Callable[[], Sequence[Target]]
    mix: dict[str, int]
    point_collections: list[str]
    seed: int
    stop: threading.Event = field(default_factory=threading.Event)
    believed: dict[str, Any] = field(default_factory=dict)  # object -> value we think it holds

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed * 1009 + self.index)
        self.anchors = [f"anchor-c{self.index}-{i}" for i in range(2)]

    # -- objects this client owns ---------------------------------------------------------

    def _key(self) -> str:
        return f"c{self.index}-k{self.rng.randrange(KEYS_PER_CLIENT)}"

    def _collection(self) -> str:
        return f"col-c{self.index}-{self.rng.randrange(COLLECTIONS_PER_CLIENT)}"

    def _alias(self) -> str:
        return f"al-c{self.index}-{self.rng.randrange(ALIASES_PER_CLIENT)}"

    def _ids(self) -> list[int]:
        base = self.index * IDS_PER_CLIENT
        return sorted(self.rng.sample(range(base, base + IDS_PER_CLIENT), self.rng.randint(1, 3)))

    # -- the loop -----------------------------------------------------------------------------

    def setup(self) -> None:
        """Create the anchor collections aliases point at (retried until acknowledged)."""
        for name in self.anchors:
            for _ in range(20):
                if self._create_collection(name) == OK:
                    break

    def run(self) -> None:
        kinds = [k for k in self.mix if self.point_collections or k not in POINT_ONLY]
        weights = [self.mix[k] for k in kinds]
        while not self.stop.is_set():
            kind = self.rng.choices(kinds, weights)[0]
            getattr(self, "op_" + kind)()

    def _send(self, kind: str, method: str, path: str, body: Any, effects: dict[str, Any]) -> str:
        peers = self.peers()
        peer = self.rng.choice(list(peers))
        op_id = self.history.op_id()
        effects = {obj: _fill(e, op_id) for obj, e in effects.items()}
        body = _fill(body, op_id)
        start = self.history.now()
        status, answer = rest(peer.url, method, path, body, timeout=SOCKET_TIMEOUT)
        outcome, error = classify(status, answer)
        self.history.add({
            "t": "op", "id": op_id, "client": self.index, "peer": peer.name, "kind": kind,
            "start": start, "end": self.history.now(), "outcome": outcome, "status": status,
            "error": error, "effects": effects,
        })  # fmt: skip
        if outcome != "failed":
            for obj, e in effects.items():
                if e["op"] == "del":
                    self.believed.pop(obj, None)
                else:
                    self.believed[obj] = e.get("value")
        return outcome

    # -- metadata operations ----------------------------------------------------------------

    def op_key_put(self) -> None:
        key = self._key()
        self._send("key_put", "PUT", f"/cluster/metadata/keys/{key}?timeout={REQUEST_TIMEOUT}", OP_ID,
                   {f"key:{key}": {"op": "put", "value": OP_ID}})  # fmt: skip

    def op_key_del(self) -> None:
        key = self._key()
        self._send("key_del", "DELETE", f"/cluster/metadata/keys/{key}?timeout={REQUEST_TIMEOUT}", None,
                   {f"key:{key}": {"op": "del"}})  # fmt: skip

    def _create_collection(self, name: str) -> str:
        body = {"vectors": {"size": 2, "distance": "Dot"}}
        return self._send("col_create", "PUT", f"/collections/{name}?timeout={REQUEST_TIMEOUT}", body,
                          {f"col:{name}": {"op": "put", "value": True}})  # fmt: skip

    def op_col_create(self) -> None:
        name = self._collection()
        if f"col:{name}" not in self.believed:
            self._create_collection(name)

    def op_col_del(self) -> None:
        name = self._collection()
        self._send("col_del", "DELETE", f"/collections/{name}?timeout={REQUEST_TIMEOUT}", None,
                   {f"col:{name}": {"op": "del"}})  # fmt: skip

    def op_alias_put(self) -> None:
        alias, target = self._alias(), self.rng.choice(self.anchors)
        body = {"actions": [{"create_alias": {"alias_name": alias, "collection_name": target}}]}
        self._send("alias_put", "POST", f"/collections/aliases?timeout={REQUEST_TIMEOUT}", body,
                   {f"alias:{alias}": {"op": "put", "value": target}})  # fmt: skip

    def op_alias_del(self) -> None:
        alias = self._alias()
        body = {"actions": [{"delete_alias": {"alias_name": alias}}]}
        self._send("alias_del", "POST", f"/collections/aliases?timeout={REQUEST_TIMEOUT}", body,
                   {f"alias:{alias}": {"op": "del"}})  # fmt: skip

    # -- point operations -------------------------------------------------------------------

    def _points_path(self, suffix: str = "") -> tuple[str, str]:
        col = self.rng.choice(self.point_collections)
        return col, f"/collections/{col}/points{suffix}?wait=true&timeout={REQUEST_TIMEOUT}"

    def op_upsert(self) -> None:
        col, path = self._points_path()
        ids = self._ids()
        body = {"points": [{"id": i, "vector": VECTOR, "payload": {"w": OP_ID}} for i in ids]}
        self._send("upsert", "PUT", path, body,
                   {f"pt:{col}:{i}": {"op": "put", "value": {"w": OP_ID, "p": None}} for i in ids})  # fmt: skip

    def op_delete(self) -> None:
        col, path = self._points_path("/delete")
        ids = self._ids()
        self._send("delete", "POST", path, {"points": ids}, {f"pt:{col}:{i}": {"op": "del"} for i in ids})

    def op_set_payload(self) -> None:
        col, path = self._points_path("/payload")
        ids = [i for i in self._ids() if f"pt:{col}:{i}" in self.believed] or self._ids()
        self._send("set_payload", "POST", path, {"payload": {"p": OP_ID}, "points": ids},
                   {f"pt:{col}:{i}": {"op": "merge", "value": {"p": OP_ID}} for i in ids})  # fmt: skip

    def op_search(self) -> None:
        col = self.rng.choice(self.point_collections)
        body = {"vector": [self.rng.random() for _ in range(DIM)], "limit": 5, "with_payload": True}
        self._send("search", "POST", f"/collections/{col}/points/search?timeout={REQUEST_TIMEOUT}", body, {})


POINT_ONLY = {"upsert", "delete", "set_payload", "search"}
OP_ID = "$op"  # placeholder replaced by the op id once it is known
VECTOR = "$vector"


def _fill(value: Any, op_id: int) -> Any:
    if value == OP_ID:
        return op_id
    if value == VECTOR:
        return vector_of(op_id)
    if isinstance(value, dict):
        return {k: _fill(v, op_id) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, op_id) for v in value]
    return value
