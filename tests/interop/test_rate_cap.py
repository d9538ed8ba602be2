#!/usr/bin/python3
"""Interop (issue 11 item 5): hekate's upload rate caps hold against a real client. A python-libtorrent leecher
downloads a 16 MiB torrent (16 KiB blocks, 256 KiB pieces) from hekate started with --upload-rate=2M, then from a
fresh hekate started with --torrent-upload-rate=2M instead; each download is verified byte for byte and its transfer
(from the first payload byte libtorrent reports, polled every 5 ms, to completion) must take 8 s +- 15 % (6.8 ..
9.2 s); the time from adding the torrent is printed too. A first download without a cap is the control: its
transfer must be faster than 6.8 s, so the cap is what the bound measures.

The bound: the cap counts piece messages with their 13-byte headers, so 16 MiB is 1024 x 16397 = 16,790,528 bytes
of tokens, 8.006 s at 2 MiB/s (2,097,152 B/s). The bucket starts full with its auto burst (a tenth of a second of
the rate, 209,715 bytes), so the cap allows the transfer in 7.906 s at best (-1.2 % of 8 s); a cap that let 15 %
more through would be under 6.8 s. Above it, the transfer adds libtorrent's request ramp-up at the start (its queue
grows with the rate it measures, and tokens beyond the burst are lost while it is short), its piece verification
and the polling: a few hundred milliseconds on a loaded machine; +15 % (9.2 s) leaves 1.3 s for them, and a cap 15 %
too tight would be over it. The uncapped control shows that the machine goes much faster, so the bound measures the
cap. Deadline 150 s (about 30 s when passing)."""
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import fixtures, lt_client, procs, seeders, verify  # noqa: E402
from lib.fixtures import KiB, MiB  # noqa: E402

SIZE = 16 * MiB
RATE = "2M"
EXPECTED = 8.0
LOW, HIGH = EXPECTED * 0.85, EXPECTED * 1.15
TIMEOUT = 40.0


def download(p, fx, seeder, name):
    """Downloads the torrent; returns (seconds from adding it, seconds from its first payload byte) to completion."""
    l = lt_client.Leecher(name, p.path("dl", name), seeder.addr, torrent=fx.torrent)
    t_first = None
    try:
        deadline = time.monotonic() + TIMEOUT
        while not l.poll():
            if t_first is None and l.status().total_payload_download > 0:
                t_first = time.monotonic()
            if time.monotonic() > deadline:
                raise AssertionError("%s: not complete after %.0f s: %r" % (name, TIMEOUT, l.report()))
            time.sleep(0.005)
        r = l.report()
        if r["hash_failures"] or r["errors"]:
            raise AssertionError("%s: %r" % (name, r))
    finally:
        l.close()
    verify.verify_download(fx, l.save_dir)
    return r["seconds"], l.t_done - (t_first if t_first is not None else l.t_start)


def body(p, checks, build_dir, source_dir):
    seed_dir = p.path("seed")
    fx = fixtures.make_single(seed_dir, "capped.bin", SIZE, 21, 256 * KiB)
    times = {}

    def run(name, args, check):
        seeder = seeders.start_hekate(p, build_dir, [seed_dir], args=args, name="hekate_" + name)
        try:
            total, t = download(p, fx, seeder, name)
            times[name] = t
            seeder.assert_alive()
            return check(t) + "; %.2f s from adding the torrent" % total
        finally:
            seeder.stop_cleanly(p)

    def control(t):
        if t >= LOW:
            raise AssertionError("uncapped transfer took %.2f s, not under %.1f s: the bound would not show the cap"
                                 % (t, LOW))
        return "transfer %.2f s uncapped, verified" % t

    def within(t):
        if not LOW <= t <= HIGH:
            raise AssertionError("took %.2f s, outside %.1f .. %.1f s (8 s +- 15 %%)" % (t, LOW, HIGH))
        return "transfer %.2f s (%+.1f %% of 8 s), verified" % (t, 100.0 * (t / EXPECTED - 1))

    checks.run("uncapped_control", run, "uncapped", [], control)
    checks.run("upload_rate_2M", run, "upload_rate", ["--upload-rate=" + RATE], within)
    checks.run("torrent_upload_rate_2M", run, "torrent_rate", ["--torrent-upload-rate=" + RATE], within)
    print("figures: " + ", ".join("%s %.2f s" % kv for kv in times.items()))


if __name__ == "__main__":
    procs.main_wrapper("test_rate_cap", 150, body)
