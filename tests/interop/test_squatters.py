#!/usr/bin/python3
"""Interop (issue 14 item 2): slot squatters do not hold a real download. hekate runs with its default -N 50 (and
--max-peers 2000, so that 1,200 connections measure the slots, not the connection cap). A python-libtorrent leecher
downloads an 8 MiB torrent alone, then beside each crowd of raw-socket squatters (lib/peerwire.py messages):
  silent      handshake + interested, then never a request (they keep sending keep-alives)
  non-reader  handshake + interested, one request on their first unchoke, then they never read again
first 60 of each (more than the 50 slots), then 600 of each (the attack scaled 10x). Every squatter connects from
its own 127.0.x.y source address and the leecher from 127.0.9.9, so a per-address connection cap cannot be what
stops them. The squatters connect first and settle (ceil(count / 50) rounds of hekate's 2 s grace, plus 3 s), then
the leecher starts: its time must stay within 3x its time alone (at least 2 s: libtorrent's own start-up on a
loaded machine). The 600
silent squatters are also run once with the leecher starting together with them, printed but not asserted (a FIFO
line must give each squatter one turn before a newcomer: ceil(600 / 50) graces). Every download is verified byte
for byte. HEKATE_SQUAT_TIMEOUT (seconds, default 60) bounds each download. Deadline 280 s (about 110 s when
passing)."""
import os
import resource
import selectors
import socket
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import fixtures, lt_client, peerwire, procs, seeders, verify  # noqa: E402
from lib.fixtures import KiB, MiB  # noqa: E402

SLOTS = 50
GRACE = 2.0
LEECHER_ADDR = "127.0.9.9"
DOWNLOAD_TIMEOUT = float(os.environ.get("HEKATE_SQUAT_TIMEOUT", "60"))


def source_addr(i):
    """A distinct loopback source for squatter i: 127.0.x.y, x in 10..250, y in 1..250 (never the leecher's)."""
    return "127.0.%d.%d" % (10 + i // 250, 1 + i % 250)


class Squatter:
    def __init__(self, i, addr, info_hash, kind):
        self.kind = kind
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.s.bind((source_addr(i), 0))
        self.s.settimeout(10)
        self.s.connect(addr)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s.sendall(peerwire.PSTR + peerwire.reserved_bits(fast=True, ext=False) + bytes.fromhex(info_hash) +
                       peerwire.peer_id(b"-SQ0001-") + peerwire.msg(peerwire.INTERESTED))
        self.s.setblocking(False)
        self.buf = bytearray()
        self.handshaken = False
        self.requested = False    # non-reader: its one request is sent, it reads nothing more
        self.closed = False

    def on_readable(self):
        """Reads what arrived; returns False once this squatter stops reading (closed, or a non-reader's request
        is out)."""
        try:
            chunk = self.s.recv(1 << 16)
        except BlockingIOError:
            return True
        except OSError:
            chunk = b""
        if not chunk:
            self.closed = True
            return False
        self.buf += chunk
        if not self.handshaken:
            if len(self.buf) < 68:
                return True
            del self.buf[:68]
            self.handshaken = True
        while len(self.buf) >= 4:
            (n,) = struct.unpack(">I", bytes(self.buf[:4]))
            if len(self.buf) < 4 + n:
                break
            mid = self.buf[4] if n else None
            del self.buf[:4 + n]
            if mid == peerwire.UNCHOKE and self.kind == "non-reader":
                self.s.sendall(peerwire.request_msg(0, 0, peerwire.BLOCK))
                self.requested = True
                return False
        return True

    def keepalive(self):
        try:
            self.s.send(b"\0\0\0\0")
        except OSError:
            pass

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


class Crowd:
    """count squatters of one kind, served by one thread: it reads for those still reading (a silent squatter reads
    and discards; a non-reader reads until its first unchoke, requests once, and stops) and sends every squatter a
    keep-alive every 30 s."""

    def __init__(self, addr, info_hash, kind, count):
        self.squatters = [Squatter(i, addr, info_hash, kind) for i in range(count)]
        self.sel = selectors.DefaultSelector()
        for q in self.squatters:
            self.sel.register(q.s, selectors.EVENT_READ, q)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        last_ka = time.monotonic()
        while not self.stop.is_set():
            for key, _ in self.sel.select(timeout=0.2):
                if not key.data.on_readable():
                    self.sel.unregister(key.fileobj)
            if time.monotonic() - last_ka > 30:
                last_ka = time.monotonic()
                for q in self.squatters:
                    q.keepalive()

    def counts(self):
        return sum(q.requested for q in self.squatters), sum(q.closed for q in self.squatters)

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.sel.close()
        for q in self.squatters:
            q.close()


def leecher_download(p, fx, seeder, name):
    settings = {"listen_interfaces": "%s:0" % LEECHER_ADDR, "outgoing_interfaces": LEECHER_ADDR}
    l = lt_client.Leecher(name, p.path("dl", name), seeder.addr, torrent=fx.torrent, settings=settings)
    try:
        r = lt_client.run_all([l], timeout=DOWNLOAD_TIMEOUT, stall=DOWNLOAD_TIMEOUT)[0]
    except AssertionError:
        st = l.status()
        raise AssertionError("%s: not complete after %.0f s (%.0f %%)" % (name, DOWNLOAD_TIMEOUT,
                                                                         100.0 * st.total_wanted_done / fx.total_size))
    finally:
        l.close()
    verify.verify_download(fx, l.save_dir)
    return r["seconds"]


def body(p, checks, build_dir, source_dir):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000), hard))
    seed_dir = p.path("seed")
    fx = fixtures.make_single(seed_dir, "squat.bin", 8 * MiB, 14, 256 * KiB)
    seeder = seeders.start_seeder(p, build_dir, [seed_dir], args=["-N", str(SLOTS), "--max-peers", "2000"])
    print("seeder: %s on port %d (pid %d)" % (seeder.kind, seeder.port, seeder.pid))
    times = {}

    def alone():
        times["alone"] = leecher_download(p, fx, seeder, "alone")
        return "%.2f s alone" % times["alone"]

    checks.run("leecher_alone", alone)
    limit = max(3.0 * times.get("alone", 1.0), 2.0)

    def beside(kind, count, settle=True):
        crowd = Crowd(seeder.addr, fx.info_hash, kind, count)
        try:
            if settle:
                time.sleep(-(-count // SLOTS) * GRACE + 3.0)
            name = "%s_%d%s" % (kind, count, "" if settle else "_together")
            t = leecher_download(p, fx, seeder, name)
            times[name] = t
            requested, closed = crowd.counts()
            seeder.assert_alive()
            return t, "%.2f s beside %d %s squatters (%.1fx alone; %d requested once, %d closed by hekate)" % (
                t, count, kind, t / times["alone"], requested, closed)
        finally:
            crowd.close()
            time.sleep(1.0)

    def within(kind, count):
        t, text = beside(kind, count)
        if t > limit:
            raise AssertionError("%s: over 3x alone (%.2f s)" % (text, limit))
        return text

    for kind in ("silent", "non-reader"):
        for count in (60, 600):
            checks.run("leecher_beside_%d_%s" % (count, kind.replace("-", "_")), within, kind, count)
    checks.run("leecher_arriving_with_600_silent_info", lambda: beside("silent", 600, settle=False)[1])
    print("figures: " + ", ".join("%s %.2f s" % kv for kv in times.items()))
    checks.run("seeder_alive_at_end", seeder.assert_alive)


if __name__ == "__main__":
    procs.main_wrapper("test_squatters", 280, body)
