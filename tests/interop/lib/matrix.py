"""matrix: the real-client matrix shared by test_client_matrix.py (defaults) and the encrypted variant: a torrent,
a test-local HTTP tracker that returns hekate, hekate itself, and one check per client (lib/clients.py), each
bounded, the client stopped by PID in any case, the download verified byte for byte.

Two clients cannot reach a seeder at 127.0.0.1 with their defaults, for reasons of their own:
- ctorrent (Enhanced CTorrent 3.3.2) drops every peer whose address is its own, and its own address is the one it
  reaches the tracker from (127.0.0.1): hekate is therefore bound to SEED_HOST = 127.0.0.2 (still loopback).
- transmission-daemon 3.00 refuses every peer in 127.0.0.0/8 as "martian" (isMartianAddr in libtransmission/net.c;
  later versions allow loopback only for incoming and LPD peers), so no loopback address works. Its check runs in a
  private network namespace (`unshare -rn`: an unprivileged user + network namespace whose only interface is lo, so
  nothing can leave it) where lo also carries NETNS_HOST = 10.77.0.1/32; hekate, the tracker and the client all run
  inside it, hekate bound to that address. The child run is this same test script with --netns KIND, started and
  stopped by PID like any client; its output (the check line, logs on failure) is passed on.

uTP: libtorrent, qBittorrent and Transmission dial a tracker's peers by uTP (BEP 29) first with their defaults;
hekate accepts the uTP connection and bridges it to its ordinary accept path (backend-real/lib/net/utp_bridge.h,
docs/design.md §17). assert_utp_transport() requires hekate's log to show that every peer the seeder accepted
during that client's run came from a uTP connection, so the check fails if the client or hekate stops using uTP
(or falls back to TCP). HEKATE_MATRIX_CLIENT_TIMEOUT (seconds, default 45) lengthens each client's bound, for
measurements only.

Encrypted runs: assert_encrypted() reads hekate's per-peer log lines (core/seeder.h, at -v -v): every peer that
was sent blocks during the client's run must have logged "peer N: mse handshake for torrent HEX: encrypted rc4"."""
import os
import re
import subprocess
import sys

from . import clients, fixtures, procs, seeders, tracker, trackers, verify
from .fixtures import KiB, MiB

SEED_HOST = "127.0.0.2"
NETNS_HOST = "10.77.0.1"
NETNS_KINDS = ("transmission",)
CLIENT_TIMEOUT = int(os.environ.get("HEKATE_MATRIX_CLIENT_TIMEOUT", "45"))  # longer only to measure a slow client


class Setup:
    """The torrent, the tracker that returns hekate, and hekate, bound to host."""

    def __init__(self, p, build_dir, host, hekate_args=()):
        self.fx = fixtures.make_single(p.path("seed", "m"), "matrix.bin", 6 * MiB + 12345, 31, 256 * KiB)
        port = procs.free_port()
        self.tracker = tracker.FakeTracker([(host, port)], interval=5)
        trackers.set_trackers(self.fx.torrent, [[self.tracker.url]])
        self.seeder = seeders.start_hekate(p, build_dir, [p.path("seed")], port=port, host=host,
                                           args=list(hekate_args))

    def close(self):
        self.tracker.close()


def assert_encrypted(log, info_hash):
    """Every peer hekate sent blocks to in this part of its log had an RC4 MSE handshake for the torrent."""
    served = set(re.findall(r"peer (\d+): sent \d+ messages? \(\d+ blocks?", log))
    enc = set(re.findall(r"peer (\d+): mse handshake for torrent %s: encrypted rc4" % info_hash, log, re.I))
    if not served:
        raise AssertionError("hekate's log shows no peer that was sent blocks (is hekate at -v -v?)")
    if not served <= enc:
        raise AssertionError("peers %s were served without an RC4 MSE handshake (encrypted: %s)"
                             % (sorted(served - enc, key=int), sorted(enc, key=int)))
    return "peers %s encrypted (rc4)" % ",".join(sorted(served, key=int))


def assert_utp_transport(log, kind):
    """The client downloaded over uTP: every peer hekate sent blocks to during the client's run ("peer N: sent ...
    (B blocks", at -v -v) was accepted ("peer N: accepted from ADDR") from the address of a uTP connection hekate
    accepted ("utp: connection from ADDR accepted", also at -v); a TCP connection beside it would have another source port."""
    utp = set(re.findall(r"utp: connection from (\S+) accepted", log))
    addr = dict(re.findall(r"peer (\d+): accepted from (\S+)", log))
    served = set(re.findall(r"peer (\d+): sent \d+ messages? \([1-9]\d* blocks?", log))
    if not utp:
        raise AssertionError("%s dials uTP first but hekate's log shows no uTP connection accepted" % kind)
    if not served:
        raise AssertionError("hekate's log shows no peer that was sent blocks (is hekate at -v -v?)")
    tcp = sorted((n for n in served if addr.get(n) not in utp), key=int)
    if tcp:
        raise AssertionError("%s: peers %s were served, not over uTP (uTP connections: %s):\n%s"
                             % (kind, tcp, sorted(utp),
                                "\n".join(l for l in log.splitlines() if "accepted" in l or "utp" in l)[-3000:]))
    return "served over uTP (%d uTP connection%s; peers %s)" % (len(utp), "" if len(utp) == 1 else "s",
                                                               ",".join(sorted(served, key=int)))


def run_client(p, setup, kind, encrypted=False):
    """One client downloads the torrent from hekate; returns the check's summary (time, settings changed)."""
    work = p.path("clients", kind)
    save = os.path.join(work, "download")
    log_from = len(setup.seeder.child.log())
    c = None
    try:
        c = clients.start(kind, p, work, setup.fx.torrent, save, require_encryption=encrypted)
        secs = clients.wait_complete(p, c, CLIENT_TIMEOUT)
        n = verify.verify_download(setup.fx, save)
        extra = ""
        log = setup.seeder.child.log()[log_from:]
        if encrypted:
            extra = "; " + assert_encrypted(log, setup.fx.info_hash)
        if kind in clients.UTP_FIRST:
            extra += "; " + assert_utp_transport(log, kind)
    except BaseException:
        if c is not None:
            sys.stdout.write("----- %s log (tail)\n%s\n-----\n" % (kind, c.log()[-4000:]))
        raise
    finally:
        if c is not None:
            c.stop()
    setup.seeder.assert_alive("after " + kind)
    return "%s: %d bytes verified in %.1f s%s; changed: %s" % (kind, n, secs, extra, "; ".join(c.changed))


def netns_child(p, checks, build_dir, kind, encrypted, hekate_args=()):
    """Inside `unshare -rn`: lo up with NETNS_HOST, then the one check, against a hekate bound to NETNS_HOST."""
    for argv in (["ip", "link", "set", "lo", "up"], ["ip", "addr", "add", NETNS_HOST + "/32", "dev", "lo"]):
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
        if r.returncode != 0:
            raise RuntimeError("%s failed in the network namespace: %s" % (" ".join(argv), r.stdout.decode()))
    setup = Setup(p, build_dir, NETNS_HOST, hekate_args)
    try:
        checks.run(("encrypted_" if encrypted else "defaults_") + kind, run_client, p, setup, kind, encrypted)
    finally:
        setup.close()


def run_in_netns(p, script, build_dir, source_dir, kind, encrypted):
    """Runs `script BUILD SOURCE --netns KIND` in a private user + network namespace; returns its check line."""
    argv = ["unshare", "-rn", "/usr/bin/python3", script, build_dir, source_dir, "--netns", kind]
    if encrypted:
        argv.append("--encrypted")
    rc, out = p.run("netns-" + kind, argv, timeout=CLIENT_TIMEOUT + 60)
    line = next((l for l in out.splitlines() if l.startswith(("ok ", "FAIL "))), None)
    if rc != 0 or line is None or not line.startswith("ok "):
        raise AssertionError("%s in its network namespace failed (exit %s):\n%s" % (kind, rc, out[-6000:]))
    return "in a private network namespace at %s: %s" % (NETNS_HOST, line.split(": ", 1)[-1])


def main(name, deadline, encrypted, kinds, hekate_args=()):
    """The body of a matrix test: argv is BUILD SOURCE [--netns KIND] [--encrypted] or BUILD SOURCE [KIND...]."""
    script = os.path.abspath(sys.argv[0])
    rest = sys.argv[3:]
    if "--netns" in rest:
        kind = rest[rest.index("--netns") + 1]

        def child(p, checks, build_dir, source_dir):
            netns_child(p, checks, build_dir, kind, encrypted, hekate_args)
        procs.main_wrapper(name + "-netns-" + kind, CLIENT_TIMEOUT + 50, child)
        return
    wanted = [k for k in rest if not k.startswith("-")] or list(kinds)

    def body(p, checks, build_dir, source_dir):
        setup = Setup(p, build_dir, SEED_HOST, hekate_args)
        print("hekate on %s:%d (pid %d), tracker %s" % (setup.seeder.addr + (setup.seeder.pid, setup.tracker.url)))
        prefix = "encrypted_" if encrypted else "defaults_"
        try:
            for kind in wanted:
                if kind in NETNS_KINDS:
                    checks.run(prefix + kind, run_in_netns, p, script, build_dir, source_dir, kind, encrypted)
                else:
                    checks.run(prefix + kind, run_client, p, setup, kind, encrypted)
            checks.run("hekate_stops_cleanly", setup.seeder.stop_cleanly, p)
        finally:
            setup.close()
    procs.main_wrapper(name, deadline, body)


def start_in_netns(p, script, build_dir, source_dir, kind, extra=()):
    """Like run_in_netns, but returns at once with the child (`script BUILD SOURCE --netns KIND EXTRA...` in a
    private user + network namespace), so that other checks run meanwhile; netns_result() waits for it."""
    argv = ["unshare", "-rn", "/usr/bin/python3", script, build_dir, source_dir, "--netns", kind] + list(extra)
    return p.start("netns-" + kind, argv)


def netns_result(p, child, kind, timeout):
    """Waits (bounded) for a start_in_netns child; returns its check lines ("ok ..."), raises with its output if it
    failed, stopping it by PID if it overran."""
    try:
        rc = child.popen.wait(timeout=max(1.0, min(timeout, p.remaining())))
    except subprocess.TimeoutExpired:
        p.stop(child)
        raise AssertionError("%s in its network namespace did not end within %.0f s:\n%s" % (kind, timeout,
                                                                                           child.log()[-6000:]))
    out = child.log()
    lines = [l for l in out.splitlines() if l.startswith(("ok ", "FAIL "))]
    if rc != 0 or not lines or any(l.startswith("FAIL ") for l in lines):
        raise AssertionError("%s in its network namespace failed (exit %s):\n%s" % (kind, rc, out[-6000:]))
    return lines
