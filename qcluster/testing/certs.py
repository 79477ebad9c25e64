"""Throw-away certificates for TLS tests, made with the ``openssl`` command line (tests skip when it
is missing). Every certificate names 127.0.0.1 in its subjectAltName and lives one day."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SAN = "subjectAltName=IP:127.0.0.1"


def have_openssl() -> bool:
    return shutil.which("openssl") is not None


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _new_key_cert(key: Path, out: Path, subject: str, *extra: str) -> None:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(out),
             "-days", "1", "-subj", subject, *extra)  # fmt: skip


def self_signed(d: Path) -> tuple[Path, Path]:
    """(cert, key) of a self-signed certificate for 127.0.0.1."""
    d.mkdir(parents=True, exist_ok=True)
    cert, key = d / "cert.pem", d / "key.pem"
    _new_key_cert(key, cert, "/CN=127.0.0.1", "-addext", SAN)
    return cert, key


def ca_signed(d: Path) -> tuple[Path, Path, Path]:
    """(ca, cert, key): a test CA and a certificate for 127.0.0.1 it signed."""
    d.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert, ext = (
        d / n for n in ("ca.key", "ca.pem", "peer.key", "peer.csr", "peer.pem", "ext")
    )
    _new_key_cert(ca_key, ca, "/CN=qcluster-test-ca")
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(csr),
        "-subj",
        "/CN=127.0.0.1",
    )
    ext.write_text(SAN + "\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
             "-out", str(cert), "-days", "1", "-extfile", str(ext))  # fmt: skip
    return ca, cert, key
