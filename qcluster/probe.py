"""``qcluster probe [livez|readyz|healthz]``: ask this peer's own health endpoint, for container
health checks (the slim image has no curl).

The address comes from the same settings the server reads (``--config-path`` and the
``QDRANT__``/``QCLUSTER__`` environment): ``service.http_port``, ``service.host`` (a wildcard bind
address is probed on loopback) and ``service.enable_tls``. Health paths need no API key. Exit
status 0 when the endpoint answers 200, 1 otherwise, with the reason on stderr.
"""

from __future__ import annotations

import argparse
import ssl
import sys
import urllib.error
import urllib.request
import warnings

from qcluster.settings import Settings, load_settings

PATHS = ("livez", "readyz", "healthz")
WILDCARDS = frozenset({"", "0.0.0.0", "::", "[::]"})


def probe_url(settings: Settings, path: str) -> str:
    svc = settings.service
    host = "127.0.0.1" if svc.host in WILDCARDS else svc.host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    scheme = "https" if svc.enable_tls else "http"
    return f"{scheme}://{host}:{svc.http_port}/{path}"


def _unverified() -> ssl.SSLContext:
    # The probe talks to its own process and sends no credentials: the status code is all it
    # reads, so the server certificate (issued for a public name) is not checked here.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def probe(url: str, timeout: float) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=_unverified()) as resp:
            body = resp.read(200).decode(errors="replace")
            return resp.status == 200, f"{resp.status} {body}"
    except urllib.error.HTTPError as exc:
        return False, f"{exc.code} {exc.read(200).decode(errors='replace')}"
    except OSError as exc:
        return False, str(exc)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="qcluster probe",
        description="Exit 0 when this peer's health endpoint answers 200 (container health checks).",
    )
    parser.add_argument("path", nargs="?", default="livez", choices=PATHS)
    parser.add_argument("--config-path", default=None, help="the server's YAML config file")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds (default 5)")
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unknown settings keys: the server itself reports them
        settings = load_settings(args.config_path)
    url = probe_url(settings, args.path)
    healthy, detail = probe(url, args.timeout)
    if not healthy:
        print(f"{url}: {detail}", file=sys.stderr)
        return 1
    return 0
