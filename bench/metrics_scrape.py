#!/usr/bin/python3
"""metrics_scrape: the cost of observing a hekate that serves very many torrents (issue 11's acceptance point "with
10^5 torrents the scrape stays under 1 MiB and 100 ms", and `hekatectl torrent INFOHASH` in O(1)).

Writes N tiny torrents (default 100,000; one shared 1-byte data file, an `x-nonce` key in each info dictionary makes
the info-hashes differ) into a fresh directory (in /dev/shm when it is a writable tmpfs, else the work directory),
starts hekate on them with --metrics on a free loopback port and --control on a socket of its own, waits until every
torrent is served, then
  - scrapes /metrics SCRAPES times (default 20) with a fresh connection each (urllib: connect, request, the loop's
    pass over every torrent, rendering, reply) and reports the body size and the latency (median, p95, max);
  - asks the control socket `torrent INFOHASH` LOOKUPS times (default 200) over one connection each, for torrents
    spread over the whole table (the first, the last and evenly spaced ones), timing request to reply line, and
    the same for `status` (a constant-work command) as a reference.
Prints one line per figure and `RESULT ...` last; exits 1 if the body reaches 1 MiB or the median scrape 100 ms.

    bench/metrics_scrape.py [--hekate build/release/backend-real/hekate] [--torrents 100000] [--scrapes 20]
                            [--lookups 200]
Everything runs on 127.0.0.1; hekate is stopped by its PID, the directory removed."""
import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "interop"))
from lib import bencode  # noqa: E402
from lib.procs import free_port, wait_port  # noqa: E402,F401


def make_many(folder, n):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "shared.bin"), "wb") as f:
        f.write(b"x")
    pieces = hashlib.sha1(b"x").digest()
    hashes = []
    for i in range(n):
        info = {b"name": b"shared.bin", b"piece length": 16384, b"length": 1, b"pieces": pieces, b"x-nonce": i}
        hashes.append(hashlib.sha1(bencode.encode(info)).hexdigest())
        with open(os.path.join(folder, "t%06d.torrent" % i), "wb") as f:
            f.write(bencode.encode({b"info": info}))
    return hashes


def scrape(port):
    t = time.monotonic()
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=30) as r:
        body = r.read()
    return time.monotonic() - t, body


def served(body):
    for line in body.decode().splitlines():
        if line.startswith('hekate_torrents{state="served"} '):
            return int(float(line.split()[1]))
    return None


def ask(path, line):
    t = time.monotonic()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    try:
        s.connect(path)
        s.sendall(line.encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    finally:
        s.close()
    return time.monotonic() - t, json.loads(buf)


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def ms(x):
    return "%.2f ms" % (x * 1000)


def measure(a, folder, hashes):
    mport = free_port()
    ctl = os.path.join(folder, "..", os.path.basename(folder) + ".ctl")
    argv = [a.hekate, "-t", "--bind", "127.0.0.1", "-p", "0", "--metrics=127.0.0.1:%d" % mport,
            "--control=" + ctl, "--metrics-top=10", "--no-watch", folder]
    log = open(folder + ".log", "w")
    hk = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        t0 = time.monotonic()
        n = None
        while time.monotonic() - t0 < 600:
            if hk.poll() is not None:
                raise SystemExit("hekate exited (%s); see %s.log" % (hk.returncode, folder))
            try:
                n = served(scrape(mport)[1])
            except OSError:
                n = None
            if n == len(hashes):
                break
            time.sleep(0.5)
        if n != len(hashes):
            raise SystemExit("only %r of %d torrents served" % (n, len(hashes)))
        print("served %d torrents after %.1f s" % (n, time.monotonic() - t0))
        times, sizes = [], []
        for _ in range(a.scrapes):
            t, body = scrape(mport)
            times.append(t)
            sizes.append(len(body))
        print("scrape: body %d..%d bytes; latency median %s, p95 %s, max %s over %d scrapes" % (
            min(sizes), max(sizes), ms(statistics.median(times)), ms(pct(times, 0.95)), ms(max(times)), a.scrapes))
        picks = [hashes[0], hashes[-1]] + [hashes[(i * len(hashes)) // a.lookups] for i in range(a.lookups - 2)]
        lt, st = [], []
        for ih in picks:
            t, r = ask(ctl, "torrent " + ih)
            if not r.get("ok") or r["torrent"]["info_hash"] != ih:
                raise SystemExit("torrent %s: %r" % (ih, r))
            lt.append(t)
            t, r = ask(ctl, "status")
            st.append(t)
        print("control: torrent INFOHASH median %s, p95 %s, max %s; status median %s (%d each)" % (
            ms(statistics.median(lt)), ms(pct(lt, 0.95)), ms(max(lt)), ms(statistics.median(st)), len(picks)))
        ok = max(sizes) < (1 << 20) and statistics.median(times) < 0.100
        print("RESULT torrents=%d body_max=%d scrape_median_ms=%.2f scrape_max_ms=%.2f torrent_lookup_median_ms=%.3f "
              "status_median_ms=%.3f %s" % (len(hashes), max(sizes), statistics.median(times) * 1000,
                                            max(times) * 1000, statistics.median(lt) * 1000,
                                            statistics.median(st) * 1000, "PASS" if ok else "FAIL"))
        return ok
    finally:
        hk.send_signal(signal.SIGTERM)
        try:
            hk.wait(timeout=30)
        except subprocess.TimeoutExpired:
            hk.kill()
            hk.wait()
        log.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hekate", default=os.path.join(HERE, "..", "build", "release", "backend-real", "hekate"))
    ap.add_argument("--torrents", type=int, default=100000)
    ap.add_argument("--scrapes", type=int, default=20)
    ap.add_argument("--lookups", type=int, default=200)
    a = ap.parse_args()
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    top = tempfile.mkdtemp(prefix="hekate-metrics-bench-", dir=base)
    try:
        folder = os.path.join(top, "torrents")
        t = time.monotonic()
        hashes = make_many(folder, a.torrents)
        print("wrote %d torrents in %.1f s to %s" % (a.torrents, time.monotonic() - t, folder))
        sys.exit(0 if measure(a, folder, hashes) else 1)
    finally:
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
