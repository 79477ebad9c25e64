#!/usr/bin/env bash
# Run Qdrant's own REST test suite (tests/openapi) against a fresh qcluster peer.
#
#   scripts/qdrant_suite.sh QDRANT_CHECKOUT [pytest args...]
#
# QDRANT_CHECKOUT: a checkout of qdrant/qdrant (git clone --branch v1.19.0
# https://github.com/qdrant/qdrant), or a bare git dir of it (its tests/ and docs/redoc/ are
# unpacked into a scratch folder). Nothing is downloaded: the suite's Python dependencies come from
# the `suite` extra of this package (`make qdrant-suite` installs them into .venv-suite).
# Tests listed in tests/qdrant_suite_skips.txt are skipped with their reason. Extra pytest args
# (e.g. openapi/test_sparse_idf.py, -k name, -x) narrow the run.
# Env: QC_SUITE_PYTHON (default .venv-suite/bin/python), QC_SUITE_TIMEOUT (per test, default 120 s).
set -euo pipefail
src="${1:?usage: scripts/qdrant_suite.sh QDRANT_CHECKOUT [pytest args...]}"; shift
repo="$(cd "$(dirname "$0")/.." && pwd)"
py="${QC_SUITE_PYTHON:-$repo/.venv-suite/bin/python}"
[ -x "$py" ] || { echo "$py not found: run 'make qdrant-suite' or set QC_SUITE_PYTHON" >&2; exit 2; }
py="$(cd "$(dirname "$py")" && pwd)/$(basename "$py")"
scratch="$(mktemp -d "${TMPDIR:-/tmp}/qc-suite.XXXXXX")"
peer_pid=""
cleanup() {
  if [ -n "$peer_pid" ]; then kill "$peer_pid" 2>/dev/null || true; wait "$peer_pid" 2>/dev/null || true; fi
  rm -rf "$scratch"
}
trap cleanup EXIT

if [ -d "$src/tests/openapi" ]; then
  root="$(cd "$src" && pwd)"
elif git --git-dir="$src" rev-parse --verify -q HEAD >/dev/null 2>&1; then
  root="$scratch/qdrant"; mkdir -p "$root"
  git --git-dir="$src" archive HEAD tests/openapi docs/redoc/master | tar -x -C "$root"
else
  echo "$src: neither a checkout with tests/openapi nor a git dir of qdrant/qdrant" >&2; exit 2
fi

"$py" -c "import schemathesis, pytest_timeout, retry, jsons" 2>/dev/null || {
  echo "$py lacks the suite's dependencies: run 'make qdrant-suite' or pip install -e '.[suite]'" >&2; exit 2; }

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port_free() { "$py" -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null; }
http_port="$(free_port)"
# the suite's qdrant-client cases (test_stopwords.py) reach gRPC on its default port
if port_free 6334; then grpc_port=6334; else grpc_port="$(free_port)"; fi
mkdir -p "$scratch/peer"
( cd "$scratch/peer" && QDRANT__SERVICE__HTTP_PORT="$http_port" QDRANT__SERVICE__GRPC_PORT="$grpc_port" \
    QDRANT__LOG_LEVEL=WARNING exec "$py" -m qcluster serve ) >"$scratch/peer.log" 2>&1 &
peer_pid=$!
if "$py" - "$http_port" "$peer_pid" <<'PY'
import sys, time, urllib.request, os
port, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("qcluster peer exited during start-up")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
            if r.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.2)
sys.exit("qcluster peer not ready within 60 s")
PY
then :; else tail -30 "$scratch/peer.log" >&2; exit 1; fi
echo "qcluster peer on http://127.0.0.1:$http_port (log: $scratch/peer.log while running)"

cd "$root/tests"
targets=(openapi)  # test files given as arguments (openapi/test_x.py...) replace the whole suite
for a in "$@"; do case "$a" in openapi/*) targets=() ;; esac; done
set +e
QDRANT_HOST="http://127.0.0.1:$http_port" QC_SUITE_SKIPS="$repo/tests/qdrant_suite_skips.txt" \
  PYTHONPATH="$repo/scripts${PYTHONPATH:+:$PYTHONPATH}" \
  "$py" -m pytest "${targets[@]}" -p qdrant_suite_plugin -p no:cacheprovider -q -W ignore::DeprecationWarning --timeout "${QC_SUITE_TIMEOUT:-120}" \
  -o addopts="" "$@"
rc=$?
set -e
if ! kill -0 "$peer_pid" 2>/dev/null; then
  echo "qcluster peer died during the run; last log lines:" >&2; tail -30 "$scratch/peer.log" >&2; rc=1
fi
exit $rc
