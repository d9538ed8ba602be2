#!/bin/sh
# sim_vs_real.sh BUILD_DIR SOURCE_DIR: scenarios/real-small.ini in hekate-sim and for real (hekate + hekate-swarm on
# 127.0.0.1); fails when a figure (completion p10/p50/p90/max, throughput, Jain's index, peak unchoked) differs by
# more than the bound documented in docs/benchmarks-sim.md ("Sim vs real"): 10 %.
set -eu
build=$1 src=$2
exec timeout -k 10 200 "$src/scripts/sim-vs-real.sh" "$src/scenarios/real-small.ini" --build "$build" --bound 0.10
