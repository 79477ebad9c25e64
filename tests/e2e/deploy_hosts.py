"""Run what Docker Compose or Kubernetes would run, without either: the commands and environments
are read from ``deploy/`` (Dockerfile, docker-compose.yml, the k8s manifests), and each container
becomes a local process on a "host" of its own.

A host is a loopback address (``127.a.b.n``, chosen per test run) with the container's ports,
a directory standing for the image's working directory (its volumes are the same relative paths
inside it, so they outlive a restart of the process), and a private mount namespace whose
``/etc/hosts`` maps every container's DNS name (compose service names, the StatefulSet pods'
``<pod>.<headless service>.<namespace>.svc.cluster.local``) to its host's address, as the
container runtime's DNS would. The only setting the test adds is ``QDRANT__SERVICE__HOST``: a
container binds 0.0.0.0, which here is its host's own address.

Needs root (``unshare --mount``); the tests skip without it.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from qcluster.testing.server import ServerProcess

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
_MOUNT_HOSTS = 'mount --bind "$0" /etc/hosts && exec "$@"'


def namespaces_available() -> bool:
    if os.geteuid() != 0:
        return False
    try:
        done = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "true"], capture_output=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


# ----------------------------------------------------------------------------- the image


@dataclass(frozen=True)
class Image:
    """What the final stage of deploy/Dockerfile sets for a container."""

    env: dict[str, str]
    entrypoint: list[str]
    cmd: list[str]
    workdir: str
    volumes: list[str]
    exposed: set[int]
    user: str
    healthcheck: list[str]


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = text.replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def read_image(path: Path = DEPLOY / "Dockerfile") -> Image:
    steps = _instructions(path.read_text())
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    env: dict[str, str] = {}
    found: dict[str, Any] = {"workdir": "/", "user": "root", "volumes": [], "exposed": set()}
    for word, rest in steps[last_from + 1 :]:
        if word == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                env[key] = value
        elif word in ("ENTRYPOINT", "CMD"):
            found[word.lower()] = json.loads(rest)
        elif word == "WORKDIR":
            found["workdir"] = rest
        elif word == "USER":
            found["user"] = rest
        elif word == "VOLUME":
            found["volumes"] += json.loads(rest)
        elif word == "EXPOSE":
            found["exposed"] |= {int(p.split("/")[0]) for p in rest.split()}
        elif word == "HEALTHCHECK":
            found["healthcheck"] = json.loads(rest[rest.index("CMD") + 3 :].strip())
    return Image(env=env, **found)


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (compose env_file / kustomize envs); ``#`` comments and blanks skipped."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def secrets_from_example(path: Path) -> dict[str, str]:
    """The env file a user makes from ``<path>.example`` (placeholders replaced by random values),
    as the README tells them to."""
    example = read_env_file(path.with_name(path.name + ".example"))
    rng = random.SystemRandom()
    return {k: f"{rng.getrandbits(96):024x}" if v.startswith("change-me") else v for k, v in example.items()}


def qcluster_argv(argv: list[str]) -> list[str]:
    """The image's ``qcluster`` executable is this checkout's, run by this interpreter."""
    assert argv and argv[0] == "qcluster", argv
    return [sys.executable, "-m", "qcluster", *argv[1:]]


# ----------------------------------------------------------------------------- hosts


def loopback_block() -> str:
    """``127.a.b.`` for this run: runs of the test at the same time use different addresses."""
    rng = random.SystemRandom()
    return f"127.{rng.randrange(16, 250)}.{rng.randrange(1, 250)}."


@dataclass
class Container:
    """One container of a file: its DNS names, argv (image entrypoint resolved) and environment."""

    name: str
    dns_names: list[str]
    argv: list[str]
    env: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)  # port name (or number as text) -> port


class HostProcess(ServerProcess):
    """A container run as a process on its own loopback address, in its own mount namespace."""

    def __init__(self, root: Path, address: str, container: Container, hosts_file: Path) -> None:
        self.container = container
        self.hosts_file = hosts_file
        http_port = int(container.env.get("QDRANT__SERVICE__HTTP_PORT", "6333"))
        super().__init__(root, port=http_port, host=address)

    def command(self) -> list[str]:
        return self.in_namespace(qcluster_argv(self.container.argv))

    def in_namespace(self, argv: list[str]) -> list[str]:
        return [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            _MOUNT_HOSTS,
            str(self.hosts_file),
            *argv,
        ]

    def environment(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("QDRANT__", "QCLUSTER__"))}
        return {**base, **self.container.env, "QDRANT__SERVICE__HOST": self.host}

    def wait_ready_supervised(self, timeout: float, restarts: int = 5) -> int:
        """Wait until ``/readyz`` answers 200, starting the process again whenever it exits, as the
        orchestrator's restart policy does (compose ``restart: unless-stopped``, a pod's
        ``restartPolicy: Always``): a peer that could not join in time exits and is restarted.
        Returns how many restarts it took."""
        deadline = time.monotonic() + timeout
        count = 0
        while True:
            try:
                self.wait_ready(max(1.0, deadline - time.monotonic()))
                return count
            except RuntimeError:  # the process exited
                if count >= restarts or time.monotonic() >= deadline:
                    raise
                count += 1
                self.spawn()

    def exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def run_in_container(self, argv: list[str], timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run another command of the image (a health check) inside this host."""
        return subprocess.run(
            self.in_namespace(qcluster_argv(argv)),
            cwd=self.workdir,
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def make_hosts(root: Path, containers: list[Container]) -> list[HostProcess]:
    block = loopback_block()
    hosts_file = root / "hosts"
    lines = ["127.0.0.1 localhost"]
    for i, c in enumerate(containers, start=1):
        lines.append(f"{block}{i} {' '.join(c.dns_names)}")
    hosts_file.write_text("\n".join(lines) + "\n")
    return [
        HostProcess(root / c.name, f"{block}{i}", c, hosts_file) for i, c in enumerate(containers, start=1)
    ]


# ----------------------------------------------------------------------------- compose


def load_yaml(path: Path) -> Any:
    with path.open() as fh:
        return yaml.safe_load(fh)


def load_yaml_all(path: Path) -> list[Any]:
    with path.open() as fh:
        return [d for d in yaml.safe_load_all(fh) if d is not None]


def compose_containers(
    compose: dict[str, Any], image: Image, env_files: dict[str, dict[str, str]]
) -> list[Container]:
    """Every service built from deploy/Dockerfile (monitoring services are not ours to run), with
    compose's precedence: image ENV < env_file < environment; ``command`` replaces the image CMD."""
    out = []
    for name, svc in compose["services"].items():
        if "build" not in svc:
            continue
        env = dict(image.env)
        for ref in svc.get("env_file", []):
            env.update(env_files[ref if isinstance(ref, str) else ref["path"]])
        environment = svc.get("environment", {})
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) for item in environment)
        env.update({k: str(v) for k, v in environment.items()})
        argv = image.entrypoint + list(svc.get("command", image.cmd))
        dns = [name] + ([svc["hostname"]] if svc.get("hostname") and svc["hostname"] != name else [])
        out.append(Container(name=name, dns_names=dns, argv=argv, env=env))
    return out


# ----------------------------------------------------------------------------- kubernetes


def k8s_resources(folder: Path = DEPLOY / "k8s") -> dict[str, dict[str, Any]]:
    """``kind/name`` -> resource, for every file the kustomization lists."""
    kustomization = load_yaml(folder / "kustomization.yaml")
    out = {}
    for res in kustomization["resources"]:
        for doc in load_yaml_all(folder / res):
            out[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return out


def statefulset_pods(
    sts: dict[str, Any], image: Image, secrets: dict[str, dict[str, str]], namespace: str, domain: str
) -> list[Container]:
    """The pods of the StatefulSet: Kubernetes' precedence image ENV < envFrom < env; ``command``
    replaces the ENTRYPOINT (and then the image CMD is dropped), ``args`` the CMD."""
    (spec,) = sts["spec"]["template"]["spec"]["containers"]
    service = sts["spec"]["serviceName"]
    pods = []
    for ordinal in range(sts["spec"]["replicas"]):
        pod = f"{sts['metadata']['name']}-{ordinal}"
        fields = {"metadata.name": pod, "metadata.namespace": namespace}
        env = dict(image.env)
        for src in spec.get("envFrom", []):
            env.update(secrets[src["secretRef"]["name"]])
        for item in spec.get("env", []):
            if "value" in item:
                env[item["name"]] = str(item["value"])
            elif "fieldRef" in item["valueFrom"]:
                env[item["name"]] = fields[item["valueFrom"]["fieldRef"]["fieldPath"]]
            else:
                ref = item["valueFrom"]["secretKeyRef"]
                env[item["name"]] = secrets[ref["name"]][ref["key"]]
        if "command" in spec:
            argv = list(spec["command"]) + list(spec.get("args", []))
        else:
            argv = image.entrypoint + list(spec.get("args", image.cmd))
        ports = {p["name"]: p["containerPort"] for p in spec.get("ports", [])}
        dns = [f"{pod}.{service}.{namespace}.svc.{domain}", f"{pod}.{service}.{namespace}.svc", pod]
        pods.append(Container(name=pod, dns_names=dns, argv=argv, env=env, ports=ports))
    return pods


def wait_all_ready_supervised(hosts: list[HostProcess], timeout: float, restarts: int = 5) -> None:
    """Until every host's ``/readyz`` answers 200, starting again any host whose process exits, all
    at the same time, as an orchestrator's restart policy does for every container at once. (One
    host at a time is not enough: a joiner that became a Raft member and then exited holds the
    quorum of the others, and it must come back while another host is being waited for.)"""
    deadline = time.monotonic() + timeout
    count = {h.container.name: 0 for h in hosts}
    pending = list(hosts)
    while pending:
        for h in list(pending):
            if h.exited():
                if count[h.container.name] >= restarts:
                    raise RuntimeError(f"{h.container.name} exited {restarts + 1} times: {h.log_tail()}")
                count[h.container.name] += 1
                h.spawn()
            elif h.is_ready():
                pending.remove(h)
        if pending and time.monotonic() >= deadline:
            tails = "\n".join(f"--- {h.container.name}: {h.log_tail()}" for h in pending)
            raise TimeoutError(f"not ready in {timeout}s: {[h.container.name for h in pending]}\n{tails}")
        time.sleep(0.05)
