#!/usr/bin/env bash
# Soak/load test of the release gateway against the in-process Atlas emulator.
# Everything runs on loopback and stops by itself after SOAK_SECONDS.
#
#   scripts/soak.sh                      # 60 s, 256 callers
#   SOAK_SECONDS=600 scripts/soak.sh     # the 10-minute soak
#   SOAK_CALLERS=512 scripts/soak.sh
#
# Builds the release binary and the example first (incremental), then runs
# examples/soak.rs, which prints per-window latency, outcomes, RSS and fd figures
# and exits non-zero when a check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export SOAK_SECONDS="${SOAK_SECONDS:-60}"
export SOAK_CALLERS="${SOAK_CALLERS:-256}"
cargo build --release --bin atlas-grpc-gateway
exec cargo run --release --example soak
