#!/usr/bin/python3
"""Interop: a .torrent rewritten in place while hekate serves it (issue 14). python-libtorrent fetches torrent G from
hekate by magnet link (the metadata, ut_metadata BEP 9, comes from G's .torrent file) and downloads it. Then the
.torrent is rewritten in place at the same size, one byte of the name changed ("gamma.bin" -> "gbmma.bin", whose data
is there too): another info-hash. Without any signal hekate logs that the .torrent changed and rescans it: G's old
info-hash is refused, the new torrent is fetched by magnet link (its metadata is the file's new bytes, which
libtorrent checks against the new info-hash) and downloaded. Every download is verified byte for byte; hekate stops
cleanly. Deadline 180 s."""
import os
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import fixtures, lt_client, peerwire, procs, seeders, verify  # noqa: E402
from lib.fixtures import KiB, MiB  # noqa: E402


def wait_log(hk, text, timeout):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if text in hk.child.log():
            return
        hk.assert_alive("while waiting for %r" % text)
        time.sleep(0.05)
    raise AssertionError("hekate's log does not say %r after %.0f s; tail:\n%s" % (text, timeout,
                                                                                    hk.child.log()[-3000:]))


def magnet_download(p, hk, fixture, tag):
    save = p.path("dl", tag)
    r = lt_client.download(tag, save, hk.addr, timeout=min(60, p.remaining()), magnet=fixture.magnet())
    n = verify.verify_download(fixture, save)
    hk.assert_alive("after " + tag)
    return "%d bytes verified in %.2f s (metadata by magnet)" % (n, r["seconds"])


def rewrite_in_place(fixture, new_name):
    """One byte of the name changed in the .torrent's own bytes (same size, same inode), mtime bumped."""
    with open(fixture.torrent, "rb") as f:
        raw = f.read()
    old = b"%d:%s" % (len(fixture.name), fixture.name.encode())
    at = raw.find(old)
    assert at >= 0 and len(new_name) == len(fixture.name)
    ino = os.stat(fixture.torrent).st_ino
    with open(fixture.torrent, "r+b") as f:
        f.seek(at + len(old) - len(fixture.name))
        f.write(new_name.encode())
    st = os.stat(fixture.torrent)
    os.utime(fixture.torrent, ns=(st.st_atime_ns, st.st_mtime_ns + 1000000000))
    assert os.stat(fixture.torrent).st_ino == ino and os.path.getsize(fixture.torrent) == len(raw)


def handshake_refused(hk, info_hash):
    c = peerwire.PeerConn(hk.addr, timeout=5)
    try:
        try:
            c.handshake(info_hash, timeout=5)
        except (EOFError, ConnectionResetError, BrokenPipeError):
            return "refused: connection closed without a handshake"
        raise AssertionError("hekate answered a handshake for the old info-hash %s" % info_hash)
    finally:
        c.close()


def body(p, checks, build_dir, source_dir):
    seed = p.path("seed")
    g = fixtures.make_single(seed, "gamma.bin", 1 * MiB + 333, 61, 32 * KiB)
    os.link(g.data_path("gamma.bin"), os.path.join(seed, "gbmma.bin"))  # the data under the rewritten name
    # --no-watch: this test is about the periodic check of open .torrent files; with inotify (test_watch.py) the
    # rewrite is picked up by the watcher first, as a change of the path
    hk = seeders.start_hekate(p, build_dir, [seed], args=["--no-watch"])
    print("hekate on port %d (pid %d)" % (hk.port, hk.pid))
    state = {}

    checks.run("old_torrent_by_magnet", magnet_download, p, hk, g, "g1")

    def rewrite():
        rewrite_in_place(g, "gbmma.bin")
        g2 = fixtures.Fixture(seed, "gbmma.bin", [("gbmma.bin", g.total_size)], g.torrent, multi=False)
        assert g2.info_hash != g.info_hash
        state["g2"] = g2
        wait_log(hk, "%s: the .torrent changed on disk; its metadata is no longer served; rescanning it" % g.torrent,
                 10)
        wait_log(hk, "%s: rescanned: serving %s (was %s)" % (g.torrent, g2.info_hash, g.info_hash), 10)
        return "logged and rescanned without a signal: %s -> %s" % (g.info_hash[:12], g2.info_hash[:12])
    checks.run("rewrite_detected_and_rescanned", rewrite)
    checks.run("old_info_hash_refused", handshake_refused, hk, g.info_hash)
    if "g2" in state:
        checks.run("new_torrent_by_magnet", magnet_download, p, hk, state["g2"], "g2")
    checks.run("seeder_alive_at_end", hk.assert_alive)
    checks.run("seeder_stops_cleanly", hk.stop_cleanly, p, signal.SIGTERM)


if __name__ == "__main__":
    procs.main_wrapper("test_torrent_rewrite", 180, body)
