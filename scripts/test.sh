#!/usr/bin/env bash
# Installs dependencies, builds hekate three ways and runs every test:
#   1. release build (gcc): unit, purity, interop, scenario tests;
#   2. ASan+UBSan build: unit tests again;
#   3. clang libFuzzer build: every fuzz target for a bounded time (HEKATE_FUZZ_SECONDS, default 20).
# Ends with one line "tests: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1

jobs=$(nproc 2>/dev/null || echo 2)
passed=0 failed=0
run_ctest() { # build-dir, ctest args...
  local dir=$1; shift
  local log; log=$(mktemp)
  ctest --test-dir "$dir" --output-on-failure "$@" 2>&1 | tee "$log"
  local line; line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1)
  rm -f "$log"
  if [ -z "$line" ]; then echo "ctest in $dir ran no test"; failed=$((failed + 1)); return; fi
  local total fail
  fail=$(echo "$line" | sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/')
  total=$(echo "$line" | sed -E 's/.* failed out of ([0-9]+).*/\1/')
  passed=$((passed + total - fail)); failed=$((failed + fail))
}
build() { # dir, cmake args...
  local dir=$1; shift
  cmake -S . -B "$dir" "$@" >/dev/null && cmake --build "$dir" -j "$jobs" >/dev/null 2>"$dir.err" ||
    { cat "$dir.err" 2>/dev/null; echo "build failed: $dir"; failed=$((failed + 1)); return 1; }
}

if build build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo; then
  run_ctest build/release -j "$jobs"
fi
if build build/asan -DHEKATE_SANITIZE=ON -DHEKATE_SIM=OFF; then
  ASAN_OPTIONS=detect_leaks=1 run_ctest build/asan -L unit -j "$jobs"
fi
if CC=clang build build/fuzz -DHEKATE_FUZZ=ON -DHEKATE_SIM=OFF -DHEKATE_FUZZ_SECONDS="${HEKATE_FUZZ_SECONDS:-20}"; then
  run_ctest build/fuzz -L fuzz
fi

echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
