#!/bin/sh
# Runs one scenario with hekate-sim and passes its verdict on: exit 0 when every expectation holds.
# Usage: run_scenario.sh HEKATE_SIM SCENARIO.ini [extra hekate-sim args]
set -u
sim=$1
scenario=$2
shift 2
work=$(mktemp -d /tmp/hekate-scenario.XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
start=$(date +%s.%N)
"$sim" "$scenario" --metrics-csv "$work/metrics.csv" --peers-csv "$work/peers.csv" "$@"
rc=$?
end=$(date +%s.%N)
echo "run_scenario: $(basename "$scenario") exit $rc, $(awk "BEGIN{printf \"%.1f\", $end - $start}") s wall (process)"
exit $rc
