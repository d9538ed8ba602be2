#!/usr/bin/python3
"""Interop: hekate's DHT node (BEP 5) against libtorrent's. A small DHT of python-libtorrent sessions (DHT on, no
trackers, LSD/UPnP/NAT-PMP off, each on a loopback address of its own) bootstrapped to each other and to hekate;
hekate serves a torrent that names no tracker (`-t` too) and announces it on the DHT; a libtorrent leecher given only
the magnet link (info-hash, no tracker, no peer address) finds hekate through the DHT (get_peers) and downloads the
data byte for byte. Checks: hekate's node joined (a libtorrent node answered it), hekate's announce_peer was
acknowledged by libtorrent nodes, the leecher got hekate's address from the DHT and completed, and hekate stopped
cleanly and wrote its --dht-state file.

Where: inside a private user + network namespace (`unshare -rn`, lo brought up: nothing can leave it) when the
kernel allows one, else on 127.0.0.0/8 (HEKATE_TEST_NO_NETNS=1 forces that). The script re-runs itself in the
namespace (--netns) like the client matrix.

libtorrent settings changed from its defaults, and why (libtorrent 2.0):
- dht_restrict_routing_ips / dht_restrict_search_ips = false: by default one node per IP (/24 for search results) is
  kept, and every node here is on 127.0.0.0/8;
- dht_prefer_verified_node_ids / dht_enforce_node_id = false: BEP 42 ids cannot be checked on loopback addresses
  (hekate's id is random: it does not know its external address);
- dht_ignore_dark_internet = false: it drops DHT traffic from address ranges not expected on the Internet;
- dht_aggressive_lookups stays on (default); dht_announce_interval is irrelevant: the leecher forces DHT announces.
Deadline 150 s; hekate is started and stopped by PID (procs), the sessions live in this process."""
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import fixtures, procs, seeders, verify  # noqa: E402
from lib.fixtures import KiB  # noqa: E402

import libtorrent as lt  # noqa: E402

NAME = "test_dht_libtorrent"
DHT_NODES = 4
HEKATE_HOST = "127.0.0.1"

DHT_SETTINGS = {
    "enable_dht": True, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "enable_incoming_utp": False, "enable_outgoing_utp": False,
    "dht_restrict_routing_ips": False, "dht_restrict_search_ips": False,
    "dht_prefer_verified_node_ids": False, "dht_enforce_node_id": False, "dht_ignore_dark_internet": False,
    "out_enc_policy": 2, "in_enc_policy": 2,
    "allow_multiple_connections_per_ip": True,
    "alert_mask": lt.alert.category_t.dht_notification | lt.alert.category_t.status_notification
    | lt.alert.category_t.error_notification | lt.alert.category_t.peer_notification
    | lt.alert.category_t.dht_operation_notification | lt.alert.category_t.stats_notification,
    "user_agent": "hekate-interop-dht",
}


def session(host, port, bootstrap):
    s = dict(DHT_SETTINGS)
    s["listen_interfaces"] = "%s:%d" % (host, port)
    s["outgoing_interfaces"] = host
    s["dht_bootstrap_nodes"] = ",".join("%s:%d" % b for b in bootstrap)
    ses = lt.session(s, 0)
    ses.add_extension("ut_metadata")
    return ses


def free_udp_tcp_port(host):
    """A port free for both TCP and UDP on host (libtorrent and hekate use the same number for both)."""
    import socket
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            t.bind((host, 0))
            port = t.getsockname()[1]
            u.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise RuntimeError("no free port on " + host)


def dht_nodes_of(ses, wait=1.0):
    """The session's DHT routing table size (session stats counter dht.dht_nodes)."""
    ses.post_session_stats()
    t_end = time.monotonic() + wait
    while time.monotonic() < t_end:
        for a in ses.pop_alerts():
            if isinstance(a, lt.session_stats_alert):
                return a.values.get("dht.dht_nodes", 0)
        time.sleep(0.02)
    return 0


def hekate_log_count(seeder, needle):
    return seeder.child.log().count(needle)


def body(p, checks, build_dir, source_dir):
    seed_dir = p.path("seed")
    os.makedirs(seed_dir, exist_ok=True)
    content = fixtures.det_bytes(31, 3 * 256 * KiB + 777)
    data_path = os.path.join(seed_dir, "dht payload.bin")
    with open(data_path, "wb") as f:
        f.write(content)
    ih = fixtures.make_raw_torrent(os.path.join(seed_dir, "dht payload.bin.torrent"), b"dht payload.bin", None,
                                   256 * KiB, content)
    hosts = ["127.0.%d.%d" % (50 + i, 1 + i) for i in range(DHT_NODES)]
    ports = [free_udp_tcp_port(h) for h in hosts]
    hk_port = free_udp_tcp_port(HEKATE_HOST)
    state = p.path("dht.state")
    boot_args = []
    for h, port in zip(hosts, ports):
        boot_args += ["--dht-bootstrap", "%s:%d" % (h, port)]
    # every libtorrent node knows the next one and hekate; hekate knows them all
    nodes = []
    for i, (h, port) in enumerate(zip(hosts, ports)):
        nxt = (hosts[(i + 1) % DHT_NODES], ports[(i + 1) % DHT_NODES])
        nodes.append(session(h, port, [nxt, (HEKATE_HOST, hk_port)]))
    seeder = seeders.start_hekate(p, build_dir, [seed_dir], port=hk_port, host=HEKATE_HOST,
                                  args=["-v"] + boot_args + ["--dht-state", state])
    print("hekate on %s:%d (pid %d), libtorrent DHT nodes on %s" % (HEKATE_HOST, hk_port, seeder.pid,
                                                                  ", ".join("%s:%d" % x for x in zip(hosts, ports))))

    def joined():
        # the sessions started before hekate and before some of their neighbours: introduce them again
        for ses in nodes:
            for other in list(zip(hosts, ports)) + [(HEKATE_HOST, hk_port)]:
                ses.add_dht_node(other)
        t_end = time.monotonic() + 40
        while time.monotonic() < t_end:
            counts = [dht_nodes_of(s) for s in nodes]
            if all(c >= 2 for c in counts):
                return "the libtorrent nodes' routing tables hold %s nodes" % counts
            time.sleep(0.2)
        raise AssertionError("libtorrent nodes know %s DHT nodes after 40 s" % [dht_nodes_of(s) for s in nodes])

    def announced():
        t_end = time.monotonic() + 60
        needle = "announces acknowledged"
        while time.monotonic() < t_end:
            for line in seeder.child.log().splitlines():
                if "dht: lookup get_peers done" in line and needle in line:
                    n = int(line.split(needle)[0].split(",")[-1].strip())
                    if n >= 1:
                        return line.split("dht: ", 1)[1]
            seeder.assert_alive("while announcing")
            time.sleep(0.2)
        raise AssertionError("hekate did not announce to any libtorrent node in 60 s:\n" + seeder.child.log()[-3000:])

    def leech():
        src = "127.0.%d.%d" % (60, 9)
        lport = free_udp_tcp_port(src)
        ses = session(src, lport, list(zip(hosts, ports)))
        save = p.path("dl")
        os.makedirs(save, exist_ok=True)
        atp = lt.parse_magnet_uri("magnet:?xt=urn:btih:" + ih)
        atp.save_path = save
        atp.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
        h = ses.add_torrent(atp)
        t0 = time.monotonic()
        t_end = t0 + min(60, p.remaining() - 20)
        last_force = 0
        from_dht = set()   # peers the leecher's get_peers lookups returned
        seen = set()       # peers it was connected to
        while time.monotonic() < t_end:
            st = h.status()
            for pi in h.get_peer_info():
                seen.add(tuple(pi.ip))
            if st.is_seeding:
                break
            if time.monotonic() - last_force > 3:
                h.force_dht_announce()
                last_force = time.monotonic()
            for a in ses.pop_alerts():
                if os.environ.get("HK_DEBUG_ALERTS"):
                    print("alert", type(a).__name__, a.message()[:150])
                if isinstance(a, lt.dht_get_peers_reply_alert):
                    from_dht.update(tuple(e) for e in a.peers())
            time.sleep(0.05)
        # libtorrent reports get_peers replies (dht_get_peers_reply_alert) for lookups asked through
        # session.dht_get_peers: one more lookup from the leecher's node says what the DHT holds for the torrent
        ses.dht_get_peers(lt.sha1_hash(bytes.fromhex(ih)))
        t_drain = time.monotonic() + 15
        while time.monotonic() < t_drain and (HEKATE_HOST, hk_port) not in from_dht:
            for a in ses.pop_alerts():
                if isinstance(a, lt.dht_get_peers_reply_alert):
                    from_dht.update(tuple(e) for e in a.peers())
            time.sleep(0.05)
        st = h.status()
        if not st.is_seeding:
            raise AssertionError("leecher incomplete after %.0f s: %.1f %%, %d peers, %d DHT nodes" % (
                time.monotonic() - t0, st.progress * 100, st.num_peers, dht_nodes_of(ses)))
        secs = time.monotonic() - t0
        with open(os.path.join(save, "dht payload.bin"), "rb") as f:
            got = f.read()
        if got != content:
            raise AssertionError("downloaded bytes differ from the seeded ones")
        hekate = (HEKATE_HOST, hk_port)
        if hekate not in from_dht:
            raise AssertionError("the leecher's DHT lookups returned %s, not hekate %s" % (sorted(from_dht), hekate))
        if seen - {hekate}:
            raise AssertionError("the leecher was connected to peers other than hekate: %s" % sorted(seen))
        return "%d bytes verified in %.1f s from a magnet link with no tracker; the DHT returned %s" % (
            len(got), secs, sorted(from_dht))

    checks.run("libtorrent_dht_formed", joined)
    checks.run("hekate_announced_on_dht", announced)
    checks.run("magnet_only_leecher_finds_hekate_via_dht", leech)
    checks.run("seeder_stops_cleanly", seeder.stop_cleanly, p, __import__("signal").SIGTERM)
    checks.run("dht_state_written", lambda: "%d bytes" % os.path.getsize(state) if os.path.getsize(state) > 20
               else (_ for _ in ()).throw(AssertionError("state file too small")))


def in_netns():
    for argv in (["ip", "link", "set", "lo", "up"],):
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
        if r.returncode != 0:
            raise RuntimeError("%s failed in the network namespace: %s" % (" ".join(argv), r.stdout.decode()))


def main():
    if "--netns" in sys.argv:
        sys.argv.remove("--netns")
        in_netns()
        procs.main_wrapper(NAME + "-netns", 140, body)
        return
    netns = os.environ.get("HEKATE_TEST_NO_NETNS") != "1"   # =1: the 127.0.0.0/8 fallback, to test it
    if netns and subprocess.run(["unshare", "-rn", "true"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                timeout=10).returncode == 0:
        argv = ["unshare", "-rn", "/usr/bin/python3", os.path.abspath(sys.argv[0])] + sys.argv[1:3] + ["--netns"]
        child = subprocess.Popen(argv)
        try:
            rc = child.wait(timeout=150)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            rc = 1
        sys.exit(rc)
    print("no private network namespace here: running on 127.0.0.0/8")
    procs.main_wrapper(NAME, 150, body)


if __name__ == "__main__":
    main()
