"""tracker: a test-local HTTP tracker (http.server on 127.0.0.1, ephemeral port) that answers every announce with a
fixed list of peers in compact form. It lets clients that cannot be given a peer directly (aria2c) find the seeder.
It records each announce's query (info_hash, port, event, ...) for assertions."""
import http.server
import socket
import threading
import urllib.parse

from . import bencode


class FakeTracker:
    def __init__(self, peers, interval=5):
        self.peers = list(peers)
        self.interval = interval
        self.announces = []
        tracker = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                u = urllib.parse.urlsplit(self.path)
                q = urllib.parse.parse_qs(u.query, keep_blank_values=True, encoding="latin-1")
                tracker.announces.append({k: v[0] for k, v in q.items()})
                if u.path != "/announce":
                    body = bencode.encode({b"failure reason": b"unknown path"})
                else:
                    compact = b"".join(socket.inet_aton(ip) + port.to_bytes(2, "big") for ip, port in tracker.peers)
                    body = bencode.encode({b"interval": tracker.interval, b"min interval": 1, b"peers": compact,
                                           b"complete": len(tracker.peers), b"incomplete": 0})
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d/announce" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def announced_hashes(self):
        return {a.get("info_hash", "").encode("latin-1").hex() for a in self.announces}

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
