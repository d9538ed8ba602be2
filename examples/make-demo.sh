#!/usr/bin/env bash
# Regenerates the bundled example torrent and the data it describes, byte for byte.
#
# Usage: examples/make-demo.sh DATA_DIR [OUT.torrent]
#   Writes the data of the multi-file torrent "demo" under DATA_DIR/demo/ (the layout a seeder serves:
#   <folder>/<name>/<path...>, here folder = DATA_DIR) and the torrent to OUT.torrent (default DATA_DIR/demo.torrent).
#   examples/demo.torrent was made with: examples/make-demo.sh /tmp/demo examples/demo.torrent
#
# The data is deterministic: each file's bytes are SHAKE-256 of its path (Python's hashlib), or fixed text, so the
# same files (and the same info-hash) come out everywhere. mktorrent runs with -d (no creation date); 32 KiB pieces.
set -euo pipefail
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: $0 DATA_DIR [OUT.torrent]" >&2; exit 2; }
data=$(mkdir -p "$1" && cd "$1" && pwd)
out=${2:-$data/demo.torrent}
case $out in /*) ;; *) out=$PWD/$out ;; esac
python=/usr/bin/python3
[ -x "$python" ] || python=python3

rm -rf "$data/demo"
"$python" - "$data/demo" <<'PY'
import hashlib, os, sys
root = sys.argv[1]
files = {  # path -> size (bytes of SHAKE-256 of the path), or text
    "README.txt": "hekate demo torrent: deterministic data for tests and examples.\n",
    "music/track 01.bin": 150000,
    "music/track 02.bin": 90001,
    "docs/notes.txt": "Data layout: <folder>/demo/<path>.\n" * 40,
    "docs/empty.txt": "",
}
for rel, spec in files.items():
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(spec.encode() if isinstance(spec, str) else hashlib.shake_256(rel.encode()).digest(spec))
PY
rm -f "$out"
(cd "$data" && mktorrent -d -l 15 -a http://127.0.0.1:6969/announce -o "$out" demo >/dev/null)
echo "$out"
