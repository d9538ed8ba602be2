#!/usr/bin/env python3
"""Start-up benchmark (issue 10 item 3): N tiny torrents (bench/gen_tiny_torrents.py: a .torrent and a 1-byte data
file each, 1000 per folder, under /tmp/hk_startup/N, generated once and kept), served by hekate cold (no resume
state) then warm (the state the cold run saved at its stop).

For each run it prints:
  first   time from exec to the first torrent of the scan order answering a BitTorrent handshake (a plain TCP
          handshake on 127.0.0.1, probed every 5 ms; the seeder answers a known info-hash with its own handshake and
          closes an unknown one);
  all     time from exec to every torrent being served: cold, the end of the first scan (the start-up line); warm,
          the end of the resume state's load (its summary line), checked by a handshake for the last torrent of
          the scan order and one for a torrent in the middle;
  rss     VmRSS once everything is served, minus the RSS of the same binary serving an empty folder, per torrent;
          and the same minus the torrent's names: its .torrent's path and its name, NULs included, each counted
          once at its full length (how they are stored does not matter: the interned folder of the path and the
          shared data-file name are stored in fewer bytes, and those savings count for hekate).
  cpu     the CPU seconds (user + system) hekate used up to "all";
  load    the machine's 1-minute load average at the end of the run (other jobs share the machine).
Then, per N, the per-record breakdown of the heap (bench/torrent_mem.c, built here against BUILD_DIR's libraries
unless --no-breakdown): the seeder's torrent records, indexes and names, the catalog's path table (records, paths,
slot tables), the store's handles, records, file entries and names, malloc's overheads; and at the end one line per N
with the RSS per torrent beyond names of the warm run against the 160 B acceptance limit (issue 10).
Usage: startup_bench.py BUILD_DIR [--warm-only] [--no-breakdown] [--work=DIR] [--port=P] N [N...]    (e.g.
build/release 10000 100000 1000000; --warm-only keeps the state an earlier run saved and runs only the warm start;
--work puts the state files, logs, empty folder and breakdown binary in DIR instead of /tmp/hk_startup, so runs
sharing the generated folders do not share their states; --port takes the listening ports from P, P+1, ... instead
of a free port the kernel picks)
"""
import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_tiny_torrents as gen  # noqa: E402
import hashlib  # noqa: E402

ROOT = "/tmp/hk_startup"
WORK = ROOT   # --work: states, logs, the empty folder, the breakdown binary
PORTS = []    # --port: [next port]; empty: a free port the kernel picks


def info_hash(i):
    name = b"t%07d.dat" % i
    t = gen.torrent(name, bytes([i & 0xff]))
    info = t[len(b"d4:info"):-1]
    return hashlib.sha1(info).digest()


def free_port():
    if PORTS:
        PORTS[0] += 1
        return PORTS[0] - 1
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def handshake(port, ih, timeout=0.5):
    """True if the seeder answers a handshake for ih with one for ih."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError:
        return False
    try:
        s.settimeout(timeout)
        s.sendall(b"\x13BitTorrent protocol" + bytes(8) + ih + b"-BE0001-startupbench")
        got = b""
        while len(got) < 68:
            b = s.recv(68 - len(got))
            if not b:
                return False
            got += b
        return got[28:48] == ih
    except OSError:
        return False
    finally:
        s.close()


def cpu_seconds(pid):
    """utime + stime of the process so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def stamp(line):
    """Seconds since the epoch of a log line's ISO timestamp (UTC), or None."""
    m = re.match(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{3})Z", line)
    if not m:
        return None
    y, mo, d, h, mi, s, ms = (int(x) for x in m.groups())
    import calendar
    return calendar.timegm((y, mo, d, h, mi, s)) + ms / 1000.0


def start(hekate, port, state, folder, log):
    args = [hekate, "-t", "-p", str(port), "--bind", "127.0.0.1", "--no-watch", "--max-open-files", "1024"]
    if state:
        args += ["--state=" + state]
    args.append(folder)
    t0 = time.time()
    p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    return p, t0


def stop(p):
    p.send_signal(signal.SIGINT)
    try:
        p.wait(timeout=120)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def baseline(hekate):
    empty = os.path.join(WORK, "empty")
    os.makedirs(empty, exist_ok=True)
    port = free_port()
    with open(os.path.join(WORK, "empty.log"), "w") as log:
        p = subprocess.Popen([hekate, "-t", "-p", str(port), "--bind", "127.0.0.1", "--no-watch", "--rescan=3600",
                              empty], stdout=log, stderr=subprocess.STDOUT)
        time.sleep(1.0)
        r = rss_kib(p.pid)
        stop(p)
    return r


def wait_line(path, pattern, p, deadline):
    rx = re.compile(pattern)
    while time.time() < deadline:
        with open(path, errors="replace") as f:
            for line in f:
                if rx.search(line):
                    return line
        if p.poll() is not None:
            return None
        time.sleep(0.05)
    return None


def build_breakdown(build):
    """Compiles bench/torrent_mem.c against the build's libraries (its header's command); the binary or None."""
    src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = os.path.join(WORK, "torrent_mem")
    inc = ["-I" + os.path.join(src, d) for d in ("core", "backend-real/lib", "backend-real/lib/catalog",
                                                "backend-real/lib/disk", "backend-real/lib/net",
                                                "backend-real/lib/trackers", "backend-real/lib/ops")]
    libs = [os.path.join(build, "backend-real", "libhekate_real.a"), os.path.join(build, "core", "libhekate_core.a")]
    cmd = ["cc", "-O2"] + inc + [os.path.join(src, "bench", "torrent_mem.c")] + libs + \
        ["-lev", "-lcurl", "-lmicrohttpd", "-lsystemd", "-linih", "-lcrypto", "-lpthread", "-o", out]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print("breakdown: could not build bench/torrent_mem.c:\n" + r.stderr, flush=True)
        return None
    return out


def one_run(hekate, n, state, kind, base_kib):
    folder = os.path.join(ROOT, str(n))
    port = free_port()
    logpath = os.path.join(WORK, "%d-%s.log" % (n, kind))
    first_ih, mid_ih, last_ih = info_hash(0), info_hash(n // 2), info_hash(n - 1)
    with open(logpath, "w") as log:
        p, t0 = start(hekate, port, state, folder, log)
        first = None
        deadline = t0 + 600
        while first is None and time.time() < deadline and p.poll() is None:
            if handshake(port, first_ih, 0.2):
                first = time.time() - t0
            else:
                time.sleep(0.005)
        pattern = r"resume state: \d+ torrents? served from it" if kind == "warm" else r"serving \d+ torrents? on port"
        line = wait_line(logpath, pattern, p, deadline)
        cpu = cpu_seconds(p.pid)
        t_all = None
        if line and kind == "warm":
            t_all = stamp(line) - t0
        elif line:
            t_all = time.time() - t0  # the start-up line is on stdout, without a timestamp: when it was seen
        ok = handshake(port, last_ih, 2) and handshake(port, mid_ih, 2)
        started = wait_line(logpath, r"serving \d+ torrents? on port", p, deadline)
        time.sleep(0.5)
        kib = rss_kib(p.pid)
        stop(p)
    served = int(re.search(r"serving (\d+) torrent", started).group(1)) if started else -1
    per = (kib - base_kib) * 1024.0 / n
    # the torrent's names: the .torrent's path and the torrent's name, NULs included, once each (until 2026-12-04
    # this also subtracted a second copy of the .torrent's and the torrent's names that the store no longer keeps)
    names = len(os.path.join(folder, "d0000/t0000000.torrent")) + 1 + len("t0000000.dat") + 1
    print("%8d %-5s first %7.3f s  all %7.3f s (CPU %6.2f s)  served %8d  last+middle ok %-5s rss %8d KiB  "
          "%6.1f B/torrent  %6.1f B/torrent beyond names (%d B)  load %.1f" % (
              n, kind, first if first is not None else -1, t_all if t_all is not None else -1, cpu, served, ok, kib,
              per, per - names, names, os.getloadavg()[0]), flush=True)
    return per - names


def main():
    warm_only = "--warm-only" in sys.argv  # keep the state of an earlier run: only the warm start
    breakdown = "--no-breakdown" not in sys.argv
    global WORK
    for a in sys.argv:
        if a.startswith("--work="):
            WORK = a[len("--work="):]
        elif a.startswith("--port="):
            PORTS.append(int(a[len("--port="):]))
    argv = [a for a in sys.argv if a not in ("--warm-only", "--no-breakdown") and not a.startswith("--work=") and
            not a.startswith("--port=")]
    build, counts = argv[1], [int(x) for x in argv[2:]]
    hekate = os.path.join(build, "backend-real", "hekate")
    os.makedirs(ROOT, exist_ok=True)
    os.makedirs(WORK, exist_ok=True)
    base = baseline(hekate)
    print("baseline (empty folder): rss %d KiB" % base, flush=True)
    mem = build_breakdown(build) if breakdown else None
    beyond = []
    for n in counts:
        folder = os.path.join(ROOT, str(n))
        if not os.path.exists(os.path.join(folder, ".complete")):
            t = time.time()
            gen.main_args(n, folder)
            open(os.path.join(folder, ".complete"), "w").close()
            print("generated %d torrents in %.1f s" % (n, time.time() - t), flush=True)
        subprocess.run(["sync"])
        state = os.path.join(WORK, "%d.state" % n)
        if not warm_only or not os.path.exists(state):
            if os.path.exists(state):
                os.unlink(state)
            one_run(hekate, n, state, "cold", base)
        beyond.append((n, one_run(hekate, n, state, "warm", base)))
        if mem:
            r = subprocess.run([mem, folder], capture_output=True, text=True)
            print(r.stdout.rstrip() if r.returncode == 0 else "breakdown failed: " + r.stderr, flush=True)
    for n, b in beyond:
        print("%8d torrents: warm RSS %.1f B/torrent beyond names, limit 160: %s (ratio %.2f)" % (
            n, b, "met" if b <= 160 else "NOT met", b / 160.0), flush=True)


if __name__ == "__main__":
    main()
