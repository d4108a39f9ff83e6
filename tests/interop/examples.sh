#!/usr/bin/env bash
# The examples/ programs run as a newcomer would run them: examples/python is set up in a
# fresh venv from its own requirements.txt, with the commands docs/clients.md shows (the
# region below; tests/interop/snippets.py checks the two agree), then run against a `dev`
# process of its own: once with the demo org (must succeed), once with a malformed org id
# (must fail, printing the BadRequest field).
# Usage: bash tests/interop/examples.sh (env: GATEWAY_BIN, EXAMPLES_VENV, PYTHON);
# run by tests/interop/run.sh (suite "examples").
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"
GATEWAY_BIN="${GATEWAY_BIN:-$ROOT/target/debug/atlas-grpc-gateway}"
VENV="${EXAMPLES_VENV:-$ROOT/target/examples-venv}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/atlas-examples.XXXXXX")"
DEV_PID=""
cleanup() {
  if [[ -n "$DEV_PID" ]]; then kill -TERM "$DEV_PID" 2>/dev/null || true; wait "$DEV_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

"$GATEWAY_BIN" dev --listen 127.0.0.1:0 --metrics-listen off >"$WORK/dev.log" 2>&1 &
DEV_PID=$!
GATEWAY_ADDR=""
for _ in $(seq 1 100); do
  GATEWAY_ADDR="$(grep -o 'gateway on 127\.0\.0\.1:[0-9]*' "$WORK/dev.log" | head -n1 | cut -d' ' -f3 || true)"
  [[ -n "$GATEWAY_ADDR" ]] && "$GATEWAY_BIN" healthcheck --addr "$GATEWAY_ADDR" >/dev/null 2>&1 && break
  kill -0 "$DEV_PID" 2>/dev/null || { cat "$WORK/dev.log" >&2; exit 1; }
  sleep 0.1
done
export GATEWAY_ADDR

"${PYTHON:-python3}" -m venv "$VENV"
# shellcheck disable=SC1091
. "$VENV/bin/activate"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_QUIET=1
# docs:begin python-setup
pip install -r examples/python/requirements.txt
python -m grpc_tools.protoc -Iproto --python_out=examples/python/gen --grpc_python_out=examples/python/gen proto/atlas/gateway/v1/gateway.proto
python examples/python/create_api_key.py
# docs:end

out="$(python examples/python/create_api_key.py not-an-org)" && {
  echo "FAIL: create_api_key.py exited 0 for a malformed org id: $out" >&2
  exit 1
}
grep -q '^field: org_id ' <<<"$out" || {
  echo "FAIL: create_api_key.py printed no BadRequest field for a malformed org id: $out" >&2
  exit 1
}
echo "examples: examples/python/create_api_key.py ran as docs/clients.md says"
