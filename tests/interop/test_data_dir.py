#!/usr/bin/python3
"""Interop: data kept apart from the .torrent files (--data-dir, issue 11 item 8). The .torrent files sit in one
folder, the data of a single-file torrent in one data dir and of a multi-file torrent in a second; a third torrent
keeps its data beside its .torrent (found there first). python-libtorrent downloads all three from hekate, each
verified byte for byte; a torrent whose data is nowhere is refused with a line naming the data dirs searched; and
`hekate -l` lists the same. Deadline 180 s."""
import os
import shutil
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import fixtures, lt_client, procs, seeders, verify  # noqa: E402
from lib.fixtures import KiB, MiB  # noqa: E402


def move_torrent(fx, folder):
    """Moves the fixture's .torrent into folder (its data stays where it is)."""
    dst = os.path.join(folder, os.path.basename(fx.torrent))
    shutil.move(fx.torrent, dst)
    fx.torrent = dst
    return fx


def wait_log(child, needle, p, timeout=20):
    t_end = time.monotonic() + timeout
    while needle not in child.log():
        if time.monotonic() > t_end or not child.alive():
            raise AssertionError("hekate never logged %r; log:\n%s" % (needle, child.log()[-3000:]))
        p.check_deadline(needle)
        time.sleep(0.05)


def body(p, checks, build_dir, source_dir):
    tdir, d1, d2 = p.path("torrents"), p.path("data1"), p.path("data2")
    os.makedirs(tdir, exist_ok=True)
    single = move_torrent(fixtures.make_single(d1, "apart.bin", MiB + 4321, 11, 32 * KiB), tdir)
    multi = move_torrent(fixtures.make_multi(d2, "Apart Album", [("cd1/a.bin", 300001), ("b.bin", 70000)], 12,
                                             64 * KiB), tdir)
    beside = fixtures.make_single(tdir, "beside.bin", 200000, 13, 32 * KiB)
    gone = move_torrent(fixtures.make_single(p.path("nowhere"), "nowhere.bin", 50000, 14, 32 * KiB), tdir)
    shutil.rmtree(p.path("nowhere"))

    def listing():
        out = subprocess.run([seeders.hekate_binary(build_dir), "-l", "--data-dir", d1, "--data-dir", d2, tdir],
                             capture_output=True, text=True, timeout=30)
        text = out.stdout + out.stderr
        for fx in (single, multi, beside):
            assert fx.info_hash in text.lower(), "-l does not list %s:\n%s" % (fx.name, text)
        assert "nowhere.bin: missing (and in no --data-dir: 2 searched)" in text, text
        return "3 torrents listed, the fourth refused"
    checks.run("list_finds_data_dirs", listing)

    seeder = seeders.start_hekate(p, build_dir, [tdir], args=["--data-dir", d1, "--data-dir=" + d2])
    print("seeder: hekate on port %d (pid %d)" % (seeder.port, seeder.pid))
    checks.run("nowhere_refused_naming_data_dirs", wait_log, seeder.child,
               "nowhere.bin: missing (and in no --data-dir: 2 searched)", p)

    def case(name, fixture):
        save = p.path("dl", name)
        r = lt_client.download(name, save, seeder.addr, timeout=min(60, p.remaining()), torrent=fixture.torrent)
        n = verify.verify_download(fixture, save)
        seeder.assert_alive("after " + name)
        return "%d bytes verified in %.2f s" % (n, r["seconds"])

    checks.run("single_file_from_data_dir", case, "single", single)
    checks.run("multi_file_from_second_data_dir", case, "multi", multi)
    checks.run("beside_the_torrent", case, "beside", beside)
    checks.run("seeder_stops_cleanly", seeder.stop_cleanly, p, signal.SIGINT)
    assert gone.info_hash  # built and refused above


if __name__ == "__main__":
    procs.main_wrapper("test_data_dir", 180, body)
