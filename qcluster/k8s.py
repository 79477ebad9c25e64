"""``qcluster k8s-entrypoint [serve flags]``: start a peer as a pod of a Kubernetes StatefulSet.

A StatefulSet gives every pod a stable name ``<set>-<ordinal>`` and, through its headless Service,
a stable DNS name ``<pod>.<service>.<namespace>.svc.<cluster domain>``. From those this entrypoint
derives the flags an operator would otherwise write per pod:

* ``--uri http://<pod dns name>:<p2p port>``: the address the other peers dial;
* ``--bootstrap http://<set>-0.<service>...:<p2p port>`` for every pod but pod 0, so pod 0 starts
  the cluster and the others join it (a join retries while pod 0 is not up yet, so the pods may
  start in parallel).

A pod that restarts finds its identity on its volume (``storage/raft/``): it keeps its peer id,
``--bootstrap`` is ignored and the URI is announced again. Scaling up starts pods with new ordinals,
which join through pod 0.

Environment (set by the manifest, see ``deploy/k8s/statefulset.yaml``): ``POD_NAME`` (downward
API; ``HOSTNAME`` otherwise), ``POD_NAMESPACE`` (default ``default``), ``QCLUSTER_K8S_SERVICE`` (the
headless Service), ``QCLUSTER_K8S_CLUSTER_DOMAIN`` (default ``cluster.local``). The p2p port is the
server's own setting (``cluster.p2p.port``, default 6335).
"""

from __future__ import annotations

import re
import sys
import warnings

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from qcluster.errors import BadInputError
from qcluster.settings import load_settings

_ORDINAL = re.compile(r"^(?P<set>[a-z0-9]([-a-z0-9]*[a-z0-9])?)-(?P<ordinal>\d+)$")


class PodEnv(BaseSettings):
    """What the pod knows about itself, from its environment."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, case_sensitive=True)

    pod_name: str = Field(validation_alias=AliasChoices("POD_NAME", "HOSTNAME"), min_length=1)
    namespace: str = Field("default", validation_alias="POD_NAMESPACE", min_length=1)
    service: str = Field(validation_alias="QCLUSTER_K8S_SERVICE", min_length=1)
    cluster_domain: str = Field("cluster.local", validation_alias="QCLUSTER_K8S_CLUSTER_DOMAIN", min_length=1)


def peer_args(pod: PodEnv, p2p_port: int) -> list[str]:
    """The ``serve`` flags of this pod: ``--uri`` always, ``--bootstrap`` for ordinals above 0."""
    match = _ORDINAL.match(pod.pod_name)
    if match is None:
        raise BadInputError(
            f"POD_NAME: {pod.pod_name!r} is not a StatefulSet pod name (<set>-<ordinal>)", "POD_NAME"
        )
    suffix = f"{pod.service}.{pod.namespace}.svc.{pod.cluster_domain}"
    args = ["--uri", f"http://{pod.pod_name}.{suffix}:{p2p_port}"]
    if int(match["ordinal"]) > 0:
        args += ["--bootstrap", f"http://{match['set']}-0.{suffix}:{p2p_port}"]
    return args


def pod_env() -> PodEnv:
    try:
        return PodEnv()
    except ValidationError as exc:
        missing = ", ".join(str(e["loc"][0]) for e in exc.errors())
        raise BadInputError(f"k8s-entrypoint: missing or empty environment: {missing}", missing) from None


def serve_argv(argv: list[str]) -> list[str]:
    """``serve`` with the derived flags and ``argv`` (further serve flags, e.g. ``--config-path``;
    an explicit ``--uri`` or ``--bootstrap`` there wins over the derived one)."""
    from qcluster.cli import build_parser

    given = build_parser().parse_args(["serve", *argv])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the server reports unknown keys itself
        settings = load_settings(given.config_path)
    derived = peer_args(pod_env(), settings.cluster.p2p.port)
    explicit = {"--uri": given.uri, "--bootstrap": given.bootstrap}
    extra: list[str] = []
    for flag, value in zip(derived[::2], derived[1::2], strict=True):
        if explicit[flag] is None:
            extra += [flag, value]
    return ["serve", *extra, *argv]


def main(argv: list[str]) -> int:
    from qcluster.cli import main as cli_main

    try:
        full = serve_argv(argv)
    except BadInputError as exc:
        print(f"cannot start: {exc.message}", file=sys.stderr)
        return 2
    print(f"k8s-entrypoint: qcluster {' '.join(full)}", file=sys.stderr)
    return cli_main(full)
