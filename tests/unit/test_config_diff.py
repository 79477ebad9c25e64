"""Config diffs carried by UpdateCollection: only changed keys, and merging them back is exact."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from qcluster.json_diff import config_diff, deep_merge

_leaf = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=3))
_config = st.recursive(
    st.dictionaries(st.sampled_from("abcd"), _leaf, max_size=4),
    lambda inner: st.dictionaries(st.sampled_from("abcd"), st.one_of(_leaf, inner), max_size=4),
    max_leaves=12,
)


def test_diff_holds_only_changed_keys() -> None:
    old = {
        "params": {"shard_number": 3, "on_disk_payload": True},
        "hnsw_config": {"m": 16, "ef_construct": 100},
    }
    new = {
        "params": {"shard_number": 3, "on_disk_payload": False},
        "hnsw_config": {"m": 16, "ef_construct": 100},
    }
    assert config_diff(old, new) == {"params": {"on_disk_payload": False}}
    assert config_diff(old, old) == {}
    # a key set to None is a change (quantization switched off)
    assert config_diff({"q": {"scalar": {}}}, {"q": None}) == {"q": None}


@given(_config, _config)
def test_merging_the_diff_gives_the_new_config(old: dict[str, Any], new: dict[str, Any]) -> None:
    merged = deep_merge(old, config_diff(old, new))
    for key, value in new.items():
        assert merged[key] == value or (
            isinstance(value, dict) and deep_merge(merged[key], value) == merged[key]
        )
