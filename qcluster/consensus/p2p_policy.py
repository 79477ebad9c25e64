"""Who may reach the p2p port: with ``cluster.secret`` every call is authenticated; without one the
port listens on 127.0.0.1 only (node.py), so every peer URI must be a loopback one, unless
``cluster.allow_insecure_p2p`` is set, which is logged loudly."""

from __future__ import annotations

import ipaddress

from qcluster.errors import BadInputError
from qcluster.logging import get_logger
from qcluster.p2p.channels import parse_uri
from qcluster.settings import ClusterSettings

log = get_logger(__name__)


def check_p2p_security(settings: ClusterSettings, *uris: tuple[str, str | None], warn: bool = True) -> None:
    """``uris``: (field name, URI or None) pairs; BadInputError naming ``cluster.secret`` when a
    URI is off loopback and there is no secret. ``warn``: log what the setup allows (once)."""
    if settings.secret:
        return
    if settings.allow_insecure_p2p:
        if not warn:
            return
        log.warning(
            "INSECURE: cluster.allow_insecure_p2p is set and there is no cluster.secret; anyone "
            "who can reach the p2p port can act as a peer"
        )
        return
    for field_name, uri in uris:
        if uri is not None and not is_loopback(parse_uri(uri, field_name)[0]):
            raise BadInputError(
                f"{field_name} {uri} is not a loopback address: a cluster across machines needs "
                "cluster.secret (env QDRANT__CLUSTER__SECRET) to authenticate peers; without one "
                "the p2p port listens on 127.0.0.1 only (cluster.allow_insecure_p2p: true lifts "
                "this, insecurely)",
                "cluster.secret",
            )
    if warn:
        log.warning("no cluster.secret: the p2p port accepts unauthenticated peers on 127.0.0.1 only")


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
