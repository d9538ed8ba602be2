#!/bin/sh
# A parameter sweep with hekate-sim: runs SCENARIO once per value of one key (hekate-sim --set KEY=VALUE), prints
# one table (per value and profile: completed, completion p50/p95/max, Jain's index; the uplink's utilisation, the
# peak unchoked, the verdict, the hash) and draws one plot (scripts/plot-sim.py: the completion-time CDF, the
# throughput and the unchoked peers over time, one curve per value).
#
# Usage: scripts/sim-sweep.sh [--out DIR] [--sim HEKATE_SIM] [--seeds S1,S2,...] [--no-plot] SCENARIO.ini \
#            SECTION.KEY V1,V2,... [-- HEKATE-SIM-ARGS ...]
#   e.g. scripts/sim-sweep.sh scenarios/flash-crowd-1000.ini seeder.max_unchoked 10,50,200
# --seeds runs every value once per seed (instances of the same experiment: hekate-sim --seed), one row each.
# [expect] entries written as ${SECTION.KEY} follow the swept key. Every run's JSON, metrics and peers CSV are kept
# in DIR as run-VALUE.* (default: a new /tmp/hekate-sweep.XXXXXX), the table in DIR/sweep.tsv, the plot in DIR/sweep.png.
# Exit: 0 every run went through (whatever its expectations said), 2 usage or a run that could not run.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
sim=${HEKATE_SIM:-$here/../build/release/backend-sim/hekate-sim}
out=""
plot=yes
seeds=
while [ $# -gt 0 ]; do
    case $1 in
    --out) out=$2; shift 2 ;;
    --sim) sim=$2; shift 2 ;;
    --no-plot) plot=no; shift ;;
    --seeds) seeds=$2; shift 2 ;;
    -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) break ;;
    esac
done
if [ $# -lt 3 ]; then
    echo "usage: sim-sweep.sh [--out DIR] [--sim HEKATE_SIM] [--seeds S1,...] [--no-plot] SCENARIO.ini SECTION.KEY V1,V2,... [-- ARGS]" >&2
    exit 2
fi
scenario=$1 key=$2 values=$3
shift 3
[ "${1:-}" = "--" ] && shift
[ -x "$sim" ] || { echo "sim-sweep.sh: no hekate-sim at $sim (build it, or --sim)" >&2; exit 2; }
[ -n "$out" ] || out=$(mktemp -d /tmp/hekate-sweep.XXXXXX)
mkdir -p "$out"
runs=""
# run_one VALUE SEED: one run (SEED empty: the scenario's own seed); appends LABEL=PREFIX to $runs
run_one() {
    v=$1 seed=$2
    shift 2
    name=$(printf '%s' "$v" | tr -c 'A-Za-z0-9._-' '_')
    label=$v
    if [ -n "$seed" ]; then
        name="$name-s$seed"
        label="$v seed $seed"
    fi
    prefix=$out/run-$name
    set +e
    # shellcheck disable=SC2086
    "$sim" "$scenario" --set "$key=$v" ${seed:+--seed "$seed"} --json "$prefix.json" \
        --metrics-csv "$prefix.metrics.csv" --peers-csv "$prefix.peers.csv" "$@" >"$prefix.out" 2>"$prefix.err"
    rc=$?
    set -e
    if [ $rc -gt 1 ]; then
        echo "sim-sweep.sh: $key=$v${seed:+ (seed $seed)}: hekate-sim exited $rc: $(head -c 500 "$prefix.err")" >&2
        exit 2
    fi
    runs="$runs $(printf '%s' "$label" | tr ' ' '_')=$prefix"
}
old_ifs=$IFS
IFS=,
for v in $values; do
    if [ -z "$seeds" ]; then
        IFS=$old_ifs
        run_one "$v" "" "$@"
    else
        for sd in $seeds; do
            IFS=$old_ifs
            run_one "$v" "$sd" "$@"
            IFS=,
        done
    fi
    IFS=,
done
IFS=$old_ifs
# shellcheck disable=SC2086
/usr/bin/python3 - "$key" "$out/sweep.tsv" $runs <<'PY'
import json, sys
key, tsv, runs = sys.argv[1], sys.argv[2], sys.argv[3:]
cols = [key, "seed", "profile", "peers", "completed", "p50_s", "p95_s", "max_s", "jain", "uplink_busy", "unchoked_max",
        "result", "hash"]
rows = []
for spec in runs:
    label, prefix = spec.split("=", 1)
    label = label.split("_seed_")[0]
    j = json.load(open(prefix + ".json"))
    for p in j["profiles"]:
        f = lambda v, fmt="%.3f": "-" if v is None else fmt % v
        rows.append([label, str(j["seed"]), p["name"], str(p["peers"]), str(p["completed"]), f(p["p50_s"]), f(p["p95_s"]),
                     f(p["max_s"]), f(p["jain"]), "%.1f%%" % (100 * j["uplink"]["utilisation_busy"]),
                     str(j["choker"]["unchoked_max_wire"]), j["result"], j["hash"][:12]])
with open(tsv, "w") as f:
    for r in [cols] + rows:
        f.write("\t".join(r) + "\n")
width = [max(len(r[i]) for r in [cols] + rows) for i in range(len(cols))]
for r in [cols] + rows:
    print("  ".join(c.rjust(w) if i > 2 else c.ljust(w) for i, (c, w) in enumerate(zip(r, width))))
PY
echo "sim-sweep.sh: table in $out/sweep.tsv"
if [ $plot = yes ]; then
    plots=""
    for r in $runs; do
        plots="$plots $key=$r"
    done
    # shellcheck disable=SC2086
    /usr/bin/python3 "$here/plot-sim.py" -o "$out/sweep.png" --title "$(basename "$scenario"): $key" $plots
fi
