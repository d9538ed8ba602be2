#!/bin/sh
# Every expectation can fail: each tests/sim/broken/*.ini is a scenario variant that breaks one guarded behaviour
# (a timeout disabled, the credit choker turned into first-come-first-served, a cache too small, ...) or tightens
# a checker limit below what the seeder does. Its first lines name what must happen:
#   ; must-fail: EXPECTATION-NAME        (hekate-sim must exit 1 with "EXPECT FAIL EXPECTATION-NAME:")
#   ; args: --fault extent-offset        (optional extra arguments)
# Usage: must_fail.sh HEKATE_SIM DIR
set -u
sim=$1
dir=$2
failures=0
for f in "$dir"/*.ini; do
    want=$(sed -n 's/^; must-fail: *//p' "$f" | head -n 1)
    args=$(sed -n 's/^; args: *//p' "$f" | head -n 1)
    if [ -z "$want" ]; then
        echo "must_fail: $f has no '; must-fail:' line"
        failures=$((failures + 1))
        continue
    fi
    # shellcheck disable=SC2086
    out=$("$sim" "$f" $args 2>&1)
    rc=$?
    if [ $rc -eq 1 ] && printf '%s\n' "$out" | grep -q "^EXPECT FAIL $want:"; then
        echo "ok   $(basename "$f"): $(printf '%s\n' "$out" | grep "^EXPECT FAIL $want:")"
    else
        echo "FAIL $(basename "$f"): expected exit 1 with 'EXPECT FAIL $want', got exit $rc:"
        printf '%s\n' "$out" | tail -n 25
        failures=$((failures + 1))
    fi
done
[ $failures -eq 0 ] || { echo "must_fail: $failures variant(s) did not fail as they should"; exit 1; }
echo "must_fail: every variant failed on its expectation"
