#!/bin/sh
# A DHT scenario (hekate-sim's simulated DHT, backend-sim/sim_dht.h) is deterministic: two runs in separate
# processes print the same sha256, another seed prints a different one. Usage: dht_determinism.sh HEKATE_SIM SCENARIO
set -u
sim=$1
scenario=$2
hash_of() {
    "$sim" "$scenario" "$@" | sed -n 's/^event hash: sha256 \([0-9a-f]\{64\}\)$/\1/p'
}
a=$(hash_of) b=$(hash_of) c=$(hash_of --seed 4242)
echo "run 1: $a"
echo "run 2: $b"
echo "seed 4242: $c"
[ -n "$a" ] && [ -n "$c" ] || { echo "dht_determinism: FAIL: no hash printed"; exit 1; }
[ "$a" = "$b" ] || { echo "dht_determinism: FAIL: two runs gave different hashes"; exit 1; }
[ "$a" != "$c" ] || { echo "dht_determinism: FAIL: another seed gave the same hash"; exit 1; }
echo "dht_determinism: ok"
