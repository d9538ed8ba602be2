#!/usr/bin/python3
"""Interop, from the attacker's side: one address opening hundreds or thousands of connections does not take the
connection slots of others (hekate's --max-peers-per-address, default 8, and --max-peers-per-prefix, default 64).

The attacker opens N connections from 127.0.0.1 on raw sockets (non-blocking, in waves of 256 so the listen backlog
is not overrun), sends a full BitTorrent handshake on each and keeps every connection the seeder answers alive with
keep-alives every 2 s (reading and discarding what arrives). A connection is "handshaken" when the seeder's 68-byte
handshake came back, "refused" when the seeder closed it (EOF or RST) before that. Then a real python-libtorrent
leecher from its own address (lib.procs.source_address: 127.1.0.1 and on) downloads the torrent, verified byte for
byte, while the attacker still holds its connections.

- uncapped_attack_fills_the_seeder: the control, what the tree did before the caps (both set to 0): 500 connections
  from 127.0.0.1 fill --max-peers (500, its default) and the leecher is refused for 15 s: the attack is real.
- capped_500: with the defaults, 8 of the 500 are handshaken, 492 refused; the leecher downloads.
- prefix_cap: 200 more attackers, one connection each from 127.0.0.10 .. 127.0.0.209 (the same /24 as 127.0.0.1):
  the /24 holds 64, so 56 more are handshaken (64 - the 8 already held) and 144 refused; the leecher downloads.
- The attacker's kept connections are all still open at the end (the seeder keeps what the cap allows).
- capped_5000: the attack scaled 10x (5,000 connections; the test raises its RLIMIT_NOFILE to 20,000 at most): 8
  handshaken, 4,992 refused, the leecher downloads.
- The seeder's stop summary counts the same refusals ("refused (N per address, M per prefix)"), it stops cleanly.
Every count is printed. Deadline 240 s."""
import errno
import os
import re
import resource
import select
import signal
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import fixtures, lt_client, peerwire, procs, seeders, verify  # noqa: E402
from lib.fixtures import KiB  # noqa: E402

WAVE = 256            # connections at most in flight (connecting or handshaking) at once
KEEPALIVE_EVERY = 2.0


class Attacker:
    """count connections to addr, connection i from sources[i % len(sources)]; a thread drives them all (connect,
    handshake, then keep-alives) until stop()."""

    def __init__(self, addr, info_hash, count, sources):
        self.addr, self.count, self.sources = addr, count, sources
        self.hs = peerwire.PSTR + peerwire.reserved_bits() + bytes.fromhex(info_hash)
        self.handshaken = self.refused = self.failed = self.closed_later = 0
        self.resolved = threading.Event()
        self.stopping = threading.Event()
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def wait_resolved(self, timeout):
        if not self.resolved.wait(timeout):
            raise AssertionError("attacker: %d handshaken + %d refused + %d failed of %d after %.0f s"
                                 % (self.handshaken, self.refused, self.failed, self.count, timeout))
        if self.error:
            raise AssertionError("attacker thread failed: %r" % self.error)

    def summary(self):
        return "%d connections from %s: %d handshaken, %d refused, %d failed to connect" % (
            self.count, self.sources[0] if len(self.sources) == 1 else "%s .. %s" % (self.sources[0],
                                                                                    self.sources[-1]),
            self.handshaken, self.refused, self.failed)

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=10)

    def _run(self):
        try:
            self._loop()
        except Exception as e:  # noqa: BLE001 - reported by wait_resolved
            self.error = e
            self.resolved.set()

    def _open(self, ep, conns, i):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((self.sources[i % len(self.sources)], 0))
        s.setblocking(False)
        e = s.connect_ex(self.addr)
        if e not in (0, errno.EINPROGRESS):
            s.close()
            self.failed += 1
            return False
        conns[s.fileno()] = [s, "connecting", 0]
        ep.register(s.fileno(), select.EPOLLOUT | select.EPOLLIN)
        return True

    def _gone(self, ep, conns, fd):
        c = conns.pop(fd)
        ep.unregister(fd)
        c[0].close()
        if c[1] == "held":
            self.closed_later += 1
        else:
            self.refused += 1
        return c[1] != "held"

    def _event(self, ep, conns, fd, ev):
        """Handles one epoll event; returns True when it resolved a connection (handshaken or refused)."""
        c = conns[fd]
        s = c[0]
        if c[1] == "connecting":
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) or not ev & select.EPOLLOUT:
                return self._gone(ep, conns, fd)
            try:
                s.send(self.hs + peerwire.peer_id(b"-AT0001-"))
            except OSError:
                return self._gone(ep, conns, fd)
            c[1] = "handshaking"
            ep.modify(fd, select.EPOLLIN)
            return False
        try:
            data = s.recv(65536)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            return self._gone(ep, conns, fd)
        c[2] += len(data)
        if c[1] == "handshaking" and c[2] >= 68:
            c[1] = "held"
            self.handshaken += 1
            return True
        return False

    def _keepalives(self, conns):
        for c in list(conns.values()):
            if c[1] == "held":
                try:
                    c[0].send(b"\0\0\0\0")
                except OSError:
                    pass  # the close shows up as EOF on the next read

    def _loop(self):
        ep = select.epoll()
        conns = {}
        started = resolved = inflight = 0
        next_ka = time.monotonic() + KEEPALIVE_EVERY
        try:
            while not self.stopping.is_set():
                while started < self.count and inflight < WAVE:
                    started += 1
                    if self._open(ep, conns, started - 1):
                        inflight += 1
                    else:
                        resolved += 1
                for fd, ev in ep.poll(0.2):
                    if fd in conns and self._event(ep, conns, fd, ev):
                        resolved += 1
                        inflight -= 1
                if resolved >= self.count:
                    self.resolved.set()
                if time.monotonic() >= next_ka:
                    self._keepalives(conns)
                    next_ka = time.monotonic() + KEEPALIVE_EVERY
        finally:
            for c in conns.values():
                c[0].close()
            ep.close()


def raise_fd_limit(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, want)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def download(p, fx, seeder, tag, timeout):
    save = p.path("dl", tag)
    r = lt_client.download(tag, save, seeder.addr, timeout=timeout, torrent=fx.torrent)
    verify.verify_download(fx, save)
    return r


def stop_counts(p, seeder):
    """Stops the seeder cleanly; returns (refused, per address, per prefix) from its stop summary."""
    seeder.stop_cleanly(p, signal.SIGTERM)
    m = re.search(r"stopped: .* (\d+) refused \((\d+) per address, (\d+) per prefix\)", seeder.child.log())
    if not m:
        raise AssertionError("no stop summary with refusal counts in the seeder's log")
    return tuple(int(x) for x in m.groups())


def uncapped(p, build_dir, seed_dir, fx):
    hk = seeders.start_hekate(p, build_dir, [seed_dir], name="hekate-uncapped",
                              args=["--max-peers=500", "--max-peers-per-address=0", "--max-peers-per-prefix=0"])
    att = Attacker(hk.addr, fx.info_hash, 500, ["127.0.0.1"])
    try:
        att.wait_resolved(60)
        print("uncapped: " + att.summary())
        if att.handshaken != 500:
            raise AssertionError("without caps the seeder should take all 500: " + att.summary())
        try:
            r = download(p, fx, hk, "uncapped", timeout=15)
        except AssertionError as e:
            refused_leecher = str(e).splitlines()[0][:160]
        else:
            raise AssertionError("the leecher downloaded in %.2f s although 500 connections filled --max-peers"
                                 % r["seconds"])
    finally:
        att.stop()
    refused, per_addr, per_prefix = stop_counts(p, hk)
    return "%s; leecher refused for 15 s (%s); seeder refused %d connections" % (att.summary(), refused_leecher,
                                                                                  refused)


def capped(p, build_dir, seed_dir, fx, n, with_prefix):
    # --max-peers as in the control (its default, 10 x 50); the per-address caps at their defaults (8 and 64)
    hk = seeders.start_hekate(p, build_dir, [seed_dir], name="hekate-capped-%d" % n, args=["--max-peers=500"])
    attackers = []
    try:
        att = Attacker(hk.addr, fx.info_hash, n, ["127.0.0.1"])
        attackers.append(att)
        att.wait_resolved(120)
        print("capped %d: %s" % (n, att.summary()))
        if (att.handshaken, att.refused, att.failed) != (8, n - 8, 0):
            raise AssertionError("expected 8 handshaken, %d refused: %s" % (n - 8, att.summary()))
        detail = att.summary()
        want_addr, want_prefix = n - 8, 0
        if with_prefix:
            pre = Attacker(hk.addr, fx.info_hash, 200, ["127.0.0.%d" % h for h in range(10, 210)])
            attackers.append(pre)
            pre.wait_resolved(60)
            print("prefix: " + pre.summary())
            if (pre.handshaken, pre.refused) != (56, 144):
                raise AssertionError("expected 56 handshaken (the /24 holds 64), 144 refused: " + pre.summary())
            detail += "; " + pre.summary()
            want_prefix = 144
        r = download(p, fx, hk, "capped-%d" % n, timeout=min(60, p.remaining() - 20))
        detail += "; then a libtorrent leecher downloaded %d bytes (verified) in %.2f s" % (fx.total_size,
                                                                                           r["seconds"])
        time.sleep(KEEPALIVE_EVERY + 0.5)
        still = sum(a.handshaken - a.closed_later for a in attackers)
        lost = sum(a.closed_later for a in attackers)
        if lost:
            raise AssertionError("%d of the attacker's allowed connections were closed by the seeder" % lost)
        detail += "; the attacker still holds its %d allowed connections" % still
    finally:
        for a in attackers:
            a.stop()
    refused, per_addr, per_prefix = stop_counts(p, hk)
    print("capped %d: seeder refused %d (%d per address, %d per prefix)" % (n, refused, per_addr, per_prefix))
    if (per_addr, per_prefix) != (want_addr, want_prefix) or refused != want_addr + want_prefix:
        raise AssertionError("seeder counted %d refused (%d per address, %d per prefix), expected %d per address, "
                             "%d per prefix" % (refused, per_addr, per_prefix, want_addr, want_prefix))
    return detail + "; seeder: %d per address, %d per prefix refused" % (per_addr, per_prefix)


def body(p, checks, build_dir, source_dir):
    limit = raise_fd_limit(20000)
    print("RLIMIT_NOFILE soft limit: %d" % limit)
    seed_dir = p.path("seed")
    fx = fixtures.make_single(os.path.join(seed_dir, "pa"), "per-address.bin", 2 * 1024 * KiB + 777, 43, 32 * KiB)
    checks.run("uncapped_attack_fills_the_seeder", uncapped, p, build_dir, seed_dir, fx)
    checks.run("capped_500", capped, p, build_dir, seed_dir, fx, 500, True)
    if limit < 5000 + 200:
        raise AssertionError("RLIMIT_NOFILE hard limit %d is too small for the 5,000-connection run" % limit)
    checks.run("capped_5000", capped, p, build_dir, seed_dir, fx, 5000, False)


if __name__ == "__main__":
    procs.main_wrapper("test_per_address", 240, body)
