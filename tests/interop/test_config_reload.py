#!/usr/bin/python3
"""Interop: hekate's config file (-c FILE) and its reload on SIGHUP (config_reload.h).

hekate starts with only `-c FILE` for its settings and folders (the harness adds -t, --bind and -p on the command
line): the file names folder A (`dir = A`) and `max-peers-per-address = 8`.
- served_from_the_file: a raw peer's handshake for A's torrent is answered; one for B's (a folder the file does not
  name) is refused.
- reload_adds_a_folder_and_lowers_a_limit: the file is rewritten to name A and B and `max-peers-per-address = 2`,
  then SIGHUP: hekate logs "config reloaded from FILE", B's torrent is answered, A's still is, and from one address
  (127.0.3.7) two handshakes are answered and the third connection is refused (the cap fell from 8 to 2 live).
- bad_edit_keeps_serving: the file is rewritten with an error on line 3 (`max-peers = lots`), then SIGHUP: one ERROR
  line names FILE:3 and the key, and both torrents are still answered; the cap is still 2.
- seeder_stops_cleanly. Deadline 120 s; every process stopped by PID."""
import os
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import fixtures, peerwire, procs, seeders  # noqa: E402
from lib.fixtures import KiB  # noqa: E402

CAPPED_SOURCE = "127.0.3.7"


def wait_log(hk, text, timeout):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if text in hk.child.log():
            return
        hk.assert_alive("while waiting for %r" % text)
        time.sleep(0.05)
    raise AssertionError("not logged within %.0f s: %r" % (timeout, text))


def answered(hk, f, source=None):
    """A raw handshake for f's torrent gets hekate's handshake back; returns the open connection."""
    c = peerwire.PeerConn(hk.addr, timeout=5, source=source)
    try:
        _, ih, _ = c.handshake(f.info_hash, timeout=5)
    except BaseException:
        c.close()
        raise
    if ih.hex() != f.info_hash:
        c.close()
        raise AssertionError("handshake answered for %s, not %s" % (ih.hex(), f.info_hash))
    return c


def refused(hk, f, source=None):
    c = peerwire.PeerConn(hk.addr, timeout=5, source=source)
    try:
        c.handshake(f.info_hash, timeout=5)
    except (EOFError, ConnectionResetError, BrokenPipeError):
        return
    finally:
        c.close()
    raise AssertionError("hekate answered a handshake for %s" % f.info_hash)


def write_conf(path, text):
    tmp = path + ".new"
    with open(path + ".new", "w") as out:
        out.write(text)
    os.replace(tmp, path)


def cap_is(hk, f, cap):
    """cap handshakes from CAPPED_SOURCE are answered, the next connection is refused."""
    held = []
    try:
        for _ in range(cap):
            held.append(answered(hk, f, CAPPED_SOURCE))
        refused(hk, f, CAPPED_SOURCE)
    finally:
        for c in held:
            c.close()
    time.sleep(0.3)  # the closes reach hekate before the next check counts from that address


def body(p, checks, build_dir, source_dir):
    a = fixtures.make_single(p.path("A"), "alpha.bin", 64 * KiB + 5, 71, 16 * KiB)
    b = fixtures.make_single(p.path("B"), "beta.bin", 48 * KiB + 9, 72, 16 * KiB)
    conf = p.path("hekate.conf")
    write_conf(conf, "# test_config_reload\n[hekate]\ndir = %s\nmax-peers-per-address = 8\n" % a.folder)
    hk = seeders.start_hekate(p, build_dir, [], args=["-c", conf])
    print("hekate on port %d (pid %d), config %s" % (hk.port, hk.pid, conf))

    def from_the_file():
        answered(hk, a).close()
        refused(hk, b)
        return "A answered, B refused"
    checks.run("served_from_the_file", from_the_file)

    def reload_adds():
        write_conf(conf, "[hekate]\ndir = %s\ndir = %s\nmax_peers_per_address = 2\n" % (a.folder, b.folder))
        hk.child.popen.send_signal(signal.SIGHUP)
        wait_log(hk, "config reloaded from %s: 2 folders (changed)" % conf, 10)
        t_end = time.monotonic() + 10
        while True:  # the rescan the reload started adds B
            try:
                answered(hk, b).close()
                break
            except (EOFError, ConnectionResetError, BrokenPipeError, OSError):
                if time.monotonic() > t_end:
                    raise
                time.sleep(0.1)
        answered(hk, a).close()
        cap_is(hk, a, 2)
        return "B answered after SIGHUP; 2 connections from %s, the third refused" % CAPPED_SOURCE
    checks.run("reload_adds_a_folder_and_lowers_a_limit", reload_adds)

    def bad_edit():
        write_conf(conf, "dir = %s\ndir = %s\nmax-peers = lots\nmax-peers-per-address = 2\n" % (a.folder, b.folder))
        hk.child.popen.send_signal(signal.SIGHUP)
        line = "config reload failed: %s:3: max-peers: 'lots' is not a number" % conf
        wait_log(hk, line, 10)
        errors = [l for l in hk.child.log().splitlines() if "config reload failed" in l]
        if len(errors) != 1 or "ERROR" not in errors[0]:
            raise AssertionError("expected one ERROR line, got %r" % errors)
        answered(hk, a).close()
        answered(hk, b).close()
        cap_is(hk, b, 2)
        return errors[0].split("ERROR", 1)[1].strip()
    checks.run("bad_edit_keeps_serving", bad_edit)
    checks.run("seeder_stops_cleanly", hk.stop_cleanly, p, signal.SIGTERM)


if __name__ == "__main__":
    procs.main_wrapper("test_config_reload", 120, body)
