#!/usr/bin/python3
"""Interop: hostile peers on raw sockets against the seeder. After every attack the seeder must still run, and a
normal download (python-libtorrent, verified byte for byte) must still succeed.

Attacks: a wrong protocol string (three variants: one wrong byte, pstrlen 18, an HTTP request); an unknown
info-hash; a request for a piece index out of range; request lengths 0 and 128 KiB + 1; begin + length past the end
of a full piece and past the end of the short last piece; a 2 GiB and a 4 GiB - 1 length prefix (the seeder must not
allocate it: its RSS is checked); an unknown message id; a peer that sends 100,000 requests and never reads (the
seeder's peak RSS is reported from /proc/PID/status and must stay bounded, and a normal download must succeed WHILE
the flooder is connected); 50 peers that request and then vanish with a TCP RST; a silent peer that never finishes
its handshake (closed at --handshake-timeout) and a silent peer after a complete handshake (closed at
--idle-timeout; not before the timeout, and within 10 s after it).

"Refused" means: the seeder closes the connection or answers with a BEP 6 reject for exactly that request, and never
sends piece data for it. Deadline 270 s."""
import os
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import fixtures, lt_client, peerwire, procs, procstat, seeders, verify  # noqa: E402
from lib.fixtures import KiB, MiB  # noqa: E402
from lib.peerwire import PeerConn  # noqa: E402

IDLE_TIMEOUT = 4          # seconds, passed as --idle-timeout to hekate
HANDSHAKE_TIMEOUT = 3     # seconds, passed as --handshake-timeout to hekate (libtorrent's is 10 s)


class Ctx:
    pass


def normal_download(ctx, tag):
    ctx.n += 1
    save = ctx.p.path("dl", "%02d-%s" % (ctx.n, tag))
    r = lt_client.download(tag, save, ctx.seeder.addr, timeout=min(45, ctx.p.remaining()), torrent=ctx.fx.torrent)
    verify.verify_download(ctx.fx, save)
    ctx.seeder.assert_alive("after " + tag)
    return r


def after(ctx, tag, detail):
    """The common epilogue of an attack: alive, a raw fetch of the short last piece and a full download work."""
    ctx.seeder.assert_alive("after " + tag)
    peerwire.fetch_piece(ctx.seeder.addr, ctx.fx, ctx.fx.num_pieces - 1)
    r = normal_download(ctx, tag)
    return "%s; then a download took %.2f s" % (detail, r["seconds"])


def expect_closed(c, within, what):
    t = c.wait_closed(within)
    if t is None:
        raise AssertionError("%s: connection still open after %.0f s" % (what, within))
    return t


def expect_refused(c, index, begin, length, within=8.0):
    """Reads until the seeder closes, or rejects exactly (index, begin, length). Fails on piece data for it."""
    deadline = time.monotonic() + within
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("request (%d, %d, %d) neither rejected nor the connection closed within %.0f s"
                                 % (index, begin, length, within))
        try:
            m = c.recv_msg(timeout=left, max_len=1 << 24)
        except EOFError:
            return "closed"
        except socket.timeout:
            continue
        if m is None:
            continue
        mid, payload = m
        if mid == peerwire.PIECE and payload[:8] == struct.pack(">II", index, begin):
            raise AssertionError("seeder sent data for the invalid request (%d, %d, %d)" % (index, begin, length))
        if mid == peerwire.REJECT and payload == struct.pack(">III", index, begin, length):
            return "rejected"


def attack_bad_handshake(ctx, name, data):
    with PeerConn(ctx.seeder.addr) as c:
        c.send_raw(data)
        t = expect_closed(c, 8, name)
    return after(ctx, name, "closed after %.2f s" % t)


def attack_unknown_hash(ctx):
    with PeerConn(ctx.seeder.addr) as c:
        c.send_raw(peerwire.PSTR + peerwire.reserved_bits() + os.urandom(20) + peerwire.peer_id())
        t = expect_closed(c, 8, "unknown info-hash")
    return after(ctx, "unknown_info_hash", "closed after %.2f s" % t)


def attack_bad_request(ctx, name, index, begin, length):
    c = peerwire.start_session(ctx.seeder.addr, ctx.fx.info_hash)
    try:
        c.send_raw(peerwire.request_msg(index, begin, length))
        how = expect_refused(c, index, begin, length)
    finally:
        c.close()
    return after(ctx, name, how)


def attack_huge_prefix(ctx, name, prefix):
    before = procstat.status(ctx.seeder.pid)
    c = peerwire.start_session(ctx.seeder.addr, ctx.fx.info_hash)
    try:
        c.send_raw(struct.pack(">I", prefix) + b"\x07" + b"\0" * 4096)
        t = expect_closed(c, 8, name)
    finally:
        c.close()
    st = procstat.status(ctx.seeder.pid)
    grew = st["VmHWM"] - before["VmHWM"]
    if grew > 64 * MiB:
        raise AssertionError("peak RSS grew by %d bytes after a %d-byte length prefix" % (grew, prefix))
    return after(ctx, name, "closed after %.2f s, VmHWM +%d KiB" % (t, grew // 1024))


def attack_unknown_message(ctx):
    c = peerwire.start_session(ctx.seeder.addr, ctx.fx.info_hash)
    try:
        c.send_raw(peerwire.msg(99, b"x" * 10))
        t = c.wait_closed(3)
    finally:
        c.close()
    # An unknown id may be ignored or close the connection; either way the seeder must carry on.
    return after(ctx, "unknown_message_id", "closed after %.2f s" % t if t is not None else "ignored")


def attack_flood(ctx, n_requests=100000):
    pid = ctx.seeder.pid
    before = procstat.status(pid)
    sampler = procstat.Sampler(pid, interval=0.005)
    s = socket.create_connection(ctx.seeder.addr, timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        s.sendall(peerwire.PSTR + peerwire.reserved_bits() + bytes.fromhex(ctx.fx.info_hash) + peerwire.peer_id())
        s.sendall(peerwire.msg(peerwire.INTERESTED))
        reqs = bytearray()
        n_pieces, plen = ctx.fx.num_pieces, ctx.fx.piece_length
        for i in range(n_requests):
            index = i % (n_pieces - 1)          # full pieces only: every request is valid
            begin = ((i // (n_pieces - 1)) % (plen // peerwire.BLOCK)) * peerwire.BLOCK
            reqs += peerwire.request_msg(index, begin, peerwire.BLOCK)
        # Never read. Send without blocking for at most 20 s: the seeder may stop reading from us (fine).
        s.setblocking(False)
        sent, t_end = 0, time.monotonic() + 20
        while sent < len(reqs) and time.monotonic() < t_end:
            try:
                sent += s.send(reqs[sent:sent + 65536])
            except BlockingIOError:
                time.sleep(0.01)
            except (ConnectionResetError, BrokenPipeError):
                break
        accepted = sent // 17
        time.sleep(1.0)
        ctx.seeder.assert_alive("during the request flood")
        # While the flooder is still connected, a normal peer must be served.
        r = normal_download(ctx, "during_flood")
        st = procstat.status(pid)
    finally:
        s.close()
        sampler.stop()
    ctx.flood_report = ("%d of %d requests written (%d bytes); seeder VmHWM %d KiB (before %d KiB), VmRSS now %d "
                        "KiB, sampled peak RssAnon %d KiB; download during the flood %.2f s"
                        % (accepted, n_requests, sent, st["VmHWM"] // 1024, before["VmHWM"] // 1024,
                           st["VmRSS"] // 1024, sampler.peak_anon // 1024, r["seconds"]))
    print("flood: " + ctx.flood_report)
    if st["VmHWM"] - before["VmHWM"] > 128 * MiB:
        raise AssertionError("the flood raised the seeder's peak RSS by more than 128 MiB: " + ctx.flood_report)
    return after(ctx, "after_flood", ctx.flood_report)


def attack_rst_storm(ctx, n=50):
    for i in range(n):
        # each from its own address: the storm stands for 50 peers (hekate's per-address cap would refuse a ninth
        # connection from one address whose earlier resets it has not processed yet)
        c = peerwire.start_session(ctx.seeder.addr, ctx.fx.info_hash, source=procs.source_address(i))
        for k in range(8):
            c.send_raw(peerwire.request_msg(k % ctx.fx.num_pieces, 0, peerwire.BLOCK))
        c.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()   # RST
    time.sleep(0.5)
    return after(ctx, "rst_storm", "%d connections reset mid-request" % n)


def attack_silent_before_handshake(ctx):
    with PeerConn(ctx.seeder.addr) as c:
        t = expect_closed(c, ctx.handshake_timeout + 10, "silent peer before the handshake")
    if t < ctx.handshake_timeout - 1.5:
        raise AssertionError("closed after %.1f s, before the %d s handshake timeout" % (t, ctx.handshake_timeout))
    return after(ctx, "silent_before_handshake", "closed after %.1f s (handshake timeout %d s)"
                 % (t, ctx.handshake_timeout))


def attack_silent_after_handshake(ctx):
    c = PeerConn(ctx.seeder.addr)
    try:
        c.handshake(ctx.fx.info_hash)
        t = expect_closed(c, IDLE_TIMEOUT + 10, "silent peer after the handshake")
    finally:
        c.close()
    if t < IDLE_TIMEOUT - 1.5:
        raise AssertionError("closed after %.1f s, before the %d s idle timeout" % (t, IDLE_TIMEOUT))
    return after(ctx, "silent_after_handshake", "closed after %.1f s (idle timeout %d s)" % (t, IDLE_TIMEOUT))


def body(p, checks, build_dir, source_dir):
    ctx = Ctx()
    ctx.p, ctx.n = p, 0
    seed_dir = p.path("seed")
    ctx.fx = fixtures.make_single(os.path.join(seed_dir, "h"), "hostile.bin", 300 * KiB + 1000, 41, 32 * KiB)
    fx, kind = ctx.fx, seeders.seeder_kind()
    args = ["--idle-timeout", str(IDLE_TIMEOUT), "--handshake-timeout", str(HANDSHAKE_TIMEOUT)] \
        if kind == "hekate" else []
    ctx.handshake_timeout = HANDSHAKE_TIMEOUT if kind == "hekate" else 10
    ctx.seeder = seeders.start_seeder(p, build_dir, [seed_dir], args=args)
    print("seeder: %s on port %d (pid %d)" % (ctx.seeder.kind, ctx.seeder.port, ctx.seeder.pid))
    checks.run("baseline_download", lambda: after(ctx, "baseline", "ok"))
    ih = bytes.fromhex(fx.info_hash)
    rest = peerwire.reserved_bits() + ih + peerwire.peer_id()
    checks.run("wrong_protocol_byte", attack_bad_handshake, ctx, "wrong_protocol_byte",
               b"\x13BitTorrent protocoL" + rest)
    checks.run("wrong_pstrlen", attack_bad_handshake, ctx, "wrong_pstrlen", b"\x12BitTorrent protoco" + rest)
    checks.run("http_request", attack_bad_handshake, ctx, "http_request", b"GET /announce HTTP/1.1\r\nHost: x\r\n\r\n")
    checks.run("unknown_info_hash", attack_unknown_hash, ctx)
    last = fx.num_pieces - 1
    checks.run("piece_index_out_of_range", attack_bad_request, ctx, "index_range", fx.num_pieces, 0, peerwire.BLOCK)
    checks.run("piece_index_2_pow_32_minus_1", attack_bad_request, ctx, "index_max", 0xFFFFFFFF, 0, peerwire.BLOCK)
    checks.run("request_length_0", attack_bad_request, ctx, "len0", 0, 0, 0)
    checks.run("request_length_128KiB_plus_1", attack_bad_request, ctx, "len_big", 0, 0, 128 * KiB + 1)
    checks.run("begin_plus_length_past_piece_end", attack_bad_request, ctx, "past_piece", 0,
               fx.piece_length - 8192, peerwire.BLOCK)
    checks.run("begin_past_piece_end", attack_bad_request, ctx, "begin_past", 0, fx.piece_length, 1)
    checks.run("past_end_of_short_last_piece", attack_bad_request, ctx, "past_last", last,
               fx.piece_size(last) - 100, 1000)
    checks.run("length_prefix_2GiB", attack_huge_prefix, ctx, "prefix_2g", 1 << 31)
    checks.run("length_prefix_4GiB_minus_1", attack_huge_prefix, ctx, "prefix_4g", 0xFFFFFFFF)
    checks.run("unknown_message_id", attack_unknown_message, ctx)
    checks.run("flood_100000_requests_never_reading", attack_flood, ctx)
    checks.run("rst_storm", attack_rst_storm, ctx)
    checks.run("silent_before_handshake", attack_silent_before_handshake, ctx)
    if kind == "hekate":
        checks.run("silent_after_handshake_idle_timeout", attack_silent_after_handshake, ctx)
    st = procstat.status(ctx.seeder.pid)
    checks.run("seeder_alive_at_end", ctx.seeder.assert_alive)
    checks.run("seeder_stops_cleanly", ctx.seeder.stop_cleanly, p)
    print("seeder memory at end: VmHWM %d KiB, VmRSS %d KiB, RssAnon %d KiB"
          % (st["VmHWM"] // 1024, st["VmRSS"] // 1024, st.get("RssAnon", 0) // 1024))


if __name__ == "__main__":
    procs.main_wrapper("test_hostile", 270, body)
