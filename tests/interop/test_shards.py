#!/usr/bin/python3
"""Interop: a fleet without a coordinator (issue 11 item 7). Three hekate processes with --shard=0/3, 1/3 and 2/3
over one folder of 30 torrents, each on its own port: for every torrent exactly one process answers a raw handshake
with its info-hash (the others close the connection), the union is all 30, the one that answers is the shard the
documented function gives (the first 8 bytes of the info-hash, big-endian, modulo 3), and each process's scan
summary counts its torrents and the ones left to the other shards. After a SIGHUP rescan the split is the same.
Every process is stopped by PID; deadline 90 s."""
import hashlib
import os
import re
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import bencode, fixtures, peerwire, procs, seeders  # noqa: E402

N = 3
TORRENTS = 30


def shard_of(info_hash, n):
    """The documented shard function (docs/hekate.1, backend-real/lib/shard.h)."""
    return int.from_bytes(info_hash[:8], "big") % n


def info_hash_of(path):
    with open(path, "rb") as f:
        meta = bencode.decode(f.read())
    return hashlib.sha1(bencode.encode(meta[b"info"])).digest()


def answers(addr, ih):
    """True if the process at addr answers a handshake for ih (with ih), False if it closes the connection."""
    with peerwire.PeerConn(addr, timeout=5) as c:
        try:
            _, got, _ = c.handshake(ih, timeout=5)
        except (EOFError, ConnectionError):
            return False
        if got != ih:
            raise AssertionError("%s answered %s with %s" % (addr, ih.hex(), got.hex()))
        return True


def who_serves(shards, hashes):
    """For each info-hash, the list of shard numbers whose process answers it."""
    return {ih: [k for k, s in enumerate(shards) if answers(s.addr, ih)] for ih in hashes}


def check_split(shards, hashes):
    served = who_serves(shards, hashes)
    for ih, ks in served.items():
        if len(ks) != 1:
            raise AssertionError("%s is served by shards %r (expected exactly one)" % (ih.hex(), ks))
        if ks[0] != shard_of(ih, N):
            raise AssertionError("%s is served by shard %d, the documented function says %d" % (
                ih.hex(), ks[0], shard_of(ih, N)))
    counts = [sum(1 for ks in served.values() if ks[0] == k) for k in range(N)]
    if sum(counts) != len(hashes):
        raise AssertionError("the union covers %d of %d torrents" % (sum(counts), len(hashes)))
    return counts


def summary(child, k):
    """(served, other) from the last "shard K of N: X torrents served, Y in other shards" line, or None."""
    found = re.findall(r"shard %d of %d: (\d+) torrents? served, (\d+) in other shards" % (k, N), child.log())
    return tuple(int(x) for x in found[-1]) if found else None


def body(p, checks, build_dir, source_dir):
    folder = p.path("catalogue")
    paths = fixtures.make_many_tiny(folder, TORRENTS)
    hashes = [info_hash_of(t) for t in paths]
    expected = [sum(1 for ih in hashes if shard_of(ih, N) == k) for k in range(N)]
    print("expected split over %d shards: %r" % (N, expected))
    shards = [seeders.start_hekate(p, build_dir, [folder], args=["--shard=%d/%d" % (k, N)], name="hekate-shard%d" % k)
              for k in range(N)]
    try:
        def split_at_start():
            counts = check_split(shards, hashes)
            if counts != expected:
                raise AssertionError("split %r, expected %r" % (counts, expected))
            return "every torrent served by exactly one shard, the documented one; split %r" % counts

        def scan_summaries():
            for k, s in enumerate(shards):
                got = summary(s.child, k)
                if got != (expected[k], TORRENTS - expected[k]):
                    raise AssertionError("shard %d: summary %r, expected %r" % (k, got,
                                                                                 (expected[k], TORRENTS - expected[k])))
            return "each summary gives its own torrents and the others, %d in all" % TORRENTS

        def split_after_rescan():
            for s in shards:
                s.child.popen.send_signal(signal.SIGHUP)
            t_end = time.monotonic() + 15
            while time.monotonic() < t_end and not all(s.child.log().count("rescan done") for s in shards):
                time.sleep(0.05)
            for s in shards:
                s.assert_alive("after SIGHUP")
            counts = check_split(shards, hashes)
            if counts != expected:
                raise AssertionError("after SIGHUP: split %r, expected %r" % (counts, expected))
            return "same split after a SIGHUP rescan: %r" % counts

        def show_agrees():
            show = os.path.join(build_dir, "backend-real", "hekate-show")
            status, out = p.run("hekate-show", [show, "-m", "--shards=%d" % N] + paths, timeout=20)
            if status != 0:
                raise AssertionError("hekate-show exited %s: %s" % (status, out[-300:]))
            lines = [ln for ln in out.splitlines() if "\tmagnet:" in ln]
            if len(lines) != TORRENTS:
                raise AssertionError("hekate-show printed %d lines for %d torrents" % (len(lines), TORRENTS))
            for ih, line in zip(hashes, lines):
                k, link = line.split("\t", 1)
                if int(k) != shard_of(ih, N) or ih.hex() not in link:
                    raise AssertionError("hekate-show says %r for %s (shard %d)" % (line[:60], ih.hex(),
                                                                                   shard_of(ih, N)))
            return "hekate-show -m --shards=%d names the shard that serves each torrent" % N

        checks.run("three_shards_split_the_catalogue", split_at_start)
        checks.run("hekate_show_names_the_shard", show_agrees)
        checks.run("scan_summary_counts_other_shards", scan_summaries)
        checks.run("split_unchanged_after_rescan", split_after_rescan)
        for k, s in enumerate(shards):
            checks.run("shard%d_stops_cleanly" % k, s.stop_cleanly, p, signal.SIGTERM)
    finally:
        for s in shards:
            p.stop(s.child)


if __name__ == "__main__":
    procs.main_wrapper("test_shards", 90, body)
