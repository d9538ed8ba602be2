#!/usr/bin/python3
"""Interop (issue 10, piece verification): a torrent whose data has one corrupted byte in one piece. hekate checks
each piece against its SHA-1 before sending it (lazy verification): python-libtorrent downloads every other piece,
never receives the bad piece (no hash-failure alert), and the downloaded good pieces equal the seeder's; a leecher
that connects after the damage is known is offered a bitfield without the bad piece (its availability is 0); hekate
logs the torrent as damaged naming the piece. aria2c likewise: it ends (incomplete) with every good piece equal to the
seeder's and none of the corrupted piece's bytes. Deadline 150 s."""
import os
import signal
import sys
import time
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import aria2, fixtures, lt_client, procs, seeders, tracker  # noqa: E402
from lib.fixtures import KiB, MiB  # noqa: E402

BAD = 5


def corrupt(fx, piece):
    """Flips one byte in the middle of `piece` of the seeder's file (the torrent keeps the good hash)."""
    off = piece * fx.piece_length + fx.piece_length // 2
    with open(fx.data_path(fx.files[0][0]), "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 0xFF]))


def drive(leecher, want, timeout, avail=None):
    """Polls until leecher has every piece of `want` (a set of indices) or timeout; returns its have-list. avail (a
    list): the highest availability of each piece seen while connected."""
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        leecher.poll()
        have = leecher.status().pieces
        if avail is not None and leecher.status().num_peers > 0:
            avail[:] = [max(a, b) for a, b in zip(avail, leecher.h.piece_availability())]
        if all(have[i] for i in want):
            return have
        time.sleep(0.05)
    raise AssertionError("%s: not every good piece arrived within %.0f s: %r" % (leecher.name, timeout,
                                                                               leecher.report()))


def body(p, checks, build_dir, source_dir):
    seed_dir = p.path("seed")
    fx = fixtures.make_single(os.path.join(seed_dir, "c"), "corrupt.bin", MiB + 4321, 11, 32 * KiB)
    corrupt(fx, BAD)
    good = set(range(fx.num_pieces)) - {BAD}
    mport = procs.free_port()
    seeder = seeders.start_hekate(p, build_dir, [seed_dir], args=["--metrics=127.0.0.1:%d" % mport])
    print("hekate on port %d (pid %d), %r" % (seeder.port, seeder.pid, fx))

    def first_leecher():
        save = p.path("dl", "first")
        l = lt_client.Leecher("first", save, seeder.addr, torrent=fx.torrent)
        try:
            have = drive(l, good, min(60, p.remaining()))
            time.sleep(1.0)  # the bad piece has been asked for (and rejected) by now; give it time to go wrong
            l.poll()
            have = l.status().pieces
            assert not have[BAD], "the leecher has the corrupted piece %d" % BAD
            assert l.hash_failures == 0, "libtorrent saw %d hash failures: a bad piece was sent" % l.hash_failures
            assert not l.errors, l.errors
        finally:
            l.close()
        with open(fx.download_path(save, fx.files[0][0]), "rb") as f:
            data = f.read()
        for i in sorted(good):
            off = i * fx.piece_length
            exp = fx.read_range(off, fx.piece_size(i))
            assert data[off:off + len(exp)] == exp, "piece %d differs from the seeder's" % i
        return "%d of %d pieces, all equal to the seeder's; piece %d never received, 0 hash failures" % (
            len(good), fx.num_pieces, BAD)

    def damaged_logged():
        t_end = time.monotonic() + 5
        line = "damaged: piece %d fails its hash" % BAD
        while line not in seeder.child.log() and time.monotonic() < t_end:
            time.sleep(0.1)
        assert line in seeder.child.log(), "hekate's log lacks %r" % line
        assert fx.info_hash.lower() in seeder.child.log().lower()
        return line

    def later_leecher():
        save = p.path("dl", "later")
        l = lt_client.Leecher("later", save, seeder.addr, torrent=fx.torrent)
        try:
            avail = [0] * fx.num_pieces
            drive(l, good, min(60, p.remaining()), avail)
            assert avail[BAD] == 0, "the bad piece %d is still offered (availability %d)" % (BAD, avail[BAD])
            assert sum(1 for i in good if avail[i] >= 1) > 0, avail  # the seeder's bitfield was seen
            assert l.hash_failures == 0
        finally:
            l.close()
        return "bitfield without piece %d; every other piece offered and received" % BAD

    checks.run("first_leecher_gets_every_good_piece", first_leecher)
    checks.run("damaged_logged", damaged_logged)
    checks.run("later_leecher_bitfield_without_bad_piece", later_leecher)
    trk = tracker.FakeTracker([seeder.addr], interval=2)

    def aria2c():
        save = p.path("dl", "aria2")
        try:
            aria2.download(p, fx.torrent, save, trk.url, timeout=12, name="aria2c-corrupt")
            raise AssertionError("aria2c completed a torrent with a corrupted piece")
        except AssertionError as e:
            if "completed" in str(e):
                raise
        with open(fx.download_path(save, fx.files[0][0]), "rb") as f:
            data = f.read()
        for i in sorted(good):
            off = i * fx.piece_length
            exp = fx.read_range(off, fx.piece_size(i))
            assert data[off:off + len(exp)] == exp, "aria2c: piece %d differs from the seeder's" % i
        off = BAD * fx.piece_length
        wrong = fx.read_range(off, fx.piece_size(BAD))
        assert data[off:off + len(wrong)] != wrong, "aria2c holds the corrupted piece's bytes"
        mid = fx.piece_length // 2
        assert wrong[mid - 64:mid + 64] not in data, "aria2c received the corrupted bytes"
        return "%d good pieces equal to the seeder's, the corrupted one never received" % len(good)

    try:
        checks.run("aria2c_gets_every_good_piece", aria2c)
    finally:
        trk.close()
    def counted():
        body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=5).read().decode()
        vals = {}
        for line in body.splitlines():
            if line.startswith("hekate_piece") and " " in line:
                name, v = line.split(" ", 1)
                vals[name] = float(v)
        assert vals.get("hekate_pieces_bad_total") == 1, vals
        assert vals.get("hekate_pieces_verified_total") == len(good), vals
        return "metrics: %r" % vals

    checks.run("metrics_count_the_bad_piece", counted)
    checks.run("seeder_stops_cleanly", seeder.stop_cleanly, p, signal.SIGINT)


if __name__ == "__main__":
    procs.main_wrapper("test_corrupt_piece", 150, body)
