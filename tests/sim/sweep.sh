#!/bin/sh
# scripts/sim-sweep.sh on a small scenario, 2 values of seeder.max_unchoked, then the same with 2 seeds: one table
# row per value (and seed), the [expect] limit that follows the key holds for each, fewer unchoke slots give later
# completions, and the plot is drawn (when python3-matplotlib is installed). Usage: sweep.sh HEKATE_SIM SWEEP SMALL.ini
set -u
sim=$1
sweep=$2
small=$3
work=$(mktemp -d /tmp/hekate-sweep-test.XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
plot=--no-plot
/usr/bin/python3 -c "import matplotlib" 2>/dev/null && plot=""
# shellcheck disable=SC2086
"$sweep" --sim "$sim" --out "$work/out" $plot "$small" seeder.max_unchoked 2,8 >"$work/table.txt" 2>&1
rc=$?
cat "$work/table.txt"
[ $rc -eq 0 ] || { echo "sweep: FAIL: sim-sweep.sh exited $rc"; exit 1; }
/usr/bin/python3 - "$work/out/sweep.tsv" "$work/table.txt" <<'PY' || { echo "sweep: FAIL: the table"; exit 1; }
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
head, body = rows[0], [dict(zip(rows[0], r)) for r in rows[1:]]
assert head[0] == "seeder.max_unchoked", head
assert [r["seeder.max_unchoked"] for r in body] == ["2", "8"], body
for r in body:
    assert r["profile"] == "normal" and r["completed"] == "20" and r["result"] == "ok", r
    assert r["unchoked_max"] == r["seeder.max_unchoked"], r
assert body[0]["seed"] == body[1]["seed"] == "7", body
assert float(body[0]["p95_s"]) > 1.2 * float(body[1]["p95_s"]), body
assert body[0]["hash"] != body[1]["hash"], body
printed = open(sys.argv[2]).read()
assert all(r["p50_s"] in printed for r in body), printed
PY
# instances: every value once per seed
"$sweep" --sim "$sim" --out "$work/seeds" --no-plot --seeds 1,2 "$small" seeder.max_unchoked 2,8 >"$work/seeds.txt" 2>&1 ||
    { cat "$work/seeds.txt"; echo "sweep: FAIL: sim-sweep.sh --seeds"; exit 1; }
cat "$work/seeds.txt"
/usr/bin/python3 - "$work/seeds/sweep.tsv" <<'PY' || { echo "sweep: FAIL: the table with seeds"; exit 1; }
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
body = [dict(zip(rows[0], r)) for r in rows[1:]]
assert [(r["seeder.max_unchoked"], r["seed"]) for r in body] == [("2", "1"), ("2", "2"), ("8", "1"), ("8", "2")], body
assert len({r["hash"] for r in body}) == 4, body
for slow, fast in ((body[0], body[2]), (body[1], body[3])):
    assert slow["completed"] == fast["completed"] == "20", body
    assert float(slow["p95_s"]) > 1.2 * float(fast["p95_s"]), body
PY
if [ -z "$plot" ]; then
    [ -s "$work/out/sweep.png" ] || { echo "sweep: FAIL: no plot"; exit 1; }
    echo "sweep: plot drawn ($(wc -c <"$work/out/sweep.png") bytes)"
else
    echo "sweep: python3-matplotlib not installed: plot not checked"
fi
echo "sweep: ok"
