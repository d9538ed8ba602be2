#!/usr/bin/python3
"""Interop: watched directories (inotify, issue 11 item 6). hekate serves a folder holding torrent A (announced to
tracker T1). Without any signal: B (data first, then the .torrent renamed in from a temporary name) and C (a plain
copy) are served within 1 s of the drop (a raw handshake then a piece fetched and checked); B's .torrent deleted is
stopped within 1 s (handshakes refused); a subfolder holding D moved in is served within 1 s; A's .torrent rewritten
with the same info dictionary but tracker T2 instead of T1 is announced to T2 (`started`) and `stopped` to T1, with
no other announce to T1 after it. A second hekate with --no-watch does nothing on a drop until SIGHUP, and a tracker
list rewritten under it is applied by the SIGHUP rescan (not before). Latencies are printed. hekate stops cleanly. Deadline 120 s."""
import os
import shutil
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import fixtures, peerwire, procs, seeders, trackers  # noqa: E402
from lib.fixtures import KiB, MiB  # noqa: E402

LIMIT = 1.0  # seconds from a change on disk to hekate acting on it


def serves(hk, fixture):
    """True if hekate answers a handshake for fixture, False if it closes the connection."""
    c = peerwire.PeerConn(hk.addr, timeout=5)
    try:
        c.handshake(fixture.info_hash, timeout=5)
        return True
    except (EOFError, ConnectionResetError, BrokenPipeError):
        return False
    finally:
        c.close()


def wait_serving(hk, fixture, want, t0, timeout=5.0):
    """Polls until serves() == want; returns the seconds since t0 (raises after timeout)."""
    while time.monotonic() - t0 < timeout:
        if serves(hk, fixture) == want:
            return time.monotonic() - t0
        hk.assert_alive("while polling for %s" % fixture.name)
        time.sleep(0.02)
    raise AssertionError("%s not %s within %.0f s; log tail:\n%s" % (
        fixture.name, "served" if want else "stopped", timeout, hk.child.log()[-3000:]))


def within(dt, what):
    if dt > LIMIT:
        raise AssertionError("%s took %.3f s (more than %.1f s)" % (what, dt, LIMIT))
    return "%s after %.3f s" % (what, dt)


def data_in(fixture, folder):
    shutil.copy(fixture.data_path(fixture.files[0][0]), os.path.join(folder, fixture.name))


def announces(tracker, hk, fixture, event=None):
    ih = bytes.fromhex(fixture.info_hash)
    return [r for r in list(tracker.requests)
            if r.get("info_hash", "").encode("latin-1") == ih and r.get("port") == str(hk.port)
            and (event is None or r.get("event") == event)]


def wait_announce(tracker, hk, fixture, event, timeout):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        got = announces(tracker, hk, fixture, event)
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("no %s announce for %s within %.0f s (%d requests)" % (event, fixture.name, timeout,
                                                                                len(tracker.requests)))


def body(p, checks, build_dir, source_dir):
    seed = p.path("seed")
    staging = p.path("staging")
    t1 = trackers.FakeHttpTracker("ok")
    t2 = trackers.FakeHttpTracker("ok")
    a = fixtures.make_single(seed, "alpha.bin", 1 * MiB + 17, 61, 32 * KiB)
    trackers.set_trackers(a.torrent, [[t1.url]])
    b = fixtures.make_single(staging, "beta.bin", 700001, 62, 32 * KiB)
    c = fixtures.make_single(staging, "gamma.bin", 500003, 63, 32 * KiB)
    d = fixtures.make_single(p.path("staging", "sub"), "delta.bin", 300007, 64, 16 * KiB)
    hk = trackers.start_hekate_announcing(p, build_dir, [seed])
    print("hekate on port %d (pid %d)" % (hk.port, hk.pid))
    try:
        checks.run("a_started_to_t1", lambda: len(wait_announce(t1, hk, a, "started", 15)) and "started for A")

        def drop_renamed():
            data_in(b, seed)
            dst = os.path.join(seed, os.path.basename(b.torrent))
            shutil.copy(b.torrent, dst + ".part")
            t0 = time.monotonic()
            os.rename(dst + ".part", dst)
            dt = wait_serving(hk, b, True, t0)
            got = peerwire.fetch_piece(hk.addr, b, b.num_pieces - 1)
            return within(dt, "B (renamed in) served") + "; last piece (%d bytes) verified" % len(got)
        checks.run("drop_renamed_served_within_1s", drop_renamed)

        def drop_copied():
            data_in(c, seed)
            t0 = time.monotonic()
            shutil.copy(c.torrent, os.path.join(seed, os.path.basename(c.torrent)))
            dt = wait_serving(hk, c, True, t0)
            got = peerwire.fetch_piece(hk.addr, c, 0)
            return within(dt, "C (copied in) served") + "; piece 0 (%d bytes) verified" % len(got)
        checks.run("drop_copied_served_within_1s", drop_copied)

        def remove_b():
            t0 = time.monotonic()
            os.unlink(os.path.join(seed, os.path.basename(b.torrent)))
            return within(wait_serving(hk, b, False, t0), "B stopped (handshake refused)")
        checks.run("removed_stopped_within_1s", remove_b)

        def subfolder():
            moving = p.path("staging", "moving")  # a copy: the fixture's own files are checked against
            shutil.copytree(p.path("staging", "sub"), moving)
            t0 = time.monotonic()
            os.rename(moving, os.path.join(seed, "sub"))
            dt = wait_serving(hk, d, True, t0)
            got = peerwire.fetch_piece(hk.addr, d, 0)
            return within(dt, "D (in a subfolder moved in) served") + "; piece 0 (%d bytes) verified" % len(got)
        checks.run("subfolder_served_within_1s", subfolder)

        def retracked():
            new = a.torrent + ".new"
            shutil.copy(a.torrent, new)
            trackers.set_trackers(new, [[t2.url]])
            os.rename(new, a.torrent)  # same info dictionary, another tracker list
            wait_announce(t2, hk, a, "started", 15)
            stops = wait_announce(t1, hk, a, "stopped", 15)
            n1 = len(announces(t1, hk, a))
            time.sleep(1.5)
            if len(announces(t1, hk, a)) != n1:
                raise AssertionError("hekate still announces A to the old tracker")
            if not serves(hk, a):
                raise AssertionError("A no longer served after its tracker list changed")
            return "started to T2, %d stopped to T1, nothing more to T1; A still served" % len(stops)
        checks.run("rewritten_tracker_list_applied", retracked)
        checks.run("hekate_stops_cleanly", hk.stop_cleanly, p, signal.SIGTERM)
    finally:
        t1.close()
        t2.close()

    t3 = trackers.FakeHttpTracker("ok")
    t4 = trackers.FakeHttpTracker("ok")
    folder = p.path("nowatch")
    e0 = fixtures.make_single(folder, "eps0.bin", 200003, 65, 16 * KiB)
    trackers.set_trackers(e0.torrent, [[t3.url]])
    e = fixtures.make_single(p.path("staging3"), "eps.bin", 200009, 66, 16 * KiB)
    hk2 = trackers.start_hekate_announcing(p, build_dir, [folder], args=["--no-watch"], name="hekate-nowatch")
    try:
        def no_watch():
            if not serves(hk2, e0):
                raise AssertionError("the first torrent is not served")
            data_in(e, folder)
            shutil.copy(e.torrent, os.path.join(folder, os.path.basename(e.torrent)))
            time.sleep(1.5)
            if serves(hk2, e):
                raise AssertionError("served with --no-watch before any SIGHUP")
            t0 = time.monotonic()
            hk2.child.popen.send_signal(signal.SIGHUP)
            dt = wait_serving(hk2, e, True, t0, 10)
            return "not served 1.5 s after the drop; served %.3f s after SIGHUP" % dt
        checks.run("no_watch_waits_for_sighup", no_watch)

        def rescan_retracks():
            wait_announce(t3, hk2, e0, "started", 15)
            new = e0.torrent + ".new"
            shutil.copy(e0.torrent, new)
            trackers.set_trackers(new, [[t4.url]])
            os.rename(new, e0.torrent)
            time.sleep(0.5)
            if announces(t4, hk2, e0):
                raise AssertionError("announced to the new tracker before SIGHUP with --no-watch")
            hk2.child.popen.send_signal(signal.SIGHUP)
            wait_announce(t4, hk2, e0, "started", 15)
            wait_announce(t3, hk2, e0, "stopped", 15)
            return "after SIGHUP: started to the new tracker, stopped to the old"
        checks.run("rescan_applies_tracker_list", rescan_retracks)
        checks.run("nowatch_stops_cleanly", hk2.stop_cleanly, p, signal.SIGINT)
    finally:
        t3.close()
        t4.close()


if __name__ == "__main__":
    procs.main_wrapper("test_watch", 120, body)
