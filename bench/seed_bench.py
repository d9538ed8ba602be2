#!/usr/bin/python3
"""seed_bench: what serving costs hekate, next to a python-libtorrent seeder (lt.high_performance_seed(), seed mode)
and a plain bulk TCP sender (the floor), all measured in one invocation on 127.0.0.1.

One fixture (default 256 MiB in 256 KiB pieces, made once, in the page cache). For each K in --leechers, a fresh
seeder serves K python-libtorrent leechers (run in ceil(K / --per-proc) separate processes, so their CPU is not
the seeder's). Each leecher wants a window of consecutive pieces (the whole file while K x size <= --max-total-mib,
else max-total / K), the windows spread evenly over the file; leecher data goes to a tmpfs. Measured on the seeder
process only, from the moment the leechers start until the last one is done:
  CPU s/GiB   user+sys from /proc/PID/stat per GiB of piece payload the leechers received
  MB/s        payload bytes / (last leecher done - first leecher started)
  peak RSS    VmHWM from /proc/PID/status (includes mapped file pages: both seeders mmap the data)
  peak anon   the highest RssAnon seen by a sampler every 20 ms (heap and other private memory)
  syscalls/GiB  raw_syscalls:sys_enter counted by `perf stat -p PID` during the run (every system call of every
              thread); when perf cannot attach, /proc/PID/io syscr+syscw (read- and write-like calls only); the
              table says which
The floor is one process sending the same file over one loopback connection to one reader (floor.py), both as
send() from a mapping and with sendfile(). Then --idle-conns connections are opened to hekate (and to the libtorrent
seeder), handshaken and left idle, and the seeder's RSS and RssAnon deltas per connection are reported.
With --encryption forced (or both: plain and forced in the same invocation) the leechers require MSE/PE with RC4
(libtorrent pe_forced, allowed_enc_level pe_rc4; the libtorrent seeder then accepts it, hekate with its defaults):
those rows are labelled hekate-rc4 and libtorrent-rc4 and get their own ratio lines (issue 9).
--baseline-build DIR adds the seeder kind hekate-base (put it in --seeders): hekate from another build, e.g. the
previous commit, run in plain mode only, so a change is compared with what it changes in the same invocation.

usage: seed_bench.py --build-dir BUILD [--size-mib 256] [--piece-kib 256] [--leechers 1,10,50,200]
                     [--seeders hekate,libtorrent,floor] [--idle-conns 10000] [--max-total-mib 4096] [--per-proc 50]
                     [--hekate-args "-N 50"] [--workdir DIR] [--save-root /dev/shm] [--json out.json]
                     [--encryption plain|forced|both]
Prints a table and the ratios hekate / libtorrent and hekate / floor."""
import argparse
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "interop"))
from lib import fixtures, procs, procstat, seeders  # noqa: E402
from lib.fixtures import KiB, MiB  # noqa: E402

GiB = 1 << 30
PY = "/usr/bin/python3"


def perf_works():
    try:
        r = subprocess.run(["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "--", "true"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0 and "raw_syscalls:sys_enter" in r.stdout.decode() and \
        "not supported" not in r.stdout.decode()


class SyscallCounter:
    def __init__(self, p, pid, use_perf):
        self.p, self.pid, self.use_perf = p, pid, use_perf
        if use_perf == "strace":
            self.out = p.path("strace-%d-%d.txt" % (pid, time.monotonic_ns()))
            self.child = p.start("strace", ["strace", "-c", "-f", "-o", self.out, "-p", str(pid)])
            time.sleep(0.5)
        elif use_perf:
            self.out = p.path("perf-%d-%d.csv" % (pid, time.monotonic_ns()))
            self.child = p.start("perf", ["perf", "stat", "-x,", "-o", self.out, "-e", "raw_syscalls:sys_enter",
                                          "-p", str(pid)])
            time.sleep(0.3)   # let perf attach before the load starts
        else:
            self.base = procstat.io(pid)

    def finish(self):
        if self.use_perf == "strace":
            os.killpg(self.child.pid, signal.SIGINT)
            self.child.popen.wait(timeout=60)
            text = open(self.out).read()
            print("strace -c -f of pid %d:\n%s" % (self.pid, text), flush=True)
            for line in text.splitlines():
                parts = line.split()
                if parts and parts[-1] == "total":
                    return int(parts[3]), "strace -c -f (slows the seeder)"
            raise RuntimeError("strace wrote no total: %s" % text)
        if self.use_perf:
            os.killpg(self.child.pid, signal.SIGINT)
            self.child.popen.wait(timeout=30)
            with open(self.out) as f:
                for line in f:
                    parts = line.strip().split(",")
                    if len(parts) > 2 and parts[2].startswith("raw_syscalls:sys_enter"):
                        return int(parts[0]), "perf raw_syscalls:sys_enter"
            raise RuntimeError("perf wrote no count: %s" % open(self.out).read())
        now = procstat.io(self.pid)
        return (now["syscr"] - self.base["syscr"]) + (now["syscw"] - self.base["syscw"]), "/proc/PID/io syscr+syscw"


def run_leechers(p, a, fx, seeder, k, save_root, encryption="plain"):
    want_pieces = fx.num_pieces
    if k * fx.total_size > a.max_total_mib * MiB:
        want_pieces = max(1, (a.max_total_mib * MiB // k) // fx.piece_length)
    pid = seeder.pid
    time.sleep(0.5)
    cpu0 = procstat.cpu_seconds(pid)
    st0 = procstat.status(pid)
    sampler = procstat.Sampler(pid, interval=0.02)
    sc = SyscallCounter(p, pid, a.use_perf)
    workers = []
    first = 0
    while first < k:
        n = min(a.per_proc, k - first)
        workers.append(p.start("leechers-%d-%d" % (k, first), [
            PY, os.path.join(HERE, "lt_leechers.py"), "--torrent", fx.torrent, "--port", str(seeder.port),
            "--first", str(first), "--count", str(n), "--total", str(k), "--want", str(want_pieces),
            "--save-root", save_root, "--timeout", str(a.run_timeout), "--encryption", encryption]))
        first += n
    reports = []
    for w in workers:
        w.popen.wait(timeout=a.run_timeout + 120)
        out = w.log()
        line = [ln for ln in out.splitlines() if ln.startswith("{")]
        if not line:
            raise RuntimeError("leecher process printed no report (exit %s):\n%s" % (w.returncode(), out[-3000:]))
        reports += json.loads(line[-1])["leechers"]
        if w.returncode() != 0:
            raise RuntimeError("leechers failed against %s (K=%d): %s" % (seeder.kind, k, out[-3000:]))
    cpu1 = procstat.cpu_seconds(pid)
    st1 = procstat.status(pid)
    nsys, sys_how = sc.finish()
    sampler.stop()
    payload = sum(r["payload"] for r in reports)
    wall = max(r["t_done"] for r in reports) - min(r["t_start"] for r in reports)
    hash_fail = sum(r["hash_failures"] for r in reports)
    label = seeder.kind + ("-rc4" if encryption == "forced" else "")
    return {"seeder": label, "k": k, "bytes": payload, "seconds": wall, "cpu": cpu1 - cpu0,
            "cpu_per_gib": (cpu1 - cpu0) / (payload / GiB), "mbps": payload / wall / 1e6,
            "vmhwm": st1["VmHWM"], "rss_start": st0["VmRSS"], "peak_anon": max(sampler.peak_anon, st1["RssAnon"]),
            "syscalls": nsys, "syscalls_per_gib": nsys / (payload / GiB), "syscall_source": sys_how,
            "hash_failures": hash_fail, "pieces_per_leecher": want_pieces}


def run_floor(p, a, fx, mode):
    port_file = p.path("floor-port-%s" % mode)
    reader = p.start("floor-recv-" + mode, [PY, os.path.join(HERE, "floor.py"), "recv", port_file])
    t_end = time.monotonic() + 20
    while not os.path.exists(port_file):
        if time.monotonic() > t_end:
            raise RuntimeError("floor reader did not start")
        time.sleep(0.02)
    port = int(open(port_file).read())
    repeat = max(1, (a.floor_mib * MiB) // fx.total_size)
    sender = p.start("floor-send-" + mode, [PY, os.path.join(HERE, "floor.py"), "send", str(port),
                                            fx.data_path(fx.name), str(repeat), mode])
    while "READY" not in sender.log():
        if not sender.alive() or time.monotonic() > t_end:
            raise RuntimeError("floor sender did not start: %s" % sender.log())
        time.sleep(0.02)
    pid = sender.pid
    cpu0 = procstat.cpu_seconds(pid)
    sampler = procstat.Sampler(pid, interval=0.02)
    sc = SyscallCounter(p, pid, a.use_perf)
    t0 = time.monotonic()
    os.kill(pid, signal.SIGUSR1)
    while "SENT" not in sender.log():
        if not sender.alive():
            raise RuntimeError("floor sender died: %s" % sender.log())
        time.sleep(0.005)
    wall = time.monotonic() - t0
    cpu1 = procstat.cpu_seconds(pid)
    st1 = procstat.status(pid)
    nsys, sys_how = sc.finish()
    sampler.stop()
    reader.popen.wait(timeout=60)
    got = int(reader.log().split()[1])
    p.stop(sender)
    return {"seeder": "floor-" + mode, "k": 1, "bytes": got, "seconds": wall, "cpu": cpu1 - cpu0,
            "cpu_per_gib": (cpu1 - cpu0) / (got / GiB), "mbps": got / wall / 1e6, "vmhwm": st1["VmHWM"],
            "rss_start": 0, "peak_anon": max(sampler.peak_anon, st1["RssAnon"]), "syscalls": nsys,
            "syscalls_per_gib": nsys / (got / GiB), "syscall_source": sys_how, "hash_failures": 0,
            "pieces_per_leecher": fx.num_pieces}


def run_idle(p, a, fx, seeder):
    pid = seeder.pid
    time.sleep(1.0)
    st0 = procstat.status(pid)
    fds0 = procstat.num_fds(pid)
    client = p.start("idle-conns", [PY, os.path.join(HERE, "idle_conns.py"), "--port", str(seeder.port),
                                    "--info-hash", fx.info_hash, "--count", str(a.idle_conns), "--hold", "600"])
    t_end = time.monotonic() + 300
    while "HANDSHAKEN" not in client.log():
        if not client.alive() or time.monotonic() > t_end:
            raise RuntimeError("idle client failed: %s" % client.log()[-2000:])
        time.sleep(0.2)
    line = [ln for ln in client.log().splitlines() if ln.startswith("HANDSHAKEN")][0].split()
    ok, failed, secs = int(line[1]), int(line[3]), float(line[5])
    time.sleep(3.0)   # let the seeder settle (its per-connection buffers, timers)
    st1 = procstat.status(pid)
    fds1 = procstat.num_fds(pid)
    seeder.assert_alive("with %d idle connections" % ok)
    p.stop(client)
    return {"seeder": seeder.kind, "connections": ok, "failed": failed, "seconds": secs,
            "rss_before": st0["VmRSS"], "rss_after": st1["VmRSS"], "anon_before": st0["RssAnon"],
            "anon_after": st1["RssAnon"], "fds": fds1 - fds0,
            "rss_per_conn": (st1["VmRSS"] - st0["VmRSS"]) / max(1, ok),
            "anon_per_conn": (st1["RssAnon"] - st0["RssAnon"]) / max(1, ok)}


def start(p, a, kind, dirs, extra=(), encryption="plain"):
    if kind == "hekate":  # hekate's default policy (allow) serves both
        return seeders.start_hekate(p, a.build_dir, dirs, args=shlex.split(a.hekate_args) + list(extra))
    if kind == "hekate-base":
        s = seeders.start_hekate(p, a.baseline_build, dirs, args=shlex.split(a.hekate_args) + list(extra))
        s.kind = "hekate-base"
        return s
    return seeders.start_lt_seeder(p, dirs, high_performance=True, seed_mode=True, encryption=encryption != "plain")


def check_encrypted(seeder, r):
    """hekate's stop line must say that (almost) every payload byte went through RC4."""
    m = re.search(r"(\d+) encrypted handshakes, \d+ failed; (\d+) bytes encrypted", seeder.child.log())
    if not m or int(m.group(2)) < 0.99 * r["bytes"]:
        raise RuntimeError("hekate did not encrypt the payload (%s)" % (m.group(0) if m else "no MSE handshake"))
    r["mse_handshakes"], r["bytes_encrypted"] = int(m.group(1)), int(m.group(2))


def fmt_row(r):
    return ("%-16s %4d %9.2f %8.1f %9.3f %9.1f %9.1f %9.1f %12.0f  %s" % (
        r["seeder"], r["k"], r["bytes"] / GiB, r["seconds"], r["cpu_per_gib"], r["mbps"], r["vmhwm"] / MiB,
        r["peak_anon"] / MiB, r["syscalls_per_gib"], r["syscall_source"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default=os.path.join(HERE, "..", "build", "release"))
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--piece-kib", type=int, default=256)
    ap.add_argument("--leechers", default="1,10,50,200")
    ap.add_argument("--seeders", default="hekate,libtorrent,floor")
    ap.add_argument("--idle-conns", type=int, default=10000)
    ap.add_argument("--max-total-mib", type=int, default=4096)
    ap.add_argument("--floor-mib", type=int, default=2048)
    ap.add_argument("--per-proc", type=int, default=50)
    ap.add_argument("--run-timeout", type=float, default=900)
    ap.add_argument("--hekate-args", default="")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--save-root", default="/dev/shm")
    ap.add_argument("--syscalls", choices=("auto", "perf", "io", "strace"), default="auto",
                    help="strace: a breakdown per system call (slows the seeder: use it for counts, not CPU)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--baseline-build", default=None, help="the build of the seeder kind hekate-base")
    ap.add_argument("--encryption", choices=("plain", "forced", "both"), default="plain",
                    help="forced: leechers require MSE/PE RC4; both: plain and forced rows in the same run")
    a = ap.parse_args()
    a.build_dir = os.path.abspath(a.build_dir)
    a.baseline_build = os.path.abspath(a.baseline_build) if a.baseline_build else None
    ks = [int(x) for x in a.leechers.split(",") if x]
    kinds = [x for x in a.seeders.split(",") if x]
    modes = ["plain", "forced"] if a.encryption == "both" else [a.encryption]
    a.use_perf = "strace" if a.syscalls == "strace" else \
        (a.syscalls == "perf" or (a.syscalls == "auto" and perf_works()))
    print("syscall counting: %s" % ({"strace": "strace -c -f -p PID", True: "perf stat -e raw_syscalls:sys_enter -p PID",
                                     False: "/proc/PID/io syscr+syscw"}[a.use_perf]), flush=True)
    results, idle = [], []
    with procs.Procs("seed_bench", 4 * 3600) as p:
        work = a.workdir or p.path("work")
        os.makedirs(work, exist_ok=True)
        fdir = os.path.join(work, "fixture")
        name = "bench-%dMiB.bin" % a.size_mib
        t0 = time.monotonic()
        if os.path.exists(os.path.join(fdir, name + ".torrent")) and \
                os.path.getsize(os.path.join(fdir, name)) == a.size_mib * MiB:
            fx = fixtures.Fixture(fdir, name, [(name, a.size_mib * MiB)], os.path.join(fdir, name + ".torrent"), False)
        else:
            fx = fixtures.make_single(fdir, name, a.size_mib * MiB, 7, a.piece_kib * KiB)
        subprocess.run(["cat", fx.data_path(name)], stdout=subprocess.DEVNULL, check=True)   # into the page cache
        print("fixture: %r (%.1f s)" % (fx, time.monotonic() - t0), flush=True)
        save_root = tempfile.mkdtemp(prefix="hekate-bench-", dir=a.save_root)
        print("%-16s %4s %9s %8s %9s %9s %9s %9s %12s" % ("seeder", "K", "GiB", "seconds", "CPU s/GiB", "MB/s",
                                                         "VmHWM MiB", "anon MiB", "syscalls/GiB"), flush=True)
        try:
            for kind in kinds:
                if kind == "floor":
                    for mode in ("mmap", "sendfile"):
                        r = run_floor(p, a, fx, mode)
                        results.append(r)
                        print(fmt_row(r), flush=True)
                    continue
                if kind == "hekate":
                    try:
                        seeders.hekate_binary(a.build_dir)
                    except RuntimeError as e:
                        print("skipping hekate: %s" % e, flush=True)
                        continue
                if kind == "hekate-base" and not a.baseline_build:
                    raise SystemExit("--seeders hekate-base needs --baseline-build")
                kind_modes = ["plain"] if kind == "hekate-base" else modes
                for mode, k in [(m, k) for m in kind_modes for k in ks]:
                    seeder = start(p, a, kind, [fdir], encryption=mode)
                    sub = os.path.join(save_root, "%s-%s-%d" % (kind, mode, k))
                    try:
                        r = run_leechers(p, a, fx, seeder, k, sub, mode)
                        seeder.assert_alive("after K=%d" % k)
                    finally:
                        p.stop(seeder.child)
                        shutil.rmtree(sub, ignore_errors=True)
                    if kind == "hekate" and mode == "forced":
                        check_encrypted(seeder, r)
                    results.append(r)
                    print(fmt_row(r), flush=True)
            if a.idle_conns:
                for kind in kinds:
                    if kind in ("floor", "hekate-base") or (kind == "hekate" and not os.path.exists(
                            os.path.join(a.build_dir, "backend-real", "hekate"))):
                        continue
                    extra = ["--max-peers", str(a.idle_conns + 100), "--idle-timeout", "600",
                             "--handshake-timeout", "60"] if kind == "hekate" else []
                    seeder = start(p, a, kind, [fdir], extra)
                    try:
                        r = run_idle(p, a, fx, seeder)
                    finally:
                        p.stop(seeder.child)
                    idle.append(r)
                    print("idle %-10s %d connections handshaken (%d failed) in %.1f s: RSS +%.1f MiB (%.0f B/conn), "
                          "RssAnon +%.1f MiB (%.0f B/conn), +%d fds" % (
                              r["seeder"], r["connections"], r["failed"], r["seconds"],
                              (r["rss_after"] - r["rss_before"]) / MiB, r["rss_per_conn"],
                              (r["anon_after"] - r["anon_before"]) / MiB, r["anon_per_conn"], r["fds"]), flush=True)
        finally:
            shutil.rmtree(save_root, ignore_errors=True)

    def find(kind, k):
        for r in results:
            if r["seeder"] == kind and r["k"] == k:
                return r
        return None
    print("\nratios (lower is better for CPU and syscalls, higher for MB/s):")
    floor = find("floor-mmap", 1)
    for k in ks:
        h, lt = find("hekate", k), find("libtorrent", k)
        he, lte, hb = find("hekate-rc4", k), find("libtorrent-rc4", k), find("hekate-base", k)
        if h and hb:
            print("K=%-4d plain hekate/hekate-base: CPU/GiB %.2f (%.3f / %.3f)  MB/s %.2f  syscalls/GiB %.2f" % (
                k, h["cpu_per_gib"] / hb["cpu_per_gib"], h["cpu_per_gib"], hb["cpu_per_gib"], h["mbps"] / hb["mbps"],
                h["syscalls_per_gib"] / hb["syscalls_per_gib"]))
        if he and lte:
            print("K=%-4d encrypted (rc4) hekate/libtorrent: CPU/GiB %.2f (%.3f / %.3f)  MB/s %.2f  syscalls/GiB %.2f"
                  % (k, he["cpu_per_gib"] / lte["cpu_per_gib"], he["cpu_per_gib"], lte["cpu_per_gib"],
                     he["mbps"] / lte["mbps"], he["syscalls_per_gib"] / lte["syscalls_per_gib"]))
        if h and lt:
            print("K=%-4d hekate/libtorrent: CPU/GiB %.2f  MB/s %.2f  syscalls/GiB %.2f  anon %.2f" % (
                k, h["cpu_per_gib"] / lt["cpu_per_gib"], h["mbps"] / lt["mbps"],
                h["syscalls_per_gib"] / lt["syscalls_per_gib"], h["peak_anon"] / lt["peak_anon"]))
        if h and floor:
            print("K=%-4d hekate/floor(mmap): CPU/GiB %.2f  syscalls/GiB %.2f" % (
                k, h["cpu_per_gib"] / floor["cpu_per_gib"], h["syscalls_per_gib"] / floor["syscalls_per_gib"]))
        if lt and floor:
            print("K=%-4d libtorrent/floor(mmap): CPU/GiB %.2f  syscalls/GiB %.2f" % (
                k, lt["cpu_per_gib"] / floor["cpu_per_gib"], lt["syscalls_per_gib"] / floor["syscalls_per_gib"]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"runs": results, "idle": idle, "args": vars(a)}, f, indent=1)
    os._exit(0)


if __name__ == "__main__":
    main()
