#!/bin/sh
# hekate-sim as a researcher's tool (issue 12 item 4): its own --help, --set overrides and the [expect] entries that
# follow them, the summary's parameters and uplink figures, --json, the peers CSV's columns, --cfg honoured or
# refused with a clear error (never an abort), Paje tracing, --keep-platform and --platform. Usage: cli.sh HEKATE_SIM SMALL.ini
set -u
sim=$1
small=$2
work=$(mktemp -d /tmp/hekate-cli.XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
failures=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; failures=$((failures + 1)); }
hash_of() { sed -n 's/^hash \([0-9a-f]\{64\}\)$/\1/p' "$1"; }
# run NAME WANT_RC ARGS...: runs hekate-sim, output in $work/NAME.out (stdout) and .err; checks the exit status
run() {
    name=$1 want=$2
    shift 2
    "$sim" "$@" >"$work/$name.out" 2>"$work/$name.err"
    rc=$?
    if [ "$rc" -eq "$want" ]; then ok "$name: exit $rc"; else bad "$name: exit $rc, expected $want: $(head -c 400 "$work/$name.err")"; fi
}
has() { # has NAME FILE-SUFFIX FIXED-STRING
    if grep -qF -- "$3" "$work/$1.$2"; then ok "$1: '$3'"; else bad "$1: no '$3' in $2: $(head -c 600 "$work/$1.$2")"; fi
}

# (a) --help is hekate-sim's own usage; SimGrid's keys only under --help-simgrid
run help 0 --help
has help out "--set SECTION.KEY=VALUE"
if grep -q "bmf/max-iterations" "$work/help.out"; then bad "help: SimGrid's keys in --help"; else ok "help: no SimGrid keys"; fi
run help-simgrid 0 --help-simgrid
has help-simgrid out "network/model"
run no-scenario 2
has no-scenario err "no scenario file"

# the default run, its hash (every option below that does not change the model must keep it)
run base 0 "$small" --json "$work/base.json" --peers-csv "$work/peers.csv" --metrics-csv "$work/metrics.csv"
base=$(hash_of "$work/base.out")
[ -n "$base" ] || bad "base: no hash"

# (b) --set: applied after the file; the [expect] limit written ${seeder.max_unchoked} follows it
run set 0 "$small" --set seeder.max_unchoked=2
has set out "N = 2)"
has set out "EXPECT ok   unchoked_max: at most 2 peers unchoked at once on the wire (limit 2)"
has set out "  [seeder] max_unchoked = 2"
[ "$(hash_of "$work/set.out")" != "$base" ] && ok "set: another hash" || bad "set: same hash as without --set"
run set-same 0 "$small" --set seeder.max_unchoked=4
[ "$(hash_of "$work/set-same.out")" = "$base" ] && ok "set-same: the file's value gives the file's hash" || bad "set-same: hash differs"
run set-profile 0 "$small" --set profile.normal.count=5 --set "expect normal.complete=1"
grep -Eq "^normal +5 +5 " "$work/set-profile.out" && ok "set-profile: 5 peers" || bad "set-profile: not 5 peers"
run set-expect 1 "$small" --set seeder.max_unchoked=3 --set expect.unchoked_max=2
has set-expect out "EXPECT FAIL unchoked_max:"
run set-unknown 2 "$small" --set seeder.max_unchokd=3
has set-unknown err "--set seeder.max_unchokd=3: [seeder] max_unchokd: unknown key"
run set-syntax 2 "$small" --set max_unchoked=3
has set-syntax err "expected SECTION.KEY=VALUE"
run set-twice 2 "$small" --set seeder.max_unchoked=3 --set seeder.max_unchoked=5
has set-twice err "overridden twice"
run set-noprofile 2 "$small" --set profile.nobody.count=3
has set-noprofile err "no profile named \"nobody\""
run set-ref-missing 2 "$small" --set 'expect.memory_max=${seeder.sndbuf}'
has set-ref-missing err "is not given in the file or by --set"
run set-ref-cycle 2 "$small" --set 'seeder.reqq=${seeder.reqq}'
has set-ref-cycle err "deeper than 8"

# (c) the summary's parameters and uplink, the JSON, the peers CSV
has base out "  [seeder] max_unchoked = 4"
has base out "uplink: 4000000 B/s capacity"
if /usr/bin/python3 - "$work/base.json" "$work/peers.csv" "$base" <<'PY'
import csv, json, sys
j = json.load(open(sys.argv[1]))
assert j["hash"] == sys.argv[3], j["hash"]
assert j["parameters"]["seeder"]["max_unchoked"] == "4", j["parameters"]["seeder"]
assert j["parameters"]["seeder"]["window"].isdigit()
assert j["parameters"]["profile normal"]["count"] == "20"
assert j["parameters"]["expect"]["unchoked_max"] == "4"
assert 0 < j["uplink"]["utilisation_busy"] <= 1.0001, j["uplink"]
assert j["profiles"][0]["completed"] == 20 and j["failures"] == 0 and j["result"] == "ok"
assert [e["name"] for e in j["expectations"]] == ["unchoked_max", "no_leak", "normal.complete"], j["expectations"]
rows = list(csv.reader(open(sys.argv[2])))
head = rows[0]
for col in ("end_reason", "down_Bps", "up_Bps", "latency_s", "rtt_s", "window_cap_Bps"):
    assert col in head, col
assert len(rows) == 21 and all(len(r) == len(head) for r in rows)
for r in rows[1:]:
    d = dict(zip(head, r))
    assert d["end_reason"] == "complete", d
    assert 1e6 <= float(d["down_Bps"]) <= 3e6 and float(d["up_Bps"]) == 1e6, d
    assert abs(float(d["rtt_s"]) - 2 * (float(d["latency_s"]) + 0.001)) < 1e-9, d
PY
then ok "json and peers csv: parameters, uplink, verdicts, columns"; else bad "json / peers csv"; fi

# (e) --cfg: honoured (a model changes the hash, the default model does not) or refused with a clear error
run cfg-cm02 0 "$small" --cfg=network/model:CM02
[ "$(hash_of "$work/cfg-cm02.out")" = "$base" ] && ok "cfg-cm02: same hash" || bad "cfg-cm02: hash differs"
run cfg-lv08 0 "$small" --cfg=network/model:LV08
has cfg-lv08 out "simgrid: network/model LV08"
[ "$(hash_of "$work/cfg-lv08.out")" != "$base" ] && ok "cfg-lv08: honoured (another hash)" || bad "cfg-lv08: overridden (same hash)"
run cfg-unknown 2 "$small" --cfg=foo/bar:1
has cfg-unknown err "--cfg=foo/bar:1: "
has cfg-unknown err "Bad config key: foo/bar"
run cfg-badvalue 2 "$small" --cfg=network/model:XX
has cfg-badvalue err "Model 'XX' is invalid"
# Paje tracing: the generated star as a Full zone, which SimGrid can trace, and the same run
run cfg-tracing 0 "$small" --cfg=tracing:yes --cfg=tracing/platform:yes --cfg=tracing/filename:"$work/run.trace"
has cfg-tracing out "simgrid: network/model CM02"
[ "$(hash_of "$work/cfg-tracing.out")" = "$base" ] && ok "cfg-tracing: same hash" || bad "cfg-tracing: hash differs"
grep -q "PajeDefineContainerType" "$work/run.trace" 2>/dev/null && grep -q '"p19"' "$work/run.trace" &&
    ok "cfg-tracing: a Paje trace of the platform" || bad "cfg-tracing: no Paje trace"
run cfg-tracing-big 2 "$small" --cfg=tracing:yes --set profile.normal.count=3001
has cfg-tracing-big err "at most 3000 peers"

# (f) --keep-platform keeps the generated platform; --platform with that file is the same run
run keep 0 "$small" --keep-platform
plat=$(sed -n 's/^hekate-sim: platform kept in //p' "$work/keep.err")
if [ -n "$plat" ] && [ -f "$plat" ] && grep -q '<host id="p19"' "$plat"; then ok "keep: $plat"; else bad "keep: no platform kept"; fi
[ "$(hash_of "$work/keep.out")" = "$base" ] && ok "keep: same hash" || bad "keep: hash differs"
if [ -n "$plat" ] && [ -f "$plat" ]; then
    cp "$plat" "$work/platform.xml"
    rm -rf "$(dirname "$plat")"
    run platform 0 "$small" --platform "$work/platform.xml"
    [ "$(hash_of "$work/platform.out")" = "$base" ] && ok "platform: the generated file gives the same hash" || bad "platform: hash differs"
    grep -v 'id="p19' "$work/platform.xml" >"$work/short.xml"
    run platform-short 2 "$small" --platform "$work/short.xml"
    has platform-short err "no host \"p19\""
fi
run platform-missing 2 "$small" --platform "$work/does-not-exist.xml"
has platform-missing err "Unable to open"
printf '<?xml version="1.0"?>\n<platform version="4.1">\n<zone id="w" routing="Full">\n' >"$work/broken.xml"
run platform-broken 2 "$small" --platform "$work/broken.xml"
has platform-broken err "--platform $work/broken.xml: "

[ $failures -eq 0 ] || { echo "cli: $failures check(s) failed"; exit 1; }
echo "cli: every check passed"
