#!/bin/sh
# Leechers that trade (issue 12 item 5): the same swarm with [peers] trade on and off, the credit choker (the
# default) in both. Trading on must meet its expectations, give the same event log twice (determinism), and need
# clearly fewer seeder bytes per completed copy than trading off (at most half; measured 0.12 against 1.00); the
# off run must send every copy from the seeder (>= 0.99 per copy, every peer complete) and have another hash.
# Prints one table row per run. Usage: trade_compare.sh HEKATE_SIM SCENARIO.ini
set -u
sim=$1
scenario=$2
work=$(mktemp -d /tmp/hekate-trade.XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
fail() { echo "trade_compare: FAIL: $*"; exit 1; }

"$sim" "$scenario" --events "$work/on.log" --json "$work/on.json" >"$work/on.out" 2>&1
rc_on=$?
"$sim" "$scenario" >"$work/on2.out" 2>&1
"$sim" "$scenario" --set peers.trade=no --json "$work/off.json" >"$work/off.out" 2>&1
rc_off=$?
[ $rc_on -eq 0 ] || { tail -n 30 "$work/on.out"; fail "trading on: exit $rc_on (an expectation failed)"; }
[ $rc_off -le 1 ] || { tail -n 30 "$work/off.out"; fail "trading off: exit $rc_off"; }

hash_of() { sed -n 's/^hash \([0-9a-f]\{64\}\)$/\1/p' "$1"; }
h1=$(hash_of "$work/on.out") h2=$(hash_of "$work/on2.out") h3=$(hash_of "$work/off.out")
[ -n "$h1" ] && [ "$h1" = "$h2" ] || fail "trading on twice: hashes $h1 / $h2 differ"
[ "$h1" = "$(sha256sum "$work/on.log" | cut -d' ' -f1)" ] || fail "the printed hash is not the event log's"
[ "$h1" != "$h3" ] || fail "trading on and off give the same hash"
grep -q ' link t' "$work/on.log" || fail "trading on: no link in the event log"

python3 - "$work/on.json" "$work/off.json" <<'EOF' || fail "the comparison does not hold"
import json, sys
on, off = (json.load(open(p)) for p in sys.argv[1:3])
print("%-8s %9s %12s %14s %14s %10s %10s %8s %8s" % ("trading", "completed", "seeder/copy", "traded bytes",
      "swarm copy s", "first s", "p50 s", "p90 s", "last s"))
for name, j in (("on", on), ("off", off)):
    s = j["swarm"]
    last = max(p["max_s"] for p in j["profiles"])
    print("%-8s %9d %12.4f %14d %14.3f %10.3f %10.3f %8.3f %8.3f" % (name, s["completed"], s["per_copy"],
          s["traded_bytes"], s["copy_s"], s["first_complete_s"], s["p50_s"], s["p90_s"], last))
a, b = on["swarm"], off["swarm"]
peers = on["run"]["peers"]
assert a["trade"] and not b["trade"], "the [peers] trade override did not take"
assert a["completed"] == peers and b["completed"] == peers, "every peer completes in both runs"
assert b["per_copy"] >= 0.99 and b["traded_bytes"] == 0, "without trading the seeder sends every copy"
assert a["traded_bytes"] > 0, "with trading the peers exchange pieces"
assert a["per_copy"] <= 0.5 * b["per_copy"], "trading needs at most half the seeder bytes per copy"
assert a["p50_s"] < b["p50_s"], "trading completes sooner (median)"
EOF
echo "trade_compare: ok (hash with trading $h1, without $h3)"
