#!/usr/bin/python3
"""tracker_scale: hekate announcing N torrents (default 100,000) to a real opentracker on 127.0.0.1.

Makes N tiny single-file torrents (distinct 8-byte data files, one piece each, announce = the opentracker's HTTP or
UDP URL; written straight in Python, in folders of 1,000), starts opentracker (whitelist = the N info-hashes) and
hekate with --announce-interval=W (the window the first announces are spread over: "one interval"), then samples
opentracker's own counters of successful announces (/stats?mode=tcp4 and udp4) every second for W seconds plus a
margin. Reports:
  - announces per second over the interval: mean, max, max/mean (sampled per second at the tracker);
  - announces missed: torrents opentracker does not know after the interval (/stats?mode=peer: torrents, peers);
  - hekate's CPU-seconds per 1,000 announces (its user+sys time over the interval, start-up excluded);
  - memory: hekate's RSS per torrent, the announcer's own accounted heap per torrent (from its stop log line), and
    the same RSS with -t (no trackers) for the difference the trackers make.
Then SIGTERM: hekate sends `stopped` to all (bounded: 5 s) and the count of peers left at the tracker is shown.
Usage: bench/tracker_scale.py BUILD_DIR [--torrents N] [--interval W] [--protocol http|udp] [--json OUT]"""
import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "interop"))
from lib import bencode, procstat  # noqa: E402
from lib.trackers import free_port_tcp_udp  # noqa: E402


def make_torrents(root, n, url):
    hashes = []
    for i in range(n):
        d = os.path.join(root, "d%04d" % (i // 1000))
        if i % 1000 == 0:
            os.makedirs(d, exist_ok=True)
        name = "t%07d.bin" % i
        data = b"%08d" % i
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        info = {b"length": len(data), b"name": name.encode(), b"piece length": 16384,
                b"pieces": hashlib.sha1(data).digest()}
        raw_info = bencode.encode(info)
        hashes.append(hashlib.sha1(raw_info).hexdigest())
        with open(os.path.join(d, name + ".torrent"), "wb") as f:
            f.write(b"d8:announce" + str(len(url)).encode() + b":" + url.encode() + b"4:info" + raw_info + b"e")
    return hashes


def get(port, path, timeout=5):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as r:
        return r.read().decode()


def announces(port):
    total = 0
    for mode in ("tcp4", "udp4"):
        total += int(get(port, "/stats?mode=" + mode).split("\n")[1])
    return total


def peers_torrents(port):
    lines = get(port, "/stats?mode=peer").split("\n")
    return int(lines[0]), int(lines[1])


def rss(pid):
    return procstat.status(pid).get("VmRSS", 0)


def wait_serving(child, log_path, n, timeout):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if child.poll() is not None:
            raise RuntimeError("hekate exited: %s" % open(log_path).read()[-2000:])
        with open(log_path) as f:
            if re.search(r"serving %d torrents" % n, f.read()):
                return
        time.sleep(0.2)
    raise RuntimeError("hekate not serving %d torrents after %.0f s" % (n, timeout))


def stop(child, timeout=20):
    if child.poll() is None:
        os.killpg(child.pid, signal.SIGTERM)
        try:
            child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build_dir")
    ap.add_argument("--torrents", type=int, default=100000)
    ap.add_argument("--interval", type=int, default=600, help="announce window W in seconds (default 600)")
    ap.add_argument("--protocol", choices=("http", "udp"), default="http")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    hekate = os.path.join(os.path.abspath(args.build_dir), "backend-real", "hekate")
    work = tempfile.mkdtemp(prefix="hekate-tracker-scale-")
    children = []
    try:
        port = free_port_tcp_udp()
        url = ("http://127.0.0.1:%d/announce" % port) if args.protocol == "http" else ("udp://127.0.0.1:%d" % port)
        seed = os.path.join(work, "seed")
        t0 = time.monotonic()
        hashes = make_torrents(seed, args.torrents, url)
        print("made %d torrents in %.1f s" % (args.torrents, time.monotonic() - t0), flush=True)
        otroot = os.path.join(work, "ot")
        os.makedirs(otroot)
        with open(os.path.join(otroot, "whitelist"), "w") as f:
            f.write("\n".join(hashes) + "\n")
        ot = subprocess.Popen(["opentracker", "-i", "127.0.0.1", "-p", str(port), "-P", str(port), "-A", "127.0.0.1",
                               "-d", otroot, "-w", "/whitelist"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
        children.append(ot)
        time.sleep(1.0)
        base_ann = announces(port)

        # reference: the same torrents served with -t (no trackers), for the memory the trackers add
        log0 = os.path.join(work, "hekate-t.log")
        h0 = subprocess.Popen([hekate, "-t", "--bind", "127.0.0.1", "-p", "0", seed], stdout=open(log0, "w"),
                              stderr=subprocess.STDOUT, start_new_session=True)
        children.append(h0)
        wait_serving(h0, log0, args.torrents, 600)
        time.sleep(2)
        rss_no_trackers = rss(h0.pid)
        stop(h0)

        log = os.path.join(work, "hekate.log")
        hk = subprocess.Popen([hekate, "--bind", "127.0.0.1", "-p", "0", "--announce-interval", str(args.interval),
                               seed], stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
        children.append(hk)
        t_start = time.monotonic()
        wait_serving(hk, log, args.torrents, 600)
        startup = time.monotonic() - t_start
        cpu0 = procstat.cpu_seconds(hk.pid)
        t_run = time.monotonic()
        per_sec = []
        last = announces(port)
        last_t = time.monotonic()
        peak_rss = 0
        while time.monotonic() - t_run < args.interval + 5:
            time.sleep(max(0.0, last_t + 1.0 - time.monotonic()))
            now_ann = announces(port)
            now_t = time.monotonic()
            per_sec.append((now_ann - last) / (now_t - last_t))
            last, last_t = now_ann, now_t
            peak_rss = max(peak_rss, rss(hk.pid))
        cpu = procstat.cpu_seconds(hk.pid) - cpu0
        total = last - base_ann
        peers, torrents = peers_torrents(port)
        window = per_sec[:args.interval]
        mean = sum(window) / len(window)
        mx = max(window)
        rss_trackers = rss(hk.pid)
        stop(hk)
        peers_after, _ = peers_torrents(port)
        text = open(log).read()
        m = re.search(r"announcer memory (\d+) bytes", text)
        ann_mem = int(m.group(1)) if m else 0
        m = re.search(r"trackers: (\d+) `stopped` sent, (\d+) answered, (\d+) given up", text)
        stopped = tuple(int(x) for x in m.groups()) if m else (0, 0, 0)
        res = {
            "torrents": args.torrents, "protocol": args.protocol, "interval_s": args.interval,
            "startup_s": round(startup, 1), "announces": total,
            "per_second_mean": round(mean, 1), "per_second_max": round(mx, 1), "max_over_mean": round(mx / mean, 3),
            "missed": args.torrents - torrents, "tracker_peers": peers, "tracker_torrents": torrents,
            "cpu_s": round(cpu, 2), "cpu_s_per_1000": round(1000 * cpu / max(total, 1), 4),
            "rss_bytes": rss_trackers, "rss_no_trackers_bytes": rss_no_trackers,
            "rss_per_torrent": round(rss_trackers / args.torrents, 1),
            "tracker_rss_per_torrent": round((rss_trackers - rss_no_trackers) / args.torrents, 1),
            "announcer_heap_per_torrent": round(ann_mem / args.torrents, 1),
            "stopped_sent": stopped[0], "stopped_answered": stopped[1], "stopped_given_up": stopped[2],
            "tracker_peers_after_stop": peers_after,
            "per_second": [round(x, 1) for x in per_sec],
        }
        print(json.dumps({k: v for k, v in res.items() if k != "per_second"}, indent=1))
        print("per-second announces at the tracker, 10-s windows: " +
              " ".join("%.0f" % (sum(per_sec[i:i + 10]) / len(per_sec[i:i + 10])) for i in range(0, len(per_sec), 10)))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(res, f, indent=1)
        return 0
    finally:
        for c in children:
            try:
                stop(c, 10)
            except Exception:  # noqa: BLE001
                pass
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("kept", work)


if __name__ == "__main__":
    sys.exit(main())
