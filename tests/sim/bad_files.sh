#!/bin/sh
# Malformed scenario files are refused (exit 2) with a message naming the problem. Each tests/sim/bad/*.ini starts
# with "; error: TEXT": hekate-sim's stderr must contain TEXT. Usage: bad_files.sh HEKATE_SIM DIR
set -u
sim=$1
dir=$2
failures=0
for f in "$dir"/*.ini; do
    want=$(sed -n 's/^; error: *//p' "$f" | head -n 1)
    err=$("$sim" "$f" 2>&1 >/dev/null)
    rc=$?
    if [ $rc -eq 2 ] && [ -n "$want" ] && printf '%s\n' "$err" | grep -qF -- "$want"; then
        echo "ok   $(basename "$f"): $err"
    else
        echo "FAIL $(basename "$f"): expected exit 2 and '$want', got exit $rc: $err"
        failures=$((failures + 1))
    fi
done
[ $failures -eq 0 ] || exit 1
echo "bad_files: every malformed scenario was refused"
