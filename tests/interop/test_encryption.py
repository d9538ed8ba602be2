#!/usr/bin/python3
"""Interop: MSE/PE (protocol encryption, issue 9) with real clients, each download verified byte for byte and each
connection's method read from hekate's own per-peer log line (-v: "peer N: mse handshake for torrent HEX: encrypted
rc4 (offered ...)" or "...: plaintext (...)", core/seeder.h). Against hekate with its default policy (allow):
python-libtorrent with encryption forced (out/in_enc_policy = pe_forced, allowed_enc_level = pe_rc4) must be served
RC4; libtorrent with its own default encryption settings must be served on its first connection (no refused
handshake, no reconnect); aria2c with --bt-require-crypto=true --bt-min-crypto-level=arc4 must be served RC4; aria2c
with its defaults downloads. Against hekate --encryption=require: a plain libtorrent (pe_disabled) gets nothing and
hekate says why; a forced one is served RC4. Against hekate --encryption=off: a plain libtorrent is served and no MSE
handshake happens. And an encrypted peer (lib/mse.py, RC4) that floods 100,000 requests and never reads: hekate's
private memory stays within 16 MiB of where it was while a forced libtorrent downloads meanwhile. Deadline 240 s."""
import os
import re
import signal
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import libtorrent as lt  # noqa: E402
from lib import aria2, fixtures, lt_client, mse, peerwire, procs, procstat, seeders, tracker, verify  # noqa: E402
from lib.fixtures import KiB, MiB  # noqa: E402

FORCED = {"out_enc_policy": int(lt.enc_policy.pe_forced), "in_enc_policy": int(lt.enc_policy.pe_forced),
          "allowed_enc_level": int(lt.enc_level.pe_rc4)}
PLAIN = {"out_enc_policy": int(lt.enc_policy.pe_disabled), "in_enc_policy": int(lt.enc_policy.pe_disabled)}
_DEF = lt.default_settings()
LT_DEFAULTS = {k: _DEF[k] for k in ("out_enc_policy", "in_enc_policy", "allowed_enc_level", "prefer_rc4")}
MSE_LINE = re.compile(r"peer (\d+): mse handshake for torrent ([0-9a-f]{40}): (encrypted rc4|plaintext) "
                      r"\(offered ([a-z0-9+]+)\)")
ACCEPTED = re.compile(r"peer (\d+): accepted from ")


class LogWindow:
    """What hekate logged since the window was opened (its log file grows; the window is the new part)."""

    def __init__(self, seeder):
        self.seeder = seeder
        self.start = len(seeder.child.log())

    def text(self):
        return self.seeder.child.log()[self.start:]

    def methods(self, info_hash):
        """[(peer, method, offered)] of the MSE handshakes for info_hash in the window."""
        return [(int(m.group(1)), m.group(3), m.group(4)) for m in MSE_LINE.finditer(self.text())
                if m.group(2) == info_hash]

    def accepted(self):
        return [int(m.group(1)) for m in ACCEPTED.finditer(self.text())]


def lt_download(p, name, seeder, fixture, settings):
    save = p.path("dl", name)
    l = lt_client.Leecher(name, save, seeder.addr, torrent=fixture.torrent, settings=settings)
    try:
        r = lt_client.run_all([l], timeout=min(60, p.remaining()))[0]
    finally:
        l.close()
    n = verify.verify_download(fixture, save)
    seeder.assert_alive("after " + name)
    return r, n


def assert_all_rc4(win, fixture, what):
    ms = win.methods(fixture.info_hash)
    if not ms:
        raise AssertionError("%s: hekate logged no MSE handshake for %s" % (what, fixture.info_hash))
    plain = [m for m in ms if m[1] != "encrypted rc4"]
    if plain:
        raise AssertionError("%s: connections not encrypted: %r" % (what, plain))
    rc4 = set(m[0] for m in ms)
    served = set(int(x) for x in re.findall(r"peer (\d+): handshake for torrent %s " % fixture.info_hash, win.text()))
    if not served or served - rc4:
        raise AssertionError("%s: peers %r completed a BitTorrent handshake without rc4" % (what, sorted(served - rc4)))
    return ms


def body(p, checks, build_dir, source_dir):
    seed_dir = p.path("seed")
    fx = fixtures.make_single(os.path.join(seed_dir, "enc"), "encrypted payload.bin", 6 * MiB + 4321, 91, 64 * KiB)
    hekate = seeders.start_hekate(p, build_dir, [seed_dir], args=["-v"], name="hekate-allow")
    print("hekate (allow) on port %d (pid %d)" % (hekate.port, hekate.pid))
    trk = tracker.FakeTracker([hekate.addr], interval=2)

    def lt_forced():
        win = LogWindow(hekate)
        r, n = lt_download(p, "lt_forced", hekate, fx, FORCED)
        ms = assert_all_rc4(win, fx, "libtorrent forced")
        return "%d bytes verified in %.2f s over %d rc4 connection(s) (offered %s)" % (n, r["seconds"], len(ms),
                                                                                       ms[0][2])

    def lt_defaults():
        win = LogWindow(hekate)
        r, n = lt_download(p, "lt_defaults", hekate, fx, LT_DEFAULTS)
        acc, ms = win.accepted(), win.methods(fx.info_hash)
        if len(acc) != 1 or r["redials"] != 0:
            raise AssertionError("libtorrent with defaults needed %d connections (%d redials): %r" %
                                 (len(acc), r["redials"], win.text()[-2000:]))
        if "mse handshake failed" in win.text() or "refused" in win.text():
            raise AssertionError("a handshake was refused: %r" % win.text()[-2000:])
        how = ms[0][1] if ms else "plain BitTorrent"
        return "%d bytes verified in %.2f s on the first connection (%s)" % (n, r["seconds"], how)

    def aria2_case(name, extra, require_rc4):
        win = LogWindow(hekate)
        save = p.path("dl", name)
        aria2.download(p, fx.torrent, save, trk.url, timeout=min(60, p.remaining()), name="aria2c-" + name,
                       extra=extra)
        n = verify.verify_download(fx, save)
        hekate.assert_alive("after " + name)
        ms = assert_all_rc4(win, fx, name) if require_rc4 else win.methods(fx.info_hash)
        return "%d bytes verified; hekate saw %s" % (n, [m[1] for m in ms] or "plain BitTorrent only")

    def encrypted_flood(n_requests=100000):
        pid = hekate.pid
        before = procstat.status(pid)
        sampler = procstat.Sampler(pid, interval=0.005)
        win = LogWindow(hekate)
        hs = peerwire.PSTR + peerwire.reserved_bits() + bytes.fromhex(fx.info_hash) + peerwire.peer_id()
        s, enc = mse.connect(hekate.addr, bytes.fromhex(fx.info_hash), hs + peerwire.msg(peerwire.INTERESTED),
                             rcvbuf=4096)
        try:
            reqs = bytearray()
            n_pieces, plen = fx.num_pieces, fx.piece_length
            for i in range(n_requests):
                index = i % (n_pieces - 1)
                begin = ((i // (n_pieces - 1)) % (plen // peerwire.BLOCK)) * peerwire.BLOCK
                reqs += peerwire.request_msg(index, begin, peerwire.BLOCK)
            reqs = enc.apply(reqs)
            s.setblocking(False)
            sent, t_end = 0, time.monotonic() + 20
            while sent < len(reqs) and time.monotonic() < t_end:
                try:
                    sent += s.send(reqs[sent:sent + 65536])
                except BlockingIOError:
                    time.sleep(0.01)
                except (ConnectionResetError, BrokenPipeError):
                    break
            time.sleep(1.0)
            hekate.assert_alive("during the encrypted flood")
            if not any(m[1] == "encrypted rc4" for m in win.methods(fx.info_hash)):
                raise AssertionError("the flooder was not served rc4: %r" % win.text()[-2000:])
            r, n = lt_download(p, "lt_forced_during_flood", hekate, fx, FORCED)
            st = procstat.status(pid)
        finally:
            s.close()
            sampler.stop()
        grown = max(sampler.peak_anon, st["RssAnon"]) - before["RssAnon"]
        report = ("%d of %d requests written; RssAnon %d KiB before, peak %d KiB (+%d KiB); a forced download during "
                  "the flood: %d bytes in %.2f s" % (sent // 17, n_requests, before["RssAnon"] // 1024,
                                                     sampler.peak_anon // 1024, grown // 1024, n, r["seconds"]))
        if grown > 16 * MiB:
            raise AssertionError("an encrypted non-reader grew hekate's private memory too much: " + report)
        return report

    try:
        checks.run("lt_forced_is_served_rc4", lt_forced)
        checks.run("lt_defaults_first_attempt", lt_defaults)
        checks.run("aria2_require_crypto_is_served_rc4", aria2_case, "aria2_required",
                   ["--bt-require-crypto=true", "--bt-min-crypto-level=arc4"], True)
        checks.run("aria2_defaults", aria2_case, "aria2_defaults", [], False)
        checks.run("encrypted_non_reader_flood_bounded", encrypted_flood)
        checks.run("allow_seeder_stops_cleanly", hekate.stop_cleanly, p, signal.SIGTERM)
    finally:
        trk.close()

    req = seeders.start_hekate(p, build_dir, [seed_dir], args=["-v", "--encryption=require"], name="hekate-require")

    def require_refuses_plain():
        win = LogWindow(req)
        l = lt_client.Leecher("lt_plain_refused", p.path("dl", "refused"), req.addr, torrent=fx.torrent,
                              settings=PLAIN)
        try:
            t_end = time.monotonic() + 6
            while time.monotonic() < t_end and "encryption required" not in win.text():
                l.poll()
                time.sleep(0.1)
            time.sleep(1)
            l.poll()
            got = l.status().total_wanted_done
        finally:
            l.close()
        if got != 0:
            raise AssertionError("a plain peer got %d bytes from --encryption=require" % got)
        if "plain handshake refused: encryption required" not in win.text():
            raise AssertionError("hekate did not say why it refused: %r" % win.text()[-2000:])
        return "no byte; hekate: plain handshake refused: encryption required"

    def require_serves_forced():
        win = LogWindow(req)
        r, n = lt_download(p, "lt_forced_require", req, fx, FORCED)
        assert_all_rc4(win, fx, "libtorrent forced against --encryption=require")
        return "%d bytes verified in %.2f s, rc4" % (n, r["seconds"])

    checks.run("require_refuses_plain", require_refuses_plain)
    checks.run("require_serves_forced", require_serves_forced)
    checks.run("require_seeder_stops_cleanly", req.stop_cleanly, p, signal.SIGTERM)

    off = seeders.start_hekate(p, build_dir, [seed_dir], args=["-v", "--encryption=off"], name="hekate-off")

    def off_serves_plain():
        win = LogWindow(off)
        r, n = lt_download(p, "lt_plain_off", off, fx, PLAIN)
        if win.methods(fx.info_hash) or "mse handshake for torrent" in win.text():
            raise AssertionError("--encryption=off ran an MSE handshake")
        return "%d bytes verified in %.2f s, plain" % (n, r["seconds"])

    checks.run("off_serves_plain", off_serves_plain)
    checks.run("off_seeder_stops_cleanly", off.stop_cleanly, p, signal.SIGTERM)


if __name__ == "__main__":
    procs.main_wrapper("test_encryption", 240, body)
