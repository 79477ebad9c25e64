"""deploy/ files: the compose file against the Compose specification schema (check-jsonschema's
bundled copy), the Kubernetes manifests against Kubernetes' own schemas (kubernetes-validate's
bundled copies, strict: unknown fields fail) for the newest version it carries; both offline. Then
what the schemas cannot say: the probes, ports, selectors and volumes the deployment relies on."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from tests.e2e.deploy_hosts import (
    DEPLOY,
    k8s_resources,
    load_yaml,
    load_yaml_all,
    read_env_file,
    read_image,
    secrets_from_example,
)

K8S = DEPLOY / "k8s"


def _check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    assert exe is not None, "check-jsonschema is a test dependency (pyproject.toml)"
    return subprocess.run(
        [exe, "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_compose_file_matches_the_compose_specification(tmp_path: Path) -> None:
    done = _check_jsonschema(DEPLOY / "docker-compose.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    # the validator does reject a wrong file
    broken = tmp_path / "docker-compose.yml"
    broken.write_text((DEPLOY / "docker-compose.yml").read_text().replace("stop_grace_period", "stop_grace"))
    assert _check_jsonschema(broken).returncode != 0


def _k8s_docs() -> list[tuple[str, dict[str, Any]]]:
    kustomization = load_yaml(K8S / "kustomization.yaml")
    return [(res, doc) for res in kustomization["resources"] for doc in load_yaml_all(K8S / res)]


def test_manifests_match_the_kubernetes_schemas() -> None:
    version = kubernetes_validate.latest_version()
    docs = _k8s_docs()
    assert {doc["kind"] for _, doc in docs} == {"StatefulSet", "Service", "PodDisruptionBudget"}
    for res, doc in docs:
        assert kubernetes_validate.validate(doc, version, strict=True), res
    # what the secretGenerator makes from secret.env
    (gen,) = load_yaml(K8S / "kustomization.yaml")["secretGenerator"]
    data = {k: v for env in gen["envs"] for k, v in secrets_from_example(K8S / env).items()}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": gen["name"]}, "stringData": data}
    kubernetes_validate.validate(secret, version, strict=True)
    # and it rejects a misspelt field
    (sts,) = [doc for _, doc in docs if doc["kind"] == "StatefulSet"]
    wrong = {**sts, "spec": {**sts["spec"], "podManagmentPolicy": "Parallel"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong, version, strict=True)


def test_every_manifest_file_is_in_the_kustomization() -> None:
    listed = set(load_yaml(K8S / "kustomization.yaml")["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


def test_statefulset_shape() -> None:
    res = k8s_resources()
    sts = res["StatefulSet/qcluster"]["spec"]
    pod = sts["template"]["spec"]
    (box,) = pod["containers"]
    labels = sts["template"]["metadata"]["labels"]
    assert sts["podManagementPolicy"] == "Parallel"
    assert sts["selector"]["matchLabels"].items() <= labels.items()
    assert box["command"][:2] == ["qcluster", "k8s-entrypoint"]
    assert pod["terminationGracePeriodSeconds"] >= 60
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert {p["name"]: p["containerPort"] for p in box["ports"]} == {"http": 6333, "grpc": 6334, "p2p": 6335}
    assert box["startupProbe"]["httpGet"]["path"] == "/livez"
    assert box["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert box["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert box["resources"]["requests"].keys() >= {"cpu", "memory"}
    mounts = {m["name"]: m["mountPath"] for m in box["volumeMounts"]}
    claims = {c["metadata"]["name"] for c in sts["volumeClaimTemplates"]}
    assert mounts == {"storage": "/qdrant/storage", "snapshots": "/qdrant/snapshots"} and claims == set(
        mounts
    )
    env = {e["name"] for e in box["env"]}
    assert {"POD_NAME", "POD_NAMESPACE", "QCLUSTER_K8S_SERVICE", "QDRANT__CLUSTER__ENABLED"} <= env
    (gen,) = load_yaml(K8S / "kustomization.yaml")["secretGenerator"]
    assert box["envFrom"] == [{"secretRef": {"name": gen["name"]}}]
    assert "QDRANT__CLUSTER__SECRET" in read_env_file(K8S / "secret.env.example")


def test_services_and_budget() -> None:
    res = k8s_resources()
    sts = res["StatefulSet/qcluster"]["spec"]
    labels = sts["template"]["metadata"]["labels"]
    headless = res[f"Service/{sts['serviceName']}"]["spec"]
    client = res["Service/qcluster"]["spec"]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True
    assert 6335 in {p["port"] for p in headless["ports"]}
    assert {p["port"] for p in client["ports"]} == {6333, 6334}  # no p2p for clients
    assert not client.get("publishNotReadyAddresses", False)
    for svc in (headless, client):
        assert svc["selector"].items() <= labels.items()
    pdb = res["PodDisruptionBudget/qcluster"]["spec"]
    assert pdb["maxUnavailable"] == 1 and pdb["selector"]["matchLabels"].items() <= labels.items()


def test_image_and_compose_agree() -> None:
    image = read_image()
    assert image.user not in ("root", "0", "0:0")
    assert image.workdir == "/qdrant"
    assert set(image.volumes) == {"/qdrant/storage", "/qdrant/snapshots"}
    assert image.exposed == {6333, 6334, 6335}
    assert image.entrypoint == ["qcluster"] and image.healthcheck == ["qcluster", "probe", "livez"]
    compose = load_yaml(DEPLOY / "docker-compose.yml")
    peers = {n: s for n, s in compose["services"].items() if "build" in s}
    assert len(peers) == 3
    first, *others = peers
    assert peers[first]["command"][:2] == ["serve", "--uri"]
    for name in others:
        cmd = peers[name]["command"]
        assert cmd[cmd.index("--bootstrap") + 1] == f"http://{first}:6335"
    for svc in peers.values():
        assert svc["env_file"] == ["cluster.env"]
        assert svc["environment"]["QDRANT__CLUSTER__ENABLED"] == "true"
        targets = {v.split(":")[1] for v in svc["volumes"]}
        assert targets == set(image.volumes)  # named volumes over the image's volumes
        assert svc["healthcheck"]["test"][0] == "CMD"
    assert compose["services"]["prometheus"]["profiles"] == ["monitoring"]
    assert "QDRANT__CLUSTER__SECRET" in read_env_file(DEPLOY / "cluster.env.example")
