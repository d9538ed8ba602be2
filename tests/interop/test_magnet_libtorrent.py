#!/usr/bin/python3
"""Interop: python-libtorrent starts from a magnet link (info-hash only) plus the seeder's address (add_peer), fetches
the metadata from the seeder via ut_metadata (BEP 9), then the data, verified byte for byte. Cases: a single file;
a multi-file torrent with nested folders, a zero-length file and UTF-8 names; a torrent whose info dictionary is
larger than one 16 KiB metadata block (1,400 pieces: two metadata pieces, the last one short). Deadline 180 s."""
import os
import signal
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import bencode, fixtures, lt_client, procs, seeders, verify  # noqa: E402
from lib.fixtures import KiB, MiB  # noqa: E402


def body(p, checks, build_dir, source_dir):
    seed_dir = p.path("seed")
    single = fixtures.make_single(os.path.join(seed_dir, "s"), "magnet single.bin", 2 * MiB + 3, 21, 32 * KiB)
    multi = fixtures.make_multi(os.path.join(seed_dir, "m"), "magnet multi ü", [
        ("x/y/z.bin", 77777), ("x/empty", 0), ("ファイル.dat", 40000), ("w w/v.bin", 1)], 22, 32 * KiB)
    big_meta = fixtures.make_single(os.path.join(seed_dir, "b"), "big metadata.bin", 1400 * 16 * KiB - 100, 23,
                                    16 * KiB, tool="transmission-create")
    with open(big_meta.torrent, "rb") as f:
        info_len = len(bencode.info_bytes(f.read()))
    assert info_len > 16 * KiB, "the big-metadata fixture's info dict is only %d bytes" % info_len
    seeder = seeders.start_seeder(p, build_dir, [seed_dir])
    print("seeder: %s on port %d (pid %d)" % (seeder.kind, seeder.port, seeder.pid))

    def case(name, fixture):
        save = p.path("dl", name)
        r = lt_client.download(name, save, seeder.addr, timeout=min(60, p.remaining()), magnet=fixture.magnet())
        n = verify.verify_download(fixture, save)
        seeder.assert_alive("after " + name)
        return "%d bytes verified in %.2f s (%d pieces)" % (n, r["seconds"], fixture.num_pieces)

    checks.run("magnet_single", case, "single", single)
    checks.run("magnet_multi_nested_empty_utf8", case, "multi", multi)
    checks.run("magnet_metadata_%d_bytes" % info_len, case, "big_meta", big_meta)
    checks.run("seeder_alive_at_end", seeder.assert_alive)
    checks.run("seeder_stops_cleanly", seeder.stop_cleanly, p, signal.SIGTERM)


if __name__ == "__main__":
    procs.main_wrapper("test_magnet_libtorrent", 180, body)
