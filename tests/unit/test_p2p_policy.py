"""Who may reach the p2p port: the rule checked at startup, without sockets."""

from __future__ import annotations

import pytest

from qcluster.consensus.p2p_policy import check_p2p_security, is_loopback
from qcluster.errors import BadInputError
from qcluster.settings import ClusterSettings


def test_without_a_secret_only_loopback_uris_are_allowed() -> None:
    open_ = ClusterSettings(enabled=True)
    check_p2p_security(open_, ("uri", "http://127.0.0.1:6335"), ("bootstrap", "http://localhost:7000"))
    check_p2p_security(open_, ("uri", None), ("bootstrap", "http://[::1]:6335"))
    with pytest.raises(BadInputError) as info:
        check_p2p_security(open_, ("uri", "http://127.0.0.1:6335"), ("bootstrap", "http://10.0.0.7:6335"))
    assert info.value.field == "cluster.secret" and "bootstrap http://10.0.0.7:6335" in info.value.message


def test_a_secret_or_the_insecure_switch_allows_any_address() -> None:
    check_p2p_security(ClusterSettings(enabled=True, secret="s"), ("uri", "http://10.0.0.7:6335"))
    check_p2p_security(ClusterSettings(enabled=True, allow_insecure_p2p=True), ("uri", "http://node-1:6335"))


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("127.1.2.3") and is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("10.0.0.1") and not is_loopback("node-0") and not is_loopback("0.0.0.0")
