#!/usr/bin/env bash
# Runs the end-to-end gateway benchmark (benches/gateway/) and keeps its output.
#   bash scripts/bench.sh            # full run (~2.5 min after the release build)
#   BENCH_SMOKE=1 bash scripts/bench.sh   # CI smoke run (< 20 s after the build)
# Every BENCH_* variable documented at the top of benches/gateway/main.rs passes through.
# The last line of target/bench/latest.txt is the `BENCH_JSON {...}` summary;
# target/bench/latest.json holds it alone, for comparing runs.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target/bench
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs" >&2
cargo bench --bench gateway 2>&1 | tee target/bench/latest.txt
grep '^BENCH_JSON ' target/bench/latest.txt | sed 's/^BENCH_JSON //' > target/bench/latest.json
echo "summary: target/bench/latest.json" >&2
