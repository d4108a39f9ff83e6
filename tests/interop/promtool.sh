#!/usr/bin/env bash
# Lints a real Prometheus scrape with `promtool check metrics` (Debian package
# `prometheus`): starts `atlas-grpc-gateway dev` with its /metrics listener on free
# loopback ports, makes calls that fill every family a dev gateway records (token
# fetches ok and failed, cache hits, Digest challenges, an Atlas retry, errors,
# histograms), scrapes /metrics and fails on any promtool finding (a family without
# HELP, a counter without _total, ...) or on a family missing from the scrape; then
# `promtool check rules` on deploy/prometheus/alerts.yaml, whose metrics must be in the
# scrape.
# Run by tests/interop/run.sh (suite "promtool"; GATEWAY_BIN and GRPCURL set), or alone:
#   GRPCURL=target/interop-venv/bin/grpcurl bash tests/interop/promtool.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
GATEWAY_BIN="${GATEWAY_BIN:-$ROOT/target/debug/atlas-grpc-gateway}"
GRPCURL="${GRPCURL:-grpcurl}"
ORG="5f1a0c2b3d4e5f6a7b8c9d0e" # the emulator's demo org
SVC="atlas.gateway.v1.AtlasGateway"

fail() {
  echo "promtool suite: $*" >&2
  exit 1
}
command -v promtool >/dev/null || fail "promtool not found: apt-get install prometheus"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/atlas-promtool.XXXXXX")"
DEV_PID=""
finish() {
  local rc=$?
  if [[ -n "$DEV_PID" ]]; then
    kill -TERM "$DEV_PID" 2>/dev/null || true
    wait "$DEV_PID" 2>/dev/null || true
  fi
  [[ $rc -eq 0 ]] || tail -n 40 "$WORK/dev.log" >&2 || true
  rm -rf "$WORK"
  exit "$rc"
}
trap finish EXIT

# Port 0 for both listeners: the banner names the addresses dev bound.
"$GATEWAY_BIN" dev --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 >"$WORK/dev.log" 2>&1 &
DEV_PID=$!
# Waits (up to 60 s, for loaded machines) for the banner's last line, then for SERVING.
for _ in $(seq 1 600); do
  grep -q '^Ctrl-C to stop' "$WORK/dev.log" && break
  kill -0 "$DEV_PID" 2>/dev/null || fail "dev exited at start-up"
  sleep 0.1
done
# banner_field PATTERN SED: the first match of PATTERN in the banner, edited by SED.
banner_field() { grep -o "$1" "$WORK/dev.log" | head -n1 | sed "$2" || true; }
GRPC="$(banner_field 'gateway on 127\.0\.0\.1:[0-9]*' 's|^gateway on ||')"
METRICS="$(banner_field 'http://127\.0\.0\.1:[0-9]*/metrics' 's|^http://||; s|/metrics$||')"
EMULATOR="$(banner_field 'Atlas emulator on http://[0-9.:]*' 's|.* on ||')"
[[ -n "$GRPC" && -n "$METRICS" && -n "$EMULATOR" ]] || fail "the dev banner names no gateway, metrics or emulator address"
for _ in $(seq 1 600); do
  "$GATEWAY_BIN" healthcheck --addr "$GRPC" >/dev/null 2>&1 && break
  kill -0 "$DEV_PID" 2>/dev/null || fail "dev exited at start-up"
  sleep 0.1
done
"$GATEWAY_BIN" healthcheck --addr "$GRPC" >/dev/null || fail "dev did not become SERVING"

# rpc METHOD JSON [grpcurl flags]: RPC errors are part of the point, so only a failure
# to reach the gateway (grpcurl exit 1 or 2) fails the suite.
rpc() {
  local method="$1" json="$2" rc=0
  shift 2
  "$GRPCURL" -plaintext "$@" -d "$json" "$GRPC" "$SVC/$method" >/dev/null 2>&1 || rc=$?
  [[ $rc -eq 0 || $rc -ge 64 ]] || fail "grpcurl $method exited $rc"
}
fault() {
  python3 -c 'import sys, urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), method="POST", headers={"content-type": "application/json"}), timeout=5).read()' \
    "$EMULATOR/__emulator/faults" "$1"
}

rpc CreateLinkToken "{\"org_id\":\"$ORG\",\"access_list_ips\":[\"203.0.113.7\"]}"
# One 503 on the delete: the gateway retries it (atlas_gateway_upstream_retries_total).
fault '{"route":"delete_link_token","times":1,"action":{"kind":"error","status":503,"error_code":"SERVICE_UNAVAILABLE"}}'
rpc DeleteLinkToken "{\"org_id\":\"$ORG\"}"
rpc DeleteLinkToken "{\"org_id\":\"$ORG\"}" # NotFound
rpc CreateLinkToken '{"org_id":"not-an-org","access_list_ips":["bad"]}' # InvalidArgument
rpc CreateApiKey "{\"org_id\":\"$ORG\",\"desc\":\"digest\",\"roles\":[\"ORG_READ_ONLY\"]}" -H 'x-atlas-profile: apikey'
rpc ListApiKeys "{\"org_id\":\"$ORG\",\"page_size\":1}"
# A failed token request (another profile, so it has no token yet).
fault '{"route":"token","times":1,"action":{"kind":"error","status":500,"error_code":"UNEXPECTED_ERROR"}}'
rpc ListApiKeys "{\"org_id\":\"$ORG\"}" -H 'x-atlas-profile: readonly'

python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' \
  "http://$METRICS/metrics" >"$WORK/scrape.txt"
for family in calls_total call_duration_seconds in_flight_calls upstream_duration_seconds \
  upstream_retries_total token_fetches_total token_fetch_duration_seconds \
  token_cache_hits_total digest_challenges_total shared_store_errors_total \
  tls_handshake_failures_total build_info profile_ready; do
  grep -q "^# TYPE atlas_gateway_$family " "$WORK/scrape.txt" ||
    fail "atlas_gateway_$family is not in the scrape: the calls above no longer record it"
done
grep -q 'atlas_gateway_token_fetches_total{profile="readonly",outcome=' "$WORK/scrape.txt" ||
  fail "no token fetch of the readonly profile in the scrape"

if ! promtool check metrics <"$WORK/scrape.txt" >"$WORK/promtool.out" 2>&1 || [[ -s "$WORK/promtool.out" ]]; then
  cat "$WORK/promtool.out" >&2
  fail "promtool check metrics found problems in the scrape above"
fi
echo "promtool suite: $(grep -c '^# HELP' "$WORK/scrape.txt") metric families, promtool check metrics: no findings"

# The shipped alert rules: valid, and every metric they name is in the scrape.
RULES="$ROOT/deploy/prometheus/alerts.yaml"
promtool check rules "$RULES" || fail "promtool check rules $RULES"
for metric in $(grep -oE 'atlas_gateway_[a-z_]+' "$RULES" | sort -u); do
  grep -q "^$metric" "$WORK/scrape.txt" || fail "$RULES names $metric, which the scrape does not have"
done
echo "promtool suite: promtool check rules deploy/prometheus/alerts.yaml: ok"
