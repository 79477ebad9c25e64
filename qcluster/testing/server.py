"""Start a real ``qcluster serve`` subprocess on free loopback ports, for e2e tests and benchmarks."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

# Every process started here and not yet stopped: killed when the interpreter exits, so a test that
# dies half-way (or a pytest run that is interrupted) leaves no peer running in the background.
_LIVE: set[ServerProcess] = set()


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_LIVE):
        server.kill9()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _insecure() -> ssl.SSLContext:
    """Readiness polling only: the test's own self-signed certificate is not verified here."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class ServerProcess:
    def __init__(
        self,
        workdir: Path,
        env: dict[str, str] | None = None,
        port: int | None = None,
        scheme: str = "http",
        args: list[str] | None = None,
        host: str = "127.0.0.1",
        prefix: list[str] | None = None,
    ):
        """``host``: the address the server is reached at (and binds, unless ``env`` sets
        ``QDRANT__SERVICE__HOST``); ``prefix``: a command the server runs under, e.g.
        ``["ip", "netns", "exec", NAME]`` (it must exec the server, so its pid is the server's)."""
        self.workdir = workdir
        self.scheme = scheme
        self.host = host
        self.prefix = list(prefix or [])
        self.args = list(args or [])
        self.port = port or free_port()
        self.extra_env = env or {}
        # Qdrant's public gRPC port: a free one too, so peers never contend for 6334.
        self.grpc_port = int(self.extra_env.get("QDRANT__SERVICE__GRPC_PORT") or free_port())
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> ServerProcess:
        """Spawn the process and wait until ``/readyz`` answers 200."""
        self.spawn()
        self.wait_ready(timeout)
        return self

    def spawn(self) -> ServerProcess:
        """Start the process without waiting (a cluster peer restarted alone cannot be ready until
        enough of its peers are back)."""
        self.kill9()  # never lose track of a process this object started
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "server.log", "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            self.command(),
            cwd=self.workdir,
            env=self.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        _LIVE.add(self)
        return self

    def command(self) -> list[str]:
        """The process's argv (a subclass may run it differently, e.g. in another namespace)."""
        return [*self.prefix, sys.executable, "-m", "qcluster", "serve", *self.args]

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "QDRANT__SERVICE__HTTP_PORT": str(self.port),
            "QDRANT__SERVICE__GRPC_PORT": str(self.grpc_port),
            "QDRANT__SERVICE__HOST": self.host,
            "QDRANT__LOG_LEVEL": "WARNING",
            **self.extra_env,
        }

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log_tail()}")
            if self.is_ready():
                return
            time.sleep(0.05)
        raise TimeoutError(f"server not ready in {timeout}s: {self.log_tail()}")

    def is_ready(self) -> bool:
        """One probe: ``/readyz`` answers 200."""
        try:
            with urllib.request.urlopen(self.url + "/readyz", timeout=1, context=_insecure()) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def log_tail(self) -> str:
        path = self.workdir / "server.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        _LIVE.discard(self)

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            _LIVE.discard(self)
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout)
        self.kill9()
