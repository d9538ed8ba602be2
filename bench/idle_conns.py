#!/usr/bin/python3
"""idle_conns: opens COUNT connections to a seeder on 127.0.0.1, completes the BitTorrent handshake on each (ours
sent, the seeder's 68 bytes received), then keeps them all open and idle (reading and discarding whatever arrives,
so no connection looks stalled) until SIGTERM or HOLD seconds. Raises its own RLIMIT_NOFILE. Connects in waves of at
most WAVE outstanding handshakes (epoll), so the seeder's listen backlog is not overrun.
Prints "HANDSHAKEN <ok> FAILED <n> SECONDS <t>" once every connection is done, then at the end
"CLOSED_BY_SEEDER <n>". Connection i comes from its own loopback address in its own /24
(procs.source_address(i, HOST_IDLE)), so the seeder's per-address caps see 10,000 hosts, not one (--one-address:
all from 127.0.0.1, as an attacker would)."""
import argparse
import errno
import os
import resource
import select
import signal
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "interop"))
from lib import procs  # noqa: E402

PSTR = b"\x13BitTorrent protocol"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--info-hash", required=True)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--wave", type=int, default=256)
    ap.add_argument("--hold", type=float, default=300)
    ap.add_argument("--one-address", action="store_true", help="every connection from 127.0.0.1")
    ap.add_argument("--keepalive", type=float, default=0,
                    help="once handshaken, each connection sends a keep-alive this often (seconds, spread evenly "
                         "over the connections); 0: never")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, a.count + 100)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < a.count + 20:
        sys.exit("RLIMIT_NOFILE hard limit %d is too small for %d connections" % (hard, a.count))
    hs = PSTR + bytes(8) + bytes.fromhex(a.info_hash)
    ep = select.epoll()
    conns = {}          # fd -> [socket, state, received]
    started = ok = failed = closed_later = 0
    t0 = time.monotonic()
    stop = []
    signal.signal(signal.SIGTERM, lambda s, f: stop.append(1))
    outstanding = 0

    while (ok + failed < a.count) and not stop:
        while started < a.count and outstanding < a.wave:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if not a.one_address:
                s.bind((procs.source_address(started % (254 * 256), procs.HOST_IDLE), 0))
            s.setblocking(False)
            e = s.connect_ex(("127.0.0.1", a.port))
            if e not in (0, errno.EINPROGRESS):
                s.close()
                failed += 1
                started += 1
                continue
            conns[s.fileno()] = [s, "connecting", 0]
            ep.register(s.fileno(), select.EPOLLOUT | select.EPOLLIN)
            started += 1
            outstanding += 1
        for fd, ev in ep.poll(1.0):
            c = conns[fd]
            s = c[0]
            if c[1] == "connecting" and ev & select.EPOLLOUT:
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    ev = select.EPOLLERR
                else:
                    s.send(hs + b"-IC0001-" + os.urandom(12))
                    c[1] = "handshaking"
                    ep.modify(fd, select.EPOLLIN)
                    continue
            if ev & select.EPOLLIN and c[1] != "connecting":
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if data:
                    c[2] += len(data)
                    if c[1] == "handshaking" and c[2] >= 68:
                        c[1] = "idle"
                        ok += 1
                        outstanding -= 1
                    continue
            if ev & (select.EPOLLERR | select.EPOLLHUP | select.EPOLLIN):
                ep.unregister(fd)
                s.close()
                del conns[fd]
                if c[1] == "idle":
                    closed_later += 1
                else:
                    failed += 1
                    outstanding -= 1
    print("HANDSHAKEN %d FAILED %d SECONDS %.2f" % (ok, failed, time.monotonic() - t0), flush=True)
    t_end = time.monotonic() + a.hold
    ka_next, ka_last, ka_fds = 0.0, time.monotonic(), []
    while not stop and time.monotonic() < t_end:
        if a.keepalive > 0:
            now = time.monotonic()
            if not ka_fds:
                ka_fds = list(conns)
            ka_next += len(ka_fds) * (now - ka_last) / a.keepalive
            ka_last = now
            while ka_next >= 1 and ka_fds:
                ka_next -= 1
                c = conns.get(ka_fds.pop())
                if c:
                    try:
                        c[0].send(b"\0\0\0\0")
                    except OSError:
                        pass
        for fd, ev in ep.poll(0.1 if a.keepalive > 0 else 0.5):
            c = conns[fd]
            try:
                data = c[0].recv(65536)
            except OSError:
                data = b""
            if not data:
                ep.unregister(fd)
                c[0].close()
                del conns[fd]
                closed_later += 1
    print("CLOSED_BY_SEEDER %d" % closed_later, flush=True)
    os._exit(0)


if __name__ == "__main__":
    main()
