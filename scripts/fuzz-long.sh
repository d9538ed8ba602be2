#!/usr/bin/env bash
# Runs every libFuzzer target for longer than CI does (default 600 s each, one after the other: 2 cores) and prints
# executions, exec/s and crashes per target. New inputs go to a scratch corpus; crash artifacts to out/fuzz/.
# Usage: scripts/fuzz-long.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}; shift || true
CC=clang cmake -S . -B build/fuzz -DHEKATE_FUZZ=ON -DHEKATE_SIM=OFF >/dev/null
cmake --build build/fuzz -j "$(nproc)" >/dev/null
mkdir -p out/fuzz
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in tests/fuzz/fuzz_*.c; do targets+=("$(basename "$f" .c)"); done
fi
status=0
for t in "${targets[@]}"; do
  corpus=tests/fuzz/corpus/${t#fuzz_}
  work=out/fuzz/$t; mkdir -p "$work/corpus"
  log=$work/log.txt
  echo "== $t: ${seconds}s"
  if ! build/fuzz/tests/"$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$work/" "$work/corpus" "$corpus" >"$log" 2>&1; then
    status=1; echo "   FAILED (see $log)"
  fi
  runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo "?")
  rate=$(grep -Eo 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo "?")
  crashes=$(ls "$work" | grep -Ec '^(crash|leak|timeout|oom)-' || true)
  echo "   executions $runs, $rate exec/s, crash artifacts $crashes"
done
exit $status
