#!/bin/sh
# sim_vs_real.sh BUILD_DIR SOURCE_DIR [SCENARIO BOUND [CHECK]]: a scenarios/real-*.ini (default real-small) in
# hekate-sim and for real (hekate + hekate-swarm on 127.0.0.1); fails when a figure (default: completion
# p10/p50/p90/max, throughput, Jain's index, peak unchoked; CHECK: a comma-separated subset) differs by more than
# the bound documented for it in docs/benchmarks-sim.md ("Sim vs real"; default 10 %).
set -eu
build=$1 src=$2 scenario=${3:-real-small} bound=${4:-0.10} check=${5:-p10,p50,p90,max,throughput,jain,unchoked}
exec timeout -k 10 200 "$src/scripts/sim-vs-real.sh" "$src/scenarios/$scenario.ini" --build "$build" \
    --bound "$bound" --check "$check"
