"""deploy/ run as Docker Compose and Kubernetes would run it (see ``deploy_hosts``): the cluster
forms, a collection with replication_factor 2 is served, a restarted peer 0 / pod 0 rejoins as
itself, and the health checks and probes answer as the orchestrator expects."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qcluster.testing.peer_cluster import rest, wait_for

from .deploy_hosts import (
    DEPLOY,
    HostProcess,
    compose_containers,
    k8s_resources,
    load_yaml,
    make_hosts,
    namespaces_available,
    read_image,
    secrets_from_example,
    statefulset_pods,
    wait_all_ready_supervised,
)

pytestmark = pytest.mark.skipif(
    not namespaces_available(), reason="needs root and `unshare --mount` to give each host its /etc/hosts"
)


@pytest.fixture
def running() -> Iterator[list[HostProcess]]:
    hosts: list[HostProcess] = []
    yield hosts
    errors = []
    for h in reversed(hosts):
        try:
            h.stop()
        except Exception as exc:  # stop every host even if one fails
            errors.append(exc)
    if errors:
        raise errors[0]


def _cluster(host: HostProcess, key: str) -> dict[str, Any] | None:
    status, body = rest(host.url, "GET", "/cluster", timeout=5, headers={"api-key": key})
    return body["result"] if status == 200 else None


def _formed(hosts: list[HostProcess], key: str) -> dict[int, str]:
    """Every host lists every peer and they agree on a leader; returns peer id -> p2p URI."""

    def agreed() -> dict[int, str] | None:
        views = [_cluster(h, key) for h in hosts]
        if any(v is None or v["raft_info"]["leader"] is None for v in views):
            return None
        if len({v["raft_info"]["leader"] for v in views if v}) != 1:
            return None
        peers = [{int(p): info["uri"] for p, info in v["peers"].items()} for v in views if v]
        if any(len(p) != len(hosts) or p != peers[0] for p in peers):
            return None
        return peers[0]

    return dict(wait_for(agreed, 90, f"{len(hosts)} peers agreeing on membership and a leader", every=0.2))


def _serve_rf2_collection(hosts: list[HostProcess], key: str) -> None:
    """Create a collection with replication_factor 2 through one host; every host knows it and
    places two replicas per shard; points written through a host are found through it."""
    auth = {"api-key": key}
    body = {"vectors": {"size": 4, "distance": "Cosine"}, "shard_number": 2, "replication_factor": 2}
    status, answer = rest(hosts[1].url, "PUT", "/collections/deployed", body, headers=auth)
    assert status == 200, answer
    for h in hosts:
        wait_for(
            lambda h=h: rest(h.url, "GET", "/collections/deployed", headers=auth)[0] == 200,
            30,
            h.container.name,
        )
    status, info = rest(hosts[0].url, "GET", "/collections/deployed/cluster", headers=auth)
    assert status == 200, info
    replicas: dict[int, set[int]] = {}
    res = info["result"]
    for shard in res["local_shards"]:
        replicas.setdefault(shard["shard_id"], set()).add(res["peer_id"])
    for shard in res["remote_shards"]:
        replicas.setdefault(shard["shard_id"], set()).add(shard["peer_id"])
    assert sorted(replicas) == [0, 1] and all(len(p) == 2 for p in replicas.values()), replicas
    points = [{"id": i, "vector": [1.0, float(i), 0.5, -0.25], "payload": {"n": i}} for i in range(1, 21)]
    writer = hosts[2]
    status, answer = rest(
        writer.url, "PUT", "/collections/deployed/points?wait=true", {"points": points}, headers=auth
    )
    assert status == 200, answer
    status, found = rest(
        writer.url,
        "POST",
        "/collections/deployed/points/query",
        {"query": [1.0, 7.0, 0.5, -0.25], "limit": 1},
        headers=auth,
    )
    assert status == 200 and found["result"]["points"][0]["id"] == 7, found
    # the API key the files configure is enforced
    assert rest(writer.url, "GET", "/collections/deployed")[0] == 401


def _restart_first_and_rejoin(hosts: list[HostProcess], key: str, peers: dict[int, str]) -> None:
    """Stop host 0 (SIGTERM, as an orchestrator does), start the same command again: it comes back
    with the same peer id and URI, the others kept serving meanwhile."""
    first = hosts[0]
    my_id = int(wait_for(lambda: _cluster(first, key), 10, "host 0 /cluster")["peer_id"])
    first.stop()
    for h in hosts[1:]:  # two of three keep the quorum: still ready
        wait_for(lambda h=h: rest(h.url, "GET", "/readyz")[0] == 200, 30, f"{h.container.name} ready")
    first.spawn()
    first.wait_ready_supervised(120)
    assert _formed(hosts, key) == peers
    assert int(_cluster(first, key)["peer_id"]) == my_id  # type: ignore[index]


def test_compose_cluster(tmp_path: Path, running: list[HostProcess]) -> None:
    image = read_image()
    compose = load_yaml(DEPLOY / "docker-compose.yml")
    env_files = {}
    for svc in compose["services"].values():
        for ref in svc.get("env_file", []):
            name = ref if isinstance(ref, str) else ref["path"]
            env_files.setdefault(name, secrets_from_example(DEPLOY / name))
    containers = compose_containers(compose, image, env_files)
    assert [c.name for c in containers] == ["qcluster-0", "qcluster-1", "qcluster-2"]
    hosts = make_hosts(tmp_path, containers)
    for name in compose["services"]:
        if "build" in compose["services"][name]:
            assert compose["services"][name]["restart"] == "unless-stopped"
    for h in hosts:  # as `docker compose up` does: all at once, the joiners retry until peer 0 is up
        running.append(h.spawn())
    wait_all_ready_supervised(hosts, 180)
    key = containers[0].env["QDRANT__SERVICE__API_KEY"]
    peers = _formed(hosts, key)
    assert sorted(peers.values()) == [f"http://{c.name}:6335" for c in containers]
    for h in hosts:
        check = compose["services"][h.container.name]["healthcheck"]["test"]
        assert check[0] == "CMD"
        done = h.run_in_container(check[1:])
        assert done.returncode == 0, done.stderr
        image_check = h.run_in_container(image.healthcheck)
        assert image_check.returncode == 0, image_check.stderr
    _serve_rf2_collection(hosts, key)
    _restart_first_and_rejoin(hosts, key, peers)


def _probe(host: HostProcess, probe: dict[str, Any]) -> int:
    get = probe["httpGet"]
    port = get["port"]
    number = host.container.ports[port] if isinstance(port, str) else int(port)
    assert number == host.port
    return rest(f"http://{host.host}:{number}", "GET", get["path"], timeout=probe.get("timeoutSeconds", 1))[0]


def test_kubernetes_statefulset(tmp_path: Path, running: list[HostProcess]) -> None:
    image = read_image()
    resources = k8s_resources()
    sts = resources["StatefulSet/qcluster"]
    kustomization = load_yaml(DEPLOY / "k8s" / "kustomization.yaml")
    secrets = {
        gen["name"]: {
            k: v for env in gen["envs"] for k, v in secrets_from_example(DEPLOY / "k8s" / env).items()
        }
        for gen in kustomization["secretGenerator"]
    }
    pods = statefulset_pods(sts, image, secrets, namespace="default", domain="cluster.local")
    assert [p.name for p in pods] == ["qcluster-0", "qcluster-1", "qcluster-2"]
    hosts = make_hosts(tmp_path, pods)
    (spec,) = sts["spec"]["template"]["spec"]["containers"]
    for h in hosts:  # podManagementPolicy: Parallel
        running.append(h.spawn())
    # the startup and liveness probes pass while the pod may still be joining
    for h in hosts:
        wait_for(lambda h=h: _probe(h, spec["startupProbe"]) == 200, 60, f"{h.container.name} startup probe")
    assert sts["spec"]["template"]["spec"].get("restartPolicy", "Always") == "Always"
    wait_all_ready_supervised(hosts, 180)
    key = pods[0].env["QDRANT__SERVICE__API_KEY"]
    peers = _formed(hosts, key)
    service = sts["spec"]["serviceName"]
    assert sorted(peers.values()) == [
        f"http://{p.name}.{service}.default.svc.cluster.local:6335" for p in pods
    ]
    for h in hosts:
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert _probe(h, spec[kind]) == 200, (h.container.name, kind)
    _serve_rf2_collection(hosts, key)
    _restart_first_and_rejoin(hosts, key, peers)
    for kind in ("livenessProbe", "readinessProbe"):
        assert _probe(hosts[0], spec[kind]) == 200, kind
