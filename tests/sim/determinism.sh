#!/bin/sh
# Determinism: the same scenario run twice, in separate processes, must give the same event-log hash; another seed
# must give a different one; the printed hash is the SHA-256 of the event log file. Usage: determinism.sh HEKATE_SIM SCENARIO.ini
set -u
sim=$1
scenario=$2
hash_of() {
    "$sim" "$scenario" "$@" | sed -n 's/^hash \([0-9a-f]\{64\}\)$/\1/p'
}
work=$(mktemp -d /tmp/hekate-determinism.XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
a=$(hash_of --events "$work/events.log")
file_hash=$(sha256sum "$work/events.log" | cut -d' ' -f1)
b=$(hash_of)
c=$(hash_of --seed 4242)
echo "run 1: $a"
echo "run 2: $b"
echo "seed 4242: $c"
if [ -z "$a" ] || [ -z "$c" ]; then
    echo "determinism: FAIL: no hash printed"
    exit 1
fi
if [ "$a" != "$file_hash" ]; then
    echo "determinism: FAIL: the printed hash is not the SHA-256 of the event log ($file_hash)"
    exit 1
fi
if [ "$a" != "$b" ]; then
    echo "determinism: FAIL: two runs of the same scenario gave different hashes"
    exit 1
fi
if [ "$a" = "$c" ]; then
    echo "determinism: FAIL: another seed gave the same hash"
    exit 1
fi
echo "determinism: ok"
