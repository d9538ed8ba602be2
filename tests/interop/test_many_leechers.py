#!/usr/bin/python3
"""Interop: 20 python-libtorrent leechers (20 sessions, one process) download at the same time from the seeder:
12 take torrent A (single file, 6 MiB, short last piece) from its .torrent, 5 take torrent B (multi-file, nested,
zero-length file) from its .torrent and 3 take B from a magnet link. Leechers never learn of each other (no tracker,
no PEX), so every byte comes from the seeder. All 20 downloads are verified byte for byte, none may see a piece
fail its hash check, and the seeder must still be running. Deadline 240 s."""
import os
import signal
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import fixtures, lt_client, procs, seeders, verify  # noqa: E402
from lib.fixtures import KiB, MiB  # noqa: E402


def body(p, checks, build_dir, source_dir):
    seed_dir = p.path("seed")
    a = fixtures.make_single(os.path.join(seed_dir, "a"), "many A.bin", 6 * MiB + 4321, 31, 32 * KiB)
    b = fixtures.make_multi(os.path.join(seed_dir, "b"), "many B", [
        ("one.bin", 1500000), ("two/three.bin", 700001), ("two/zero", 0), ("two/four/five.bin", 99999)], 32, 64 * KiB)
    seeder = seeders.start_seeder(p, build_dir, [seed_dir])
    print("seeder: %s on port %d (pid %d)" % (seeder.kind, seeder.port, seeder.pid))
    plan = [("A%02d" % i, a, "torrent") for i in range(12)] + [("B%02d" % i, b, "torrent") for i in range(5)] + \
        [("Bm%02d" % i, b, "magnet") for i in range(3)]
    leechers = []
    try:
        for name, fx, how in plan:
            kw = {"torrent": fx.torrent} if how == "torrent" else {"magnet": fx.magnet()}
            leechers.append((lt_client.Leecher(name, p.path("dl", name), seeder.addr, **kw), fx))

        def all_complete():
            reports = lt_client.run_all([l for l, _ in leechers], timeout=min(150, p.remaining() - 30))
            slowest = max(r["seconds"] for r in reports)
            redials = sum(r["redials"] for r in reports)
            return "20 complete, slowest %.2f s, total redials %d" % (slowest, redials)

        def all_verified():
            total = 0
            for l, fx in leechers:
                total += verify.verify_download(fx, l.save_dir)
                r = l.report()
                if r["payload_bytes"] < fx.total_size:
                    raise AssertionError("%s received %d payload bytes for %d of data" % (l.name, r["payload_bytes"],
                                                                                          fx.total_size))
            return "%d bytes verified" % total

        checks.run("twenty_leechers_complete", all_complete)
        checks.run("twenty_downloads_verified", all_verified)
        checks.run("seeder_alive_at_end", seeder.assert_alive)
        checks.run("seeder_stops_cleanly", seeder.stop_cleanly, p, signal.SIGTERM)
    finally:
        for l, _ in leechers:
            l.close()


if __name__ == "__main__":
    procs.main_wrapper("test_many_leechers", 240, body)
