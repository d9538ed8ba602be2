"""clients: real BitTorrent clients as leechers, each with its own default settings (the client matrix).

Every driver is started the same way, start(kind, procs, work, torrent, save_dir, require_encryption=False), and
returns a Client: .child (the process, in its own process group, started through Procs), is_complete() (the client
itself says the torrent is complete), stop() (by PID, through Procs.stop; also safe when it already exited) and
.changed (the settings this driver had to set, and why). The seeder is found through the .torrent's tracker (a
test-local HTTP tracker, lib/tracker.py), so the .torrent must announce to it. What a driver changes is only what
keeps the client on 127.0.0.1 and in the test's work directory: listen/RPC ports and addresses, config and session
folders, and DHT / local peer discovery / UPnP / NAT-PMP off where the client would otherwise send packets off the
host. require_encryption turns on the client's own "require encryption" setting.

Clients: libtorrent (python-libtorrent, lt_leech.py in its own process), aria2 (aria2c), transmission
(transmission-daemon, driven by transmission-remote), rtorrent (0.9.8, headless with system.daemon), qbittorrent
(qbittorrent-nox, Web API with localhost auth bypass), ctorrent (Enhanced CTorrent: single-file torrents here)."""
import base64
import hashlib
import json
import os
import time
import urllib.error
import urllib.request
import uuid

from . import bencode
from .procs import free_port, wait_port

HERE = os.path.dirname(os.path.abspath(__file__))


def torrent_hash(torrent):
    with open(torrent, "rb") as f:
        return hashlib.sha1(bencode.info_bytes(f.read())).hexdigest()


class Client:
    kind = "?"

    def __init__(self, procs, work, torrent, save_dir, require_encryption):
        self.procs = procs
        self.work = work
        self.torrent = torrent
        self.save_dir = save_dir
        self.require_encryption = require_encryption
        self.info_hash = torrent_hash(torrent)
        self.child = None
        self.changed = []
        os.makedirs(work, exist_ok=True)
        os.makedirs(save_dir, exist_ok=True)

    def start(self):
        raise NotImplementedError

    def is_complete(self):
        raise NotImplementedError

    def stop(self):
        if self.child is not None:
            self.procs.stop(self.child, grace=5.0)

    def log(self):
        return self.child.log() if self.child else ""

    def hash_failures(self):
        """What the client itself says it downloaded that failed a piece hash (bytes or pieces, > 0 means some),
        or None when this driver has no way to read it."""
        return None

    def pieces_have(self, fx, save_dir, expected):
        """The pieces of `expected` ({index: bytes}) the client has: by default those its files hold (a client that
        caches writes overrides this with what it says it has; its files are complete once it is stopped)."""
        return pieces_present(fx, save_dir, expected)


class LibtorrentClient(Client):
    kind = "libtorrent"

    def start(self):
        self.changed = ["listen_interfaces=127.0.0.1:PORT", "DHT, LSD, UPnP, NAT-PMP off (they leave the host)"]
        argv = ["/usr/bin/python3", os.path.join(HERE, "lt_leech.py"), self.torrent, self.save_dir, str(free_port())]
        if self.require_encryption:
            argv.append("--require-encryption")
            self.changed.append("out/in_enc_policy=pe_forced, allowed_enc_level=pe_rc4")
        self.child = self.procs.start("libtorrent", argv)
        return self.child

    def is_complete(self):
        return "COMPLETE" in self.log()

    def hash_failures(self):
        """Bytes that failed their hash (lt_leech.py's last "failed_bytes N" line; none printed: 0)."""
        vals = [int(l.split()[1]) for l in self.log().splitlines() if l.startswith("failed_bytes ")]
        return vals[-1] if vals else 0


class Aria2Client(Client):
    """aria2c exits 0 once the download is complete (--seed-time=0) and non-zero on an error."""
    kind = "aria2"

    def start(self):
        argv = ["aria2c", "--no-conf=true", "--dir=" + self.save_dir, "--listen-port=%d" % free_port(),
                "--enable-dht=false", "--enable-dht6=false", "--seed-time=0", "--summary-interval=0",
                "--torrent-file=" + self.torrent]
        self.changed = ["--no-conf (ignore a user config)", "--dir, --listen-port", "--enable-dht=false, "
                        "--enable-dht6=false (DHT leaves the host)", "--seed-time=0 (exit once complete)"]
        if self.require_encryption:
            argv[1:1] = ["--bt-require-crypto=true", "--bt-min-crypto-level=arc4"]
            self.changed.append("--bt-require-crypto=true --bt-min-crypto-level=arc4")
        self.child = self.procs.start("aria2c", argv)
        return self.child

    def is_complete(self):
        rc = self.child.returncode()
        if rc not in (None, 0):
            raise AssertionError("aria2c exited %d:\n%s" % (rc, self.log()[-3000:]))
        return rc == 0


class TransmissionClient(Client):
    kind = "transmission"

    def start(self):
        conf = os.path.join(self.work, "config")
        os.makedirs(conf, exist_ok=True)
        self.rpc_addr = "127.0.0.1:%d" % free_port()
        settings = {
            "download-dir": self.save_dir, "peer-port": free_port(), "peer-port-random-on-start": False,
            "bind-address-ipv4": "127.0.0.1", "bind-address-ipv6": "::1",
            "rpc-bind-address": "127.0.0.1", "rpc-port": int(self.rpc_addr.split(":")[1]), "rpc-whitelist": "127.0.0.1",
            "rpc-whitelist-enabled": True, "rpc-authentication-required": False,
            "dht-enabled": False, "lpd-enabled": False, "port-forwarding-enabled": False,
            # uTP stays on (Transmission's default): it dials hekate by uTP first, and hekate speaks uTP
            # (docs/design.md §17: no reply short of that makes Transmission 3.00 fall back to TCP promptly).
        }
        self.changed = ["own config dir (-g)", "download-dir", "peer-port (not random), bind-address-ipv4 127.0.0.1 "
                        "/ ipv6 ::1", "RPC on 127.0.0.1:free port, whitelist 127.0.0.1, no auth",
                        "dht-enabled, lpd-enabled, port-forwarding-enabled false (they leave the host)"]
        if self.require_encryption:
            settings["encryption"] = 2
            self.changed.append("encryption: 2 (required)")
        with open(os.path.join(conf, "settings.json"), "w") as f:
            json.dump(settings, f, indent=1)
        self.child = self.procs.start("transmission-daemon", ["transmission-daemon", "-f", "-g", conf])
        wait_port(int(self.rpc_addr.split(":")[1]), self.child, timeout=20)
        rc, out = self.procs.run("transmission-remote-add", ["transmission-remote", self.rpc_addr, "-a", self.torrent],
                                 timeout=20)
        if rc != 0 or "success" not in out:
            raise AssertionError("transmission-remote -a failed (%d): %s" % (rc, out))
        return self.child

    def rpc(self, method, arguments):
        """One call of Transmission's JSON RPC (with its X-Transmission-Session-Id handshake)."""
        body = json.dumps({"method": method, "arguments": arguments}).encode()
        for _ in range(3):
            req = urllib.request.Request("http://%s/transmission/rpc" % self.rpc_addr, data=body,
                                         headers={"X-Transmission-Session-Id": getattr(self, "session_id", "")})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    return json.loads(r.read())
            except urllib.error.HTTPError as e:
                if e.code != 409:
                    raise
                self.session_id = e.headers.get("X-Transmission-Session-Id", "")
        raise AssertionError("transmission RPC: no session id")

    def is_complete(self):
        if not self.child.alive():
            raise AssertionError("transmission-daemon exited (%s)" % self.child.returncode())
        r = self.rpc("torrent-get", {"ids": [self.info_hash], "fields": ["percentDone", "leftUntilDone", "status",
                                                                          "errorString", "peersConnected"]})
        t = r.get("arguments", {}).get("torrents", [])
        self.last_info = t
        # status 5/6: queued to seed / seeding (the download is complete and verified)
        return bool(t) and t[0]["leftUntilDone"] == 0 and t[0]["percentDone"] >= 1 and t[0]["status"] in (5, 6)

    def log(self):
        return super().log() + "\nlast torrent-get: %r\n" % (getattr(self, "last_info", None),)

    def pieces_have(self, fx, save_dir, expected):
        """Its verified pieces (RPC "pieces", a base64 bitfield): Transmission keeps written blocks in its cache
        (cache-size-mb, 4 MiB by default) and writes them out only later, at the latest when it stops."""
        r = self.rpc("torrent-get", {"ids": [self.info_hash], "fields": ["pieces"]})
        bits = base64.b64decode(r["arguments"]["torrents"][0]["pieces"])
        return {i for i in expected if i // 8 < len(bits) and bits[i // 8] & (0x80 >> (i % 8))}

    def hash_failures(self):
        """corruptEver: bytes Transmission downloaded that failed their piece hash."""
        r = self.rpc("torrent-get", {"ids": [self.info_hash], "fields": ["corruptEver"]})
        return r["arguments"]["torrents"][0]["corruptEver"]


class RtorrentClient(Client):
    """rtorrent 0.9.8 without a terminal (system.daemon); completion is its event.download.finished hook touching
    a file."""
    kind = "rtorrent"

    def start(self):
        session = os.path.join(self.work, "session")
        os.makedirs(session, exist_ok=True)
        self.done_flag = os.path.join(self.work, "finished")
        port = free_port()
        lines = [
            "directory.default.set = \"%s\"" % self.save_dir,
            "session.path.set = \"%s\"" % session,
            "network.bind_address.set = 127.0.0.1",
            "network.port_range.set = %d-%d" % (port, port),
            "network.port_random.set = no",
            "system.daemon.set = true",
            "log.open_file = \"main\", \"%s\"" % os.path.join(self.work, "rtorrent.log"),
            "log.add_output = \"info\", \"main\"",
            "method.set_key = event.download.finished, hk_done, \"execute.nothrow = touch, %s\"" % self.done_flag,
        ]
        self.changed = ["own rc file (-n -o import=)", "directory.default, session.path", "network.bind_address "
                        "127.0.0.1, port_range PORT-PORT (not random)", "system.daemon.set = true (no terminal)",
                        "a log file and an event.download.finished hook (to see completion)"]
        if self.require_encryption:
            lines.append("protocol.encryption.set = allow_incoming,try_outgoing,require,require_RC4")
            self.changed.append("protocol.encryption.set = allow_incoming,try_outgoing,require,require_RC4")
        lines.append("load.start = \"%s\"" % self.torrent)
        rc_file = os.path.join(self.work, "rtorrent.rc")
        with open(rc_file, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.child = self.procs.start("rtorrent", ["rtorrent", "-n", "-o", "import=" + rc_file],
                                      env=dict(os.environ, HOME=self.work))
        return self.child

    def log(self):
        try:
            with open(os.path.join(self.work, "rtorrent.log"), errors="replace") as f:
                return super().log() + f.read()
        except OSError:
            return super().log()

    def is_complete(self):
        if not self.child.alive():
            raise AssertionError("rtorrent exited (%s):\n%s" % (self.child.returncode(), self.log()[-3000:]))
        return os.path.exists(self.done_flag)


class QbittorrentClient(Client):
    kind = "qbittorrent"

    def start(self):
        profile = os.path.join(self.work, "profile")
        conf_dir = os.path.join(profile, "qBittorrent", "config")
        os.makedirs(conf_dir, exist_ok=True)
        self.web = free_port()
        conf = ["[LegalNotice]", "Accepted=true", "",
                "[BitTorrent]", "Session\\Port=%d" % free_port(), "Session\\InterfaceAddress=127.0.0.1",
                "Session\\DHTEnabled=false", "Session\\LSDEnabled=false", "Session\\DefaultSavePath=" + self.save_dir,
                "Session\\TempPathEnabled=false"]
        self.changed = ["own profile (--profile)", "legal notice accepted", "Session\\Port, InterfaceAddress "
                        "127.0.0.1", "DHT, LSD off; Connection\\UPnP off (they leave the host)",
                        "Web UI on 127.0.0.1:free port, LocalHostAuth=false"]
        if self.require_encryption:
            conf.append("Session\\Encryption=1")
            self.changed.append("Session\\Encryption=1 (require)")
        conf += ["", "[Preferences]", "Connection\\UPnP=false", "WebUI\\Address=127.0.0.1",
                 "WebUI\\Port=%d" % self.web, "WebUI\\LocalHostAuth=false", "General\\Locale=en"]
        with open(os.path.join(conf_dir, "qBittorrent.conf"), "w") as f:
            f.write("\n".join(conf) + "\n")
        self.child = self.procs.start("qbittorrent-nox", ["qbittorrent-nox", "--profile=" + profile],
                                      env=dict(os.environ, HOME=self.work))
        wait_port(self.web, self.child, timeout=30)
        self._add()
        return self.child

    def _api(self, path, data=None, headers=None):
        req = urllib.request.Request("http://127.0.0.1:%d/api/v2/%s" % (self.web, path), data=data,
                                     headers=headers or {})
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.read()

    def _add(self):
        boundary = uuid.uuid4().hex
        with open(self.torrent, "rb") as f:
            blob = f.read()
        parts = [b"--%s\r\nContent-Disposition: form-data; name=\"torrents\"; filename=\"t.torrent\"\r\n"
                 b"Content-Type: application/x-bittorrent\r\n\r\n" % boundary.encode() + blob + b"\r\n",
                 b"--%s\r\nContent-Disposition: form-data; name=\"savepath\"\r\n\r\n%s\r\n"
                 % (boundary.encode(), self.save_dir.encode())]
        body = b"".join(parts) + b"--%s--\r\n" % boundary.encode()
        r = self._api("torrents/add", body, {"Content-Type": "multipart/form-data; boundary=" + boundary})
        if r.strip() != b"Ok.":
            raise AssertionError("qBittorrent torrents/add said %r" % r)

    def is_complete(self):
        if not self.child.alive():
            raise AssertionError("qbittorrent-nox exited (%s)" % self.child.returncode())
        info = json.loads(self._api("torrents/info?hashes=" + self.info_hash))
        self.last_info = info
        return bool(info) and info[0]["progress"] >= 1.0 and info[0]["state"] not in (
            "checkingDL", "checkingUP", "checkingResumeData", "moving", "metaDL", "downloading", "stalledDL")

    def hash_failures(self):
        """total_wasted of torrents/properties: bytes that failed their hash plus redundant ones (one seeder: none)."""
        return json.loads(self._api("torrents/properties?hash=" + self.info_hash))["total_wasted"]


class CtorrentClient(Client):
    """Enhanced CTorrent: -e 0 makes it exit once the download is complete. Single-file torrents (-s is the file)."""
    kind = "ctorrent"

    def start(self):
        with open(self.torrent, "rb") as f:
            name = bencode.decode(f.read())[b"info"][b"name"].decode()
        argv = ["ctorrent", "-e", "0", "-p", str(free_port()), "-s",
                os.path.join(self.save_dir, name), self.torrent]
        self.changed = ["-e 0 (exit once complete)", "-s SAVE (where to save)", "-p PORT"]
        if self.require_encryption:
            raise ValueError("ctorrent has no encryption")
        self.child = self.procs.start("ctorrent", argv, cwd=self.work)
        return self.child

    def is_complete(self):
        rc = self.child.returncode()
        if rc not in (None, 0):
            raise AssertionError("ctorrent exited %d:\n%s" % (rc, self.log()[-3000:]))
        return rc == 0

    def hash_failures(self):
        """Its "warn, piece N hash check failed." lines."""
        return self.log().count("hash check failed")


KINDS = {c.kind: c for c in (LibtorrentClient, Aria2Client, TransmissionClient, RtorrentClient, QbittorrentClient,
                             CtorrentClient)}
# Clients that dial uTP (BEP 29) first with the settings of their driver: their download must go over uTP
# (lib/matrix.py assert_utp_transport).
UTP_FIRST = ("libtorrent", "qbittorrent", "transmission")
ENCRYPTING = ("libtorrent", "aria2", "transmission", "rtorrent", "qbittorrent")  # ctorrent has no MSE/PE


def start(kind, procs, work, torrent, save_dir, require_encryption=False):
    """Starts a client of that kind on torrent, saving into save_dir (its config and logs in work). Returns the
    Client; the caller stops it (client.stop()) in any case, also when this raises (client.child may be None)."""
    c = KINDS[kind](procs, work, torrent, save_dir, require_encryption)
    try:
        c.start()
    except BaseException:
        c.stop()
        raise
    return c


def wait_complete(procs, client, timeout):
    """Polls client.is_complete() until it is true (returns the seconds it took) or timeout seconds pass (raises)."""
    t0 = time.monotonic()
    t_end = t0 + min(timeout, max(1.0, procs.remaining()))
    while not client.is_complete():
        if time.monotonic() > t_end:
            raise AssertionError("%s did not complete within %.0f s:\n%s" % (client.kind, timeout,
                                                                          client.log()[-3000:]))
        time.sleep(0.2)
    return time.monotonic() - t0


# Names a client gives a file it has not completed yet, tried in this order: transmission-daemon appends ".part"
# (rename-partial-files, on by default); the others write the final name from the start.
PARTIAL_SUFFIXES = ("", ".part")


def download_file(fx, save_dir, rel):
    """The path of file rel of fixture fx in a client's save_dir, complete or partial (None: not there yet)."""
    base = fx.download_path(save_dir, rel)
    return next((base + sfx for sfx in PARTIAL_SUFFIXES if os.path.isfile(base + sfx)), None)


def read_download(fx, save_dir, offset, length):
    """Bytes [offset, offset+length) of the torrent's data as the client holds it (files in torrent order); a
    missing file or a short one reads as nothing there."""
    out = bytearray()
    pos = 0
    for rel, size in fx.files:
        lo, hi = max(offset, pos), min(offset + length, pos + size)
        if lo < hi:
            path = download_file(fx, save_dir, rel)
            chunk = b""
            if path is not None:
                with open(path, "rb") as f:
                    f.seek(lo - pos)
                    chunk = f.read(hi - lo)
            out += chunk.ljust(hi - lo, b"\0")
        pos += size
    return bytes(out)


def pieces_present(fx, save_dir, expected):
    """The indices i of `expected` ({piece index: its bytes}) whose bytes the client's files hold."""
    return {i for i, data in expected.items()
            if read_download(fx, save_dir, i * fx.piece_length, len(data)) == data}


def wait_pieces(procs, client, fx, save_dir, expected, timeout, also=None):
    """For a download that cannot complete: polls the client (client.pieces_have: its files, or what it says it
    has) until every piece of `expected` ({index: bytes}) is there and also() (optional) is true, or timeout seconds
    pass (raises, naming the missing pieces), or the client exits (raises). Returns the seconds it took. The caller stops the client."""
    t0 = time.monotonic()
    t_end = t0 + min(timeout, max(1.0, procs.remaining()))
    while True:
        missing = set(expected) - client.pieces_have(fx, save_dir, expected)
        if not missing and (also is None or also()):
            return time.monotonic() - t0
        if not client.child.alive():
            raise AssertionError("%s exited (%s) with pieces %s missing:\n%s" % (
                client.kind, client.child.returncode(), sorted(missing), client.log()[-3000:]))
        if time.monotonic() > t_end:
            raise AssertionError("%s: pieces %s missing after %.0f s%s:\n%s" % (
                client.kind, sorted(missing), timeout, "" if missing else " (the other condition never held)",
                client.log()[-3000:]))
        time.sleep(0.2)
