#!/usr/bin/python3
"""Interop: --follow-links (issue 11 item 8). The DIR holds a symbolic link to a folder of the data dir (its
.torrent and data found only through the link), a torrent whose data file is a link into the data dir, a link to a
folder outside every served folder, and a torrent whose data is a link to a file outside. With --follow-links
python-libtorrent downloads the two linked torrents from hekate (verified byte for byte) while the links leading
outside are refused with a line each; then the outside link is swapped in place of a served one and a fresh
download of that torrent gets none of the outside bytes. Without --follow-links the same tree serves neither linked
torrent and says so once per link at the default level. Deadline 200 s."""
import os
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import fixtures, lt_client, procs, seeders, verify  # noqa: E402
from lib.fixtures import KiB, MiB  # noqa: E402


def wait_log(child, needle, p, timeout=20):
    t_end = time.monotonic() + timeout
    while needle not in child.log():
        if time.monotonic() > t_end or not child.alive():
            raise AssertionError("hekate never logged %r; log:\n%s" % (needle, child.log()[-3000:]))
        p.check_deadline(needle)
        time.sleep(0.05)
    return needle


def build(p):
    seed, store, outside = p.path("seed"), p.path("store"), p.path("outside")
    for d in (seed, store, outside):
        os.makedirs(d, exist_ok=True)
    fx = {}
    fx["via_folder_link"] = fixtures.make_single(os.path.join(store, "pack"), "packed.bin", MiB + 77, 21, 32 * KiB)
    os.symlink("../store/pack", os.path.join(seed, "pack-link"))
    data = fixtures.make_single(os.path.join(store, "blobs"), "linked.bin", 700000, 22, 32 * KiB)
    os.rename(data.torrent, os.path.join(seed, "linked.bin.torrent"))
    os.symlink(os.path.join(store, "blobs", "linked.bin"), os.path.join(seed, "linked.bin"))  # absolute, inside
    data.torrent = os.path.join(seed, "linked.bin.torrent")
    fx["via_data_link"] = data
    fixtures.make_single(os.path.join(outside, "o"), "secret.bin", 50000, 23, 32 * KiB)
    os.symlink(os.path.join(outside, "o"), os.path.join(seed, "door"))
    evil = fixtures.make_single(os.path.join(outside, "e"), "evil.bin", 50000, 24, 32 * KiB)
    os.rename(evil.torrent, os.path.join(seed, "evil.bin.torrent"))
    os.symlink("../outside/e/evil.bin", os.path.join(seed, "evil.bin"))
    return seed, store, fx


def body(p, checks, build_dir, source_dir):
    seed, store, fx = build(p)

    def without():
        hk = seeders.start_hekate(p, build_dir, [seed], name="hekate-nofollow", args=["--data-dir", store], wait=False)
        try:
            wait_log(hk.child, "pack-link: is a symbolic link to a folder; not followed", p)
            wait_log(hk.child, "linked.bin: is a symbolic link", p)
            log = hk.child.log()
            if log.count("pack-link: is a symbolic link to a folder") != 1:
                raise AssertionError("the folder link said %d times" % log.count("pack-link: is a symbolic link"))
            return "both links said once, nothing served through them"
        finally:
            p.stop(hk.child)
    checks.run("without_follow_links_said_once", without)

    seeder = seeders.start_hekate(p, build_dir, [seed], args=["--follow-links", "--data-dir", store])
    print("seeder: hekate --follow-links on port %d (pid %d)" % (seeder.port, seeder.pid))
    checks.run("outside_folder_refused", wait_log, seeder.child,
               "door: is a symbolic link to a folder outside the served folders; not followed", p)
    checks.run("outside_data_refused", wait_log, seeder.child,
               "evil.bin: a symbolic link on the way leads outside the served folders", p)

    def case(name, fixture):
        save = p.path("dl", name)
        r = lt_client.download(name, save, seeder.addr, timeout=min(60, p.remaining()), torrent=fixture.torrent)
        n = verify.verify_download(fixture, save)
        seeder.assert_alive("after " + name)
        return "%d bytes verified in %.2f s" % (n, r["seconds"])

    for name, fixture in fx.items():
        checks.run(name, case, name, fixture)

    def swapped():
        link = os.path.join(seed, "linked.bin")
        os.unlink(link)
        with open(os.path.join(p.path("outside"), "same-size.bin"), "wb") as f:
            f.write(b"\xee" * fx["via_data_link"].total_size)
        os.symlink(os.path.join(p.path("outside"), "same-size.bin"), link)
        save = p.path("dl", "swapped")
        try:
            lt_client.download("swapped", save, seeder.addr, timeout=8, torrent=fx["via_data_link"].torrent)
        except Exception:  # noqa: BLE001 - the download must not complete
            pass
        got = b""
        path = os.path.join(save, "linked.bin")
        if os.path.exists(path):
            with open(path, "rb") as f:
                got = f.read()
        if b"\xee" * 1024 in got:
            raise AssertionError("bytes from outside were served")
        wait_log(seeder.child, "linked.bin: a symbolic link on the way leads outside the served folders", p)
        seeder.assert_alive("after the swap")
        return "the swapped link was refused at serving time; no outside byte sent"
    checks.run("link_swapped_outside_not_followed", swapped)
    checks.run("seeder_stops_cleanly", seeder.stop_cleanly, p, signal.SIGINT)


if __name__ == "__main__":
    procs.main_wrapper("test_follow_links", 200, body)
