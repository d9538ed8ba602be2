#!/usr/bin/python3
"""Interop: hekate against misbehaving trackers, one torrent each: a failure reason, garbage, HTTP 500, a tracker
that accepts the connection and never answers, a UDP tracker that never answers (BEP 15 retransmission after 15 s),
one that answers with errors, one that answers garbage. Each failure is logged with what went wrong; none of them
stalls serving: a libtorrent download from hekate succeeds meanwhile, and SIGTERM still ends hekate within the
bounded `stopped` time even though one tracker never answers its `stopped`. Deadline 150 s."""
import os
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import fixtures, lt_client, procs, trackers, verify  # noqa: E402
from lib.fixtures import KiB, MiB  # noqa: E402
from lib.seeders import SANITIZER_MARKERS  # noqa: E402


def wait_log(hk, text, timeout):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if text in hk.child.log():
            return
        time.sleep(0.1)
    raise AssertionError("hekate's log does not say %r after %.0f s; tail:\n%s" % (text, timeout,
                                                                                    hk.child.log()[-3000:]))


def body(p, checks, build_dir, source_dir):
    seed = p.path("seed")
    fakes = {
        "failure": trackers.FakeHttpTracker("failure"),
        "garbage": trackers.FakeHttpTracker("garbage"),
        "http500": trackers.FakeHttpTracker("500"),
        "hang": trackers.FakeHttpTracker("hang"),
        "udp_silent": trackers.FakeUdpTracker("silent"),
        "udp_error": trackers.FakeUdpTracker("error"),
        "udp_garbage": trackers.FakeUdpTracker("garbage"),
        "stopless": trackers.FakeHttpTracker("stopless"),
    }
    fx = {}
    for i, (name, fake) in enumerate(fakes.items()):
        fx[name] = fixtures.make_single(os.path.join(seed, name), name + ".bin", 300000 + i, 20 + i, 32 * KiB)
        trackers.set_trackers(fx[name].torrent, [[fake.url]])
    big = fixtures.make_single(os.path.join(seed, "big"), "big.bin", 8 * MiB + 5, 40, 256 * KiB)
    trackers.set_trackers(big.torrent, [[fakes["hang"].url]])  # the leecher announces there too
    t0 = time.monotonic()
    hk = trackers.start_hekate_announcing(p, build_dir, [seed], args=["-v", "-v"])
    print("hekate on port %d (pid %d)" % (hk.port, hk.pid))

    try:
        def reason_logged():
            wait_log(hk, "tracker %s: announce of %s refused: torrent not registered here" % (
                fakes["failure"].url, fx["failure"].info_hash), 10)
            return "failure reason logged, naming the torrent"
        checks.run("failure_reason_logged", reason_logged)

        def garbage_logged():
            wait_log(hk, "tracker %s: bad reply: at byte 0: not bencode" % fakes["garbage"].url, 10)
            return "garbage named with its offset"
        checks.run("garbage_reply_logged", garbage_logged)

        def http500_logged():
            wait_log(hk, "tracker %s: no answer: HTTP 500" % fakes["http500"].url, 10)
            return "HTTP 500 logged"
        checks.run("http_500_logged", http500_logged)

        def udp_error_logged():
            wait_log(hk, "tracker %s: announce of %s refused: no such torrent" % (fakes["udp_error"].url,
                                                                                  fx["udp_error"].info_hash), 10)
            return "UDP error reply logged"
        checks.run("udp_error_reply_logged", udp_error_logged)

        def udp_garbage_logged():
            wait_log(hk, "tracker %s: bad connect reply" % fakes["udp_garbage"].url, 10)
            return "UDP garbage logged"
        checks.run("udp_garbage_logged", udp_garbage_logged)

        def serving_not_stalled():
            save = p.path("dl", "big")
            r = lt_client.download("big", save, hk.addr, timeout=min(60, p.remaining()), torrent=big.torrent)
            n = verify.verify_download(big, save)
            return "%d bytes verified in %.2f s while the trackers misbehave" % (n, r["seconds"])
        checks.run("download_meanwhile", serving_not_stalled)

        def hang_held():
            assert fakes["hang"].connections >= 1 and len(fakes["hang"].requests) >= 1
            assert fakes["hang"].requests[0].get("event") == "started", fakes["hang"].requests[0]
            return "%d connections held open by the hanging tracker" % fakes["hang"].connections
        checks.run("hanging_tracker_reached", hang_held)

        def udp_retransmits():
            fake = fakes["udp_silent"]
            t_end = time.monotonic() + 25
            while len(fake.received) < 2 and time.monotonic() < t_end:
                time.sleep(0.2)
            assert len(fake.received) >= 2, fake.received
            gaps = [round(b[0] - a[0], 1) for a, b in zip(fake.received, fake.received[1:])]
            # the connect is retransmitted after 15 s (only hekate knows this tracker)
            assert any(14.0 <= g <= 16.5 for g in gaps), gaps
            assert all(pkt[8:12] == b"\x00\x00\x00\x00" for _, pkt in fake.received), "only connects"
            return "connect retransmitted after %s s" % gaps
        checks.run("udp_silent_retransmission_15s", udp_retransmits)

        def hang_times_out():
            left = 33 - (time.monotonic() - t0)
            wait_log(hk, "tracker %s: no answer: timeout" % fakes["hang"].url, max(5, left + 5))
            return "the hanging HTTP tracker ended by the 30 s total timeout"
        checks.run("hanging_tracker_times_out", hang_times_out)
        def stopless_registered():
            t_end = time.monotonic() + 10
            while not fakes["stopless"].requests and time.monotonic() < t_end:
                time.sleep(0.1)
            assert fakes["stopless"].requests[0].get("event") == "started"
            return "registered on the tracker that will not answer `stopped`"
        checks.run("stopless_registered", stopless_registered)
    finally:
        def stop_bounded():
            s0 = time.monotonic()
            hk.child.popen.send_signal(signal.SIGTERM)
            status = hk.child.popen.wait(timeout=15)
            took = time.monotonic() - s0
            assert status == 0, status
            assert 4 < took < 8, "the unanswered `stopped` is given up after 5 s, not %.1f" % took
            assert "1 `stopped` announces given up" in hk.child.log(), hk.child.log()[-2000:]
            assert fakes["stopless"].requests[-1].get("event") == "stopped"
            assert not any(m in hk.child.log() for m in SANITIZER_MARKERS), "sanitizer report in hekate's log"
            return "exit 0 after %.1f s (bounded: one `stopped` never answered)" % took
        checks.run("sigterm_bounded", stop_bounded)
        for f in fakes.values():
            f.close()


if __name__ == "__main__":
    procs.main_wrapper("test_tracker_failures", 150, body)
