#!/usr/bin/python3
"""Interop: python-libtorrent leechers download from the seeder (hekate; HEKATE_INTEROP_SEEDER=libtorrent for the
reference) torrents of every shape, each verified byte for byte against the seeder's files:
single file with a short last piece; a file that is an exact number of pieces; a file smaller than one block;
multi-file with nested folders, a zero-length file, UTF-8 and spaces in names; 16 KiB pieces (transmission-create)
and 4 MiB pieces (mktorrent); a hybrid v1 + v2 torrent made by libtorrent (the seeder checks its pieces against both
the SHA-1s and the BEP 52 piece layers: lazy verification is the default); and a libtorrent with its default encryption policy (tries an encrypted handshake
first, falls back to plain). Deadline 240 s."""
import os
import signal
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import bencode, fixtures, lt_client, procs, seeders, verify  # noqa: E402
from lib.fixtures import KiB, MiB  # noqa: E402


def build_fixtures(seed_dir):
    f = {}
    f["short_last_piece"] = fixtures.make_single(os.path.join(seed_dir, "single"), "short-last-piece.bin",
                                                 MiB + 12345, 1, 32 * KiB)
    f["exact_pieces"] = fixtures.make_single(os.path.join(seed_dir, "exact"), "exact.bin", 8 * 32 * KiB, 2, 32 * KiB)
    f["tiny"] = fixtures.make_single(os.path.join(seed_dir, "tiny"), "tiny.bin", 1000, 3, 32 * KiB)
    f["multi_nested_empty_utf8"] = fixtures.make_multi(
        os.path.join(seed_dir, "multi"), "Multi Torrent é", [
            ("a.bin", 100000),
            ("sub/b.bin", 300001),
            ("sub/deeper/c.bin", 70000),
            ("sub/empty.dat", 0),
            ("z/ü ñ 日本/файл с пробелом.bin", 50000),
        ], 4, 64 * KiB)
    f["pieces_16k_utf8"] = fixtures.make_single(os.path.join(seed_dir, "p16k"), "données d'essai 16k.bin",
                                                MiB + 777, 5, 16 * KiB, tool="transmission-create")
    f["pieces_4m"] = fixtures.make_single(os.path.join(seed_dir, "p4m"), "four mib pieces.bin", 10 * MiB + 1, 6,
                                          4 * MiB)
    f["hybrid_v1_v2"] = make_hybrid(os.path.join(seed_dir, "hybrid"), "Hybrid", [("big.bin", 300001),
                                                                                 ("sub/small.bin", 20000)], 7)
    return f


def make_hybrid(folder, name, spec, seed):
    """A hybrid (v1 + v2, BEP 52) multi-file torrent made by libtorrent's creator (its default), pad files and piece
    layers included; the Fixture lists the data files only (libtorrent writes no pad file)."""
    root = os.path.join(folder, name)
    for i, (rel, size) in enumerate(spec):
        fixtures.write_det_file(os.path.join(root, rel), seed * 1000 + i, size)
    tpath = os.path.join(folder, name + ".torrent")
    subprocess.run(["/usr/bin/python3", "-c", "import libtorrent as lt, os, sys\n"
                    "os.chdir(sys.argv[1]); fs = lt.file_storage(); lt.add_files(fs, sys.argv[2])\n"
                    "ct = lt.create_torrent(fs, 32768); lt.set_piece_hashes(ct, '.')\n"
                    "open(sys.argv[3], 'wb').write(lt.bencode(ct.generate()))", folder, name, tpath],
                   check=True, timeout=60)
    with open(tpath, "rb") as f:
        top = bencode.decode(f.read())
    assert b"piece layers" in top and top[b"info"].get(b"meta version") == 2, "not a hybrid"
    files = [("/".join(p.decode("utf-8") for p in fe[b"path"]), fe[b"length"]) for fe in top[b"info"][b"files"]
             if b"p" not in fe.get(b"attr", b"")]
    return fixtures.Fixture(folder, name, files, tpath, multi=True)


def body(p, checks, build_dir, source_dir):
    seed_dir = p.path("seed")
    fx = build_fixtures(seed_dir)
    assert any(sz == 0 for _, sz in fx["multi_nested_empty_utf8"].files), "mktorrent dropped the zero-length file"
    assert fx["pieces_16k_utf8"].piece_length == 16 * KiB and fx["pieces_4m"].piece_length == 4 * MiB
    seeder = seeders.start_seeder(p, build_dir, [seed_dir])
    print("seeder: %s on port %d (pid %d)" % (seeder.kind, seeder.port, seeder.pid))

    def case(name, fixture, encryption=False):
        save = p.path("dl", name)
        r = lt_client.download(name, save, seeder.addr, timeout=min(60, p.remaining()), torrent=fixture.torrent,
                               encryption=encryption)
        n = verify.verify_download(fixture, save)
        seeder.assert_alive("after " + name)
        return "%d bytes verified in %.2f s, %d pieces of %d, redials %d" % (
            n, r["seconds"], fixture.num_pieces, fixture.piece_length, r["redials"])

    for name, fixture in fx.items():
        checks.run(name, case, name, fixture)
    checks.run("default_encryption_policy", case, "default_encryption_policy", fx["short_last_piece"], True)
    checks.run("seeder_alive_at_end", seeder.assert_alive)
    checks.run("seeder_stops_cleanly", seeder.stop_cleanly, p, signal.SIGINT)


if __name__ == "__main__":
    procs.main_wrapper("test_download_libtorrent", 240, body)
