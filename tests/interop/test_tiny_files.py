#!/usr/bin/python3
"""Interop: torrents of many tiny files are served within the descriptor budget (issue 14, item 5).
Two multi-file torrents in 16 KiB pieces: 5,000 files of 3 bytes (one block spans them all) and 10x that, 50,000 files
(every block spans ~5,460 files). hekate runs under a normal descriptor limit (RLIMIT_NOFILE 1024, set with prlimit),
once with the default --max-open-files and once with --max-open-files 16; each time python-libtorrent downloads both
torrents and every file is compared byte for byte. Before the fix, a block pinned one mapping (one descriptor) per
file at once, plus one descriptor per page-in job: past the limit the load failed and the torrent with it. Also
checked: hekate logged no failed storage, stays alive and stops cleanly. Deadline 560 s."""
import os
import shutil
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import fixtures, lt_client, procs, seeders, verify  # noqa: E402
from lib.fixtures import KiB  # noqa: E402

NOFILE = 1024


def build(p):
    root = os.path.realpath(p.path("seed"))
    made = {}
    for n, count in ((1, 5000), (2, 50000)):
        spec = [("f%05d.txt" % i, 3) for i in range(count)]
        made[count] = fixtures.make_multi(root, "tiny%d" % count, spec, 40 + n, 16 * KiB)
    return root, made


def start_limited(p, build_dir, root, args, name):
    """hekate under prlimit --nofile (prlimit execs it: the PID is hekate's)."""
    port = procs.free_port()
    argv = ["prlimit", "--nofile=%d:%d" % (NOFILE, NOFILE), "--", seeders.hekate_binary(build_dir), "-t", "--no-dht", "--bind",
            "127.0.0.1", "-p", str(port)] + list(args) + [root]
    child = p.start(name, argv)
    procs.wait_port(port, child, timeout=60)
    procs.wait_started(child, 120)
    return seeders.Seeder("hekate", child, port)


def download(p, seeder, fx, tag):
    save = p.path("dl", tag, str(len(fx.files)))
    r = lt_client.download("%s-%d" % (tag, len(fx.files)), save, seeder.addr, timeout=min(150, p.remaining()),
                           torrent=fx.torrent)
    verify.verify_download(fx, save)
    # Removed at once: unlinking the 4 x 55,000 downloaded files all at the end took minutes on a loaded disk.
    shutil.rmtree(save, ignore_errors=True)
    return "%d files verified in %.1f s" % (len(fx.files), r["seconds"])


def no_failure_logged(seeder):
    bad = [ln for ln in seeder.child.log().splitlines() if "failed" in ln.lower() and "storage" in ln.lower()]
    if bad:
        raise AssertionError("hekate logged a storage failure: %s" % bad[0])
    return "no storage failure logged"


def body(p, checks, build_dir, source_dir):
    root, made = build(p)
    if seeders.seeder_kind() != "hekate":
        print("hekate-only test (descriptor budgets are hekate's)")
        return
    for tag, args in (("default", []), ("open16", ["--max-open-files", "16"])):
        seeder = start_limited(p, build_dir, root, args, "hekate-" + tag)
        print("seeder (%s): port %d pid %d, RLIMIT_NOFILE %d" % (tag, seeder.port, seeder.pid, NOFILE))
        for count in sorted(made):
            checks.run("%s_%d_files_downloaded" % (tag, count), download, p, seeder, made[count], tag)
        checks.run(tag + "_no_storage_failure", no_failure_logged, seeder)
        checks.run(tag + "_stops_cleanly", seeder.stop_cleanly, p)


if __name__ == "__main__":
    # 10^5 files are made, downloaded and unlinked: on a tmpfs that takes seconds, on a busy disk it took over 10 minutes.
    if os.access("/dev/shm", os.W_OK):
        tempfile.tempdir = "/dev/shm"
    procs.main_wrapper("test_tiny_files", 560, body)
