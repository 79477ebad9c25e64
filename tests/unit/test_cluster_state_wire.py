"""The strict codec that replaces pickle inside pysyncobj, and the snapshot image arithmetic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pysyncobj.node import Node

from qcluster.consensus import operations as ops
from qcluster.consensus import wire
from qcluster.consensus.bridge import DUMP_MAGIC, ApplyBridge, SnapshotImage, read_dump_file
from qcluster.consensus.op_codec import encode_op
from qcluster.consensus.state import ClusterState
from qcluster.errors import CorruptedStorageError

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | st.binary()
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.lists(inner, max_size=5).map(tuple)
        | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=5)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(values)
def test_roundtrip_keeps_values_and_types(value: Any) -> None:
    assert wire.loads(wire.dumps(value)) == value
    assert type(wire.loads(wire.dumps(value))) is type(value)


def test_pysyncobj_shapes() -> None:
    entry = (b"\x00command", 12, 3)
    message = {
        "type": "append_entries",
        "term": 3,
        "entries": [entry],
        "prevLogIdx": None,
        "serialized": None,
    }
    assert wire.loads(wire.dumps(message)) == message
    # membership commands carry a Node: it travels as its id
    assert wire.loads(wire.dumps(["add", "7", Node("7")])) == ["add", "7", "7"]
    assert wire.loads(wire.dumps(2**80)) == 2**80


@pytest.mark.parametrize(
    "data",
    [
        b"cos\nsystem\n(S'touch /tmp/x'\ntR.",  # a pickle
        b"\x80\x04\x95",  # a binary pickle header
        b"",
        b"Q\x01",  # magic only
        b"Q\x01s\xff\xff\xff\x7f",  # length beyond the data
        b"Q\x01l\xff\xff\xff\x0f",  # count beyond the data
        b"Q\x01NN",  # trailing bytes
        b"Q\x01Z",  # unknown tag
        b"Q\x01m\x01\x00\x00\x00TN",  # bool key
        b"Q\x01I\x03\x00\x00\x00abc",  # bad big integer
        b"Q\x01" + b"l\x01\x00\x00\x00" * 40 + b"N",  # nested too deeply
    ],
)
def test_rejects_anything_else(data: bytes) -> None:
    with pytest.raises(wire.WireError):
        wire.loads(data)


def test_refuses_to_encode_unknown_types() -> None:
    with pytest.raises(wire.WireError):
        wire.dumps({"x": object()})
    with pytest.raises(wire.WireError):
        wire.dumps({(1, 2): 3})


def test_install_replaces_pickle_in_pysyncobj() -> None:
    import pysyncobj.journal
    import pysyncobj.serializer
    import pysyncobj.syncobj

    wire.install()
    assert pysyncobj.syncobj.pickle is wire
    assert pysyncobj.serializer.pickle is wire
    assert pysyncobj.journal.loads is wire.loads


def test_dump_file_is_base_plus_tail_and_checked(tmp_path: Path) -> None:
    import asyncio

    loop = asyncio.new_event_loop()
    try:
        bridge = ApplyBridge(loop, lambda *a: None, lambda image: None)
        state = ClusterState()
        first = [ops.add_peer(5, "http://a:1"), ops.set_metadata("k", 1)]
        for i, op in enumerate(first, start=2):
            state.apply(op)
            bridge.committed(i, 1, encode_op(op))
        bridge.publish(3, state.to_bytes())  # the loop has caught up to index 3
        later = ops.set_metadata("k", 2)
        bridge.committed(5, 1, encode_op(later))
        state.apply(later)
        path = tmp_path / "dump.bin"
        bridge.write_dump(str(path), ((b"\x00x", 5, 1), (b"\x01", 4, 1), {Node("5"), Node("6")}))
        raw = read_dump_file(path)
        image = SnapshotImage(raw["index"], raw["base_index"], raw["base_state"], tuple(raw["tail"]))
        assert image.index == 5 and image.base_index == 3 and len(image.tail) == 1
        assert image.materialise() == state
        last, prev, cluster = bridge.read_dump(str(path))
        assert last == (b"\x00x", 5, 1) and prev == (b"\x01", 4, 1)
        assert cluster == {Node("5"), Node("6")}
        data = path.read_bytes()
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
        with pytest.raises(CorruptedStorageError, match="checksum"):
            read_dump_file(path)
        path.write_bytes(b"\x80\x02garbage")
        with pytest.raises(CorruptedStorageError):
            read_dump_file(path)
        assert DUMP_MAGIC not in b"\x80\x02garbage"
    finally:
        loop.close()
