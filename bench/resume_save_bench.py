#!/usr/bin/env python3
"""Resume state: how long a save holds hekate's event loop at N tiny torrents (issue 10 item 2), the clean stop's
synchronous save (what every periodic save did before it moved to a thread) against the periodic save in the
background (snapshot on the loop, write on a thread, refs moved in slices), in the same run.

The torrents are bench/gen_tiny_torrents.py's under /tmp/hk_startup/N (generated once, shared with
startup_bench.py); the state is this script's own, /tmp/hk_resume_bench/N.state (made by a cold run if missing).

  sync   a warm start, then SIGINT: the stop's save is the first one since the load, so it writes the whole file on
         the loop; hekate's line gives the time it held the loop.
  bg     a warm start with --state-interval=S: the first periodic save writes the whole file in the background.
         hekate's line gives the snapshot's and the finish's time on the loop (and the longest of them); a probe
         meanwhile opens a connection and completes a BitTorrent handshake with hekate every 5 ms, from the end of
         the first scan until the save's line: its longest round trip is the loop stall seen from outside (the
         same probe's longest round trip over the same span of the sync run, before SIGINT, is the quiet reference).
Prints each figure and the ratio sync / bg.
Usage: resume_save_bench.py BUILD_DIR N [INTERVAL_S]   (e.g. build/release 1000000 20)
"""
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import startup_bench as sb  # noqa: E402

OUT = "/tmp/hk_resume_bench"


class Probe(threading.Thread):
    """Handshakes with hekate for ih every 5 ms; records the longest round trip."""

    def __init__(self, port, ih):
        super().__init__(daemon=True)
        self.port, self.ih, self.max, self.n, self.stop = port, ih, 0.0, 0, False

    def run(self):
        while not self.stop:
            t = time.monotonic()
            if sb.handshake(self.port, self.ih, timeout=30):
                self.n += 1
                self.max = max(self.max, time.monotonic() - t)
            time.sleep(0.005)


def run(hekate, n, state, extra, log_path, until, quiet_s=None):
    port = sb.free_port()
    args = [hekate, "-t", "-p", str(port), "--bind", "127.0.0.1", "--no-watch", "--no-dht", "--max-open-files",
            "1024", "--state=" + state] + extra + [os.path.join(sb.ROOT, str(n))]
    with open(log_path, "w") as log:
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        if not sb.wait_line(log_path, r"serving \d+ torrents? on port", p, time.time() + 600):
            raise SystemExit("hekate did not start; see " + log_path)
        probe = Probe(port, sb.info_hash(n // 2))
        probe.start()
        if quiet_s:
            time.sleep(quiet_s)
            probe.stop = True
            probe.join()
            p.send_signal(signal.SIGINT)
        line = sb.wait_line(log_path, until, p, time.time() + 600)
        probe.stop = True
        probe.join()
        if not line:
            raise SystemExit("no /%s/ in %s" % (until, log_path))
        return line.strip(), probe
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
        p.wait(timeout=300)


def main():
    build, n = sys.argv[1], int(sys.argv[2])
    interval = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    hekate = os.path.join(build, "backend-real", "hekate")
    if not os.path.isdir(os.path.join(sb.ROOT, str(n))):
        raise SystemExit("no %s/%d: run bench/startup_bench.py %s %d first (it generates them)" % (sb.ROOT, n, build, n))
    os.makedirs(OUT, exist_ok=True)
    state = os.path.join(OUT, "%d.state" % n)
    if not os.path.exists(state):
        line, _ = run(hekate, n, state, [], os.path.join(OUT, "cold.log"), r"resume state saved \(at the stop\)",
                      quiet_s=1)
        print("cold run made the state:", line)
    saved = r"resume state saved \((%s)\): (\d+) torrents?; loop held ([0-9.]+) ms at most \(([0-9.]+) ms of CPU; " \
            r"snapshot ([0-9.]+) ms in (\d+) slices?, finish ([0-9.]+) ms in (\d+) slices?\), written in ([0-9.]+) s"
    line, quiet = run(hekate, n, state, [], os.path.join(OUT, "sync.log"), saved % "at the stop", quiet_s=interval)
    m = re.search(saved % "at the stop", line)
    sync_ms, sync_cpu = float(m.group(3)), float(m.group(4))
    print("sync (the stop's save, %s torrents): loop held %.1f ms (%.1f ms of CPU); probe's longest handshake "
          "before it, %d handshakes over %d s: %.1f ms" % (m.group(2), sync_ms, sync_cpu, quiet.n, interval,
                                                           quiet.max * 1e3))
    line, probe = run(hekate, n, state, ["--state-interval=%d" % interval], os.path.join(OUT, "bg.log"),
                      saved % "periodic")
    m = re.search(saved % "periodic", line)
    bg_ms, bg_cpu = float(m.group(3)), float(m.group(4))
    print("bg (periodic, %s torrents): loop held %.1f ms at most (%.1f ms of CPU; snapshot %s ms in %s slices, "
          "finish %s ms in %s slices), written in %s s on the thread; probe's longest handshake, %d handshakes: "
          "%.1f ms" % (m.group(2), bg_ms, bg_cpu, m.group(5), m.group(6), m.group(7), m.group(8), m.group(9),
                       probe.n, probe.max * 1e3))
    print("ratio sync / bg longest loop stall: %.1f wall-clock, %.1f CPU (probe: %.1f ms quiet, %.1f ms during "
          "the background save)" % (sync_ms / bg_ms if bg_ms else float("inf"),
                                    sync_cpu / bg_cpu if bg_cpu else float("inf"), quiet.max * 1e3,
                                    probe.max * 1e3))
    print("load average:", open("/proc/loadavg").read().split()[0])

if __name__ == "__main__":
    main()
