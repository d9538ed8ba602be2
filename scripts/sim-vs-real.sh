#!/bin/sh
# sim-vs-real.sh: runs one scenario in hekate-sim and for real (hekate on 127.0.0.1 + hekate-swarm playing the same
# peers), then prints side by side the completion-time distribution (p10, median, p90, max, after arrival), the
# aggregate throughput and the throughput over time (5 s windows), Jain's index of download rates, the peak of
# unchoked peers (hekate_peers_unchoked_max for the daemon) and the disk bytes read per byte sent, with the relative
# error of each (docs/hekate-swarm.md, docs/benchmarks-sim.md).
#
# usage: scripts/sim-vs-real.sh SCENARIO.ini [--build DIR] [--bound FRACTION] [--check LIST] [--profile NAME]
#                               [--keep DIR] [-- HEKATE-SWARM-OPTIONS...]
#   --build DIR   the build tree (default build/release)
#   --bound F     the largest relative error accepted for the figures of --check (default 0.15)
#   --check LIST  comma-separated figures that must be within the bound (default p10,p50,p90,max,throughput,jain,
#                 unchoked): exit 1 if one is not. disk is printed but not checked unless listed.
#   --profile P   the per-peer figures over the peers of profile P only (default: every peer)
#   --keep DIR    keep the outputs (summaries, CSVs, hekate's log) in DIR
#   -- ...        the rest goes to hekate-swarm (e.g. --no-window, --no-verify)
# Exit: 0 within the bound, 1 a figure is not, 2 setup error.
set -eu

die() { echo "sim-vs-real: $*" >&2; exit 2; }
[ $# -ge 1 ] || die "usage: sim-vs-real.sh SCENARIO.ini [--build DIR] [--bound F] [--check LIST] [--keep DIR]"
SCENARIO=$1; shift
BUILD=build/release BOUND=0.15 CHECK=p10,p50,p90,max,throughput,jain,unchoked KEEP= PROFILE=
while [ $# -gt 0 ]; do
    case $1 in
    --profile) PROFILE=$2; shift 2 ;;
    --) shift; break ;;
    --build) BUILD=$2; shift 2 ;;
    --bound) BOUND=$2; shift 2 ;;
    --check) CHECK=$2; shift 2 ;;
    --keep) KEEP=$2; shift 2 ;;
    *) die "unknown option $1" ;;
    esac
done
SIM=$BUILD/backend-sim/hekate-sim
SWARM=$BUILD/backend-swarm/hekate-swarm
HEKATE=$BUILD/backend-real/hekate
for b in "$SIM" "$SWARM" "$HEKATE"; do [ -x "$b" ] || die "$b is not built"; done
[ -r "$SCENARIO" ] || die "$SCENARIO: cannot read it"
PY=/usr/bin/python3

WORK=$(mktemp -d /tmp/sim-vs-real.XXXXXX)
HPID=
cleanup() {
    if [ -n "$HPID" ]; then kill "$HPID" 2>/dev/null || true; wait "$HPID" 2>/dev/null || true; fi
    if [ -n "$KEEP" ]; then
        mkdir -p "$KEEP" && cp "$WORK"/*.txt "$WORK"/*.csv "$WORK"/*.log "$KEEP"/ 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# 1. the simulator
"$SIM" "$SCENARIO" --peers-csv "$WORK/sim.csv" --metrics-csv "$WORK/sim-series.csv" > "$WORK/sim.txt" ||
    [ $? -eq 1 ] || die "hekate-sim failed"

# 2. the real daemon, serving the scenario's torrents (data written, then dropped from the page cache)
"$SWARM" "$SCENARIO" --make-torrents "$WORK/torrents" || die "hekate-swarm --make-torrents failed"
PORT=$(free_port) MPORT=$(free_port)
# shellcheck disable=SC2046 # the options are words
"$HEKATE" -t --no-watch --bind=127.0.0.1 --port="$PORT" --metrics=127.0.0.1:"$MPORT" \
    $("$SWARM" "$SCENARIO" --hekate-args) "$WORK/torrents" > "$WORK/hekate.log" 2>&1 &
HPID=$!
metrics() { $PY - "$MPORT" <<'EOF'
import sys, urllib.request
try:
    body = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read().decode()
except Exception:
    sys.exit(1)
want = {"hekate_uploaded_bytes_total": 0, "hekate_peers_unchoked_max": 0, "hekate_sent_bytes_total": 0}
for line in body.splitlines():
    k, _, v = line.partition(" ")
    if k in want:
        want[k] = float(v)
print(" ".join("%s=%d" % (k, v) for k, v in want.items()))
EOF
}
i=0
until metrics > /dev/null 2>&1 && grep -q "serving" "$WORK/hekate.log"; do
    i=$((i + 1)); [ $i -lt 100 ] || die "hekate did not start: $(cat "$WORK/hekate.log")"
    kill -0 "$HPID" 2>/dev/null || die "hekate exited: $(cat "$WORK/hekate.log")"
    sleep 0.1
done
read_bytes() { awk '/^read_bytes/ {print $2}' "/proc/$HPID/io"; }
R0=$(read_bytes)
"$SWARM" "$SCENARIO" --target 127.0.0.1:"$PORT" --torrents "$WORK/torrents" --peers-csv "$WORK/real.csv" \
    --chokes-csv "$WORK/chokes.csv" --series-csv "$WORK/real-series.csv" --metrics 127.0.0.1:"$MPORT" "$@" \
    > "$WORK/real.txt" ||
    [ $? -eq 1 ] || die "hekate-swarm failed"
R1=$(read_bytes)
metrics > "$WORK/metrics.txt" || die "cannot read hekate's metrics"
kill "$HPID"; wait "$HPID" 2>/dev/null || true; HPID=

# 3. side by side
$PY - "$WORK" "$R0" "$R1" "$BOUND" "$CHECK" "$SCENARIO" "$PROFILE" <<'EOF'
import csv, math, re, sys
work, r0, r1, bound, check, scenario = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), \
    sys.argv[5].split(","), sys.argv[6]
profile = sys.argv[7]

def peers(path):
    rows = [r for r in csv.DictReader(open(path)) if not profile or r["profile"] == profile]
    if not rows:
        sys.exit("sim-vs-real: no peer of profile %s" % profile)
    return rows

def pct(v, q):  # as backend-sim/report.c: the ceil(q n)-th smallest
    if not v:
        return float("nan")
    i = max(0, min(len(v) - 1, math.ceil(q * len(v)) - 1))
    return v[i]

def figures(rows):
    t = sorted(float(r["complete_s"]) - float(r["arrival_s"]) for r in rows if float(r["complete_s"]) >= 0)
    rates, total = [], 0
    for r in rows:
        total += int(r["bytes"])
        end = float(r["complete_s"]) if float(r["complete_s"]) >= 0 else float(r["end_s"])
        if end > float(r["arrival_s"]) and int(r["connects"]) > 0:
            rates.append(int(r["bytes"]) / (end - float(r["arrival_s"])))
    first = min(float(r["arrival_s"]) for r in rows)
    last = max(float(r["complete_s"]) if float(r["complete_s"]) >= 0 else float(r["end_s"]) for r in rows)
    s, s2 = sum(rates), sum(x * x for x in rates)
    return {"completed": len(t), "p10": pct(t, 0.1), "p50": pct(t, 0.5), "p90": pct(t, 0.9),
            "max": t[-1] if t else float("nan"), "throughput": total / (last - first) / 1e6 if last > first else 0,
            "jain": s * s / (len(rates) * s2) if len(rates) >= 2 and s2 else float("nan")}

sim, real = figures(peers(work + "/sim.csv")), figures(peers(work + "/real.csv"))
simtxt, realtxt = open(work + "/sim.txt").read(), open(work + "/real.txt").read()
sim["unchoked"] = int(re.search(r"max unchoked (\d+) observed", simtxt).group(1))
fleet_unchoked = int(re.search(r"max unchoked (\d+) observed", realtxt).group(1))
sim["disk"] = float(re.search(r"([0-9.]+) bytes read per byte sent", simtxt).group(1))
m = dict(kv.split("=") for kv in open(work + "/metrics.txt").read().split())
up = float(m["hekate_uploaded_bytes_total"])
real["disk"] = (r1 - r0) / up if up else float("nan")
daemon_unchoked = int(float(m["hekate_peers_unchoked_max"]))
real["unchoked"] = daemon_unchoked  # the seeder's count, as hekate-sim's (what it sent); the fleet's view lags

units = {"completed": "peers", "p10": "s", "p50": "s", "p90": "s", "max": "s", "throughput": "MB/s",
         "jain": "", "unchoked": "peers", "disk": "B/B"}
print("== sim vs real: %s%s ==" % (scenario, " [profile %s]" % profile if profile else ""))
print("%-11s %6s %12s %12s %9s %s" % ("figure", "unit", "hekate-sim", "real", "error", ""))
bad = []
for k in ["completed", "p10", "p50", "p90", "max", "throughput", "jain", "unchoked", "disk"]:
    a, b = sim[k], real[k]
    err = (b - a) / a if a and not math.isnan(a) and not math.isnan(b) else float("nan")
    judged = k in check
    ok = not judged or (not math.isnan(err) and abs(err) <= bound)
    if not ok:
        bad.append(k)
    print("%-11s %6s %12.4f %12.4f %+8.1f%% %s" % (k, units[k], a, b, err * 100,
          "" if not judged else ("ok" if ok else "OUT (bound %.0f%%)" % (bound * 100))))
# throughput over time: 5 s windows (10 at most, widened to cover the run), the simulated seeder's data bytes sent
# against the payload the real peers received
def series(path, tcol, bcol):
    return [(float(r[tcol]), int(r[bcol])) for r in csv.DictReader(open(path))]
def at(ser, t):  # the cumulative bytes at t, interpolated between samples
    px, pb = 0.0, 0
    for x, b in ser:
        if x >= t:
            return pb + (b - pb) * (t - px) / (x - px) if x > px else b
        px, pb = x, b
    return pb
ss, rs = series(work + "/sim-series.csv", "time_s", "data_bytes_sent"), series(work + "/real-series.csv", "time_s",
                                                                             "payload_bytes")
span = max(ss[-1][0] if ss else 0, rs[-1][0] if rs else 0)
win = max(5.0, math.ceil(span / 10 / 5) * 5)
wins = []
t = 0.0
while t < span:
    wins.append((t, (at(ss, t + win) - at(ss, t)) / win / 1e6, (at(rs, t + win) - at(rs, t)) / win / 1e6))
    t += win
peak = max([a for _, a, _ in wins] + [0])
errs, rows = [], []
for t, a, b in wins:  # the error where the simulated rate is at least a tenth of its peak (not the last trickle)
    e = (b - a) / a if a > 0 and a >= peak / 10 else float("nan")
    if not math.isnan(e):
        errs.append(abs(e))
    rows.append("%.0f-%.0f s %.2f/%.2f%s" % (t, t + win, a, b, "" if math.isnan(e) else " (%+.0f%%)" % (e * 100)))
print("throughput over time, MB/s sim/real: " + ", ".join(rows))
if errs:
    print("throughput over time: mean |error| %.1f%%, largest %.1f%% over %d windows of %.0f s" %
          (100 * sum(errs) / len(errs), 100 * max(errs), len(errs), win))
print("daemon: %d peers unchoked at most (hekate_peers_unchoked_max; the peers saw %d, as their reading allowed), "
      "%.0f payload bytes served, %d bytes read from the disk" % (daemon_unchoked, fleet_unchoked, up, r1 - r0))
print("result %s" % ("ok" if not bad else "OUT: " + ",".join(bad)))
sys.exit(1 if bad else 0)
EOF
