"""TLS on the p2p port (``cluster.p2p.enable_tls``, Qdrant's setting), with the certificate files of
the ``tls`` section: ``tls.cert`` / ``tls.key`` are this peer's identity, presented both as a server
and as a client; ``tls.ca_cert`` (optional) is the authority peers' certificates must chain to.
With a CA, the server also requires and verifies the client's certificate (mutual TLS), on top of
the shared-secret check; without one, peers trust the system roots.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

from qcluster.errors import BadInputError
from qcluster.settings import Settings


@dataclass(frozen=True, slots=True)
class P2pTls:
    cert: bytes
    key: bytes
    ca: bytes | None

    @classmethod
    def from_settings(cls, settings: Settings) -> P2pTls | None:
        """None when ``cluster.p2p.enable_tls`` is off; BadInputError naming a missing or
        unreadable file otherwise."""
        if not settings.cluster.p2p.enable_tls:
            return None
        tls = settings.tls
        return cls(
            _read(tls.cert, "tls.cert"),
            _read(tls.key, "tls.key"),
            _read(tls.ca_cert, "tls.ca_cert") if tls.ca_cert is not None else None,
        )

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.key, self.cert)], root_certificates=self.ca, require_client_auth=self.ca is not None
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca, private_key=self.key, certificate_chain=self.cert
        )


def _read(path: Path | None, field: str) -> bytes:
    if path is None:
        raise BadInputError(f"cluster.p2p.enable_tls needs {field}", field)
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise BadInputError(f"{field}: cannot read {path}: {exc.strerror}", field) from None
