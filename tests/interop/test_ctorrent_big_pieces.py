#!/usr/bin/python3
"""Interop: ctorrent (Enhanced CTorrent 3.3.2, no fast extension, no LTEP, so it never learns hekate's reqq)
downloads a single-file torrent with 4 MiB pieces (40 MiB) from hekate, with its own defaults (lib/clients.py),
byte for byte, within 60 s. On a 4 MiB piece it pipelines more requests than hekate's request queue holds; hekate
used to drop the overflow silently ("drop request ... (queue full)"), and a peer without the fast extension cannot
be told, so ctorrent waited forever for blocks that never came (issue 9: "did not complete" after 85 s). Now such a
peer must be served or choked (BEP 3: a choke discards its requests, it asks again after the unchoke). The check
also asserts that hekate's log (at -v: DEBUG) holds no "drop request ... (queue full)" line (drops by a choke the peer sees are allowed). hekate is bound to 127.0.0.2 (ctorrent
ignores peers at its own address, lib/matrix.py). Deadline 120 s."""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import clients, fixtures, matrix, procs, seeders, tracker, trackers, verify  # noqa: E402
from lib.fixtures import MiB  # noqa: E402

TIMEOUT = 60


def body(p, checks, build_dir, source_dir):
    fx = fixtures.make_single(p.path("seed", "big"), "big pieces.bin", 40 * MiB, 41, 4 * MiB)
    port = procs.free_port()
    trk = tracker.FakeTracker([(matrix.SEED_HOST, port)], interval=5)
    trackers.set_trackers(fx.torrent, [[trk.url]])
    hk = seeders.start_hekate(p, build_dir, [p.path("seed")], port=port, host=matrix.SEED_HOST, args=["-v"])
    print("hekate on %s:%d (pid %d), %d pieces of %d" % (matrix.SEED_HOST, port, hk.pid, fx.num_pieces,
                                                         fx.piece_length))

    def download():
        save = p.path("dl")
        c = clients.start("ctorrent", p, p.path("ctorrent"), fx.torrent, save)
        try:
            secs = clients.wait_complete(p, c, TIMEOUT)
        except BaseException:
            sys.stdout.write("----- ctorrent log (tail)\n%s\n-----\n" % c.log()[-3000:])
            raise
        finally:
            c.stop()
        n = verify.verify_download(fx, save)
        hk.assert_alive("after ctorrent")
        return "%d bytes verified in %.1f s" % (n, secs)

    def no_silent_drop():
        # a drop the peer cannot see is one for a full queue; "(choked)" or "... the coming choke discards it" are
        # requests discarded by a choke the peer sees (BEP 3)
        drops = [l for l in hk.child.log().splitlines() if "drop request" in l and "(queue full)" in l]
        if drops:
            raise AssertionError("%d requests dropped silently, e.g. %s" % (len(drops), drops[0]))
        return "no request dropped silently"
    try:
        checks.run("ctorrent_4mib_pieces", download)
        checks.run("no_silent_drop", no_silent_drop)
        checks.run("hekate_stops_cleanly", hk.stop_cleanly, p)
    finally:
        trk.close()


if __name__ == "__main__":
    procs.main_wrapper("test_ctorrent_big_pieces", 120, body)
