#!/usr/bin/python3
"""Interop: aria2c downloads from the seeder, pointed at it by a test-local HTTP tracker (aria2c cannot be given a
peer address). Cases: a single file with a short last piece; a multi-file torrent with nested folders, a zero-length
file and UTF-8 names; the same single file again from a magnet link (info-hash + tracker only: aria2c fetches the
metadata from the seeder via ut_metadata). Each download is verified byte for byte. Deadline 240 s."""
import os
import signal
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import aria2, fixtures, procs, seeders, tracker, verify  # noqa: E402
from lib.fixtures import KiB, MiB  # noqa: E402


def body(p, checks, build_dir, source_dir):
    seed_dir = p.path("seed")
    single = fixtures.make_single(os.path.join(seed_dir, "single"), "aria2 single.bin", 3 * MiB + 5000, 11, 64 * KiB)
    multi = fixtures.make_multi(os.path.join(seed_dir, "multi"), "aria2 multi ß", [
        ("top.bin", 200000), ("d1/d2/deep.bin", 123457), ("d1/empty", 0), ("d1/名前 空白.txt", 4097)], 12, 32 * KiB)
    seeder = seeders.start_seeder(p, build_dir, [seed_dir])
    print("seeder: %s on port %d (pid %d)" % (seeder.kind, seeder.port, seeder.pid))
    trk = tracker.FakeTracker([seeder.addr], interval=2)

    def case(name, fixture, source):
        save = p.path("dl", name)
        aria2.download(p, source, save, trk.url, timeout=min(60, p.remaining()), name="aria2c-" + name)
        if fixture.info_hash not in trk.announced_hashes():
            raise AssertionError("aria2c never announced %s to the test tracker" % fixture.info_hash)
        n = verify.verify_download(fixture, save)
        seeder.assert_alive("after " + name)
        return "%d bytes verified" % n

    try:
        checks.run("torrent_single_short_last_piece", case, "single", single, single.torrent)
        checks.run("torrent_multi_nested_utf8", case, "multi", multi, multi.torrent)
        checks.run("magnet_single", case, "magnet", single, single.magnet())
        checks.run("seeder_alive_at_end", seeder.assert_alive)
        checks.run("seeder_stops_cleanly", seeder.stop_cleanly, p, signal.SIGTERM)
    finally:
        trk.close()


if __name__ == "__main__":
    procs.main_wrapper("test_download_aria2", 240, body)
