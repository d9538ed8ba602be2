"""trackers: what the tracker interop tests need beside the shared harness.

- OpenTracker: a real opentracker on 127.0.0.1 (one free port for TCP and UDP), started through Procs (stopped by
  PID), chrooted into its own folder with a whitelist of the test's info-hashes (Debian builds it in whitelist
  mode), 127.0.0.1 blessed as admin so /stats answers; scrape() reads a torrent's seed count.
- set_trackers(): rewrites a .torrent's announce / announce-list (outside `info`: the info-hash does not change).
- start_hekate_announcing(): hekate WITHOUT -t (seeders.start_hekate always passes -t).
- FakeHttpTracker / FakeUdpTracker: misbehaving trackers (failure reason, garbage, HTTP 500, silence, a connection
  accepted and never answered) that count what they receive.
- TrackerLeecher: a python-libtorrent leecher that knows only the .torrent (no peer address): it must find the
  seeder through the tracker. Imports libtorrent lazily, so only /usr/bin/python3 can use it."""
import http.server
import os
import socket
import threading
import time
import urllib.parse
import urllib.request

from . import bencode
from .procs import free_port as procs_free_port
from .procs import wait_port, wait_started
from .seeders import Seeder, hekate_binary


def free_port_tcp_udp():
    """A port free for both TCP and UDP (procs.free_port checks both)."""
    return procs_free_port()


class OpenTracker:
    def __init__(self, procs, info_hashes, name="opentracker"):
        self.port = free_port_tcp_udp()
        self.root = procs.path(name)
        os.makedirs(self.root, exist_ok=True)
        with open(os.path.join(self.root, "whitelist"), "w") as f:
            for ih in info_hashes:
                f.write(ih + "\n")
        argv = ["opentracker", "-i", "127.0.0.1", "-p", str(self.port), "-P", str(self.port), "-A", "127.0.0.1",
                "-d", self.root, "-w", "/whitelist"]
        self.child = procs.start(name, argv)
        wait_port(self.port, self.child, timeout=10)
        self.http_url = "http://127.0.0.1:%d/announce" % self.port
        self.udp_url = "udp://127.0.0.1:%d" % self.port

    def get(self, path, timeout=5):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.port, path), timeout=timeout) as r:
            return r.read()

    def scrape(self, info_hash_hex):
        """{complete, incomplete, downloaded} for one torrent (zeros if unknown)."""
        raw = bytes.fromhex(info_hash_hex)
        body = self.get("/scrape?info_hash=" + urllib.parse.quote_from_bytes(raw))
        files = bencode.decode(body).get(b"files", {})
        e = files.get(raw, {})
        return {k.decode(): v for k, v in e.items()} if e else {"complete": 0, "incomplete": 0, "downloaded": 0}

    def peers_and_torrents(self):
        """(peers, torrents) from /stats?mode=peer."""
        lines = self.get("/stats?mode=peer").decode().split("\n")
        return int(lines[0]), int(lines[1])

    def peers(self, info_hash_hex):
        """The (ip, port) pairs opentracker hands out for one torrent, read with an announce of a probe peer that
        takes part in nothing (port 1, one byte left, so seeds are listed to it too)."""
        raw = bytes.fromhex(info_hash_hex)
        q = "info_hash=%s&peer_id=%s&port=1&uploaded=0&downloaded=0&left=1&compact=1&numwant=200" % (
            urllib.parse.quote_from_bytes(raw), urllib.parse.quote_from_bytes(b"-PROBE-" + raw[:13]))
        reply = bencode.decode(self.get("/announce?" + q))
        blob = reply.get(b"peers", b"")
        return {("%d.%d.%d.%d" % tuple(blob[i:i + 4]), int.from_bytes(blob[i + 4:i + 6], "big"))
                for i in range(0, len(blob) - len(blob) % 6, 6)}

    def wait_peer_gone(self, info_hash_hex, port, timeout):
        """Waits until the peer 127.0.0.1:port is no longer listed for the torrent."""
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            listed = self.peers(info_hash_hex)
            if ("127.0.0.1", port) not in listed:
                return listed
            time.sleep(0.1)
        raise AssertionError("opentracker still lists 127.0.0.1:%d for %s after %.0f s" % (port, info_hash_hex,
                                                                                         timeout))

    def wait_seeds(self, info_hash_hex, want, timeout):
        t_end = time.monotonic() + timeout
        last = None
        while time.monotonic() < t_end:
            last = self.scrape(info_hash_hex)
            if last["complete"] == want:
                return last
            time.sleep(0.1)
        raise AssertionError("opentracker: %s has %r, not %d seed(s), after %.0f s" % (info_hash_hex, last, want,
                                                                                       timeout))


def set_trackers(torrent_path, tiers):
    """tiers: list of lists of URLs. Writes announce (the first URL) and announce-list."""
    with open(torrent_path, "rb") as f:
        d = bencode.decode(f.read())
    d.pop(b"announce", None)
    d.pop(b"announce-list", None)
    if tiers:
        d[b"announce"] = tiers[0][0].encode()
        d[b"announce-list"] = [[u.encode() for u in tier] for tier in tiers]
    with open(torrent_path, "wb") as f:
        f.write(bencode.encode(d))


def start_hekate_announcing(procs, build_dir, dirs, port=None, args=(), name="hekate"):
    port = port or free_port_tcp_udp()
    argv = [hekate_binary(build_dir), "--no-dht", "--bind", "127.0.0.1", "-p", str(port)] + list(args) + list(dirs)
    child = procs.start(name, argv)
    wait_port(port, child, timeout=30)
    wait_started(child)
    return Seeder("hekate", child, port)


class FakeHttpTracker:
    """mode: 'failure' (bencoded failure reason), 'garbage' (not bencode), '500', 'ok' (interval 1800),
    'hang' (accept, read, never answer), 'slow' (answer after `delay` seconds), 'stopless' (answers like 'ok' but
    never answers a `stopped`)."""

    def __init__(self, mode, delay=0.0):
        self.mode = mode
        self.delay = delay
        self.requests = []
        self.connections = 0
        self._stop = threading.Event()
        tracker = self
        self._held = []
        if mode == "hang":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.bind(("127.0.0.1", 0))
            self.sock.listen(128)
            self.sock.settimeout(0.2)
            self.port = self.sock.getsockname()[1]
            self.thread = threading.Thread(target=self._hang_loop, daemon=True)
        else:
            class Handler(http.server.BaseHTTPRequestHandler):
                protocol_version = "HTTP/1.1"

                def do_GET(self):  # noqa: N802
                    q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query, keep_blank_values=True,
                                              encoding="latin-1")
                    tracker.requests.append({k: v[0] for k, v in q.items()})
                    if tracker.mode == "slow":
                        time.sleep(tracker.delay)
                    if tracker.mode == "stopless" and q.get("event", [""])[0] == "stopped":
                        tracker._stop.wait(60)  # never answers a `stopped` (until closed)
                        return
                    if tracker.mode == "500":
                        body, status = b"internal error", 500
                    elif tracker.mode == "garbage":
                        body, status = b"<html>this is not bencode</html>", 200
                    elif tracker.mode == "failure":
                        body, status = bencode.encode({b"failure reason": b"torrent not registered here"}), 200
                    else:
                        body, status = bencode.encode({b"interval": 1800, b"peers": b""}), 200
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

                def log_message(self, *args):
                    pass

            self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            self.server.daemon_threads = True
            self.port = self.server.server_address[1]
            self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                           daemon=True)
        self.url = "http://127.0.0.1:%d/announce" % self.port
        self.thread.start()

    def _hang_loop(self):
        while not self._stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            c.settimeout(0.5)
            try:
                data = c.recv(65536)
                if data:
                    line = data.split(b"\r\n", 1)[0].decode("latin-1")
                    q = urllib.parse.parse_qs(urllib.parse.urlsplit(line.split(" ")[1]).query, encoding="latin-1")
                    self.requests.append({k: v[0] for k, v in q.items()})
            except (OSError, IndexError):
                pass
            self._held.append(c)  # never answered, never closed until the end

    def close(self):
        self._stop.set()
        if self.mode == "hang":
            self.sock.close()
            for c in self._held:
                c.close()
        else:
            self.server.shutdown()
            self.server.server_close()


class FakeUdpTracker:
    """mode: 'silent' (reads, never answers), 'error' (answers a connect, then an error for every announce),
    'garbage' (answers every datagram with bytes that are no BEP 15 reply)."""

    def __init__(self, mode):
        self.mode = mode
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.url = "udp://127.0.0.1:%d/announce" % self.port
        self.received = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(4096)
            except OSError:
                continue
            self.received.append((time.monotonic(), data))
            if self.mode == "silent" or len(data) < 16:
                continue
            tid = data[12:16]
            if self.mode == "garbage":
                self.sock.sendto(b"\x00\x00\x00\x01" + tid + b"xx", addr)
            elif data[8:12] == b"\x00\x00\x00\x00":
                self.sock.sendto(b"\x00\x00\x00\x00" + tid + b"CONNID!!", addr)
            else:
                self.sock.sendto(b"\x00\x00\x00\x03" + tid + b"no such torrent", addr)

    def close(self):
        self._stop.set()
        self.sock.close()


class TrackerLeecher:
    """A libtorrent leecher given only a .torrent: peers come from its trackers."""

    def __init__(self, name, save_dir, torrent):
        import libtorrent as lt  # noqa: PLC0415 - only /usr/bin/python3 has it
        from . import lt_client  # noqa: PLC0415
        self.lt = lt
        self.name = name
        os.makedirs(save_dir, exist_ok=True)
        self.ses = lt_client.make_session(extra={"announce_to_all_trackers": True, "announce_to_all_tiers": True,
                                                 "tracker_completion_timeout": 10,
                                                 "tracker_receive_timeout": 5})
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(torrent)
        atp.save_path = save_dir
        atp.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
        self.h = self.ses.add_torrent(atp)
        self.t0 = time.monotonic()

    def run(self, timeout):
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            self.ses.pop_alerts()
            st = self.h.status()
            if st.total_wanted > 0 and st.total_wanted_done >= st.total_wanted and \
                    st.state in (self.lt.torrent_status.finished, self.lt.torrent_status.seeding):
                return {"seconds": time.monotonic() - self.t0, "bytes": st.total_payload_download,
                        "peers_seen": st.list_peers}
            time.sleep(0.05)
        st = self.h.status()
        raise AssertionError("%s: not complete after %.0f s (%d of %d bytes, %d peers, %d known, tracker %r)"
                             % (self.name, timeout, st.total_wanted_done, st.total_wanted, st.num_peers,
                                st.list_peers, st.current_tracker))

    def close(self):
        try:
            self.ses.remove_torrent(self.h)
        except RuntimeError:
            pass
        self.ses.pause()
