#!/usr/bin/python3
"""swarm_bench: hekate at the loopback limit, with hekate-swarm as the load (issue 12 item 6), next to the bulk-send
floor (iperf3, one stream, with and without -Z sendfile) and the python-libtorrent leechers of seed_bench, all
measured in one invocation on 127.0.0.0/8.

For each K in --leechers and each pair of --modes (hekate's --verify / hekate-swarm's block verification), a
scenario is written (bench/swarm_bench.py writes it: one 'normal' profile of K peers, each from its own 127.x.y.z,
arriving at --arrival-rate a second, download rate --down (no cap that matters), latency 0, no window emulation) for
one torrent of max(--min-size-kib, --total-mib / K) rounded to whole pieces, so every leecher downloads the whole
torrent and each piece is served K times. hekate runs with no rate cap, --max-peers K + 100, -N --unchoked (at most
K), no per-address or per-prefix cap (--max-peers-per-prefix=0: hekate-swarm puts 256 peers in a /24). Measured:
  hekate CPU s/GiB    utime+stime of the hekate process (/proc/PID/stat) from hekate-swarm's start to its exit,
                      per GiB of payload the fleet received
  swarm CPU s/GiB     hekate-swarm's own utime+stime (wait4 rusage: the whole process, start-up included) per GiB
  MB/s                payload / hekate-swarm's 'real' time (its loop, first arrival to last peer done)
The floor: iperf3 -s / iperf3 -c on 127.0.0.1, one stream, -n the same byte count as the K = --ratio-k run, plain
and -Z (sendfile); the sender is the client, its CPU s/GiB from wait4 rusage (the whole process).
The python-libtorrent load: seed_bench's run_leechers against hekate (--verify lazy) at K = --lt-k, each leecher
the whole --lt-size-mib file, run in processes of 50; their CPU from getrusage(RUSAGE_CHILDREN) around the run
(every leecher process is reaped in it, nothing else is).
Ratios printed: hekate CPU/GiB at K = --ratio-k (verification off and lazy) / the iperf3 single-stream sender's;
hekate-swarm's CPU/GiB at the largest K / the python leechers' at --lt-k; lazy verification's extra CPU s/GiB on
hekate at each K (lazy - off, both with the same swarm verification).

usage: swarm_bench.py [--build-dir BUILD] [--leechers 50,500,5000] [--modes lazy/on,off/off,lazy/off]
                      [--total-mib 2048] [--min-size-kib 512] [--piece-kib 256] [--unchoked 500]
                      [--pipeline 16] [--lt-k 50] [--lt-size-mib 64] [--no-lt] [--no-iperf] [--hekate-args ARGS] [--json FILE]"""
import argparse
import json
import os
import re
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import types

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "interop"))
import seed_bench  # noqa: E402
from lib import fixtures, procs, procstat, seeders  # noqa: E402
from lib.fixtures import KiB, MiB  # noqa: E402

GiB = 1 << 30

SCENARIO = """; written by bench/swarm_bench.py: K = {k} leechers at the loopback limit
[seeder]
max_unchoked = {n}
max_peers = {maxp}
max_peers_per_prefix = 0
; no simulated round trip: the delay line is empty (loopback's own)
latency = 0ms

[torrent]
size = {size}
piece_length = {piece}

[profile normal]
count = {k}
arrival = uniform
rate = {rate}
behaviour = normal
pipeline = {pipeline}
down = {down}
latency = 0ms

[run]
duration = {duration}
seed = 1
"""


def wait_rusage(child, timeout):
    """Reaps one child of procs.Procs with wait4: (exit status, user+sys CPU seconds of that process)."""
    t_end = time.monotonic() + timeout
    while True:
        pid, status, ru = os.wait4(child.pid, os.WNOHANG)
        if pid == child.pid:
            child.popen.returncode = os.waitstatus_to_exitcode(status)
            return child.popen.returncode, ru.ru_utime + ru.ru_stime
        if time.monotonic() > t_end:
            raise RuntimeError("%s did not finish in %.0f s" % (child.name if hasattr(child, "name") else "child",
                                                                timeout))
        time.sleep(0.02)


def swarm_bin(build):
    path = os.path.join(build, "backend-swarm", "hekate-swarm")
    if not os.access(path, os.X_OK):
        raise SystemExit("no %s (build the hekate-swarm target)" % path)
    return path


def make_scenario(a, work, k):
    piece = a.piece_kib * KiB
    size = max(a.min_size_kib * KiB, (a.total_mib * MiB // k) // piece * piece)
    size = (size + piece - 1) // piece * piece
    d = os.path.join(work, "swarm-k%d-%dk%s" % (k, size // KiB, "" if a.pipeline == 16 else "-q%d" % a.pipeline))
    ini = os.path.join(d, "scenario.ini")
    if not os.path.exists(ini):
        os.makedirs(d, exist_ok=True)
        with open(ini, "w") as f:
            f.write(SCENARIO.format(k=k, n=min(k, a.unchoked), maxp=k + 100, size=size, piece=piece,
                                    rate=a.arrival_rate, down=a.down, pipeline=a.pipeline, duration=a.duration))
        subprocess.run([swarm_bin(a.build_dir), ini, "--make-torrents", os.path.join(d, "t")], check=True,
                       stdout=subprocess.DEVNULL)
    for name in os.listdir(os.path.join(d, "t")):   # into the page cache: the load is the network, not the disk
        subprocess.run(["cat", os.path.join(d, "t", name)], stdout=subprocess.DEVNULL, check=True)
    return ini, os.path.join(d, "t"), size


def run_swarm(p, a, work, k, hverify, sverify):
    ini, tdir, size = make_scenario(a, work, k)
    args = ["--verify=%s" % hverify, "--max-peers", str(k + 100), "-N", str(min(k, a.unchoked)),
            "--max-peers-per-prefix=0", "--max-peers-per-address=0"] + shlex.split(a.hekate_args)
    seeder = seeders.start_hekate(p, a.build_dir, [tdir], args=args)
    try:
        time.sleep(0.5)
        cpu0 = procstat.cpu_seconds(seeder.pid)
        loop0 = procstat.main_thread_cpu_seconds(seeder.pid)
        argv = [swarm_bin(a.build_dir), ini, "--target", "127.0.0.1:%d" % seeder.port, "--torrents", tdir,
                "--no-window"] + ([] if sverify == "on" else ["--no-verify"])
        sw = p.start("swarm-k%d-%s-%s" % (k, hverify, sverify), argv)
        rc, swarm_cpu = wait_rusage(sw, a.duration + 120)
        cpu1 = procstat.cpu_seconds(seeder.pid)
        loop1 = procstat.main_thread_cpu_seconds(seeder.pid)
        seeder.assert_alive("after the swarm at K=%d" % k)
        st = procstat.status(seeder.pid)
    finally:
        p.stop(seeder.child)
    calls = re.search(r"(\d+) writev calls \((\d+) iovecs, (\d+) bytes\), (\d+) reads", seeder.child.log())
    out = sw.log()
    m = re.search(r"real ([\d.]+) s, cpu ([\d.]+) s", out)
    f = re.search(r"fleet: (\d+) bytes read from the sockets, (\d+) payload; blocks failing verification (\d+)", out)
    done = re.search(r"^normal\s+(\d+)\s+(\d+)", out, re.M)
    if rc != 0 or not (m and f and done):
        raise RuntimeError("hekate-swarm K=%d exit %s:\n%s" % (k, rc, out[-3000:]))
    payload, real = int(f.group(2)), float(m.group(1))
    if int(done.group(2)) != k or payload < k * size:
        raise RuntimeError("K=%d: %s of %d peers completed, %d of %d payload bytes:\n%s" % (
            k, done.group(2), k, payload, k * size, out[-2000:]))
    return {"load": "hekate-swarm", "k": k, "hekate_verify": hverify, "swarm_verify": sverify, "bytes": payload,
            "torrent_bytes": size, "seconds": real, "mbps": payload / real / 1e6, "hekate_cpu": cpu1 - cpu0,
            "hekate_cpu_per_gib": (cpu1 - cpu0) / (payload / GiB), "load_cpu": swarm_cpu,
            # the event loop's thread and the disk pool's (verification hashes there), per GiB
            "hekate_loop_cpu_per_gib": (loop1 - loop0) / (payload / GiB),
            "hekate_pool_cpu_per_gib": ((cpu1 - cpu0) - (loop1 - loop0)) / (payload / GiB),
            "load_cpu_per_gib": swarm_cpu / (payload / GiB), "hekate_vmhwm": st["VmHWM"],
            "verify_failures": int(f.group(3)),
            # hekate's stop line (counted over its whole life, start-up included: a handful of calls)
            "writes_per_gib": int(calls.group(1)) / (payload / GiB) if calls else None,
            "reads_per_gib": int(calls.group(4)) / (payload / GiB) if calls else None,
            "bytes_per_write": int(calls.group(3)) / int(calls.group(1)) if calls and int(calls.group(1)) else None}


def run_iperf(p, a, nbytes, zerocopy):
    port = procs.free_port()
    srv = p.start("iperf3-s", ["iperf3", "-s", "-1", "--forceflush", "-B", "127.0.0.1", "-p", str(port)])
    t_end = time.monotonic() + 20   # not wait_port: with -1 the probe connection would be the server's one test
    while "Server listening" not in srv.log():
        if not srv.alive() or time.monotonic() > t_end:
            raise RuntimeError("iperf3 -s did not start: %s" % srv.log())
        time.sleep(0.02)
    argv = ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-P", "1", "-n", str(nbytes), "-J"] + \
        (["-Z"] if zerocopy else [])
    cl = p.start("iperf3-c" + ("-Z" if zerocopy else ""), argv)
    rc, cpu = wait_rusage(cl, 600)
    srv.popen.wait(timeout=60)
    if rc != 0:
        raise RuntimeError("iperf3 client exit %d: %s" % (rc, cl.log()[-2000:]))
    j = json.loads(cl.log())
    sent = j["end"]["sum_sent"]
    return {"load": "iperf3" + (" -Z" if zerocopy else ""), "k": 1, "hekate_verify": "-", "swarm_verify": "-",
            "bytes": int(sent["bytes"]), "seconds": float(sent["seconds"]),
            "mbps": sent["bytes"] / sent["seconds"] / 1e6, "hekate_cpu": cpu,
            "hekate_cpu_per_gib": cpu / (sent["bytes"] / GiB), "load_cpu": None, "load_cpu_per_gib": None,
            "iperf3_sender_cpu_pct": j["end"]["cpu_utilization_percent"]["host_total"]}


def run_lt(p, a, work, k):
    fdir = os.path.join(work, "lt-fixture")
    name = "bench-%dMiB.bin" % a.lt_size_mib
    if os.path.exists(os.path.join(fdir, name + ".torrent")):
        fx = fixtures.Fixture(fdir, name, [(name, a.lt_size_mib * MiB)], os.path.join(fdir, name + ".torrent"), False)
    else:
        fx = fixtures.make_single(fdir, name, a.lt_size_mib * MiB, 7, a.piece_kib * KiB)
    subprocess.run(["cat", fx.data_path(name)], stdout=subprocess.DEVNULL, check=True)
    sa = types.SimpleNamespace(max_total_mib=k * a.lt_size_mib, use_perf=False, per_proc=50,
                               run_timeout=a.duration)
    save = tempfile.mkdtemp(prefix="hekate-swarmbench-", dir="/dev/shm")
    seeder = seeders.start_hekate(p, a.build_dir, [fdir], args=["--verify=lazy", "--max-peers", str(k + 100)] +
                                  shlex.split(a.hekate_args))
    try:
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        r = seed_bench.run_leechers(p, sa, fx, seeder, k, save)
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        seeder.assert_alive("after the libtorrent leechers")
    finally:
        p.stop(seeder.child)
        shutil.rmtree(save, ignore_errors=True)
    lcpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    return {"load": "python-libtorrent", "k": k, "hekate_verify": "lazy", "swarm_verify": "lt", "bytes": r["bytes"],
            "seconds": r["seconds"], "mbps": r["mbps"], "hekate_cpu": r["cpu"], "hekate_cpu_per_gib": r["cpu_per_gib"],
            "load_cpu": lcpu, "load_cpu_per_gib": lcpu / (r["bytes"] / GiB), "hash_failures": r["hash_failures"]}


def fmt(r):
    lc = "%9.3f" % r["load_cpu_per_gib"] if r["load_cpu_per_gib"] is not None else "%9s" % "-"
    calls = ""
    if r.get("writes_per_gib") is not None:
        calls = " %9.0f %9.0f %8.0f" % (r["writes_per_gib"], r["reads_per_gib"], r["bytes_per_write"])
    return "%-18s %5d %6s %6s %8.2f %8.1f %9.3f %s %9.1f%s" % (
        r["load"], r["k"], r["hekate_verify"], r["swarm_verify"], r["bytes"] / GiB, r["seconds"],
        r["hekate_cpu_per_gib"], lc, r["mbps"], calls)


def ratios(results, a, ks):
    def find(load, k, hv=None, sv=None):
        for r in results:
            if r["load"] == load and r["k"] == k and (hv is None or r["hekate_verify"] == hv) and \
                    (sv is None or r["swarm_verify"] == sv):
                return r
        return None
    print("\nratios (lower is better):")
    ip, ipz = find("iperf3", 1), find("iperf3 -Z", 1)
    for hv, sv in a.mode_pairs:
        h = find("hekate-swarm", a.ratio_k, hv, sv)
        for ref in (ip, ipz):
            if h and ref:
                print("hekate (--verify %s, swarm verify %s) K=%d / %s sender: CPU/GiB %.2f (%.3f / %.3f)  "
                      "MB/s %.2f" % (hv, sv, a.ratio_k, ref["load"], h["hekate_cpu_per_gib"] / ref["hekate_cpu_per_gib"],
                                     h["hekate_cpu_per_gib"], ref["hekate_cpu_per_gib"], h["mbps"] / ref["mbps"]))
    lt = find("python-libtorrent", a.lt_k)
    kmax = max(ks)
    for sv in ("on", "off"):
        s = find("hekate-swarm", kmax, None, sv)
        if s and lt:
            print("hekate-swarm (verify %s) K=%d / python-libtorrent leechers K=%d: load CPU/GiB %.3f (%.3f / %.3f)"
                  % (sv, kmax, a.lt_k, s["load_cpu_per_gib"] / lt["load_cpu_per_gib"], s["load_cpu_per_gib"],
                     lt["load_cpu_per_gib"]))
    for k in ks:
        for sv in ("on", "off"):
            lz, off = find("hekate-swarm", k, "lazy", sv), find("hekate-swarm", k, "off", sv)
            if lz and off:
                print("K=%-5d swarm verify %-3s: lazy verification's extra hekate CPU %+.3f s/GiB (lazy %.3f, off "
                      "%.3f); disk pool %+.4f, event loop %+.3f" % (
                          k, sv, lz["hekate_cpu_per_gib"] - off["hekate_cpu_per_gib"], lz["hekate_cpu_per_gib"],
                          off["hekate_cpu_per_gib"], lz["hekate_pool_cpu_per_gib"] - off["hekate_pool_cpu_per_gib"],
                          lz["hekate_loop_cpu_per_gib"] - off["hekate_loop_cpu_per_gib"]))
    if lt:
        print("python-libtorrent K=%d: hekate --verify lazy %.3f CPU s/GiB, the leechers %.3f CPU s/GiB" % (
            a.lt_k, lt["hekate_cpu_per_gib"], lt["load_cpu_per_gib"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default=os.path.join(HERE, "..", "build", "release"))
    ap.add_argument("--leechers", default="50,500,5000")
    ap.add_argument("--modes", default="lazy/on,off/off,lazy/off",
                    help="hekate --verify / hekate-swarm verification pairs, comma-separated")
    ap.add_argument("--total-mib", type=int, default=2048, help="payload per run (torrent size = this / K)")
    ap.add_argument("--min-size-kib", type=int, default=512)
    ap.add_argument("--piece-kib", type=int, default=256)
    ap.add_argument("--unchoked", type=int, default=500, help="hekate -N (at most K)")
    ap.add_argument("--arrival-rate", type=int, default=10000, help="peers arriving per second")
    ap.add_argument("--pipeline", type=int, default=16, help="requests each peer keeps outstanding (16: the default)")
    ap.add_argument("--down", default="10GB/s", help="each peer's download rate (token bucket)")
    ap.add_argument("--duration", type=int, default=600)
    ap.add_argument("--ratio-k", type=int, default=500)
    ap.add_argument("--lt-k", type=int, default=50)
    ap.add_argument("--lt-size-mib", type=int, default=64)
    ap.add_argument("--no-lt", action="store_true")
    ap.add_argument("--no-iperf", action="store_true")
    ap.add_argument("--hekate-args", default="")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    a.build_dir = os.path.abspath(a.build_dir)
    ks = [int(x) for x in a.leechers.split(",") if x]
    a.mode_pairs = [tuple(m.split("/")) for m in a.modes.split(",") if m]
    for hv, sv in a.mode_pairs:
        if hv not in ("lazy", "off", "full") or sv not in ("on", "off"):
            raise SystemExit("--modes: HEKATE_VERIFY/SWARM_VERIFY, e.g. lazy/on,off/off")
    results = []
    with procs.Procs("swarm_bench", 4 * 3600) as p:
        work = a.workdir or p.path("work")
        os.makedirs(work, exist_ok=True)
        print("%-18s %5s %6s %6s %8s %8s %9s %9s %9s %9s %9s %8s" % (
            "load", "K", "hekate", "load", "GiB", "seconds", "seed s/GiB", "load s/GiB", "MB/s", "writes/GiB",
            "reads/GiB", "B/write"), flush=True)
        print("%-18s %5s %6s %6s" % ("", "", "verify", "verify"), flush=True)
        for k in ks:
            for hv, sv in a.mode_pairs:
                r = run_swarm(p, a, work, k, hv, sv)
                results.append(r)
                print(fmt(r), flush=True)
        if not a.no_iperf:
            ref = [r for r in results if r["k"] == a.ratio_k] or results
            nbytes = ref[0]["bytes"] if ref else a.total_mib * MiB
            for z in (False, True):
                r = run_iperf(p, a, nbytes, z)
                results.append(r)
                print(fmt(r), flush=True)
        if not a.no_lt:
            r = run_lt(p, a, work, a.lt_k)
            results.append(r)
            print(fmt(r), flush=True)
    ratios(results, a, ks)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"runs": results, "args": {k: v for k, v in vars(a).items() if k != "mode_pairs"}}, f,
                      indent=1)
    os._exit(0)


if __name__ == "__main__":
    main()
