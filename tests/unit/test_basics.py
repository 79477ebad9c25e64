import numpy as np
import pytest

from qcluster.errors import BadInputError, CorruptedStorageError, TransientError, is_transient
from qcluster.settings import load_settings
from qcluster.shards.operations import (
    DeletePayload,
    NamedVectors,
    PointsBatch,
    PointSelector,
    UpsertPoints,
    decode_operation,
    encode_operation,
)
from qcluster.types import parse_point_id, point_id_sort_key


def test_point_ids() -> None:
    assert parse_point_id(5) == 5
    assert parse_point_id("5C56C793-69F3-4FBF-87E6-C4BF54C28C26") == "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"
    assert parse_point_id("5c56c79369f34fbf87e6c4bf54c28c26") == "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"
    for bad in (-1, 2**64, "nope", 1.5, True, None):
        with pytest.raises(BadInputError):
            parse_point_id(bad)
    assert sorted([("00000000-0000-0000-0000-000000000001"), 7], key=point_id_sort_key)[0] == 7


def test_operation_roundtrip() -> None:
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    op = UpsertPoints(
        PointsBatch((1, "x"), {"": NamedVectors(data, np.array([True, False]))}, ({"a": 1}, None))
    )
    back = decode_operation(encode_operation(op))
    assert isinstance(back, UpsertPoints)
    assert back.batch.ids == (1, "x")
    assert np.array_equal(back.batch.vectors[""].data, data)
    assert back.batch.vectors[""].present is not None and not back.batch.vectors[""].present[1]
    op2 = DeletePayload(PointSelector(ids=(3,)), ("k",))
    assert decode_operation(encode_operation(op2)) == op2
    with pytest.raises(CorruptedStorageError):
        decode_operation(b"\x05\x00\x00\x00{bad")


def test_settings_env_alias_and_precedence(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "c.yaml"
    cfg.write_text("service:\n  http_port: 7000\nstorage:\n  optimizers:\n    indexing_threshold_kb: 5\n")
    s = load_settings(cfg, env={"QDRANT__SERVICE__HTTP_PORT": "7001", "QDRANT__LOG_LEVEL": "debug,raft=warn"})
    assert s.service.http_port == 7001
    assert s.storage.optimizers.indexing_threshold_kb == 5
    assert s.log_level == "DEBUG"
    s = load_settings(
        None, env={"QDRANT__SERVICE__HTTP_PORT": "7001", "QCLUSTER__SERVICE__HTTP_PORT": "7002"}
    )
    assert s.service.http_port == 7002
    with pytest.warns(UserWarning, match="service.nonsense"):
        s = load_settings(None, env={"QDRANT__SERVICE__NONSENSE": "1"})
    assert s.service.http_port == 6333


def test_error_classification() -> None:
    assert is_transient(TransientError("x"))
    assert is_transient(ConnectionResetError())
    assert not is_transient(BadInputError("x"))
