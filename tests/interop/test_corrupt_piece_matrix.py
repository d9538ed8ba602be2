#!/usr/bin/python3
"""Interop (issue 10 acceptance): a corrupted piece is never sent, to any client of the client matrix (lib/clients.py:
python-libtorrent, aria2c, transmission-daemon, rtorrent, qbittorrent-nox, ctorrent, each with its own defaults),
and the rest of the torrent is served. hekate runs with its default lazy verification.

Each client gets two torrents of its own (so that each meets the damage itself), both with one flipped byte:
- single: a 1 MiB single-file torrent (32 KiB pieces), piece 5 corrupted; the client is the first to ask for it, so
  it was offered (HAVE_ALL or a full bitfield) and hekate must refuse it (reject, or drop the request of a peer
  without the fast extension, then choke + unchoke once it asks for nothing for 2 s);
- multi: a three-file torrent whose bad piece is in the middle and spans the boundary of its first two files; a raw
  peer asks for it before the client starts, so the client meets a torrent already known damaged (bitfield without
  the piece).
Both clients of a kind run at once; each is bounded (45 s, HEKATE_MATRIX_CLIENT_TIMEOUT) and stopped by PID once it
has every good piece (lib/clients.py wait_pieces: its files; Transmission's RPC, it caches writes) and hekate logged
the torrent damaged, plus 1 s; its files are checked once it stopped.
Asserted, per torrent: from the client's side, every good piece of its files equals the seeder's byte for byte, no
16 KiB block of the bad piece equals the seeder's (corrupted) block, and the client reports no hash failure where its
driver can read it (Client.hash_failures: libtorrent total_failed_bytes, Transmission corruptEver, qBittorrent
total_wasted, ctorrent's "hash check failed" lines; aria2c and rtorrent expose none); from hekate's side, the one line
"torrent HEX (name): damaged: piece N fails its hash", /metrics hekate_torrent_uploaded_bytes_total for the torrent
below the torrent's size less the bad piece (so the bad piece cannot have been sent whole) and how each client's
requests of the bad piece were refused (hekate at -v -v: rejected, or dropped without the fast extension), printed,
with the rejects of each torrent bounded (no reject storm: lt_donthave for clients that speak it, held rejects for
the others).
Transmission runs in a private network namespace with its own hekate, at the same time as the others, which run one
after another (lib/matrix.py says why: it refuses loopback peers; hekate is on 127.0.0.2 for ctorrent). Deadline 240 s.
Run a subset by naming clients after BUILD_DIR SOURCE_DIR."""
import os
import re
import sys
import time
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import clients, fixtures, matrix, peerwire, procs, seeders, tracker, trackers  # noqa: E402
from lib.fixtures import KiB, MiB  # noqa: E402

BLOCK = 16 * KiB
PIECE = 32 * KiB
# Fast clients ask again for a rejected block at once (aria2: ~4,000 times a second, libtorrent and qBittorrent
# 3,700-8,400 in their ~2 s here): hekate tells lt_donthave speakers the piece is gone and holds the others' rejects
# (HKS_BAD_REJECT_HOLD, 250 ms), so the rejects of one torrent stay under this many plus this many a second.
STORM_BASE, STORM_PER_S = 16, 20
GRACE = 1.0  # after the good pieces and the damaged line: the bad piece's requests have been answered by then
MULTI_SPEC = [("a/one.bin", 450 * KiB + 7), ("b/two.bin", 200 * KiB + 5), ("c/three.bin", 250 * KiB + 3)]


class Case:
    """One torrent with one flipped byte at torrent offset `at` (in piece `bad`); expected: the good pieces'
    bytes; wrong: the corrupted piece as the seeder holds it."""

    def __init__(self, label, fx, at, known_bad):
        self.label, self.fx, self.known_bad = label, fx, known_bad
        self.bad = at // fx.piece_length
        flip(fx, at)
        self.expected = {i: fx.read_range(i * fx.piece_length, fx.piece_size(i))
                         for i in range(fx.num_pieces) if i != self.bad}
        self.wrong = fx.read_range(self.bad * fx.piece_length, fx.piece_size(self.bad))
        self.good_bytes = sum(len(d) for d in self.expected.values())


def flip(fx, at):
    """Flips the byte at torrent offset `at` in the seeder's file holding it (the .torrent keeps the good hash)."""
    pos = 0
    for rel, size in fx.files:
        if pos <= at < pos + size:
            with open(fx.data_path(rel), "r+b") as f:
                f.seek(at - pos)
                b = f.read(1)
                f.seek(at - pos)
                f.write(bytes([b[0] ^ 0xFF]))
            return
        pos += size
    raise ValueError("offset %d beyond the torrent" % at)


def make_cases(root, kind, seed):
    single = fixtures.make_single(os.path.join(root, kind + "-s"), kind + "-single.bin", MiB + 4321, seed, PIECE)
    multi = fixtures.make_multi(os.path.join(root, kind + "-m"), kind + "-multi", MULTI_SPEC, seed, PIECE)
    boundary = multi.files[0][1]
    assert boundary // PIECE == (boundary + 100) // PIECE and boundary % PIECE > 100  # the piece spans the boundary
    return [Case("single", single, 5 * PIECE + PIECE // 2, False), Case("multi", multi, boundary + 100, True)]


def damaged_line(case):
    return re.compile(r"torrent %s \([^)]*\): damaged: piece %d fails its hash; it is never sent"
                      % (case.fx.info_hash, case.bad), re.I)


def make_known_bad(seeder, case):
    """A raw peer asks for the bad piece: hekate checks it and rejects it; later peers get a bitfield without it."""
    with peerwire.start_session(seeder.addr, case.fx.info_hash) as c:
        c.send_raw(peerwire.request_msg(case.bad, 0, BLOCK))
        mid, _, _ = c.recv_until({peerwire.PIECE, peerwire.REJECT}, timeout=20)
        if mid != peerwire.REJECT:
            raise AssertionError("the raw peer was sent piece %d instead of a reject" % case.bad)


def check_client_files(c, case, save):
    """The client's side, from its files once it stopped: good pieces equal, no block of the bad piece."""
    fx = case.fx
    held = clients.pieces_present(fx, save, case.expected)
    if held != set(case.expected):
        raise AssertionError("%s: good pieces %s differ from the seeder's"
                             % (c.kind, sorted(set(case.expected) - held)))
    off = case.bad * fx.piece_length
    got = clients.read_download(fx, save, off, len(case.wrong))
    same = [b for b in range(0, len(case.wrong), BLOCK) if got[b:b + BLOCK] == case.wrong[b:b + BLOCK]]
    if same:
        raise AssertionError("%s holds blocks at %s of the corrupted piece %d: they were sent"
                             % (c.kind, same, case.bad))


def refusals(log, case):
    """How hekate refused the bad piece to this torrent's peers, from its -v -v log: (fast peers' rejected requests,
    non-fast peers' dropped requests, peers that connected: fast / not)."""
    peers = dict(re.findall(r"peer (\d+): handshake for torrent %s \(fast (\w+)" % case.fx.info_hash, log, re.I))
    rej = re.findall(r"peer (\d+): %d/\d+/\d+ rejected: the piece fails its hash" % case.bad, log)
    closed = re.findall(r"peer (\d+): %d/\d+/\d+ dropped: the piece fails its hash" % case.bad, log)
    rej = [p for p in rej if p in peers]
    closed = [p for p in closed if p in peers]
    nfast = sum(1 for v in peers.values() if v == "yes")
    return len(rej), len(closed), nfast, len(peers) - nfast


def uploaded(metrics_port):
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % metrics_port, timeout=5).read().decode()
    out = {m.group(1).lower(): float(m.group(2)) for m in
           re.finditer(r'^hekate_torrent_uploaded_bytes_total\{info_hash="([0-9a-fA-F]+)"\} (\S+)$', body, re.M)}
    bad = re.search(r"^hekate_pieces_bad_total (\S+)$", body, re.M)
    return out, float(bad.group(1)) if bad else None


def run_kind(p, seeder, metrics_port, kind, cases):
    """Both of a kind's clients at once; returns the check's summary."""
    log_from = len(seeder.child.log())
    for case in cases:
        if case.known_bad:
            make_known_bad(seeder, case)
    started, timing = [], {}
    t0 = time.monotonic()
    try:
        for case in cases:
            save = p.path("clients", kind, case.label, "download")
            started.append((case, save, clients.start(kind, p, p.path("clients", kind, case.label), case.fx.torrent,
                                                      save)))
        for case, save, c in started:
            line = damaged_line(case)
            clients.wait_pieces(p, c, case.fx, save, case.expected, matrix.CLIENT_TIMEOUT,
                                also=lambda: line.search(seeder.child.log()) is not None)
            timing[case.label] = time.monotonic() - t0  # both started at t0
        time.sleep(GRACE)
        fails = {}
        for case, _, c in started:
            if not c.child.alive():
                raise AssertionError("%s exited (%s) before it was stopped" % (c.kind, c.child.returncode()))
            f = c.hash_failures()
            if f:
                raise AssertionError("%s reports %s bytes/pieces that failed their hash" % (c.kind, f))
            fails[case.label] = "n/a" if f is None else "0"
        for _, _, c in started:
            c.stop()  # a client's write cache is on disk once it stopped
        elapsed = time.monotonic() - t0
        for case, save, c in started:
            check_client_files(c, case, save)
    except BaseException:
        for _, _, c in started:
            sys.stdout.write("----- %s log (tail)\n%s\n-----\n" % (c.kind, c.log()[-4000:]))
        raise
    finally:
        for _, _, c in started:
            c.stop()
    seeder.assert_alive("after " + kind)
    log = seeder.child.log()[log_from:]
    up, _ = uploaded(metrics_port)
    parts = []
    for case in cases:
        lines = [l for l in seeder.child.log().splitlines() if damaged_line(case).search(l)]
        if len(lines) != 1:
            raise AssertionError("hekate logged %d damaged lines for %s, not 1: %r" % (len(lines), case.label, lines))
        sent = up.get(case.fx.info_hash.lower(), 0)
        limit = case.fx.total_size - len(case.wrong)
        if sent > limit:
            raise AssertionError("%s: hekate uploaded %d bytes of %s, more than all its good pieces (%d)"
                                 % (kind, sent, case.label, limit))
        if sent < case.good_bytes * 0.99:
            raise AssertionError("%s: hekate's /metrics count %d bytes for %s, below its good pieces (%d)"
                                 % (kind, sent, case.label, case.good_bytes))
        rej, closed, nfast, nslow = refusals(log, case)
        told = len(re.findall(r"peer \d+: lt_donthave %d: the piece fails its hash" % case.bad, log))
        storm = STORM_BASE + STORM_PER_S * elapsed
        if rej > storm:
            raise AssertionError("%s: %d requests of the bad piece %d rejected in %.1f s (bound %d): a reject storm"
                                 % (case.label, rej, case.bad, elapsed, storm))
        if case.known_bad is False and rej + closed == 0:
            raise AssertionError("%s never had a request of piece %d refused (peers: %d fast, %d not):\n%s"
                                 % (case.label, case.bad, nfast, nslow, log[-3000:]))
        parts.append("%s piece %d: good %d/%d pieces in %.1f s, %d bytes uploaded; peers %d fast/%d not, %d requests "
                     "rejected, %d dropped, %d told lt_donthave; hash failures %s" % (
                         case.label, case.bad, len(case.expected), case.fx.num_pieces, timing[case.label], sent,
                         nfast, nslow, rej, closed, told, fails[case.label]))
    return "%s: %s" % (kind, "; ".join(parts))


def serve(p, build_dir, host, kinds):
    """Torrents for each kind, a tracker returning hekate at host, hekate (-v -v, /metrics)."""
    cases = {k: make_cases(p.path("seed"), k, 200 + sorted(clients.KINDS).index(k)) for k in kinds}
    port, mport = procs.free_port(), procs.free_port()
    trk = tracker.FakeTracker([(host, port)], interval=5)
    for cs in cases.values():
        for case in cs:
            trackers.set_trackers(case.fx.torrent, [[trk.url]])
    seeder = seeders.start_hekate(p, build_dir, [p.path("seed")], port=port, host=host,
                                  args=["-v", "-v", "--metrics=127.0.0.1:%d" % mport, "--metrics-top=64"])
    return cases, trk, seeder, mport


def run_all(p, checks, build_dir, host, kinds):
    cases, trk, seeder, mport = serve(p, build_dir, host, kinds)
    print("hekate on %s:%d (pid %d), tracker %s" % (seeder.addr + (seeder.pid, trk.url)))
    try:
        for kind in kinds:
            checks.run("corrupt_" + kind, run_kind, p, seeder, mport, kind, cases[kind])

        def counted():
            _, bad = uploaded(mport)
            if bad != 2 * len(kinds):
                raise AssertionError("hekate_pieces_bad_total %r, expected %d" % (bad, 2 * len(kinds)))
            return "hekate_pieces_bad_total %d" % bad
        checks.run("metrics_count_every_bad_piece", counted)
        checks.run("hekate_stops_cleanly", seeder.stop_cleanly, p)
    finally:
        trk.close()


def netns_child(kind):
    def child(p, checks, build_dir, source_dir):
        for argv in (["ip", "link", "set", "lo", "up"], ["ip", "addr", "add", matrix.NETNS_HOST + "/32", "dev", "lo"]):
            rc, out = p.run("ip", argv, timeout=10)
            if rc != 0:
                raise RuntimeError("%s failed in the network namespace: %s" % (" ".join(argv), out))
        run_all(p, checks, build_dir, matrix.NETNS_HOST, [kind])
    procs.main_wrapper("test_corrupt_piece_matrix-netns-" + kind, matrix.CLIENT_TIMEOUT + 60, child)


def main():
    rest = sys.argv[3:]
    if "--netns" in rest:
        netns_child(rest[rest.index("--netns") + 1])
        return
    wanted = [k for k in rest if not k.startswith("-")] or list(clients.KINDS)
    script = os.path.abspath(sys.argv[0])

    def body(p, checks, build_dir, source_dir):
        ns = [k for k in wanted if k in matrix.NETNS_KINDS]
        children = [(k, matrix.start_in_netns(p, script, build_dir, source_dir, k)) for k in ns]
        try:
            run_all(p, checks, build_dir, matrix.SEED_HOST, [k for k in wanted if k not in matrix.NETNS_KINDS])
        finally:
            for k, child in children:
                checks.run("corrupt_" + k, lambda k=k, child=child: "in a private network namespace at %s: %s" % (
                    matrix.NETNS_HOST, " | ".join(l.split(": ", 1)[-1] for l in
                                                 matrix.netns_result(p, child, k, matrix.CLIENT_TIMEOUT + 70))))
    procs.main_wrapper("test_corrupt_piece_matrix", 240, body)


if __name__ == "__main__":
    main()
