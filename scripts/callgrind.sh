#!/usr/bin/env bash
# Instructions per call of the floor and of the gateway (shipped defaults, log to a file),
# counted by valgrind's callgrind: deterministic, so immune to a noisy machine, and good
# for the before/after of one change.
#
#   bash scripts/callgrind.sh                 # 16 callers, 40 and 140 calls per caller
#   CALLERS=1 bash scripts/callgrind.sh       # one caller (no batching in h2 or the log)
#   BENCH_GATEWAY_BIN=/path/to/other/build bash scripts/callgrind.sh   # another build
#   BENCH_EXE=/path/to/bench/binary OUT=target/callgrind-base bash scripts/callgrind.sh
#       # a bench binary kept from an earlier build (no cargo build; with BENCH_GATEWAY_BIN)
#
# Each server runs twice under callgrind (N1 and N2 calls per caller); instructions per
# call = (Ir(N2) - Ir(N1)) / ((N2 - N1) * callers), so start-up and shutdown cancel out.
# The N2 profiles stay in target/callgrind/ (callgrind_annotate --inclusive=yes FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
CALLERS=${CALLERS:-16}
N1=${N1:-40}
N2=${N2:-140}
out=${OUT:-target/callgrind}
rm -rf "$out" && mkdir -p "$out"
bench() {
  if [ -n "${BENCH_EXE:-}" ]; then "$BENCH_EXE" --bench; else cargo bench --bench gateway; fi
}
[ -n "${BENCH_EXE:-}" ] || cargo bench --bench gateway --no-run 2>/dev/null
run() { # $1 = calls per caller; prints "kind pid" lines
  BENCH_CHILD_WRAPPER="valgrind --tool=callgrind --callgrind-out-file=$PWD/$out/$1.%p.out" \
  BENCH_CALLS_PER_CALLER=$1 BENCH_CONCURRENCY=$CALLERS BENCH_MATRIX=0 BENCH_MEMORY=0 \
  BENCH_FLOOR_DOCKER=0 BENCH_SHARED_STORE=0 BENCH_FLOOR_ROUNDS=1 BENCH_STARTUP_RUNS=1 \
    bench 2>/dev/null | tee "$out/bench-$1.txt" \
    | sed -n 's/^(wrapped child pid \([0-9]*\) .*/\1/p'
}
total() { # total Ir of a callgrind output file
  grep -m1 '^summary:' "$1" | awk '{print $2}'
}
mapfile -t p1 < <(run "$N1")
mapfile -t p2 < <(run "$N2")
# Spawn order: the start-up gateway, then the floor, then the gateway under test.
calls=$(( (N2 - N1) * CALLERS ))
for i in 1 2; do
  name=$([ "$i" = 1 ] && echo floor || echo gateway)
  a=$(total "$out/$N1.${p1[$i]}.out")
  b=$(total "$out/$N2.${p2[$i]}.out")
  echo "$name: $(( (b - a) / calls )) instructions per call ($CALLERS callers; Ir $a -> $b over $calls more calls); profile $out/$N2.${p2[$i]}.out"
done
