#!/usr/bin/python3
"""Interop: a descriptor shortage never fails a torrent (issue 14, item 4).
hekate runs under RLIMIT_NOFILE 256 (prlimit), far below its default budget (--max-peers 500 + --max-open-files 1024
+ disk jobs), serving a torrent of 600 files of 12,000 bytes (32 KiB pieces: most blocks span two files, so serving
it touches every file). Checks: the start-up line states the descriptor budget against the limit and what was lowered;
while 40 raw peers request blocks all over the torrent (a flood of loads, each reading everything it gets) and 30 more
connections sit silent, and 200 connections are opened and dropped at once, a real python-libtorrent leecher completes
and its data is verified byte for byte; no storage failure is logged; hekate is alive and stops cleanly. Before the
fix the store opened data files up to its 1024-file budget, a load hit EMFILE, the torrent was failed and the leecher
never completed.
Then a passing shortage while serving: a second hekate (normal limit) serves a fresh torrent of 600 files; once a
leecher is connected, its RLIMIT_NOFILE is lowered (prlimit --pid) to the descriptors it holds, so no data file can
be opened (the soft limit only); for 4 s loads fail with EMFILE: hekate says so once (a warning), fails no torrent
and keeps the peer; the limit is raised again and the same leecher completes, verified, and hekate says the shortage is over. Before the fix
the first EMFILE failed the torrent for good. Deadline 300 s."""
import os
import random
import socket
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import fixtures, lt_client, peerwire, procs, seeders, verify  # noqa: E402
from lib.fixtures import KiB  # noqa: E402

NOFILE = 256
BLOCK = 16 * KiB


def start_limited(p, build_dir, root):
    port = procs.free_port()
    argv = ["prlimit", "--nofile=%d:%d" % (NOFILE, NOFILE), "--", seeders.hekate_binary(build_dir), "-t", "--no-dht", "--bind",
            "127.0.0.1", "-p", str(port), root]
    child = p.start("hekate", argv)
    procs.wait_port(port, child, timeout=60)
    procs.wait_started(child, 120)
    return seeders.Seeder("hekate", child, port)


def budget_line(seeder):
    t_end = time.monotonic() + 10
    while time.monotonic() < t_end:
        for ln in seeder.child.log().splitlines():
            if "descriptor budget" in ln:
                want = ("--max-peers", "--max-open-files", "over the limit %d" % NOFILE, "lowered")
                missing = [w for w in want if w not in ln]
                if missing:
                    raise AssertionError("the budget line lacks %s: %s" % (missing, ln))
                return ln.split("  ", 1)[-1].strip()
        time.sleep(0.1)
    raise AssertionError("no start-up line about the descriptor budget")


class Flood:
    """Raw peers asking for random blocks (reading whatever comes back), silent sockets, and connection churn."""

    def __init__(self, seeder, fx):
        self.seeder, self.fx = seeder, fx
        self.stop = threading.Event()
        self.threads = []
        self.blocks = 0
        self.sessions = 0
        self.silent = []
        self.lock = threading.Lock()

    def loader(self, seed):
        rnd = random.Random(seed)
        pieces = (self.fx.total_size + self.fx.piece_length - 1) // self.fx.piece_length
        while not self.stop.is_set():
            try:
                c = peerwire.start_session(self.seeder.addr, self.fx.info_hash, timeout=5)
            except (EOFError, socket.timeout, OSError, AssertionError):
                time.sleep(0.2)
                continue
            with self.lock:
                self.sessions += 1
            try:
                for _ in range(20):
                    if self.stop.is_set():
                        break
                    i = rnd.randrange(pieces)
                    size = self.fx.piece_size(i)
                    for begin in range(0, size, BLOCK):
                        c.send_raw(peerwire.request_msg(i, begin, min(BLOCK, size - begin)))
                    for _ in range((size + BLOCK - 1) // BLOCK):
                        mid, _payload, _ = c.recv_until({peerwire.PIECE, peerwire.REJECT, peerwire.CHOKE},
                                                        timeout=10)
                        if mid == peerwire.CHOKE:
                            raise EOFError("choked")
                        if mid == peerwire.PIECE:
                            with self.lock:
                                self.blocks += 1
            except (EOFError, socket.timeout, OSError):
                pass
            finally:
                c.close()

    def churn(self):
        while not self.stop.is_set():
            socks = []
            for _ in range(200):
                try:
                    socks.append(socket.create_connection(self.seeder.addr, timeout=2))
                except OSError:
                    break
            for s in socks:
                s.close()
            self.stop.wait(1.0)

    def start(self):
        for _ in range(30):
            try:
                self.silent.append(socket.create_connection(self.seeder.addr, timeout=2))
            except OSError:
                pass
        for k in range(40):
            self.threads.append(threading.Thread(target=self.loader, args=(k,), daemon=True))
        self.threads.append(threading.Thread(target=self.churn, daemon=True))
        for t in self.threads:
            t.start()

    def end(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=15)
        for s in self.silent:
            s.close()


def body(p, checks, build_dir, source_dir):
    root = os.path.realpath(p.path("seed"))
    spec = [("d%02d/f%04d.bin" % (i // 100, i), 12000) for i in range(600)]
    fx = fixtures.make_multi(root, "many files", spec, 31, 32 * KiB)
    if seeders.seeder_kind() != "hekate":
        print("hekate-only test (descriptor budgets are hekate's)")
        return
    seeder = start_limited(p, build_dir, root)
    print("seeder: port %d pid %d, RLIMIT_NOFILE %d" % (seeder.port, seeder.pid, NOFILE))
    checks.run("budget_line_at_start", budget_line, seeder)
    flood = Flood(seeder, fx)
    flood.start()
    time.sleep(1.0)
    # The flood must be loading while the leecher downloads: wait for its first blocks (the leecher alone may now take
    # about a second, piece verification reading each piece in one job, less than the flood's first sessions need).
    t_end = time.monotonic() + 20
    while flood.blocks == 0 and time.monotonic() < t_end:
        time.sleep(0.1)

    def leecher_completes():
        save = p.path("dl")
        r = lt_client.download("leecher", save, seeder.addr, timeout=min(120, p.remaining()), torrent=fx.torrent)
        verify.verify_download(fx, save)
        return "%d bytes verified in %.1f s while %d flood sessions took %d blocks" % (
            fx.total_size, r["seconds"], flood.sessions, flood.blocks)
    try:
        checks.run("leecher_completes_under_the_flood", leecher_completes)
    finally:
        flood.end()

    def no_failure():
        bad = [ln for ln in seeder.child.log().splitlines() if "storage failed" in ln]
        if bad:
            raise AssertionError("a torrent was failed: %s" % bad[0])
        if flood.blocks == 0:
            raise AssertionError("the flood got no block at all: it loaded nothing")
        return "no torrent failed; the flood got %d blocks" % flood.blocks
    checks.run("no_torrent_failed", no_failure)
    checks.run("seeder_alive", seeder.assert_alive)
    checks.run("seeder_stops_cleanly", seeder.stop_cleanly, p)
    passing_shortage(p, checks, build_dir)


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def set_nofile(pid, n):
    # the soft limit only: raising it back needs no privilege
    r = subprocess.run(["prlimit", "--pid", str(pid), "--nofile=%d:4096" % n], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=10)
    if r.returncode != 0:
        raise RuntimeError("prlimit failed: %s" % r.stdout.decode("utf-8", "replace"))


def passing_shortage(p, checks, build_dir):
    root = os.path.realpath(p.path("seed2"))
    spec = [("d%02d/g%04d.bin" % (i // 100, i), 12000) for i in range(600)]
    fx = fixtures.make_multi(root, "passing", spec, 32, 32 * KiB)
    port = procs.free_port()
    argv = ["prlimit", "--nofile=4096:4096", "--", seeders.hekate_binary(build_dir), "-t", "--no-dht", "-v", "--bind",
            "127.0.0.1", "-p", str(port), root]
    child = p.start("hekate-passing", argv)
    procs.wait_port(port, child, timeout=60)
    procs.wait_started(child, 120)
    seeder = seeders.Seeder("hekate", child, port)
    save = p.path("dl2")
    leecher = lt_client.Leecher("passing", save, seeder.addr, torrent=fx.torrent)
    try:
        def shortage_survived():
            t_end = time.monotonic() + 20
            while leecher.status().num_peers == 0:
                if time.monotonic() > t_end:
                    raise AssertionError("the leecher never connected")
                leecher.poll()
                time.sleep(0.02)
            held = open_fds(seeder.pid)
            set_nofile(seeder.pid, held)
            t_end = time.monotonic() + 4
            while time.monotonic() < t_end:
                leecher.poll()
                time.sleep(0.05)
            log = seeder.child.log()
            got = leecher.status().total_wanted_done
            set_nofile(seeder.pid, 4096)
            if "storage failed" in log:
                raise AssertionError("the shortage failed the torrent")
            warns = [ln for ln in log.splitlines() if "disk: short of descriptors" in ln]
            if len(warns) != 1:
                raise AssertionError("%d warnings about the shortage (one expected)" % len(warns))
            if got >= fx.total_size:
                raise AssertionError("the download completed during the shortage: nothing was short")
            return "limit %d for 4 s: %d of %d bytes, one warning, no failure" % (held, got, fx.total_size)
        checks.run("shortage_fails_nothing", shortage_survived)

        def completes_after():
            lt_client.run_all([leecher], timeout=min(90, p.remaining()))
            verify.verify_download(fx, save)
            t_end = time.monotonic() + 6
            while "shortage is over" not in seeder.child.log():
                if time.monotonic() > t_end:
                    raise AssertionError("no line says the shortage is over")
                time.sleep(0.2)
            return "%d bytes verified after the limit came back" % fx.total_size
        checks.run("same_leecher_completes_after_the_shortage", completes_after)
    finally:
        leecher.close()
    checks.run("passing_seeder_stops_cleanly", seeder.stop_cleanly, p)


if __name__ == "__main__":
    procs.main_wrapper("test_fd_shortage", 300, body)
