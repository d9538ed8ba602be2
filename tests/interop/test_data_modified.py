#!/usr/bin/python3
"""Interop (issue 10): a data file written in place under a running hekate (same size and inode, a new mtime) loses
its pieces' good marks. Pieces 0 and 1 are fetched over a raw connection (checked lazily, good); one byte of piece 1
is then flipped in place; within a few seconds hekate logs "a data file was modified: its pieces are checked again";
piece 0 (unchanged) is still served and equals the file, piece 1 is now checked again and refused (reject: the
fast extension) and logged as damaged; it is never sent. A size change (truncate) still fails the torrent.
Deadline 60 s."""
import os
import struct
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import fixtures, peerwire, procs, seeders  # noqa: E402
from lib.fixtures import KiB  # noqa: E402


def wait_log(seeder, text, timeout):
    t_end = time.monotonic() + timeout
    while text not in seeder.child.log() and time.monotonic() < t_end:
        time.sleep(0.1)
    assert text in seeder.child.log(), "hekate's log lacks %r:\n%s" % (text, seeder.child.log()[-2000:])


def body(p, checks, build_dir, source_dir):
    fx = fixtures.make_single(p.path("seed"), "mod.bin", 256 * KiB, 31, 32 * KiB)
    path = fx.data_path(fx.files[0][0])
    past = time.time() - 100
    os.utime(path, (past, past))
    seeder = seeders.start_hekate(p, build_dir, [p.path("seed")])

    def first_fetch():
        a = peerwire.fetch_piece(seeder.addr, fx, 0)
        b = peerwire.fetch_piece(seeder.addr, fx, 1)
        return "pieces 0 and 1 served (%d + %d bytes), checked good" % (len(a), len(b))

    def modified_in_place():
        ino = os.stat(path).st_ino
        with open(path, "r+b") as f:
            f.seek(fx.piece_length + 123)
            c = f.read(1)
            f.seek(fx.piece_length + 123)
            f.write(bytes([c[0] ^ 0x33]))
        assert os.stat(path).st_ino == ino and os.stat(path).st_size == fx.total_size
        wait_log(seeder, "a data file was modified: its pieces are checked again", 10)
        return "hekate noticed the in-place write"

    def good_piece_still_served():
        d = peerwire.fetch_piece(seeder.addr, fx, 0)
        return "piece 0 checked again and served (%d bytes)" % len(d)

    def changed_piece_refused():
        c = peerwire.start_session(seeder.addr, fx.info_hash)
        try:
            c.send_raw(peerwire.request_msg(1, 0, 16 * KiB))
            mid, payload, _ = c.recv_until({peerwire.PIECE, peerwire.REJECT}, timeout=10)
            assert mid == peerwire.REJECT, "piece 1 was sent after its data changed (message %d)" % mid
            i, b, n = struct.unpack(">III", payload[:12])
            assert (i, b, n) == (1, 0, 16 * KiB), (i, b, n)
        finally:
            c.close()
        wait_log(seeder, "damaged: piece 1 fails its hash", 5)
        return "piece 1 rejected, logged as damaged"

    def size_change_fails():
        os.truncate(path, fx.total_size - 1000)
        wait_log(seeder, "storage failed", 10)
        return "a truncated file still fails the torrent"

    checks.run("first_fetch", first_fetch)
    checks.run("modified_in_place_noticed", modified_in_place)
    checks.run("good_piece_still_served", good_piece_still_served)
    checks.run("changed_piece_refused", changed_piece_refused)
    checks.run("size_change_fails", size_change_fails)
    checks.run("seeder_stops_cleanly", seeder.stop_cleanly, p)


if __name__ == "__main__":
    procs.main_wrapper("test_data_modified", 60, body)
