#!/usr/bin/python3
"""Interop: bad torrents and bad data beside good ones. One folder DIR holds two good torrents and these bad ones:
  corrupt      a .torrent cut in the middle of its bencode
  garbage      a .torrent made of random bytes
  missing      a valid .torrent whose data file does not exist
  truncated    a valid .torrent whose data file is 1000 bytes short
  dotdot       a multi-file .torrent whose file path is ../../../secret.bin (the bytes exist there, outside DIR)
  slashname    a single-file .torrent whose name is ../../secret2.bin (the bytes exist there, outside DIR)
  abspath      a multi-file .torrent whose path is one absolute component naming a file outside DIR
  symlink      a valid .torrent whose data file is a symbolic link to a file outside DIR
Checks: `hekate -l` lists both good torrents and prints exactly one line naming each bad one; the daemon prints the
same one line per bad torrent, serves the good ones (downloads verified byte for byte) and never answers a handshake
for any bad one (so nothing outside DIR is ever served). Then a file is truncated while a rate-limited leecher is
downloading it: the daemon survives (no SIGBUS), never sends bytes that fail a hash check, and the other torrents
still download. Deadline 240 s."""
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import fixtures, lt_client, peerwire, procs, seeders, verify  # noqa: E402
from lib.fixtures import KiB, MiB  # noqa: E402


def build(p):
    seed = p.path("seed")
    good = [fixtures.make_single(os.path.join(seed, "good1"), "good one.bin", 700001, 51, 32 * KiB),
            fixtures.make_multi(os.path.join(seed, "good2"), "good two", [("a/b.bin", 90000), ("c.bin", 5)], 52,
                                32 * KiB)]
    bad = {}   # name -> (torrent path, info-hash or None)
    # corrupt: a valid torrent cut in half
    src = fixtures.make_single(os.path.join(seed, "corrupt"), "corrupt.bin", 50000, 53, 32 * KiB)
    raw = open(src.torrent, "rb").read()
    open(src.torrent, "wb").write(raw[:len(raw) // 2])
    bad["corrupt"] = (src.torrent, None)
    os.makedirs(os.path.join(seed, "garbage"))
    g = os.path.join(seed, "garbage", "garbage.torrent")
    open(g, "wb").write(fixtures.det_bytes(54, 3000))
    bad["garbage"] = (g, None)
    # missing data
    m = fixtures.make_single(os.path.join(seed, "missing"), "missing.bin", 80000, 55, 32 * KiB)
    os.unlink(m.data_path("missing.bin"))
    bad["missing"] = (m.torrent, m.info_hash)
    # truncated data
    t = fixtures.make_single(os.path.join(seed, "truncated"), "truncated.bin", 80000, 56, 32 * KiB)
    os.truncate(t.data_path("truncated.bin"), 79000)
    bad["truncated"] = (t.torrent, t.info_hash)
    # paths escaping DIR: the bytes they name exist outside DIR, with the right content
    secret = fixtures.det_bytes(57, 40000)
    for fn in ("secret.bin", "secret2.bin", "secret3.bin", "secret4.bin"):
        open(p.path(fn), "wb").write(secret)
    os.makedirs(os.path.join(seed, "dotdot"))
    # seed/dotdot/evil/../../../secret.bin = p.root/secret.bin
    ih = fixtures.make_raw_torrent(os.path.join(seed, "dotdot", "dotdot.torrent"), b"evil",
                                   [([b"..", b"..", b"..", b"secret.bin"], secret)], 32 * KiB)
    bad["dotdot"] = (os.path.join(seed, "dotdot", "dotdot.torrent"), ih)
    os.makedirs(os.path.join(seed, "slashname"))
    ih = fixtures.make_raw_torrent(os.path.join(seed, "slashname", "slashname.torrent"), b"../../secret2.bin", None,
                                   32 * KiB, content=secret)
    bad["slashname"] = (os.path.join(seed, "slashname", "slashname.torrent"), ih)
    os.makedirs(os.path.join(seed, "abspath"))
    ih = fixtures.make_raw_torrent(os.path.join(seed, "abspath", "abspath.torrent"), b"abs",
                                   [([p.path("secret4.bin").encode()], secret)], 32 * KiB)
    bad["abspath"] = (os.path.join(seed, "abspath", "abspath.torrent"), ih)
    os.makedirs(os.path.join(seed, "symlink"))
    ih = fixtures.make_raw_torrent(os.path.join(seed, "symlink", "symlink.torrent"), b"linked.bin", None, 32 * KiB,
                                   content=secret)
    os.symlink(p.path("secret3.bin"), os.path.join(seed, "symlink", "linked.bin"))
    bad["symlink"] = (os.path.join(seed, "symlink", "symlink.torrent"), ih)
    return seed, good, bad


def check_report(out, good, bad, listing):
    lines = out.splitlines()
    for name, (tpath, ih) in bad.items():
        base = os.path.basename(tpath)
        hits = [ln for ln in lines if base in ln]
        if len(hits) != 1:
            raise AssertionError("%s: expected exactly one line naming %s, got %d:\n%s" % (name, base, len(hits),
                                                                                          "\n".join(hits)))
        if ih and any(ih in ln.lower() and base not in ln for ln in lines):
            raise AssertionError("%s: its info-hash %s appears as if it were served:\n%s" % (name, ih, out))
    if listing:
        for g in good:
            if not any(g.info_hash in ln.lower() or g.name in ln for ln in lines):
                raise AssertionError("good torrent %s (%s) not listed:\n%s" % (g.name, g.info_hash, out))
    return "%d rejection lines, %d good torrents%s" % (len(bad), len(good), " listed" if listing else "")


def not_served(seeder, ih):
    c = peerwire.PeerConn(seeder.addr)
    try:
        try:
            c.handshake(ih, timeout=8)
        except EOFError:
            return
        raise AssertionError("the seeder answered a handshake for the rejected torrent %s" % ih)
    finally:
        c.close()


def body(p, checks, build_dir, source_dir):
    seed, good, bad = build(p)
    kind = seeders.seeder_kind()
    if kind == "hekate":
        def listing():
            rc, out = p.run("hekate-l", [seeders.hekate_binary(build_dir), "-t", "-l", seed], timeout=60)
            if rc != 0:
                raise AssertionError("hekate -l exited %d:\n%s" % (rc, out))
            return check_report(out, good, bad, True)
        checks.run("list_option", listing)

    seeder = seeders.start_seeder(p, build_dir, [seed])
    print("seeder: %s on port %d (pid %d)" % (seeder.kind, seeder.port, seeder.pid))
    if kind == "hekate":
        def startup_report():
            t_end = time.monotonic() + 10
            while True:
                out = seeder.child.log()
                if all(os.path.basename(t) in out for t, _ in bad.values()) or time.monotonic() > t_end:
                    return check_report(out, good, bad, False)
                time.sleep(0.1)
        checks.run("one_line_per_rejected_torrent", startup_report)

    def good_downloads():
        for g in good:
            save = p.path("dl", "good-" + g.name)
            lt_client.download(g.name, save, seeder.addr, timeout=min(45, p.remaining()), torrent=g.torrent)
            verify.verify_download(g, save)
        return "%d good torrents verified" % len(good)
    checks.run("good_torrents_served", good_downloads)
    if kind == "hekate":
        for name, (_tpath, ih) in bad.items():
            if ih:
                checks.run("not_served_" + name, not_served, seeder, ih)
    else:
        # libtorrent is a general client: it accepts torrents with missing data as downloads to complete, so the
        # probe is only validated here, on an info-hash nobody serves.
        checks.run("not_served_probe_unknown_hash", not_served, seeder, os.urandom(20).hex())
    checks.run("seeder_alive_after_bad_torrents", seeder.assert_alive)
    checks.run("seeder_stops_cleanly", seeder.stop_cleanly, p)

    # A file truncated while it is being served.
    tdir = p.path("seed2")
    victim = fixtures.make_single(os.path.join(tdir, "victim"), "victim.bin", 24 * MiB, 58, 256 * KiB)
    other = fixtures.make_single(os.path.join(tdir, "other"), "other.bin", 3 * MiB + 1, 59, 64 * KiB)
    seeder = seeders.start_seeder(p, build_dir, [tdir], name="seeder2")

    def truncate_while_serving():
        l = lt_client.Leecher("victim", p.path("dl", "victim"), seeder.addr, torrent=victim.torrent)
        l.h.set_download_limit(2 * MiB)   # a torrent limit applies to local peers too: the cut lands mid-transfer
        try:
            t_end = time.monotonic() + 30
            while l.status().total_wanted_done < 3 * MiB:
                l.poll()
                if time.monotonic() > t_end:
                    raise AssertionError("the victim download did not start: %r" % l.report())
                time.sleep(0.05)
            os.truncate(victim.data_path("victim.bin"), 5 * MiB)
            got_at_cut = l.status().total_wanted_done
            if got_at_cut >= victim.total_size:
                raise AssertionError("the download finished before the file was truncated: nothing was tested")
            t_end = time.monotonic() + 6
            while time.monotonic() < t_end:
                l.poll()
                time.sleep(0.05)
            seeder.assert_alive("after its file was truncated while being served")
            r = l.report()
            if r["hash_failures"]:
                raise AssertionError("the leecher saw %d pieces fail their hash: bytes that are not the file's were "
                                     "sent" % r["hash_failures"])
            if r["done"]:
                raise AssertionError("the leecher completed a torrent whose file was cut to 5 MiB of 24 MiB")
            return "truncated to 5 MiB when the leecher had %d bytes; 6 s later it had %d" % (
                got_at_cut, r["wanted_done"])
        finally:
            l.close()
    checks.run("file_truncated_while_served", truncate_while_serving)

    def other_still_served():
        save = p.path("dl", "other")
        r = lt_client.download("other", save, seeder.addr, timeout=min(45, p.remaining()), torrent=other.torrent)
        verify.verify_download(other, save)
        seeder.assert_alive()
        return "other torrent verified in %.2f s" % r["seconds"]
    checks.run("other_torrent_after_truncation", other_still_served)
    checks.run("seeder2_stops_cleanly", seeder.stop_cleanly, p)


if __name__ == "__main__":
    procs.main_wrapper("test_bad_inputs", 240, body)
