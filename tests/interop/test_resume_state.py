#!/usr/bin/python3
"""Interop: resume state and cold start (issue 10 items 2 and 3), with 20,000 tiny torrents (bench/gen_tiny_torrents.py)
and one multi-file torrent (nested folders, an empty file, UTF-8 names). Cold (--state=FILE, no file yet): the first
torrent of the scan answers a handshake before the first scan is over (the start-up line is printed at its end);
five torrents are downloaded (their piece checked on the way); SIGTERM saves the state (one line with the count).
Warm, after one .torrent was removed and one rewritten (touched): every other torrent is served from the state (its
summary line: 19,999 from it, the five with their verified pieces, 1 changed, 1 gone), the touched one is read by the
scan and served, the removed one is refused, the multi-file torrent, served from the state, is fetched by
python-libtorrent from its magnet link (metadata and data, verified); the next save holds 20,000 entries. A state
file with one byte flipped is ignored with one warning and everything is read from the .torrent files. Deadline
240 s."""
import os
import re
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import fixtures, lt_client, peerwire, procs, seeders, verify  # noqa: E402
from lib.fixtures import KiB  # noqa: E402

N = 20000


def gen_module(source_dir):
    sys.path.insert(0, os.path.join(source_dir, "bench"))
    import gen_tiny_torrents
    return gen_tiny_torrents


def info_hash(gen, i):
    import hashlib
    t = gen.torrent(b"t%07d.dat" % i, bytes([i & 0xff]))
    return hashlib.sha1(t[len(b"d4:info"):-1]).digest()


def serves(hk, ih, timeout=5):
    """True if hekate answers a handshake for ih (False: refused, closed, or not listening yet)."""
    try:
        c = peerwire.PeerConn(hk.addr, timeout=timeout)
    except OSError:
        return False
    try:
        c.handshake(ih, timeout=timeout)
        return True
    except (EOFError, OSError):
        return False
    finally:
        c.close()


def fetch(hk, ih, want):
    """Downloads the 1-byte piece 0 of torrent ih (hekate checks it against its hash first: lazy verification)."""
    c = peerwire.PeerConn(hk.addr, timeout=10)
    try:
        c.handshake(ih)
        c.send_msg(peerwire.INTERESTED)
        c.recv_until({peerwire.UNCHOKE})
        c.send_raw(peerwire.request_msg(0, 0, 1))
        _, payload, _ = c.recv_until({peerwire.PIECE})
        if payload[8:] != want:
            raise AssertionError("piece 0: got %r, expected %r" % (payload[8:], want))
    finally:
        c.close()


def body(p, checks, build_dir, source_dir):
    gen = gen_module(source_dir)
    seed = p.path("seed")
    t = time.monotonic()
    gen.main_args(N, seed, 1000)
    print("generated %d torrents in %.1f s" % (N, time.monotonic() - t))
    # one more, multi-file, nested, with an empty file and UTF-8 names: fetched by magnet link from the warm start
    multi = fixtures.make_multi(os.path.join(seed, "zz"), "resumed multi \u00fc", [
        ("x/y/z.bin", 77777), ("x/empty", 0), ("\u30d5\u30a1\u30a4\u30eb.dat", 40000)], 22, 32 * KiB)
    total = N + 1
    state = p.path("state")
    args = ["--no-watch", "--state=" + state, "-v"]
    first, last = info_hash(gen, 0), info_hash(gen, N - 1)

    def cold():
        hk = seeders.start_hekate(p, build_dir, [seed], args=args, wait=False)
        t0 = time.monotonic()
        while not serves(hk, first, 0.5):
            hk.assert_alive("before serving its first torrent")
            if time.monotonic() - t0 > 60:
                raise AssertionError("first torrent not served within 60 s")
            time.sleep(0.005)
        t_first = time.monotonic() - t0
        scan_over = re.search(r"serving \d+ torrents", hk.child.log()) is not None
        hk.wait_log(r"serving %d torrents on port" % total, 120)
        t_all = time.monotonic() - t0
        if scan_over:
            raise AssertionError("the first torrent was served only after the first scan (%.3f s)" % t_first)
        if not serves(hk, last):
            raise AssertionError("the last torrent is not served")
        for i in range(5):  # verified on the way: their good marks go into the state
            fetch(hk, info_hash(gen, i), bytes([i & 0xff]))
        hk.stop_cleanly(p, signal.SIGTERM)
        hk.wait_log(r"resume state saved \(at the stop\): %d torrents" % total, 5)
        return "first torrent served after %.3f s, before the scan ended (%.3f s); state saved at SIGTERM" % (
            t_first, t_all)
    checks.run("cold_start_serves_during_the_scan_and_saves", cold)

    def warm():
        os.unlink(os.path.join(seed, "d0010", "t0010000.torrent"))
        touched = os.path.join(seed, "d0011", "t0011000.torrent")
        os.utime(touched, (1000000000, 1000000000))
        hk = seeders.start_hekate(p, build_dir, [seed], args=args)
        m = hk.wait_log(r"resume state: (\d+) torrents served from it in ([0-9.]+) s \((\d+) with verified pieces.*; "
                     r"(\d+) changed, (\d+) gone", 60)
        if tuple(int(m.group(k)) for k in (1, 3, 4, 5)) != (total - 2, 5, 1, 1):
            raise AssertionError("warm start: %s" % m.group(0))
        hk.wait_log(r"serving %d torrents on port" % (total - 1), 60)
        if not serves(hk, info_hash(gen, 11000)):
            raise AssertionError("the touched torrent is not served")
        if serves(hk, info_hash(gen, 10000)):
            raise AssertionError("the removed torrent is served")
        if not serves(hk, first) or not serves(hk, last):
            raise AssertionError("a torrent of the state is not served")
        save = p.path("dl")  # metadata (ut_metadata from the .torrent's bytes) and data of a torrent never read now
        r = lt_client.download("multi", save, hk.addr, timeout=min(60, p.remaining()), magnet=multi.magnet())
        n = verify.verify_download(multi, save)
        hk.stop_cleanly(p, signal.SIGINT)
        hk.wait_log(r"resume state saved \(at the stop\): %d torrents" % (total - 1), 5)
        return "%s; the touched torrent read again, the removed one dropped; a multi-file one fetched by magnet " \
            "link, %d bytes verified in %.2f s" % (m.group(0)[m.group(0).find("resume"):], n, r["seconds"])
    checks.run("warm_start_from_the_state", warm)

    def corrupt():
        with open(state, "r+b") as f:
            f.seek(os.path.getsize(state) // 2)
            b = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([b[0] ^ 0x40]))
        hk = seeders.start_hekate(p, build_dir, [seed], args=args)
        m = hk.wait_log(r"resume state \S+ ignored: ([^;]*)", 30)
        hk.wait_log(r"serving %d torrents on port" % (total - 1), 120)
        if "served from it" in hk.child.log():
            raise AssertionError("torrents served from a corrupt state")
        hk.stop_cleanly(p, signal.SIGTERM)
        return "ignored (%s); every torrent read from its .torrent" % m.group(1)
    checks.run("corrupt_state_is_ignored", corrupt)


if __name__ == "__main__":
    procs.main_wrapper("test_resume_state", 240, body)
