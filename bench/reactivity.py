#!/usr/bin/python3
"""reactivity: the scheduler-centric I/O claim measured on the real daemon (issue 12, item 6 and its acceptance).

One hekate on 127.0.0.1 serves a small generated torrent. One probing peer (bench/reactivity_probe.c, compiled here
with cc -O2) times request -> first byte of the PIECE reply, one request outstanding at a time, over the same few
blocks (warm page cache), in these cases of one run:
  quiet     the probe alone;
  idle10k   with 10,000 other peers connected, handshaken and idle (bench/idle_conns.py, keep-alives only, each from
            its own 127.x.y.3 address so the per-address caps see distinct hosts);
  idle19k   with 19,000 such peers (a second idle_conns process adds 9,000);
  quiet2    the probe alone again (drift check; the ratios use the first quiet case);
  pending   while 50 other peers (reactivity_probe load) keep 50 x 2,000 = 10^5 requests outstanding, reading at a
            modest rate (--load-rate bytes/s each) and re-requesting one block per block received.
Prints p50, p90, p99, max and the ratios to quiet; checks the acceptance (p99 at 19,000 idle <= 1.2 x quiet p99;
p99 with 10^5 pending <= 2 x quiet p99), PASS/FAIL each; exit status 1 when one fails.

hekate runs with -t --no-dht --no-watch -N 64 --max-peers 19200 --max-open-files 16 --reqq 2048 and long timeouts
(idle, handshake, stall: the load peers read slowly on purpose). RLIMIT_NOFILE (20,000 here) must hold hekate's
19,051 sockets + budget; the idle peers live in their own processes.

  nice -n 10 /usr/bin/python3 bench/reactivity.py [--count 5000] [--gap-us 1000] [--build-dir build/release]
"""
import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "interop"))
from lib import fixtures, procs, procstat, seeders  # noqa: E402
from lib.fixtures import KiB, MiB  # noqa: E402

PY = "/usr/bin/python3"
PIECE = 256 * KiB


def build_probe(build_dir):
    src = os.path.join(HERE, "reactivity_probe.c")
    out = os.path.join(build_dir, "bench", "reactivity_probe")
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src):
        os.makedirs(os.path.dirname(out), exist_ok=True)
        subprocess.check_call(["cc", "-O2", "-Wall", "-o", out, src])
    return out


def probe(p, a, exe, seeder, fx, name, watch=()):
    """a.rounds probes of a.count requests; the case's figures are the medians of the rounds' (each round's printed).
    watch: pids whose CPU use over the rounds is reported (share of one core)."""
    cpu0 = [procstat.cpu_seconds(pid) for pid in watch]
    t0 = time.monotonic()
    rounds = [probe_once(p, a, exe, seeder, fx, "%s.%d" % (name, i)) for i in range(a.rounds)]
    wall = time.monotonic() - t0
    r = {"case": name, "n": sum(x["n"] for x in rounds), "chokes": sum(x["chokes"] for x in rounds),
         "rounds": rounds}
    for k in ("p50", "p90", "p99", "max"):
        r[k] = statistics.median(x[k] for x in rounds)
    r["cpu"] = [(procstat.cpu_seconds(pid) - c) / wall for pid, c in zip(watch, cpu0)]
    return r


def probe_once(p, a, exe, seeder, fx, name):
    samples = p.path("samples-%s.txt" % name)
    c = p.start("probe-" + name, [exe, "probe", str(seeder.port), fx.info_hash, str(PIECE), str(a.blocks),
                                  str(a.count), str(a.gap_us), samples])
    c.popen.wait(timeout=300)
    m = re.search(r"PROBE n=(\d+) p50_us=([\d.]+) p90_us=([\d.]+) p99_us=([\d.]+) max_us=([\d.]+) chokes=(\d+)",
                  c.log())
    if c.popen.returncode != 0 or not m:
        raise RuntimeError("probe %s failed: %s" % (name, c.log()[-2000:]))
    r = {"case": name, "n": int(m.group(1)), "p50": float(m.group(2)), "p90": float(m.group(3)),
         "p99": float(m.group(4)), "max": float(m.group(5)), "chokes": int(m.group(6))}
    print("  %-8s n=%d p50 %.1f us  p90 %.1f us  p99 %.1f us  max %.1f us  (chokes %d)" % (
        name, r["n"], r["p50"], r["p90"], r["p99"], r["max"], r["chokes"]), flush=True)
    return r


def start_idle(p, seeder, fx, count, name, keepalive):
    c = p.start(name, [PY, os.path.join(HERE, "idle_conns.py"), "--port", str(seeder.port), "--info-hash",
                       fx.info_hash, "--count", str(count), "--hold", "900", "--keepalive", str(keepalive)])
    t_end = time.monotonic() + 240
    while "HANDSHAKEN" not in c.log():
        if not c.alive() or time.monotonic() > t_end:
            raise RuntimeError("%s failed: %s" % (name, c.log()[-2000:]))
        time.sleep(0.2)
    line = [ln for ln in c.log().splitlines() if ln.startswith("HANDSHAKEN")][0]
    print("  %s: %s" % (name, line), flush=True)
    ok, failed = int(line.split()[1]), int(line.split()[3])
    return c, ok, failed


def peers_line(seeder):
    lines = [ln for ln in seeder.child.log().splitlines() if "peers" in ln]
    return lines[-1] if lines else ""


def body(p, a):
    exe = build_probe(a.build_dir)
    fx = fixtures.make_single(p.path("data"), "react.bin", a.size_mib * MiB, 12, PIECE)
    args = ["--no-watch", "-N", "64", "--max-peers", "19200", "--max-open-files", "16", "--reqq", str(a.reqq),
            "--idle-timeout", "900", "--handshake-timeout", "60", "--unchoked-idle-timeout", "900",
            "--unchoked-stall", "900", "--send-stall-timeout", "900", "--status-interval", "5"]
    seeder = seeders.start_hekate(p, a.build_dir, [p.path("data")], args=args)
    print("hekate %s, pid %d, port %d, torrent %d MiB, piece %d KiB; probe: %d rounds of %d requests (+200 warm-up) over %d "
          "blocks, gap %d us" % (" ".join(args), seeder.child.pid, seeder.port, a.size_mib, PIECE // KiB, a.rounds, a.count,
                                 a.blocks, a.gap_us), flush=True)
    res = {}
    res["quiet"] = probe(p, a, exe, seeder, fx, "quiet", watch=(seeder.child.pid,))
    if not a.skip_idle:
        idle_cases(p, a, exe, seeder, fx, res)
    load = p.start("load", [exe, "load", str(seeder.port), fx.info_hash, str(PIECE), str(fx.total_size // 16384),
                            str(a.load_peers), str(a.load_pending), str(a.load_rate), "600"])
    t_end = time.monotonic() + 120
    while "LOAD READY" not in load.log():
        if not load.alive() or time.monotonic() > t_end:
            raise RuntimeError("load failed: %s" % load.log()[-2000:])
        time.sleep(0.1)
    time.sleep(3)
    rec = None
    if a.perf:
        rec = p.start("perf", ["perf", "record", "-g", "-o", a.perf, "-p", str(seeder.child.pid)])
        time.sleep(0.5)
    res["pending"] = probe(p, a, exe, seeder, fx, "pending", watch=(seeder.child.pid, load.pid))
    print("  CPU over the pending rounds: hekate %.0f %%, the load process %.0f %% of one core" % (
        100 * res["pending"]["cpu"][0], 100 * res["pending"]["cpu"][1]), flush=True)
    if rec:
        p.stop(rec, sig=signal.SIGINT)
    queued = kernel_queued(seeder.port)
    outs = [int(x) for x in re.findall(r"LOAD outstanding=(\d+)", load.log())]
    pieces = [int(x) for x in re.findall(r"pieces=(\d+)", load.log())]
    p.stop(load)
    seeder.assert_alive("after the pending load")
    print("  load: %d peers, outstanding (sent - received) min %d max %d; in socket buffers at the end %.1f MiB "
          "(%d blocks), so at least %d requests waited in hekate; %.1f MB/s received" % (
              a.load_peers, min(outs or [0]), max(outs or [0]), queued / MiB, queued // 16397,
              min(outs or [0]) - queued // 16397,
              (pieces[-1] * 16384 / 1e6 / max(1, len(pieces))) if pieces else 0), flush=True)
    p.stop(seeder.child)
    return report(res)


def kernel_queued(port):
    """Bytes in the socket buffers of the port's established connections, both ends (ss Send-Q + Recv-Q)."""
    out = subprocess.run(["ss", "-tnH", "state", "established", "( sport = :%d or dport = :%d )" % (port, port)],
                         capture_output=True, text=True).stdout
    total = 0
    for ln in out.splitlines():
        f = ln.split()
        if len(f) >= 2 and f[0].isdigit():
            total += int(f[0]) + int(f[1])
    return total


def idle_cases(p, a, exe, seeder, fx, res):
    idle1, ok1, f1 = start_idle(p, seeder, fx, 10000, "idle-a", a.keepalive)
    time.sleep(3)
    res["idle10k"] = probe(p, a, exe, seeder, fx, "idle10k")
    idle2, ok2, f2 = start_idle(p, seeder, fx, 9000, "idle-b", a.keepalive)
    time.sleep(3)
    rec = p.start("perf-idle", ["perf", "record", "-g", "-o", a.perf + ".idle", "-p", str(seeder.child.pid)]) \
        if a.perf else None
    res["idle19k"] = probe(p, a, exe, seeder, fx, "idle19k", watch=(seeder.child.pid, idle1.pid, idle2.pid))
    if rec:
        p.stop(rec, sig=signal.SIGINT)
    print("  CPU over the idle19k rounds: hekate %.0f %%, the idle processes %.0f %% + %.0f %% of one core" % tuple(
        100 * x for x in res["idle19k"]["cpu"]), flush=True)
    seeder.assert_alive("with %d idle peers" % (ok1 + ok2))
    closed = []
    for c in (idle2, idle1):
        p.stop(c)
        m = re.search(r"CLOSED_BY_SEEDER (\d+)", c.log())
        closed.append(int(m.group(1)) if m else -1)
    print("  idle peers: %d + %d handshaken (%d + %d failed), closed by hekate meanwhile: %s" % (
        ok1, ok2, f1, f2, closed), flush=True)
    time.sleep(3)
    res["quiet2"] = probe(p, a, exe, seeder, fx, "quiet2")


def report(res):
    q = res["quiet"]
    print("\nmedians of the rounds (p99 of each round in brackets)")
    print("%-8s %6s %8s %8s %9s %9s %9s  %s" % ("case", "n", "p50_us", "p99_us", "max_us", "p50/quiet", "p99/quiet",
                                              "rounds' p99"))
    for k in ("quiet", "idle10k", "idle19k", "quiet2", "pending"):
        r = res.get(k)
        if not r:
            continue
        print("%-8s %6d %8.1f %8.1f %9.1f %9.2f %9.2f  [%s]" % (
            k, r["n"], r["p50"], r["p99"], r["max"], r["p50"] / q["p50"], r["p99"] / q["p99"],
            " ".join("%.0f" % x["p99"] for x in r["rounds"])))
    ok_idle = "idle19k" not in res or res["idle19k"]["p99"] <= 1.2 * q["p99"]
    ok_pend = res["pending"]["p99"] <= 2.0 * q["p99"]
    if "idle19k" in res:
        print("\nidle 19,000: p99 %.2f x quiet (<= 1.2): %s" % (res["idle19k"]["p99"] / q["p99"],
                                                               "PASS" if ok_idle else "FAIL"))
    print("10^5 pending: p99 %.2f x quiet (<= 2): %s" % (res["pending"]["p99"] / q["p99"],
                                                          "PASS" if ok_pend else "FAIL"))
    return ok_idle and ok_pend


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default=os.path.join(HERE, "..", "build", "release"))
    ap.add_argument("--count", type=int, default=2000, help="timed requests per round")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per case; a case's figures are their medians")
    ap.add_argument("--gap-us", type=int, default=1000, help="pause between a reply and the next request")
    ap.add_argument("--blocks", type=int, default=64, help="the probe's blocks (the first N of the torrent)")
    ap.add_argument("--size-mib", type=int, default=16)
    ap.add_argument("--reqq", type=int, default=2048)
    ap.add_argument("--load-peers", type=int, default=50)
    ap.add_argument("--load-pending", type=int, default=2000, help="requests each load peer keeps outstanding")
    ap.add_argument("--load-rate", type=float, default=256 * KiB, help="bytes/s each load peer reads")
    ap.add_argument("--keepalive", type=float, default=60, help="each idle peer's keep-alive period (0: none)")
    ap.add_argument("--skip-idle", action="store_true", help="only the quiet and pending cases")
    ap.add_argument("--perf", metavar="FILE", help="perf record -g hekate during the pending case into FILE (and the idle19k case into FILE.idle)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (logs, samples)")
    ap.add_argument("--keep-awake", action="store_true",
                    help="one nice-19 busy loop per CPU for the whole run, so no case meets a CPU waking from idle "
                         "(on a virtual machine that wake-up alone can put the quiet p99 at milliseconds)")
    a = ap.parse_args()
    a.build_dir = os.path.abspath(a.build_dir)
    with procs.Procs("reactivity", 900, keep=a.keep) as p:
        if a.keep_awake:
            for i in range(os.cpu_count() or 2):
                p.start("awake%d" % i, ["nice", "-n", "19", "sh", "-c", "while :; do :; done"])
        ok = body(p, a)
        if a.keep:
            print("work folder: %s" % p.root)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
