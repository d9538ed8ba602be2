#!/usr/bin/python3
"""Interop: hot add and remove of torrents in a running hekate (SIGHUP and --rescan), with python-libtorrent leechers
and a fake HTTP tracker. hekate starts on a folder holding torrent A and announces it (`started`); A downloads. B's
data and .torrent are copied in and SIGHUP makes hekate add it (`added` logged, `started` announced); B downloads.
A's .torrent is deleted and SIGHUP removes A: a peer connected to A is disconnected while one connected to B
goes on (it fetches a piece over the same connection), a new handshake for A is refused, `stopped` for A (only)
reaches the tracker, and B still downloads. A SIGHUP that changes nothing says so; when B
goes too, hekate keeps running and serves nothing. A second hekate started with --rescan=1 on an empty folder picks
up a torrent dropped in it without any signal; --rescan below one second is a command-line error. Every download is
verified byte for byte; hekate stops cleanly (exit 0, no sanitizer report). Deadline 180 s."""
import os
import shutil
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import fixtures, lt_client, peerwire, procs, seeders, trackers, verify  # noqa: E402
from lib.fixtures import KiB, MiB  # noqa: E402


def wait_log(hk, text, timeout, after=0):
    """Waits until hekate's log holds text at or after offset `after`; returns the offset just past it."""
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        log = hk.child.log()
        i = log.find(text, after)
        if i >= 0:
            return i + len(text)
        hk.assert_alive("while waiting for %r" % text)
        time.sleep(0.05)
    raise AssertionError("hekate's log does not say %r after %.0f s; tail:\n%s" % (text, timeout,
                                                                                    hk.child.log()[-3000:]))


def log_end(hk):
    return len(hk.child.log())


def announces(tracker, hk, fixture, event=None):
    """hekate's announces for fixture (the leechers announce to the same tracker: told apart by the port)."""
    ih = bytes.fromhex(fixture.info_hash)
    return [r for r in list(tracker.requests)
            if r.get("info_hash", "").encode("latin-1") == ih and r.get("port") == str(hk.port)
            and (event is None or r.get("event") == event)]


def wait_announce(tracker, hk, fixture, event, timeout):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if announces(tracker, hk, fixture, event):
            return
        time.sleep(0.05)
    raise AssertionError("the tracker got no %s announce from hekate for %s within %.0f s (%d requests in all)" % (
        event, fixture.name, timeout, len(tracker.requests)))


def download(p, hk, fixture, tag):
    """A libtorrent download from hekate, given a copy of the .torrent without trackers (the leecher is handed
    hekate's address; the tracker then sees only hekate)."""
    save = p.path("dl", tag)
    leech = p.path("leech", tag + ".torrent")
    os.makedirs(os.path.dirname(leech), exist_ok=True)
    shutil.copy(fixture.torrent, leech)
    trackers.set_trackers(leech, [])
    r = lt_client.download(tag, save, hk.addr, timeout=min(60, p.remaining()), torrent=leech)
    n = verify.verify_download(fixture, save)
    hk.assert_alive("after downloading " + tag)
    return "%d bytes verified in %.2f s" % (n, r["seconds"])


def handshake_refused(hk, fixture):
    c = peerwire.PeerConn(hk.addr, timeout=5)
    try:
        try:
            c.handshake(fixture.info_hash, timeout=5)
        except (EOFError, ConnectionResetError, BrokenPipeError):
            return "refused: connection closed without a handshake"
        raise AssertionError("hekate answered a handshake for %s" % fixture.name)
    finally:
        c.close()


def copy_in(fixture, folder):
    """The data first, then the .torrent (as a careful user would)."""
    shutil.copy(fixture.data_path(fixture.files[0][0]), os.path.join(folder, fixture.name))
    dst = os.path.join(folder, os.path.basename(fixture.torrent))
    shutil.copy(fixture.torrent, dst + ".part")
    os.rename(dst + ".part", dst)
    return dst


def body(p, checks, build_dir, source_dir):
    seed = p.path("seed")
    staging = p.path("staging")
    tracker = trackers.FakeHttpTracker("ok")
    a = fixtures.make_single(seed, "alpha.bin", 3 * MiB + 17, 51, 64 * KiB)
    b = fixtures.make_single(staging, "beta.bin", 2 * MiB + 4321, 52, 32 * KiB)
    for f in (a, b):
        trackers.set_trackers(f.torrent, [[tracker.url]])  # outside `info`: the info-hash stays
    a_torrent = a.torrent
    hk = trackers.start_hekate_announcing(p, build_dir, [seed])
    print("hekate on port %d (pid %d)" % (hk.port, hk.pid))
    try:
        def a_announced():
            wait_announce(tracker, hk, a, "started", 15)
            return "started for A"
        checks.run("a_announced_started", a_announced)
        checks.run("a_downloads", download, p, hk, a, "a1")

        def add_b():
            at = log_end(hk)
            b_torrent = copy_in(b, seed)
            hk.child.popen.send_signal(signal.SIGHUP)
            wait_log(hk, "added %s (%s)" % (b_torrent, b.info_hash), 15, at)
            wait_log(hk, "rescan done: 1 added, 0 removed, 0 failed; 2 torrents served", 15, at)
            wait_announce(tracker, hk, b, "started", 15)
            return "added on SIGHUP, started announced"
        checks.run("sighup_adds_b", add_b)
        checks.run("b_downloads", download, p, hk, b, "b1")

        def remove_a():
            conn = peerwire.start_session(hk.addr, a.info_hash, timeout=10)  # a peer of A, unchoked
            conn_b = peerwire.start_session(hk.addr, b.info_hash, timeout=10)  # and one of B
            try:
                at = log_end(hk)
                os.unlink(a_torrent)
                hk.child.popen.send_signal(signal.SIGHUP)
                wait_log(hk, "removed %s (%s): torrent file deleted" % (a_torrent, a.info_hash), 15, at)
                wait_log(hk, "rescan done: 0 added, 1 removed, 0 failed; 1 torrent served", 15, at)
                closed = conn.wait_closed(10)
                if closed is None:
                    raise AssertionError("the peer connected to A was not disconnected")
                got = peerwire.fetch_piece(hk.addr, b, 0, conn=conn_b)  # B's peer goes on
            finally:
                conn.close()
                conn_b.close()
            return "A's peer disconnected after %.3f s; B's peer on the same seeder got a piece (%d bytes)" % (
                closed, len(got))
        checks.run("sighup_removes_a", remove_a)
        checks.run("a_handshake_refused", handshake_refused, hk, a)

        def a_stopped():
            wait_announce(tracker, hk, a, "stopped", 15)
            if announces(tracker, hk, b, "stopped"):
                raise AssertionError("B was announced stopped too")
            return "stopped for A only"
        checks.run("a_announced_stopped", a_stopped)
        checks.run("b_still_downloads", download, p, hk, b, "b2")

        def nothing_changed():
            at = log_end(hk)
            hk.child.popen.send_signal(signal.SIGHUP)
            wait_log(hk, "rescan done: 0 added, 0 removed, 0 failed; 1 torrent served (1 .torrent file examined, "
                         "1 unchanged)", 15, at)
            return "unchanged"
        checks.run("sighup_without_change", nothing_changed)

        def everything_gone():
            at = log_end(hk)
            os.unlink(os.path.join(seed, os.path.basename(b.torrent)))
            hk.child.popen.send_signal(signal.SIGHUP)
            wait_log(hk, "removed %s" % os.path.join(seed, os.path.basename(b.torrent)), 15, at)
            wait_log(hk, "serving nothing until a rescan finds a torrent", 15, at)
            time.sleep(0.3)
            hk.assert_alive("with nothing to serve")
            return handshake_refused(hk, b) + "; still running"
        checks.run("everything_gone_keeps_running", everything_gone)
        checks.run("hekate_stops_cleanly", hk.stop_cleanly, p, signal.SIGTERM)
    finally:
        tracker.close()

    def periodic():
        empty = p.path("incoming")
        os.makedirs(empty)
        hk2 = seeders.start_hekate(p, build_dir, [empty], args=["--rescan", "1"], name="hekate-rescan")
        wait_log(hk2, "serving nothing until a rescan finds a torrent", 10)
        c = fixtures.make_single(p.path("staging2"), "gamma.bin", 700000, 53, 32 * KiB)
        dst = copy_in(c, empty)
        wait_log(hk2, "added %s (%s)" % (dst, c.info_hash), 10)
        got = peerwire.fetch_piece(hk2.addr, c, c.num_pieces - 1)
        hk2.stop_cleanly(p, signal.SIGINT)
        return "added by the periodic rescan; last piece (%d bytes) verified" % len(got)
    checks.run("periodic_rescan_adds_without_a_signal", periodic)

    def bad_interval():
        rc, out = p.run("hekate-bad-rescan", [seeders.hekate_binary(build_dir), "--rescan", "0.5", seed], 10)
        if rc != 2 or "--rescan: 0.5 is too short" not in out:
            raise AssertionError("exit %s, output %r" % (rc, out))
        return "exit 2: " + out.splitlines()[0]
    checks.run("rescan_below_one_second_refused", bad_interval)


if __name__ == "__main__":
    procs.main_wrapper("test_reload", 180, body)
