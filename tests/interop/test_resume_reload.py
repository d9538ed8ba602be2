#!/usr/bin/python3
"""Interop: the resume state follows a reload that changes the DIRs (issue 10 item 2), and a SIGKILL during a save
never leaves a corrupt state.

reload_per_dir / reload_one_file: DIRs A (200 tiny torrents, bench/gen_tiny_torrents.py) and B (3 torrents) from a
config file (-c), --state-per-dir or --state=FILE. Run 1 saves A and B at its stop. Run 2 starts warm (203 from the
state), then the file is rewritten to A and C (4 torrents) and SIGHUP: C's torrents are answered (B's stay served: a rescan keeps what it does not reach); its
stop saves 204 torrents (A and C). Per DIR: C/.hekate-state exists, B/.hekate-state is byte for byte the one of
run 1 (never written again). Run 3 (per DIR: A and C; one file: A, B and C) starts warm with 204 torrents from the
state, none changed or gone: C's entries are used, B's (per DIR: its DIR is not served; one file: B is served again
and read by the scan) are not.

kill_during_save: a state of 1,000 torrents (X), then a run with X and Y (9,000 more) is sent SIGTERM (the stop
saves 10,000 torrents, synchronously) and SIGKILL a few ms later, at delays spread over the save's duration measured
in the same run; each time the next start must load either the old state (1,000) or the new one (10,000), never warn
that it is corrupt; at least one kill must have landed mid-write (the FILE.tmp it leaves). Deadline 240 s."""
import os
import re
import shutil
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import fixtures, peerwire, procs, seeders  # noqa: E402
from lib.fixtures import KiB  # noqa: E402

NA = 200


def gen_module(source_dir):
    sys.path.insert(0, os.path.join(source_dir, "bench"))
    import gen_tiny_torrents
    return gen_tiny_torrents


def answers(hk, ih_hex, timeout=3):
    try:
        c = peerwire.PeerConn(hk.addr, timeout=timeout)
    except OSError:
        return False
    try:
        c.handshake(bytes.fromhex(ih_hex), timeout=timeout)
        return True
    except (EOFError, OSError):
        return False
    finally:
        c.close()


def wait_log(hk, pattern, timeout, start=0):
    rx = re.compile(pattern)
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        m = rx.search(hk.child.log(), start)
        if m:
            return m
        hk.assert_alive("waiting for /%s/" % pattern)
        time.sleep(0.05)
    raise AssertionError("no /%s/ in the log within %d s; tail:\n%s" % (pattern, timeout, hk.child.log()[-3000:]))


def wait_until(what, cond, timeout):
    t_end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > t_end:
            raise AssertionError("not within %d s: %s" % (timeout, what))
        time.sleep(0.1)


def write_conf(path, dirs):
    with open(path, "w") as f:
        f.write("[hekate]\n" + "".join("dir = %s\n" % d for d in dirs))


WARM = r"resume state: (\d+) torrents? served from it in [0-9.]+ s \(\d+ with verified pieces.*; (\d+) changed, " \
       r"(\d+) gone"


def reload_case(p, build_dir, gen, mode):
    root = p.path(mode)
    A, B, C = (os.path.join(root, x) for x in "ABC")
    gen.main_args(NA, A, 100)
    b = [fixtures.make_single(B, "b%d.bin" % i, 20 * KiB + i, 90 + i, 16 * KiB) for i in range(3)]
    c = [fixtures.make_single(C, "c%d.bin" % i, 24 * KiB + i, 80 + i, 16 * KiB) for i in range(4)]
    conf = os.path.join(root, "hekate.conf")
    state = os.path.join(root, "state")
    args = ["-c", conf, "--no-watch"] + (["--state-per-dir"] if mode == "per_dir" else ["--state=" + state])
    write_conf(conf, [A, B])
    hk = seeders.start_hekate(p, build_dir, [], args=args)  # run 1: A and B, saved at the stop
    wait_log(hk, r"serving %d torrents on port" % (NA + 3), 60)
    hk.stop_cleanly(p, signal.SIGTERM)
    wait_log(hk, r"resume state saved \(at the stop\): %d torrents" % (NA + 3), 5)
    b_state = os.path.join(B, ".hekate-state")
    b_bytes = open(b_state, "rb").read() if mode == "per_dir" else None

    hk = seeders.start_hekate(p, build_dir, [], args=args)  # run 2: warm, then reloaded with A and C
    m = wait_log(hk, WARM, 60)
    if int(m.group(1)) != NA + 3:
        raise AssertionError("run 2: %s" % m.group(0))
    write_conf(conf, [A, C])
    hk.child.popen.send_signal(signal.SIGHUP)
    wait_log(hk, r"config reloaded from \S+: 2 folders \(changed\)", 10)
    wait_until("C's torrents served after the reload", lambda: all(answers(hk, t.info_hash) for t in c), 20)
    hk.stop_cleanly(p, signal.SIGTERM)
    wait_log(hk, r"resume state saved \(at the stop\): %d torrents" % (NA + 4), 5)
    if mode == "per_dir":
        if not os.path.exists(os.path.join(C, ".hekate-state")):
            raise AssertionError("the new DIR C has no state file")
        if open(b_state, "rb").read() != b_bytes:
            raise AssertionError("the removed DIR B's state file was written after the reload")

    write_conf(conf, [A, C] if mode == "per_dir" else [A, B, C])  # run 3: warm from what run 2 saved
    hk = seeders.start_hekate(p, build_dir, [], args=args)
    m = wait_log(hk, WARM, 60)
    got = tuple(int(m.group(k)) for k in (1, 2, 3))
    if got != (NA + 4, 0, 0):
        raise AssertionError("run 3: expected %d torrents from the state (A and C), none changed or gone: %s" % (
            NA + 4, m.group(0)))
    total = NA + 4 + (0 if mode == "per_dir" else 3)
    wait_log(hk, r"serving %d torrents on port" % total, 60)
    if not all(answers(hk, t.info_hash) for t in c):
        raise AssertionError("run 3: a torrent of C is not served")
    hk.stop_cleanly(p, signal.SIGTERM)
    return "run 2 saved %d (A and C) after the reload%s; run 3: %s" % (
        NA + 4, ", B's file untouched, C's made" if mode == "per_dir" else "", m.group(0))


def kill_case(p, build_dir, gen):
    root = p.path("kill")
    X, Y = os.path.join(root, "X"), os.path.join(root, "Y")
    gen.main_args(1000, X, 1000)
    gen.main_args(10000, Y, 1000)
    for i in range(1000):  # Y's first 1,000 are X's torrents again (same names): duplicates, not served twice
        d = os.path.join(Y, "d%04d" % (i // 1000))
        if os.path.isdir(d):
            shutil.rmtree(d)
    state = os.path.join(root, "state")
    args = ["--no-watch", "--state=" + state]
    hk = seeders.start_hekate(p, build_dir, [X], args=args)
    wait_log(hk, r"serving 1000 torrents on port", 60)
    hk.stop_cleanly(p, signal.SIGTERM)
    wait_log(hk, r"resume state saved \(at the stop\): 1000 torrents", 5)
    old = open(state, "rb").read()
    outcomes, mid, early, dur = [], 0, 0, None
    for k in range(16):  # a clean stop, then SIGKILLs: one at once, the others caught in the write
        if k >= 6 and mid >= 3:
            break
        with open(state, "wb") as f:
            f.write(old)
        if os.path.exists(state + ".tmp"):
            os.unlink(state + ".tmp")
        hk = seeders.start_hekate(p, build_dir, [X, Y], args=args)
        wait_log(hk, r"serving 10000 torrents on port", 120)
        if dur is None:  # first: no kill, the save's duration measured
            hk.stop_cleanly(p, signal.SIGTERM)
            m = wait_log(hk, r"resume state saved \(at the stop\): 10000 torrents; .* written in ([0-9.]+) s", 5)
            dur = float(m.group(1))
            continue
        landed = kill_in_save(hk.child.popen, state + ".tmp", at_once=(k == 1))
        mid += landed == "mid"
        early += landed == "early"
        hk = seeders.start_hekate(p, build_dir, [X, Y], args=args)
        m = wait_log(hk, r"resume state: (\d+) torrents? served from it|resume state \S+ ignored: [^;]*", 60)
        if "ignored" in m.group(0) or int(m.group(1)) not in (1000, 10000):
            raise AssertionError("after a SIGKILL (%s the write): %s" % (landed, m.group(0)))
        outcomes.append(int(m.group(1)))
        hk.stop_cleanly(p, signal.SIGTERM)
    if mid == 0:
        raise AssertionError("no SIGKILL landed during the write in %d tries (no FILE.tmp seen); save %.3f s" % (
            len(outcomes), dur))
    return "save of 10,000 torrents written in %.3f s; %d SIGKILLs: %d mid-write (stopped with FILE.tmp present), " \
        "%d before it; the next start loaded %s torrents (old 1000 or new 10000), never a corrupt file" % (
            dur, len(outcomes), mid, early, outcomes)


def kill_in_save(popen, tmp, at_once):
    """SIGTERM, then SIGKILL: at once, or as soon as FILE.tmp exists. The process is frozen with SIGSTOP first, so
    whether the kill fell inside the write (FILE.tmp still there) is known, not guessed: "mid", "early" (no FILE.tmp
    yet) or "late" (the write was over before the stop)."""
    popen.send_signal(signal.SIGTERM)
    seen = False
    if not at_once:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and popen.poll() is None:
            if os.path.exists(tmp):
                seen = True
                break
    if popen.poll() is None:
        popen.send_signal(signal.SIGSTOP)
    there = os.path.exists(tmp)
    if popen.poll() is None:
        popen.send_signal(signal.SIGKILL)
    popen.wait(timeout=10)
    if there:
        return "mid"
    return "late" if seen or popen.returncode == 0 else "early"


def body(p, checks, build_dir, source_dir):
    gen = gen_module(source_dir)
    checks.run("reload_per_dir", lambda: reload_case(p, build_dir, gen, "per_dir"))
    checks.run("reload_one_file", lambda: reload_case(p, build_dir, gen, "one_file"))
    checks.run("kill_during_save", lambda: kill_case(p, build_dir, gen))


if __name__ == "__main__":
    procs.main_wrapper("test_resume_reload", 240, body)
