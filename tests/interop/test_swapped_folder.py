#!/usr/bin/python3
"""Interop: a folder swapped for a symbolic link after the scan never serves the outside files (issue 14).
DIR holds three multi-file torrents, each in a subfolder of its own (DIR/<case>/<name>.torrent + DIR/<case>/<name>/):
  namefolder  after the scan, its <name> folder is renamed away and replaced by a link to an outside <name> folder
  torfolder   after the scan, DIR/torfolder itself (the folder holding the .torrent) is renamed away and replaced by a
              link to an outside folder with a copy of the .torrent and its <name> folder
  good        left alone
The outside files have the same names and sizes as the originals but other bytes. No file of the swapped torrents is
read before the swap (nothing is mapped yet), so the first read after it must refuse. Checks, for each swapped one: a
raw peer asking for piece 0 gets no byte of it that is an outside byte; a fresh python-libtorrent leecher, driven for a
bounded time, sees no piece fail its hash and holds no 16 KiB block equal to the outside file's (if it completes, its
data equals the original); hekate logs the torrent (info-hash) as failed; hekate survives,
the good torrent still downloads (verified), and it stops cleanly. Deadline 180 s."""
import os
import shutil
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import fixtures, lt_client, peerwire, procs, seeders, verify  # noqa: E402
from lib.fixtures import KiB  # noqa: E402

BLOCK = 16 * KiB
SPEC = [("a.bin", 300000), ("sub/b.bin", 200001), ("c.bin", 70000)]


def build(p):
    seed = os.path.realpath(p.path("seed"))     # hekate names folders by their real path
    outside = os.path.realpath(p.path("outside"))
    made = {}
    for n, case in enumerate(("namefolder", "torfolder", "good")):
        made[case] = fixtures.make_multi(os.path.join(seed, case), case + " data", SPEC, 80 + n, 32 * KiB)
    for n, case in enumerate(("namefolder", "torfolder")):
        fx = made[case]
        for i, (rel, size) in enumerate(fx.files):   # same names and sizes, other bytes
            fixtures.write_det_file(os.path.join(outside, case, fx.name, rel), 900 + 10 * n + i, size)
        shutil.copy(fx.torrent, os.path.join(outside, case, os.path.basename(fx.torrent)))
        shutil.copy(fx.torrent, p.path("leech-%s.torrent" % case))   # the leecher's copy survives the swap
    return seed, outside, made


def swap(p, case, fx, outside):
    """Replaces the case's folder by a link to the outside copy; returns where the original <name> folder and the
    outside one are now."""
    away = p.path("moved-away", case)
    os.makedirs(os.path.dirname(away), exist_ok=True)
    if case == "namefolder":
        link = os.path.join(fx.folder, fx.name)
        target = os.path.join(outside, case, fx.name)
        os.rename(link, away)
        os.symlink(target, link)
        return away, target
    os.rename(fx.folder, away)
    os.symlink(os.path.join(outside, case), fx.folder)
    return os.path.join(away, fx.name), os.path.join(outside, case, fx.name)


def read_at(path, off, n):
    with open(path, "rb") as f:
        f.seek(off)
        return f.read(n)


def raw_piece0(seeder, fx, outside_root):
    """Asks for every block of piece 0 over a raw connection: no answer may hold an outside byte."""
    first_rel, first_size = fx.files[0]
    outside0 = read_at(os.path.join(outside_root, first_rel), 0, min(fx.piece_length, first_size))
    try:
        c = peerwire.start_session(seeder.addr, fx.info_hash, timeout=8)
    except (EOFError, socket.timeout, OSError) as e:
        return "no session (%s): nothing served" % type(e).__name__
    got = 0
    try:
        size = min(fx.piece_length, first_size)
        for begin in range(0, size, BLOCK):
            c.send_raw(peerwire.request_msg(0, begin, min(BLOCK, size - begin)))
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            try:
                mid, payload, _ = c.recv_until({peerwire.PIECE, peerwire.REJECT, peerwire.CHOKE},
                                               timeout=max(0.01, deadline - time.monotonic()))
            except (EOFError, socket.timeout, OSError):
                break
            if mid != peerwire.PIECE:
                continue
            _i, b = struct.unpack(">II", payload[:8])
            data = payload[8:]
            if data == outside0[b:b + len(data)]:
                raise AssertionError("the seeder sent the outside bytes of piece 0 at %d" % b)
            got += 1
    finally:
        c.close()
    return "%d blocks answered, none outside" % got


def leech_bounded(p, seeder, case, fx, original_root, outside_root, seconds):
    save = p.path("dl", case)
    l = lt_client.Leecher(case, save, seeder.addr, torrent=p.path("leech-%s.torrent" % case))
    try:
        t_end = time.monotonic() + seconds
        done = False
        while time.monotonic() < t_end and not done:
            done = l.poll()
            time.sleep(0.05)
        r = l.report()
    finally:
        l.close()
    if r["hash_failures"]:
        raise AssertionError("%d pieces failed their hash: bytes that are not the torrent's were sent" %
                             r["hash_failures"])
    for rel, size in fx.files:
        mine = fx.download_path(save, rel)
        if not os.path.isfile(mine):
            continue
        for off in range(0, size, BLOCK):
            n = min(BLOCK, size - off)
            if read_at(mine, off, n) == read_at(os.path.join(outside_root, rel), off, n):
                raise AssertionError("%s holds the outside bytes at %d" % (mine, off))
    if done:
        for rel, _size in fx.files:
            verify.compare_files(os.path.join(original_root, rel), fx.download_path(save, rel))
        return "completed with the original bytes"
    return "not completed in %d s (%d of %d bytes), no outside byte" % (seconds, r["wanted_done"], r["wanted"])


def logged_failed(seeder, fx):
    """The log names the torrent (its info-hash) as failed. (The store's reason, which names the swapped path, is
    logged at debug level only: the seeder's line says which torrent failed, not why.)"""
    t_end = time.monotonic() + 10
    while True:
        lines = seeder.child.log().splitlines()
        hits = [ln for ln in lines if fx.info_hash in ln.lower() and "storage failed" in ln]
        if hits:
            return hits[0].strip()
        if time.monotonic() > t_end:
            raise AssertionError("no log line says torrent %s failed" % fx.info_hash)
        time.sleep(0.1)


def body(p, checks, build_dir, source_dir):
    seed, outside, made = build(p)
    if seeders.seeder_kind() != "hekate":
        print("hekate-only test (the reference seeder has no folder confinement to check)")
        return
    seeder = seeders.start_seeder(p, build_dir, [seed])
    print("seeder: %s on port %d (pid %d)" % (seeder.kind, seeder.port, seeder.pid))

    def serving_all():
        for fx in made.values():
            c = peerwire.PeerConn(seeder.addr)
            try:
                c.handshake(fx.info_hash, timeout=8)   # answered: scanned and served; no data is read by this
            finally:
                c.close()
        return "%d torrents answer handshakes" % len(made)
    checks.run("scanned_and_served", serving_all)

    for case in ("namefolder", "torfolder"):
        fx = made[case]
        original_root, outside_root = swap(p, case, fx, outside)
        checks.run(case + "_raw_peer_gets_no_outside_byte", raw_piece0, seeder, fx, outside_root)
        checks.run(case + "_leecher_gets_no_outside_byte", leech_bounded, p, seeder, case, fx, original_root,
                   outside_root, 12)
        checks.run(case + "_logged_as_failed", logged_failed, seeder, fx)
    checks.run("seeder_alive", seeder.assert_alive)

    def good_served():
        g = made["good"]
        save = p.path("dl", "good")
        lt_client.download("good", save, seeder.addr, timeout=min(45, p.remaining()), torrent=g.torrent)
        verify.verify_download(g, save)
        return "verified"
    checks.run("good_torrent_served", good_served)
    checks.run("seeder_stops_cleanly", seeder.stop_cleanly, p)


if __name__ == "__main__":
    procs.main_wrapper("test_swapped_folder", 180, body)
