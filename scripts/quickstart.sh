#!/usr/bin/env bash
# Quick start: installs the dependencies, builds hekate, creates the bundled demo torrent and its data, serves it in
# the foreground and shows how to download it with python-libtorrent or aria2c. Ctrl-C stops everything.
#
# Usage:
#   scripts/quickstart.sh [--port PORT] [--dir DIR] [--no-setup] [--build-dir DIR]
#       serve the demo in the foreground (default port 6881, data in /tmp/hekate-demo)
#   scripts/quickstart.sh --check [--no-setup] [--build-dir DIR]
#       non-interactive: start the seeder on a free port, download the demo from 127.0.0.1 with python-libtorrent
#       (from the .torrent and from the magnet link) and with aria2c (through a local opentracker, when both are
#       installed), verify every byte, stop the seeder with SIGTERM, check it exits 0; exit 0 if all went well
#   scripts/quickstart.sh --fetch TORRENT|MAGNET HOST:PORT OUT_DIR [SECONDS]
#       a minimal python-libtorrent leecher: download from one peer into OUT_DIR, then exit
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
python=/usr/bin/python3   # the python that has the libtorrent module (python3-libtorrent)

fetch() { # TORRENT|MAGNET HOST:PORT OUT_DIR [SECONDS]
  "$python" - "$@" <<'PY'
import os, sys, time
try:
    import libtorrent as lt
except ImportError:
    sys.exit("python-libtorrent is not installed for %s (Debian: apt-get install python3-libtorrent)" % sys.executable)
src, peer, out = sys.argv[1], sys.argv[2], sys.argv[3]
limit = float(sys.argv[4]) if len(sys.argv) > 4 else 120.0
host, _, port = peer.rpartition(":")
host = host.strip("[]")
ses = lt.session({"listen_interfaces": "127.0.0.1:0", "enable_dht": False, "enable_lsd": False,
                  "enable_upnp": False, "enable_natpmp": False, "enable_outgoing_utp": False,
                  "enable_incoming_utp": False, "allow_multiple_connections_per_ip": True,
                  "out_enc_policy": 2, "in_enc_policy": 2, "min_reconnect_time": 1})
atp = lt.parse_magnet_uri(src) if src.startswith("magnet:") else lt.add_torrent_params()
if not src.startswith("magnet:"):
    atp.ti = lt.torrent_info(src)
os.makedirs(out, exist_ok=True)
atp.save_path = out
atp.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
h = ses.add_torrent(atp)
start = last_dial = time.monotonic()
h.connect_peer((host, int(port)))
while True:
    st = h.status()
    now = time.monotonic()
    if st.has_metadata and st.total_wanted > 0 and st.total_wanted_done >= st.total_wanted and \
            st.state in (lt.torrent_status.finished, lt.torrent_status.seeding):
        break
    if now - start > limit:
        sys.exit("fetch: not complete after %.0f s (%d of %d bytes, %d peers)"
                 % (limit, st.total_wanted_done, st.total_wanted, st.num_peers))
    if st.num_peers == 0 and now - last_dial > 2:
        h.connect_peer((host, int(port)))
        last_dial = now
    time.sleep(0.05)
print("fetched %s: %d bytes in %.2f s into %s" % (h.status().name, st.total_wanted, time.monotonic() - start, out))
PY
}

mode=serve port="" demo_dir="" setup=1 build_dir="$here/build/release"
while [ $# -gt 0 ]; do
  case $1 in
    --check) mode=check ;;
    --fetch) shift; [ $# -ge 3 ] || { echo "usage: $0 --fetch TORRENT|MAGNET HOST:PORT OUT_DIR [SECONDS]" >&2; exit 2; }
             fetch "$@"; exit $? ;;
    --port) shift; port=${1:?--port needs a value} ;;
    --dir) shift; demo_dir=${1:?--dir needs a value} ;;
    --no-setup) setup=0 ;;
    --build-dir) shift; build_dir=${1:?--build-dir needs a value} ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "$0: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

say() { printf '\n== %s\n' "$*"; }
free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_free() { "$python" -c 'import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0",int(sys.argv[1])))' "$1" 2>/dev/null; }
wait_port() { # PORT PID SECONDS
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    kill -0 "$2" 2>/dev/null || return 1
    "$python" -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),0.2).close()' "$1" \
      2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

if [ "$setup" = 1 ]; then
  say "dependencies (scripts/setup.sh)"
  bash scripts/setup.sh
fi

say "build ($build_dir)"
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  cmake -S "$here" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build_dir" -j "$(nproc 2>/dev/null || echo 2)" --target hekate >/dev/null
hekate=$build_dir/backend-real/hekate
"$hekate" --version

if [ "$mode" = check ]; then
  work=$(mktemp -d /tmp/hekate-quickstart-XXXXXX)
  port=${port:-$(free_port)}
else
  work=${demo_dir:-/tmp/hekate-demo}
  port=${port:-6881}
fi
seed=$work/seed
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$mode" = check ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

say "demo torrent and data ($seed)"
mkdir -p "$seed"
examples/make-demo.sh "$seed" "$seed/demo.torrent" >/dev/null
if cmp -s "$seed/demo.torrent" examples/demo.torrent; then
  echo "regenerated demo.torrent is identical to examples/demo.torrent"
else
  echo "warning: the regenerated demo.torrent differs from examples/demo.torrent (different mktorrent?); serving the regenerated one" >&2
fi

say "hekate on port $port"
out=$work/hekate.out
mkdir -p "$work"
"$hekate" -t --no-dht -p "$port" "$seed" >"$out" 2>"$work/hekate.err" &
hk_pid=$!
pids+=("$hk_pid")
if ! wait_port "$port" "$hk_pid" 20; then
  cat "$out" "$work/hekate.err" >&2
  echo "hekate did not start" >&2
  exit 1
fi
cat "$out"
magnet=$(grep -o 'magnet:?[^ ]*' "$out" | head -n 1)
[ -n "$magnet" ] || { echo "no magnet link in hekate's output" >&2; exit 1; }
hash=$(printf '%s' "$magnet" | sed -E 's/.*btih:([0-9a-fA-F]{40}).*/\1/')

# aria2c cannot be handed a peer address: it needs a tracker that knows the seeder. hekate does not announce (yet),
# so a local opentracker is started and told about the seeder with one announce made on its behalf.
tracker=""
if command -v opentracker >/dev/null && command -v aria2c >/dev/null; then
  tport=6969
  if [ "$mode" = check ] || ! port_free "$tport"; then tport=$(free_port); fi
  # Debian's opentracker serves only whitelisted info-hashes; it chroots to -d and drops to `nobody`, so the
  # whitelist lives in a world-readable folder of its own.
  tdir=$work/tracker
  mkdir -p "$tdir"
  chmod 755 "$work" "$tdir"
  printf '%s\n' "$hash" >"$tdir/whitelist.txt"
  chmod 644 "$tdir/whitelist.txt"
  opentracker -i 127.0.0.1 -p "$tport" -P "$tport" -d "$tdir" -w whitelist.txt >"$work/opentracker.log" 2>&1 &
  pids+=("$!")
  if wait_port "$tport" "$!" 10; then
    tracker=http://127.0.0.1:$tport/announce
    enc_hash=$(printf '%s' "$hash" | sed 's/../%&/g')
    "$python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5).read()' \
      "$tracker?info_hash=$enc_hash&peer_id=-HK0100-quickstart00&port=$port&uploaded=0&downloaded=0&left=0&event=started&compact=1&numwant=0" \
      || tracker=""
  fi
fi

if [ "$mode" = serve ]; then
  say "fetch it"
  cat <<EOF
Magnet link:
  $magnet

With python-libtorrent (this script carries a small leecher):
  scripts/quickstart.sh --fetch $seed/demo.torrent 127.0.0.1:$port /tmp/hekate-demo-download
  scripts/quickstart.sh --fetch '$magnet' 127.0.0.1:$port /tmp/hekate-demo-download
EOF
  if [ -n "$tracker" ]; then
    cat <<EOF

With aria2c (through the local tracker this script started, which knows the seeder):
  aria2c --dir=/tmp/hekate-demo-download --seed-time=0 --enable-dht=false --bt-enable-lpd=false \\
         --bt-tracker=$tracker --torrent-file=$seed/demo.torrent
EOF
  else
    echo
    echo "(aria2c needs a tracker; install opentracker and aria2 to get a ready-made aria2c command here)"
  fi
  cat <<EOF

Compare: diff -r $seed/demo /tmp/hekate-demo-download/demo
Press Ctrl-C to stop the seeder.
EOF
  stopping=0
  trap 'stopping=1; kill -TERM "$hk_pid" 2>/dev/null || true' INT TERM
  tail -n +1 -f "$work/hekate.err" --pid="$hk_pid" >&2 &
  rc=0
  wait "$hk_pid" || rc=$?
  if [ "$stopping" = 1 ]; then # a trapped signal ends `wait` early: wait again for hekate's own exit status
    rc=0
    wait "$hk_pid" || rc=$?
  fi
  pids=("${pids[@]:1}")
  echo "hekate exited with status $rc"
  exit "$rc"
fi

# --check
status=0
check() { # NAME SOURCE
  local dl=$work/dl-$1
  if fetch "$2" "127.0.0.1:$port" "$dl" 60 && diff -r "$seed/demo" "$dl/demo" >/dev/null; then
    echo "ok: $1: every byte matches"
  else
    echo "FAILED: $1" >&2
    status=1
  fi
}
say "download with python-libtorrent"
check libtorrent-torrent "$seed/demo.torrent"
check libtorrent-magnet "$magnet"
if [ -n "$tracker" ]; then
  say "download with aria2c (tracker $tracker)"
  dl=$work/dl-aria2c
  if aria2c --dir="$dl" --seed-time=0 --enable-dht=false --enable-dht6=false --bt-enable-lpd=false \
       --enable-peer-exchange=false --disable-ipv6=true --listen-port="$(free_port)" --bt-tracker="$tracker" \
       --bt-tracker-interval=2 --summary-interval=0 --console-log-level=warn --file-allocation=none \
       --bt-stop-timeout=60 --stop=90 --no-conf=true --bt-save-metadata=false \
       --torrent-file="$seed/demo.torrent" >"$work/aria2c.out" 2>&1 && diff -r "$seed/demo" "$dl/demo" >/dev/null; then
    echo "ok: aria2c: every byte matches"
  else
    tail -n 20 "$work/aria2c.out" >&2
    echo "FAILED: aria2c" >&2
    status=1
  fi
else
  echo "(aria2c check skipped: opentracker or aria2c is not installed)"
fi

say "stop hekate (SIGTERM)"
kill -TERM "$hk_pid"
rc=0
wait "$hk_pid" || rc=$?
pids=("${pids[@]:1}")
if [ "$rc" -ne 0 ]; then
  echo "FAILED: hekate exited with status $rc after SIGTERM" >&2
  tail -n 20 "$work/hekate.err" >&2
  status=1
else
  echo "ok: hekate stopped cleanly"
fi
[ "$status" -eq 0 ] && echo "quickstart check: all good" || echo "quickstart check: FAILED" >&2
exit "$status"
