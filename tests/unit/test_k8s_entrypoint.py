"""``qcluster k8s-entrypoint`` derives the serve flags from the pod's environment, and
``qcluster probe`` finds the peer's own health endpoint from the server's settings (pure logic)."""

from __future__ import annotations

import pytest

from qcluster.errors import BadInputError
from qcluster.k8s import PodEnv, peer_args, serve_argv
from qcluster.probe import probe_url
from qcluster.settings import load_settings

DNS = "qc-headless.vectors.svc.cluster.local"


def _pod(name: str) -> PodEnv:
    return PodEnv.model_validate(
        {"POD_NAME": name, "POD_NAMESPACE": "vectors", "QCLUSTER_K8S_SERVICE": "qc-headless"}
    )


def test_pod_zero_starts_the_cluster() -> None:
    assert peer_args(_pod("qcluster-0"), 6335) == ["--uri", f"http://qcluster-0.{DNS}:6335"]


def test_other_pods_bootstrap_from_pod_zero() -> None:
    assert peer_args(_pod("my-db-12"), 7000) == [
        "--uri",
        f"http://my-db-12.{DNS}:7000",
        "--bootstrap",
        f"http://my-db-0.{DNS}:7000",
    ]


@pytest.mark.parametrize("name", ["qcluster", "qcluster-", "Qcluster-1", "qcluster-x"])
def test_a_name_that_is_not_a_statefulset_pod_is_refused(name: str) -> None:
    with pytest.raises(BadInputError) as exc:
        peer_args(_pod(name), 6335)
    assert exc.value.field == "POD_NAME"


def test_serve_argv_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAME", "qcluster-2")
    monkeypatch.setenv("QCLUSTER_K8S_SERVICE", "h")
    monkeypatch.delenv("POD_NAMESPACE", raising=False)
    monkeypatch.setenv("QDRANT__CLUSTER__P2P__PORT", "6400")
    assert serve_argv([]) == [
        "serve",
        "--uri",
        "http://qcluster-2.h.default.svc.cluster.local:6400",
        "--bootstrap",
        "http://qcluster-0.h.default.svc.cluster.local:6400",
    ]
    # an explicit flag wins over the derived one
    assert serve_argv(["--uri", "http://me:1"]) == [
        "serve",
        "--bootstrap",
        "http://qcluster-0.h.default.svc.cluster.local:6400",
        "--uri",
        "http://me:1",
    ]


def test_serve_argv_needs_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAME", "qcluster-0")
    monkeypatch.delenv("QCLUSTER_K8S_SERVICE", raising=False)
    with pytest.raises(BadInputError, match="QCLUSTER_K8S_SERVICE"):
        serve_argv([])


def test_probe_url_follows_the_server_settings() -> None:
    assert probe_url(load_settings(env={}), "livez") == "http://127.0.0.1:6333/livez"
    env = {"QDRANT__SERVICE__HOST": "10.1.2.3", "QDRANT__SERVICE__HTTP_PORT": "7000"}
    assert probe_url(load_settings(env=env), "readyz") == "http://10.1.2.3:7000/readyz"
    env = {"QDRANT__SERVICE__HOST": "::", "QDRANT__SERVICE__ENABLE_TLS": "true"}
    assert probe_url(load_settings(env=env), "healthz") == "https://127.0.0.1:6333/healthz"
    env = {"QDRANT__SERVICE__HOST": "::1"}
    assert probe_url(load_settings(env=env), "livez") == "http://[::1]:6333/livez"
