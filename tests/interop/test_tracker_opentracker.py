#!/usr/bin/python3
"""Interop: hekate announces to a real opentracker (HTTP and UDP, started here on 127.0.0.1, stopped by PID).
opentracker's scrape must show hekate as the seed of each torrent; a python-libtorrent leecher that knows only the
.torrent (no peer address) must find hekate through the tracker and download the data, verified byte for byte; on
SIGTERM hekate sends `stopped` and opentracker forgets it. hekate -l lists the trackers by tier; with -t nothing is
announced. Deadline 200 s."""
import os
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import fixtures, procs, trackers, verify  # noqa: E402
from lib.fixtures import KiB, MiB  # noqa: E402
from lib.seeders import SANITIZER_MARKERS, hekate_binary  # noqa: E402


def body(p, checks, build_dir, source_dir):
    seed = p.path("seed")
    fx = {
        "http": fixtures.make_single(os.path.join(seed, "http"), "over-http.bin", MiB + 4321, 11, 64 * KiB),
        "udp": fixtures.make_single(os.path.join(seed, "udp"), "over-udp.bin", 700001, 12, 32 * KiB),
        "tiers": fixtures.make_multi(os.path.join(seed, "tiers"), "two tiers", [("a.bin", 200000),
                                                                                ("b/c.bin", 90001)], 13, 32 * KiB),
    }
    ot = trackers.OpenTracker(p, [f.info_hash for f in fx.values()])
    dead_udp = "udp://127.0.0.1:%d/announce" % trackers.free_port_tcp_udp()
    trackers.set_trackers(fx["http"].torrent, [[ot.http_url]])
    trackers.set_trackers(fx["udp"].torrent, [[ot.udp_url]])
    trackers.set_trackers(fx["tiers"].torrent, [[dead_udp, ot.udp_url], [ot.http_url]])
    print("opentracker on port %d (pid %d)" % (ot.port, ot.child.pid))

    def listing():
        r = subprocess.run([hekate_binary(build_dir), "-l", seed], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
        out = r.stdout.decode()
        assert r.returncode == 0, out
        assert "tier 1: %s\n" % ot.http_url in out, out
        assert "tier 1: %s %s\n" % (dead_udp, ot.udp_url) in out, out
        assert "tier 2: %s\n" % ot.http_url in out, out
        return "trackers listed by tier"
    checks.run("list_shows_tiers", listing)

    def no_trackers_flag():
        quiet = trackers.start_hekate_announcing(p, build_dir, [seed], args=["-t"], name="hekate-t")
        time.sleep(2)
        for f in fx.values():
            assert ot.scrape(f.info_hash)["complete"] == 0
        p.stop(quiet.child)
        return "with -t nothing is announced"
    checks.run("no_trackers_flag", no_trackers_flag)

    hk = trackers.start_hekate_announcing(p, build_dir, [seed], args=["-v", "-v", "-v"])
    print("hekate on port %d (pid %d)" % (hk.port, hk.pid))

    def seeded(name):
        r = ot.wait_seeds(fx[name].info_hash, 1, timeout=min(30, p.remaining()))
        return "scrape: %r" % r
    for name in fx:
        checks.run("opentracker_lists_hekate_as_seed_" + name, seeded, name)

    def peer_registered():
        peers, torrents = ot.peers_and_torrents()
        assert torrents == 3 and peers >= 3, (peers, torrents)
        return "%d peers on %d torrents" % (peers, torrents)
    checks.run("opentracker_stats", peer_registered)

    def leech(name):
        save = p.path("dl", name)
        l = trackers.TrackerLeecher(name, save, fx[name].torrent)
        try:
            r = l.run(min(60, p.remaining()))
        finally:
            l.close()
        n = verify.verify_download(fx[name], save)
        hk.assert_alive()
        return "%d bytes verified in %.1f s, found through the tracker" % (n, r["seconds"])
    for name in fx:
        checks.run("leecher_finds_hekate_via_tracker_" + name, leech, name)

    def log_says():
        log = hk.child.log()
        assert "announce started ok" in log, log[-3000:]
        assert "tracker %s" % ot.udp_url in log and "tracker %s" % ot.http_url in log
        return "started announces logged"
    checks.run("announces_logged", log_says)

    def stop_sends_stopped():
        for name in fx:  # listed before the stop, or the check below could not fail
            listed = ot.peers(fx[name].info_hash)
            assert ("127.0.0.1", hk.port) in listed, (name, hk.port, listed)
        hk.child.popen.send_signal(signal.SIGTERM)
        status = hk.child.popen.wait(timeout=15)
        assert status == 0, status
        # hekate's own entry must be gone (the leechers, seeds by now, may still be listed: their own `stopped`
        # is theirs to send)
        for name in fx:
            ot.wait_peer_gone(fx[name].info_hash, hk.port, timeout=5)
        log = hk.child.log()
        assert "announce stopped ok" in log, log[-3000:]
        assert not any(m in log for m in SANITIZER_MARKERS), "sanitizer report in hekate's log"

        return "exit 0; opentracker no longer lists hekate for any torrent"
    checks.run("stopped_on_sigterm", stop_sends_stopped)


if __name__ == "__main__":
    procs.main_wrapper("test_tracker_opentracker", 200, body)
