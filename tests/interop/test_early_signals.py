#!/usr/bin/python3
"""Interop: signals that reach hekate before its event loop is ready. (a) 20 starts, each sent SIGHUP at a random
moment in its first 0-60 ms (counted from main(): a quarter at once, a quarter in the first 3 ms): hekate must survive every one (the SIGHUP asks for a rescan, done once serving starts),
then stop cleanly on SIGTERM (exit 0). (b) 20,000 tiny torrents: SIGTERM while the first scan walks them (its log
says the scan started, and no start-up report was printed): hekate must abandon the scan and exit 0 within 2 s, not
die by the signal. (c) The same folder with --list: SIGTERM during the listing ends it within 2 s with a message and
exit status 1, not by the signal. (d) As (b) with trackers: a
fake HTTP tracker gets no announce at all from the stopped start-up (a normal run, the control, sends `started` and
`stopped`). Every process is stopped by PID; deadline 120 s."""
import os
import random
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import fixtures, procs, seeders, trackers  # noqa: E402
from lib.procs import free_port, wait_port  # noqa: E402

STARTS = 20
MANY = 20000
SCAN_STARTED = ("scanning 1 folder", ".torrent files examined so far")  # the first scan's opening line (or progress)
SERVING = ": serving "  # the start-up report, printed once the first scan is over


def wait_exit(child, timeout):
    """The exit status within timeout, or None (the child is left running for the caller to stop)."""
    try:
        return child.popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def describe(status):
    if status is None:
        return "still running"
    if status < 0:
        return "killed by %s" % signal.Signals(-status).name
    return "exit %d" % status


def wait_text(child, texts, timeout, poll=0.002):
    """Waits until child's log holds one of texts; returns it, or None if the child exits or time runs out."""
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        log = child.log()
        for t in texts:
            if t in log:
                return t
        if not child.alive():
            return None
        time.sleep(poll)
    return None


SIGPIPE_BIT = 1 << (signal.SIGPIPE - 1)


def wait_in_main(child, timeout=5.0):
    """Waits until child ignores SIGPIPE (its SigIgn in /proc/PID/status), the first thing hekate's main() does: before
    main (exec, the dynamic loader: several ms on a busy host) no program can catch a signal, so the moments of (a)
    are counted from here. False if the child exited or time ran out."""
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        try:
            with open("/proc/%d/status" % child.pid) as f:
                for line in f:
                    if line.startswith("SigIgn:") and int(line.split()[1], 16) & SIGPIPE_BIT:
                        return True
        except OSError:
            return False
        if not child.alive():
            return False
        time.sleep(0.0001)
    return False


def early_sighup(p, build_dir, folder):
    rnd = random.Random(14)
    delays = []
    for i in range(STARTS):
        port = free_port()
        hk = seeders.start_hekate(p, build_dir, [folder], port=port, name="hekate-hup%d" % i, wait=False)
        # a quarter at once, a quarter in the first 3 ms (start-up is that fast here), the others anywhere in 0-60 ms
        delay = 0.0 if i % 4 == 0 else rnd.uniform(0.0, 0.003 if i % 4 == 1 else 0.060)
        if not wait_in_main(hk.child):
            raise AssertionError("run %d: hekate never reached main() (%s)" % (i, describe(hk.child.returncode())))
        if delay:
            time.sleep(delay)
        try:
            hk.child.popen.send_signal(signal.SIGHUP)
            try:
                wait_port(port, hk.child, timeout=10)
            except RuntimeError:
                raise AssertionError("run %d: SIGHUP after %.1f ms: %s" % (i, delay * 1000,
                                                                         describe(hk.child.returncode())))
            if wait_text(hk.child, ("rescan done",), 10, poll=0.02) is None:
                raise AssertionError("run %d: SIGHUP after %.1f ms: no rescan followed it (%s)" % (
                    i, delay * 1000, describe(hk.child.returncode())))
            hk.stop_cleanly(p, signal.SIGTERM)
        finally:
            p.stop(hk.child)
        delays.append(delay * 1000)
    return "%d starts, SIGHUP after %.1f..%.1f ms: each survived, rescanned once serving, and stopped with exit 0" % (
        STARTS, min(delays), max(delays))


def sigterm_during_first_scan(p, build_dir, folder):
    port = free_port()
    hk = seeders.start_hekate(p, build_dir, [folder], port=port, name="hekate-scan", wait=False)
    try:
        seen = wait_text(hk.child, SCAN_STARTED, 20)
        if seen is None:
            raise AssertionError("the log never said the first scan started (%s)" % describe(hk.child.returncode()))
        t0 = time.monotonic()
        hk.child.popen.send_signal(signal.SIGTERM)
        status = wait_exit(hk.child, 2.0)
        took = time.monotonic() - t0
        log = hk.child.log()
        if SERVING in log:
            raise AssertionError("the first scan was over before SIGTERM (%r seen first): nothing shown" % seen)
        if status != 0:
            raise AssertionError("SIGTERM during the first scan (after %r): %s after %.2f s" % (
                seen, describe(status), took))
        for marker in seeders.SANITIZER_MARKERS:
            if marker in log:
                raise AssertionError("the log holds a sanitizer report (%s)" % marker)
        if "first scan abandoned" not in log:
            raise AssertionError("exit 0 but the log does not say the first scan was abandoned")
        return "SIGTERM after %r: exit 0 in %.3f s, first scan abandoned" % (seen, took)
    finally:
        p.stop(hk.child)


def sigterm_during_list(p, build_dir, folder):
    c = p.start("hekate-list", [seeders.hekate_binary(build_dir), "-l", folder])
    try:
        time.sleep(0.15)
        if not c.alive():
            raise AssertionError("the listing was over within 150 ms (%s): nothing shown" % describe(c.returncode()))
        t0 = time.monotonic()
        c.popen.send_signal(signal.SIGTERM)
        status = wait_exit(c, 2.0)
        took = time.monotonic() - t0
        log = c.log()
        if status is None or status < 0:
            raise AssertionError("SIGTERM during --list: %s after %.2f s" % (describe(status), took))
        if status == 0 and "would be served" in log:
            raise AssertionError("the listing was over before SIGTERM: nothing shown")
        if status != 1 or "listing abandoned" not in log:
            raise AssertionError("SIGTERM during --list: %s, log tail %r" % (describe(status), log[-300:]))
        return "exit 1 in %.3f s, listing abandoned" % took
    finally:
        p.stop(c)


def sigterm_during_first_scan_with_tracker(p, build_dir, folder, tracker, announced):
    """Without -t: nothing reaches the tracker from a scan stopped half-way (no torrent was started, so no `stopped`
    either), and the stop does not wait for trackers. Then, as a control, a normal start announces `started` for the
    same torrents and a normal stop `stopped`."""
    argv = [seeders.hekate_binary(build_dir), "--no-dht", "--bind", "127.0.0.1", "-p", str(free_port()), folder]
    c = p.start("hekate-scan-tracker", argv)
    try:
        seen = wait_text(c, SCAN_STARTED, 20)
        if seen is None:
            raise AssertionError("the log never said the first scan started (%s)" % describe(c.returncode()))
        t0 = time.monotonic()
        c.popen.send_signal(signal.SIGTERM)
        status = wait_exit(c, 2.0)
        took = time.monotonic() - t0
        if SERVING in c.log():
            raise AssertionError("the first scan was over before SIGTERM: nothing shown")
        if status != 0:
            raise AssertionError("SIGTERM during the first scan: %s after %.2f s" % (describe(status), took))
    finally:
        p.stop(c)
    time.sleep(0.3)
    if tracker.requests:
        raise AssertionError("the tracker got %d announces from a scan stopped half-way: %r" % (
            len(tracker.requests), tracker.requests[:3]))
    hk = seeders.Seeder("hekate", p.start("hekate-control", [seeders.hekate_binary(build_dir), "--no-dht", "--bind", "127.0.0.1",
                                                               "-p", str(free_port()), announced]), 0)
    try:
        t_end = time.monotonic() + 15
        while sum(r.get("event") == "started" for r in tracker.requests) < 1 and time.monotonic() < t_end:
            hk.assert_alive("before announcing")
            time.sleep(0.05)
        if not any(r.get("event") == "started" for r in tracker.requests):
            raise AssertionError("control: no `started` within 15 s")
        hk.stop_cleanly(p, signal.SIGTERM)
        if not any(r.get("event") == "stopped" for r in tracker.requests):
            raise AssertionError("control: no `stopped` after a normal stop")
    finally:
        p.stop(hk.child)
    return "exit 0 in %.3f s, no announce at all; control: `started` then `stopped` from a normal run" % took


def body(p, checks, build_dir, source_dir):
    one = p.path("one")
    fixtures.make_many_tiny(one, 1)
    t0 = time.monotonic()
    many = p.path("many")
    fixtures.make_many_tiny(many, MANY)
    print("%d tiny torrents written in %.1f s" % (MANY, time.monotonic() - t0))
    checks.run("sighup_in_the_first_60_ms", early_sighup, p, build_dir, one)
    checks.run("sigterm_during_the_first_scan", sigterm_during_first_scan, p, build_dir, many)
    checks.run("sigterm_during_list", sigterm_during_list, p, build_dir, many)
    tracker = trackers.FakeHttpTracker("ok")
    try:
        announced = p.path("announced")
        for t in fixtures.make_many_tiny(many, 3, prefix="announced") + fixtures.make_many_tiny(announced, 3):
            trackers.set_trackers(t, [[tracker.url]])  # first in the scan's (sorted) order: "announced" < "tiny"
        checks.run("sigterm_during_the_first_scan_announces_nothing", sigterm_during_first_scan_with_tracker, p,
                   build_dir, many, tracker, announced)
    finally:
        tracker.close()


if __name__ == "__main__":
    procs.main_wrapper("test_early_signals", 120, body)
