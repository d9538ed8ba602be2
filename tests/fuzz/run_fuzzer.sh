#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time on a scratch copy of its committed seed corpus.
# Usage: run_fuzzer.sh TARGET CORPUS_DIR SECONDS.  Fails on any crash, leak, timeout or sanitizer report.
set -euo pipefail
target=$1 corpus=$2 seconds=$3
[ -d "$corpus" ] || { echo "missing seed corpus $corpus" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus"
"$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$work/" "$work/corpus" "$corpus" 2>&1 | tail -n 25
status=${PIPESTATUS[0]}
if ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* >/dev/null 2>&1; then
  echo "fuzzer left artifacts:" >&2; ls "$work" >&2; exit 1
fi
exit "$status"
