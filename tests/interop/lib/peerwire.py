"""peerwire: a raw-socket BitTorrent peer (BEP 3, with the BEP 6 fast and BEP 10 extension bits) for hostile tests and
for connection-count benchmarks. It sends exactly the bytes it is told to, malformed or not, and reads with deadlines.

PeerConn(addr) connects; handshake() sends ours and reads the reply; send_msg()/send_raw() write; recv_msg() reads one
message (None for a keep-alive; EOFError when the peer closed; socket.timeout on the deadline); wait_closed() tells
whether (and after how long) the remote end closed. fetch_piece() downloads one piece block by block and returns it:
the plain, correct use of the protocol, used to show the seeder still works after each attack."""
import hashlib
import os
import socket
import struct
import time

PSTR = b"\x13BitTorrent protocol"
CHOKE, UNCHOKE, INTERESTED, NOT_INTERESTED, HAVE, BITFIELD, REQUEST, PIECE, CANCEL, PORT = range(10)
SUGGEST, HAVE_ALL, HAVE_NONE, REJECT, ALLOWED_FAST = 13, 14, 15, 16, 17
EXTENDED = 20
BLOCK = 16384


def reserved_bits(fast=True, ext=True):
    r = bytearray(8)
    if ext:
        r[5] |= 0x10
    if fast:
        r[7] |= 0x04
    return bytes(r)


def peer_id(tag=b"-HT0001-"):
    return tag + os.urandom(20 - len(tag))


def msg(mid, payload=b""):
    return struct.pack(">IB", 1 + len(payload), mid) + payload


def request_msg(index, begin, length, mid=REQUEST):
    return msg(mid, struct.pack(">III", index, begin, length))


class PeerConn:
    def __init__(self, addr, timeout=10.0, source=None):
        """source: a local address to connect from (procs.source_address; default 127.0.0.1's choice)."""
        self.addr = addr
        self.s = socket.create_connection(addr, timeout=timeout, source_address=(source, 0) if source else None)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.remote_reserved = None
        self.remote_peer_id = None

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- raw I/O
    def send_raw(self, data):
        self.s.sendall(data)

    def _fill(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("timed out waiting for %d bytes (have %d)" % (n, len(self.buf)))
            self.s.settimeout(left)
            try:
                chunk = self.s.recv(max(65536, n - len(self.buf)))
            except ConnectionResetError:
                raise EOFError("connection reset by peer")
            if not chunk:
                raise EOFError("connection closed by peer after %d buffered bytes" % len(self.buf))
            self.buf += chunk

    def _take(self, n):
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    # -- protocol
    def handshake(self, info_hash, reserved=None, pid=None, timeout=10.0):
        """info_hash: 20 bytes or 40 hex chars. Returns (reserved, info_hash, peer_id) of the reply."""
        if isinstance(info_hash, str):
            info_hash = bytes.fromhex(info_hash)
        self.send_raw(PSTR + (reserved if reserved is not None else reserved_bits()) + info_hash + (pid or peer_id()))
        return self.read_handshake(timeout)

    def read_handshake(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        self._fill(68, deadline)
        h = self._take(68)
        if h[:20] != PSTR:
            raise AssertionError("bad handshake reply %r" % h[:20])
        self.remote_reserved, ih, self.remote_peer_id = h[20:28], h[28:48], h[48:68]
        return self.remote_reserved, ih, self.remote_peer_id

    def send_msg(self, mid, payload=b""):
        self.send_raw(msg(mid, payload))

    def recv_msg(self, timeout=10.0, max_len=1 << 20):
        """Returns (id, payload) or None for a keep-alive."""
        deadline = time.monotonic() + timeout
        self._fill(4, deadline)
        (n,) = struct.unpack(">I", bytes(self.buf[:4]))
        if n > max_len + 13:
            raise AssertionError("remote sent a message of %d bytes" % n)
        self._fill(4 + n, deadline)
        data = self._take(4 + n)
        if n == 0:
            return None
        return data[4], data[5:]

    def recv_until(self, ids, timeout=10.0):
        """Reads messages until one whose id is in ids; returns (id, payload, skipped messages)."""
        deadline = time.monotonic() + timeout
        skipped = []
        while True:
            m = self.recv_msg(timeout=max(0.01, deadline - time.monotonic()))
            if m is not None and m[0] in ids:
                return m[0], m[1], skipped
            skipped.append(m)

    def wait_closed(self, timeout):
        """Reads and discards until the remote closes. Returns seconds until EOF/RST, or None if still open."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.s.settimeout(left)
            try:
                chunk = self.s.recv(1 << 16)
            except socket.timeout:
                return None
            except (ConnectionResetError, BrokenPipeError):
                return time.monotonic() - t0
            if not chunk:
                return time.monotonic() - t0


def start_session(addr, info_hash, timeout=10.0, source=None):
    """Connects (from source, if given), handshakes, says interested, waits for unchoke. Returns the PeerConn."""
    c = PeerConn(addr, timeout=timeout, source=source)
    try:
        c.handshake(info_hash, timeout=timeout)
        c.send_msg(INTERESTED)
        c.recv_until({UNCHOKE}, timeout=timeout)
        return c
    except BaseException:
        c.close()
        raise


def fetch_piece(addr, fixture, index, timeout=20.0, conn=None):
    """Downloads piece index of fixture over one raw connection and checks it against the piece hash and the
    seeder's file bytes. Returns the piece's bytes."""
    own = conn is None
    c = conn or start_session(addr, fixture.info_hash, timeout=timeout)
    try:
        size = fixture.piece_size(index)
        for begin in range(0, size, BLOCK):
            c.send_raw(request_msg(index, begin, min(BLOCK, size - begin)))
        got = {}
        deadline = time.monotonic() + timeout
        while len(got) < (size + BLOCK - 1) // BLOCK:
            mid, payload, _ = c.recv_until({PIECE, REJECT, CHOKE}, timeout=max(0.01, deadline - time.monotonic()))
            if mid != PIECE:
                raise AssertionError("got message %d instead of a piece" % mid)
            i, b = struct.unpack(">II", payload[:8])
            if i != index:
                raise AssertionError("piece %d sent for a request of piece %d" % (i, index))
            got[b] = payload[8:]
        data = b"".join(got[b] for b in sorted(got))
        if hashlib.sha1(data).digest() != fixture.piece_hash(index):
            raise AssertionError("piece %d fails its hash" % index)
        if data != fixture.read_range(index * fixture.piece_length, size):
            raise AssertionError("piece %d differs from the seeder's file" % index)
        return data
    finally:
        if own:
            c.close()
