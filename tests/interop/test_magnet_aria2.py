#!/usr/bin/python3
"""Interop: the magnet links hekate prints are enough on their own. The torrents name a test-local HTTP tracker (in
a second tier, after a dead one, and repeated: the link lists each tracker once, in tier order); hekate (--bind
127.0.0.1, -t) prints the links at start-up, hekate-show -m prints them too. aria2c, given nothing but such a link
(no --bt-tracker, no DHT), finds hekate through the link's tr=, fetches the metadata and downloads the data, verified
byte for byte. The printed link also carries x.pe=127.0.0.1:PORT, which libtorrent reads as a peer. Before the links
carried tr=, aria2c stayed at [METADATA] until its timeout. Deadline 150 s."""
import os
import re
import subprocess
import sys
import time
import urllib.parse

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import aria2, fixtures, procs, seeders, tracker, trackers, verify  # noqa: E402
from lib.fixtures import KiB, MiB  # noqa: E402

import libtorrent as lt  # noqa: E402


def printed_links(child, want, timeout):
    """The magnet links hekate printed on stdout (start-up report), once `want` of them are there."""
    t_end = time.monotonic() + timeout
    while True:
        links = re.findall(r"magnet:\?\S+", child.log())
        if len(links) >= want:
            return links
        if time.monotonic() > t_end or not child.alive():
            raise AssertionError("hekate printed %d magnet links, not %d:\n%s" % (len(links), want, child.log()))
        time.sleep(0.05)


def body(p, checks, build_dir, source_dir):
    seed_dir = p.path("seed")
    single = fixtures.make_single(os.path.join(seed_dir, "s"), "magnet single.bin", 2 * MiB + 777, 21, 64 * KiB)
    multi = fixtures.make_multi(os.path.join(seed_dir, "m"), "magnet multi", [("a.bin", 300001), ("d/b.bin", 5000)],
                                22, 32 * KiB)
    port = procs.free_port()
    trk = tracker.FakeTracker([("127.0.0.1", port)], interval=2)
    dead = "http://127.0.0.1:%d/announce" % procs.free_port()
    for fx in (single, multi):
        trackers.set_trackers(fx.torrent, [[dead], [trk.url, dead], [trk.url]])
    hk = seeders.start_hekate(p, build_dir, [seed_dir], port=port)
    links = {}
    try:
        def link_shape():
            for link in printed_links(hk.child, 2, min(20, p.remaining())):
                q = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)
                links[q["xt"][0].split(":")[-1].lower()] = link
            for link in links.values():
                q = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)
                assert q.get("tr") == [dead, trk.url], q   # tier order, each tracker once
                assert q.get("x.pe") == ["127.0.0.1:%d" % port], q
                assert "&tr=http%3A%2F%2F127.0.0.1%3A" in link, link
                peers = [(e[0], e[1]) if isinstance(e, tuple) else (str(e.address()), e.port())
                         for e in lt.parse_magnet_uri(link).peers]
                assert peers == [("127.0.0.1", port)], peers
            assert set(links) == {single.info_hash, multi.info_hash}, links
            return "2 links, tr= x2 in tier order, x.pe=127.0.0.1:%d (libtorrent reads it as a peer)" % port
        checks.run("printed_links_carry_trackers_and_self", link_shape)

        def show_link():
            show = os.path.join(build_dir, "backend-real", "hekate-show")
            r = subprocess.run([show, "-m", "--peer=127.0.0.1:%d" % port, multi.torrent], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=20)
            out = r.stdout.decode()
            assert r.returncode == 0, out
            assert out == links[multi.info_hash] + "\n", (out, links[multi.info_hash])
            return "hekate-show -m --peer= prints the same link"
        checks.run("hekate_show_same_link", show_link)

        def download(name, fx, link):
            n_before = len(trk.announces)
            save = p.path("dl", name)
            aria2.download(p, link, save, None, timeout=min(40, p.remaining()), name="aria2c-" + name)
            if len(trk.announces) == n_before:
                raise AssertionError("aria2c never asked the link's tracker")
            n = verify.verify_download(fx, save)
            hk.assert_alive("after " + name)
            return "%d bytes verified" % n
        if links:
            checks.run("aria2c_printed_link_single", download, "single", single, links[single.info_hash])
            checks.run("aria2c_printed_link_multi", download, "multi", multi, links[multi.info_hash])
        checks.run("hekate_stops_cleanly", hk.stop_cleanly, p)
    finally:
        trk.close()


if __name__ == "__main__":
    procs.main_wrapper("test_magnet_aria2", 150, body)
