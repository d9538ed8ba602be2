#!/usr/bin/python3
"""Interop: the latency and state families of /metrics (issue 11 item 1). (a) After a python-libtorrent download
(verified byte for byte) hekate_request_first_byte_seconds counted every block served (_count equals
hekate_blocks_sent_total; buckets cumulative, +Inf = _count); (b) a torrent with one flipped byte: a raw peer asks
for a block of that piece, the verification fails, and hekate_torrents{state="damaged"} is 1 (the healthy torrent is
not counted), and `hekatectl torrent` says its state is damaged; (c) a torrent announcing to an HTTP tracker that answers after 0.4 s and to a UDP tracker that refuses
every announce: hekate_tracker_announce_duration_seconds{protocol="http"} and {protocol="udp"} each count their
answers, the HTTP one with nothing at or under 0.25 s and a sum of at least 0.4 s per answer; (d) with --verify=full
at a low rate, hekate_torrents{state="verifying"} is 1 while the background pass sweeps the torrent (hekatectl says
verifying too); promtool passes on every body. Deadline 150 s."""
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import fixtures, lt_client, peerwire, procs, seeders, trackers, verify  # noqa: E402
from lib.fixtures import KiB, MiB  # noqa: E402
from lib.procs import free_port, wait_port  # noqa: E402

PROMTOOL = "/usr/bin/promtool"
BUILD = [None]  # the build directory, set by body()


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        return r.read().decode()


def value(body, series):
    m = re.search(r"^%s (\S+)$" % re.escape(series), body, re.M)
    return float(m.group(1)) if m else None


def promtool_check(p, body):
    path = p.path("body-%d.prom" % int(time.monotonic() * 1000))
    with open(path, "w") as f:
        f.write(body)
    with open(path, "rb") as f:
        r = subprocess.run([PROMTOOL, "check", "metrics"], stdin=f, capture_output=True, timeout=30)
    out = (r.stdout + r.stderr).decode().strip()
    if r.returncode != 0 or out:
        raise AssertionError("promtool check metrics: status %d: %s" % (r.returncode, out))


def buckets(body, name, labels=""):
    pat = r"^%s_bucket\{%sle=\"[^\"]+\"\} (\S+)$" % (re.escape(name), re.escape(labels))
    return [float(v) for v in re.findall(pat, body, re.M)]


def first_byte(p, seeder, mport, fx):
    save = p.path("dl")
    lt_client.download("leecher", save, seeder.addr, timeout=min(60, p.remaining()), torrent=fx.torrent)
    verify.verify_download(fx, save)
    body = scrape(mport)
    promtool_check(p, body)
    n = "hekate_request_first_byte_seconds"
    count, blocks = value(body, n + "_count"), value(body, "hekate_blocks_sent_total")
    b = buckets(body, n)
    if not blocks or count != blocks or b[-1] != count or any(x > y for x, y in zip(b, b[1:])):
        raise AssertionError("first byte: count %r, blocks sent %r, buckets %r" % (count, blocks, b))
    return "%d blocks, %d observed, sum %.4f s" % (blocks, count, value(body, n + "_sum"))


def flip_byte(fx, piece):
    off = piece * fx.piece_length + fx.piece_length // 2
    with open(fx.data_path(fx.files[0][0]), "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 0xFF]))


def damaged(p, seeder, mport, bad):
    before = value(scrape(mport), 'hekate_torrents{state="damaged"}')
    if before != 0:
        raise AssertionError("damaged before any check: %r" % before)
    with peerwire.start_session(seeder.addr, bad.info_hash) as c:
        c.send_raw(peerwire.request_msg(1, 0, 16 * KiB))
        mid, _, _ = c.recv_until({peerwire.PIECE, peerwire.REJECT}, timeout=20)
        if mid != peerwire.REJECT:
            raise AssertionError("the corrupted piece was sent (message %d)" % mid)
    body = scrape(mport)
    promtool_check(p, body)
    ctl = subprocess.run([os.path.join(BUILD[0], "backend-real", "hekatectl"), "-s", p.path("hk.ctl"), "--json",
                          "torrent", bad.info_hash], capture_output=True, text=True, timeout=20)
    state = json.loads(ctl.stdout)["torrent"]["state"] if ctl.returncode == 0 else ctl.stderr
    if state != "damaged":
        raise AssertionError("hekatectl torrent: state %r" % state)
    got = value(body, 'hekate_torrents{state="damaged"}')
    if got != 1 or value(body, "hekate_pieces_bad_total") != 1:
        raise AssertionError("damaged %r, bad pieces %r" % (got, value(body, "hekate_pieces_bad_total")))
    return "damaged 1 after the rejected request (hekatectl says damaged too); verifying now %r" % value(
        body, 'hekate_torrents{state="verifying"}')


def verifying_during_pass(p, build_dir):
    """--verify=full at 256 KiB/s over a 4 MiB torrent (16 s of checking): while the pass sweeps it,
    hekate_torrents{state="verifying"} is 1 and `hekatectl torrent` says verifying; the other torrent of the folder,
    checked first or after, is counted only while swept (at most 1 verifying at a time, the pass takes one torrent)."""
    fx = fixtures.make_single(p.path("pass"), "swept.bin", 4 * MiB, 14, 64 * KiB)
    mport = free_port()
    ctl = p.path("pass.ctl")
    hk = seeders.start_hekate(p, build_dir, [p.path("pass")], name="hekate-pass",
                              args=["--verify=full", "--verify-rate=256K", "--metrics=127.0.0.1:%d" % mport,
                                    "--control=" + ctl])
    try:
        wait_port(mport, hk.child, timeout=30)
        t_end, seen = time.monotonic() + 10, None
        while time.monotonic() < t_end:
            body = scrape(mport)
            seen = value(body, 'hekate_torrents{state="verifying"}')
            if seen == 1:
                break
            time.sleep(0.2)
        if seen != 1:
            raise AssertionError("verifying %r during the pass" % seen)
        promtool_check(p, body)
        out = subprocess.run([os.path.join(build_dir, "backend-real", "hekatectl"), "-s", ctl, "--json", "torrent",
                              fx.info_hash], capture_output=True, text=True, timeout=20)
        state = json.loads(out.stdout)["torrent"]["state"] if out.returncode == 0 else out.stderr
        if state != "verifying":
            raise AssertionError("hekatectl torrent during the pass: state %r" % state)
        hk.stop_cleanly(p, signal.SIGTERM)
        return "verifying 1 while the pass sweeps the torrent (hekatectl: verifying)"
    finally:
        p.stop(hk.child)


def tracker_latency(p, build_dir):
    slow = trackers.FakeHttpTracker("slow", delay=0.4)
    udp = trackers.FakeUdpTracker("error")
    try:
        fx = fixtures.make_single(p.path("ann"), "announced.bin", 100000, 13, 32 * KiB)
        trackers.set_trackers(fx.torrent, [[slow.url], [udp.url]])
        mport = free_port()
        hk = trackers.start_hekate_announcing(p, build_dir, [p.path("ann")], name="hekate-ann",
                                              args=["--metrics=127.0.0.1:%d" % mport])
        wait_port(mport, hk.child, timeout=30)
        n = "hekate_tracker_announce_duration_seconds"
        t_end = time.monotonic() + 30
        while True:
            body = scrape(mport)
            http_n = value(body, n + '_count{protocol="http"}')
            udp_n = value(body, n + '_count{protocol="udp"}')
            if http_n and udp_n:
                break
            if time.monotonic() > t_end:
                raise AssertionError("announce latency counts: http %r, udp %r" % (http_n, udp_n))
            time.sleep(0.2)
        promtool_check(p, body)
        http_b = buckets(body, n, 'protocol="http",')
        le_025 = value(body, n + '_bucket{protocol="http",le="0.25"}')
        http_sum = value(body, n + '_sum{protocol="http"}')
        if le_025 != 0 or http_sum < 0.4 * http_n or http_b[-1] != http_n:
            raise AssertionError("http: <=0.25 s %r, sum %r for %r answers" % (le_025, http_sum, http_n))
        if value(body, n + '_count{protocol="https"}') != 0:
            raise AssertionError("an https announce was counted")
        hk.stop_cleanly(p, signal.SIGTERM)
        return "http: %d answers, sum %.3f s; udp: %d answers, sum %.4f s" % (
            http_n, http_sum, udp_n, value(body, n + '_sum{protocol="udp"}'))
    finally:
        slow.close()
        udp.close()


def body(p, checks, build_dir, source_dir):
    good = fixtures.make_single(p.path("seed", "good"), "good.bin", 2 * MiB + 333, 11, 64 * KiB)
    bad = fixtures.make_single(p.path("seed", "bad"), "bad.bin", 256 * KiB, 12, 32 * KiB)
    flip_byte(bad, 1)
    mport = free_port()
    BUILD[0] = build_dir
    seeder = seeders.start_hekate(p, build_dir, [p.path("seed")], wait=False,
                                  args=["--metrics=127.0.0.1:%d" % mport, "--control=" + p.path("hk.ctl")])
    wait_port(mport, seeder.child, timeout=30)
    wait_port(seeder.port, seeder.child, timeout=30)
    checks.run("first_byte_counts_every_block", first_byte, p, seeder, mport, good)
    checks.run("damaged_torrent_counted", damaged, p, seeder, mport, bad)
    checks.run("seeder_stops_cleanly", seeder.stop_cleanly, p, signal.SIGINT)
    checks.run("tracker_latency_by_protocol", tracker_latency, p, build_dir)
    checks.run("verifying_during_full_pass", verifying_during_pass, p, build_dir)


if __name__ == "__main__":
    procs.main_wrapper("test_metrics_latency", 150, body)
