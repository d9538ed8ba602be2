#!/usr/bin/python3
"""Interop: every catchable signal handled as documented (issue 11 item 8a, docs/hekate.1 SIGNALS). (a) hekate
announcing 3 torrents to a fake HTTP tracker gets SIGUSR1: it logs a status summary (`status (SIGUSR1): 3
torrents, ...` and the counters) and keeps serving (a raw handshake is answered); then SIGUSR2, SIGALRM, SIGPIPE,
SIGPROF, SIGVTALRM, SIGIO, SIGXFSZ, SIGPWR and a real-time signal: it survives each (its /proc SigIgn shows them
ignored) and still serves; a second SIGUSR1 logs a second summary; SIGTERM then stops it with exit 0 and a
`stopped` announce for every torrent. (b) SIGQUIT stops cleanly the same way (exit 0, `stopped` announced, no core).
(c) SIGUSR1 sent as soon as main() runs (before serving) is not fatal and is answered once serving starts. Before
this work SIGUSR1 (and SIGUSR2, SIGQUIT...) killed hekate with nothing logged and no `stopped`. Every process is
stopped by PID; deadline 90 s."""
import hashlib
import os
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import bencode, fixtures, peerwire, procs, trackers  # noqa: E402

IGNORED = [signal.SIGUSR2, signal.SIGALRM, signal.SIGPIPE, signal.SIGPROF, signal.SIGVTALRM, signal.SIGIO,
           signal.SIGXFSZ, signal.SIGPWR, signal.SIGRTMIN + 1]


def info_hash_of(path):
    with open(path, "rb") as f:
        return hashlib.sha1(bencode.encode(bencode.decode(f.read())[b"info"])).digest()


def wait_for(what, cond, timeout, child=None):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if cond():
            return
        if child is not None and not child.alive():
            raise AssertionError("hekate exited (%s) while waiting for %s" % (child.returncode(), what))
        time.sleep(0.02)
    raise AssertionError("no %s within %.0f s" % (what, timeout))


def events(tracker, event):
    return {r.get("info_hash") for r in tracker.requests if r.get("event") == event}


def answers(hk, ih):
    with peerwire.PeerConn(hk.addr, timeout=5) as c:
        _, got, _ = c.handshake(ih, timeout=5)
        return got == ih


def sig_ignored(pid, signum):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("SigIgn:"):
                return bool(int(line.split()[1], 16) & (1 << (signum - 1)))
    return False


def start(p, folder, paths, tracker, name):
    for t in paths:
        trackers.set_trackers(t, [[tracker.url]])
    hk = trackers.start_hekate_announcing(p, p.build_dir, [folder], name=name)
    wait_for("`started` for the 3 torrents", lambda: len(events(tracker, "started")) == 3, 15, hk.child)
    return hk


def stop_announces(p, hk, tracker, sig):
    """Stops hk with sig: exit 0 within 10 s, and a `stopped` for each of the 3 torrents."""
    hk.stop_cleanly(p, sig)
    got = len(events(tracker, "stopped"))
    if got != 3:
        raise AssertionError("%s: `stopped` for %d of 3 torrents" % (signal.Signals(sig).name, got))
    return "exit 0 and `stopped` for the 3 torrents"


def usr1_and_others(p, folder, paths, hashes):
    tracker = trackers.FakeHttpTracker("ok")
    try:
        hk = start(p, folder, paths, tracker, "hekate-usr1")
        try:
            hk.child.popen.send_signal(signal.SIGUSR1)
            wait_for("status line", lambda: "status (SIGUSR1): 3 torrents" in hk.child.log(), 5, hk.child)
            if "so far: " not in hk.child.log():
                raise AssertionError("SIGUSR1: no counters after the status line")
            if not all(answers(hk, ih) for ih in hashes):
                raise AssertionError("not serving after SIGUSR1")
            for s in IGNORED:
                hk.child.popen.send_signal(s)
                time.sleep(0.05)
                hk.assert_alive("after %s" % signal.Signals(s).name if s < signal.SIGRTMIN else "after SIGRTMIN+1")
                if not sig_ignored(hk.pid, s):
                    raise AssertionError("signal %d is not ignored" % s)
            if not all(answers(hk, ih) for ih in hashes):
                raise AssertionError("not serving after the ignored signals")
            hk.child.popen.send_signal(signal.SIGUSR1)
            wait_for("second status line", lambda: hk.child.log().count("status (SIGUSR1)") == 2, 5, hk.child)
            if events(tracker, "stopped"):
                raise AssertionError("a `stopped` was sent before SIGTERM")
            return "SIGUSR1 logged a summary twice, %d ignored signals survived, still serving; then %s" % (
                len(IGNORED), stop_announces(p, hk, tracker, signal.SIGTERM))
        finally:
            p.stop(hk.child)
    finally:
        tracker.close()


def sigquit_stops_cleanly(p, folder, paths):
    tracker = trackers.FakeHttpTracker("ok")
    try:
        hk = start(p, folder, paths, tracker, "hekate-quit")
        try:
            return stop_announces(p, hk, tracker, signal.SIGQUIT)
        finally:
            p.stop(hk.child)
    finally:
        tracker.close()


def usr1_before_serving(p, folder):
    port = procs.free_port()
    hk_argv = [os.path.join(p.build_dir, "backend-real", "hekate"), "-t", "--no-dht", "--bind", "127.0.0.1", "-p", str(port),
               folder]
    c = p.start("hekate-early-usr1", hk_argv)
    try:
        wait_for("main() (SIGPIPE ignored)", lambda: sig_ignored(c.pid, signal.SIGPIPE), 5, c)
        c.popen.send_signal(signal.SIGUSR1)
        procs.wait_port(port, c, timeout=10)
        wait_for("status line once serving", lambda: "status (SIGUSR1)" in c.log(), 5, c)
        c.popen.send_signal(signal.SIGTERM)
        status = c.popen.wait(timeout=10)
        if status != 0:
            raise AssertionError("exit status %s after SIGTERM" % status)
        return "survived, answered once serving, exit 0 on SIGTERM"
    finally:
        p.stop(c)


def periodic_status_line(p, folder):
    """--status-interval=1: status lines at the default level, one about every second, without any signal; with
    --status-interval=0 none in the same time."""
    seen = {}
    for every in ("1", "0"):
        port = procs.free_port()
        hk_argv = [os.path.join(p.build_dir, "backend-real", "hekate"), "-t", "--bind", "127.0.0.1", "-p", str(port),
                   "--status-interval=" + every, folder]
        c = p.start("hekate-status-" + every, hk_argv)
        try:
            procs.wait_port(port, c, timeout=10)
            time.sleep(3.5)
            seen[every] = sum(1 for line in c.log().splitlines() if "status: 3 torrents" in line)
        finally:
            p.stop(c)
    if not 2 <= seen["1"] <= 5:
        raise AssertionError("--status-interval=1: %d status lines in 3.5 s" % seen["1"])
    if seen["0"] != 0:
        raise AssertionError("--status-interval=0: %d status lines" % seen["0"])
    return "%d status lines in 3.5 s with --status-interval=1, none with 0" % seen["1"]


def body(p, checks, build_dir, source_dir):
    p.build_dir = build_dir
    folder = p.path("torrents")
    paths = fixtures.make_many_tiny(folder, 3)
    hashes = [info_hash_of(t) for t in paths]  # set_trackers leaves the info dictionary as it is
    checks.run("sigusr1_logs_a_summary_and_others_are_ignored", usr1_and_others, p, folder, paths, hashes)
    checks.run("sigquit_stops_cleanly", sigquit_stops_cleanly, p, folder, paths)
    checks.run("sigusr1_before_serving", usr1_before_serving, p, folder)
    checks.run("periodic_status_line", periodic_status_line, p, folder)


if __name__ == "__main__":
    procs.main_wrapper("test_signals", 90, body)
