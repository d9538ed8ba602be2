"""lt_client: python-libtorrent leechers (and the reference seeder's session settings).

Every leecher's session listens on and connects from a loopback address of its own (procs.source_address: hekate
caps connections per address and per /24), the reference seeder's on 127.0.0.1; all with DHT, LSD, UPnP, NAT-PMP and uTP off, and learns about the seeder only
through add_peer (torrent_handle.connect_peer): no tracker is involved. A Leecher is one session with one torrent,
added from a .torrent file or from a magnet link (info-hash only: the metadata then comes from the seeder through
ut_metadata). poll() advances it; run_all() drives many leechers at once until all are complete or the deadline
passes. A leecher that has no connected peer re-dials the seeder every few seconds (as a client fed by a tracker
would); the number of re-dials is reported. Sessions load ut_metadata only (no ut_pex): peers never learn of
each other, so every byte a leecher gets comes from the seeder. Pieces that fail their hash check are counted (hash_failed_alert): a
seeder that sends wrong bytes is caught here even though libtorrent would silently download the piece again.

Imports libtorrent, so only /usr/bin/python3 can load this module."""
import os
import time

import libtorrent as lt

from . import procs

ENC_DISABLED = 2   # lt.enc_policy.pe_disabled
ENC_ENABLED = 1    # lt.enc_policy.pe_enabled (libtorrent's default: outgoing tries encryption first)

_ALERTS = (lt.alert.category_t.error_notification | lt.alert.category_t.status_notification
           | lt.alert.category_t.peer_notification | lt.alert.category_t.storage_notification
           | lt.alert.category_t.connect_notification)


def base_settings(listen_port=0, encryption=False):
    return {
        "listen_interfaces": "127.0.0.1:%d" % listen_port,
        "outgoing_interfaces": "",
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "enable_incoming_utp": False, "enable_outgoing_utp": False,
        "enable_incoming_tcp": True, "enable_outgoing_tcp": True,
        "dht_bootstrap_nodes": "",
        "out_enc_policy": ENC_ENABLED if encryption else ENC_DISABLED,
        "in_enc_policy": ENC_ENABLED if encryption else ENC_DISABLED,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": _ALERTS,
        "alert_queue_size": 10000,
        "aio_threads": 2,
        "hashing_threads": 1,
        "user_agent": "hekate-interop-leecher",
        "peer_fingerprint": "-LT2080-",
        "close_redundant_connections": True,
        "max_failcount": 100,
        "min_reconnect_time": 1,
    }


def seeder_settings(listen_port, high_performance):
    s = lt.high_performance_seed() if high_performance else {}
    s.update(base_settings(listen_port))
    # The leechers all come from 127.0.0.1: accept them all and unchoke them all (like hekate's -N large enough).
    s["connections_limit"] = 20000
    s["unchoke_slots_limit"] = -1 if high_performance else 500
    s["active_seeds"] = 20000
    s["active_limit"] = 20000
    s["max_peerlist_size"] = 20000          # default 3000: the 3001st peer of a torrent would be turned away
    s["max_paused_peerlist_size"] = 20000
    if high_performance:
        s["aio_threads"] = 8
        s["hashing_threads"] = 1
    return s


def new_session(settings):
    """A session with ut_metadata as its only extension: no ut_pex, so peers never learn of each other through
    the seeder (the reference seeder would otherwise let the leechers trade pieces among themselves)."""
    ses = lt.session(settings, 0)
    ses.add_extension("ut_metadata")
    return ses


def make_session(listen_port=0, encryption=False, extra=None):
    s = base_settings(listen_port, encryption)
    if extra:
        s.update(extra)
    return new_session(s)


_next_source = [0]


def next_source():
    """The next libtorrent leecher's own loopback address (procs.source_address): each leecher stands for a host
    of its own, so hekate's per-address caps see distinct hosts, as on the Internet."""
    i = _next_source[0]
    _next_source[0] += 1
    return procs.source_address(i % (254 * 256), procs.HOST_LT)


class Leecher:
    """One session, one torrent, one seeder address. The session listens on and connects from its own loopback
    address (source, default next_source())."""

    def __init__(self, name, save_dir, peer, torrent=None, magnet=None, encryption=False, piece_filter=None,
                 settings=None, source=None):
        self.name = name
        self.save_dir = save_dir
        self.peer = peer
        self.source = source or next_source()
        os.makedirs(save_dir, exist_ok=True)
        own = {"listen_interfaces": "%s:0" % self.source, "outgoing_interfaces": self.source}
        own.update(settings or {})
        self.ses = make_session(encryption=encryption, extra=own)
        if torrent is not None:
            atp = lt.add_torrent_params()
            atp.ti = lt.torrent_info(torrent)
        else:
            atp = lt.parse_magnet_uri(magnet)
        atp.save_path = save_dir
        atp.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
        self.piece_filter = piece_filter
        if piece_filter is not None and torrent is not None:
            n = atp.ti.num_pieces()
            atp.piece_priorities = [4 if piece_filter(i) else 0 for i in range(n)]
        self.h = self.ses.add_torrent(atp)
        self.t_start = time.monotonic()
        self.t_metadata = None
        self.t_done = None
        self.redials = 0
        self.hash_failures = 0
        self.errors = []
        self.disconnects = []
        self.last_dial = 0.0
        self.last_done = -1
        self.t_progress = self.t_start
        self.dial()

    def dial(self):
        self.h.connect_peer(self.peer)
        self.last_dial = time.monotonic()

    def _drain_alerts(self):
        for a in self.ses.pop_alerts():
            if isinstance(a, lt.hash_failed_alert):
                self.hash_failures += 1
            elif isinstance(a, lt.peer_disconnected_alert):
                if len(self.disconnects) < 50:
                    self.disconnects.append(a.message())
            elif isinstance(a, (lt.torrent_error_alert, lt.file_error_alert, lt.metadata_failed_alert)):
                self.errors.append(a.message())

    def poll(self):
        """Returns True once the wanted data is complete."""
        if self.t_done is not None:
            return True
        self._drain_alerts()
        st = self.h.status()
        now = time.monotonic()
        if st.has_metadata and self.t_metadata is None:
            self.t_metadata = now
        if st.total_wanted_done != self.last_done:
            self.last_done = st.total_wanted_done
            self.t_progress = now
        if st.num_peers == 0 and now - self.last_dial > 2.0:
            self.redials += 1
            self.dial()
        if st.has_metadata and st.total_wanted > 0 and st.total_wanted_done >= st.total_wanted and \
                st.state in (lt.torrent_status.finished, lt.torrent_status.seeding):
            self.t_done = now
            return True
        return False

    def status(self):
        return self.h.status()

    def report(self):
        st = self.h.status()
        elapsed = (self.t_done or time.monotonic()) - self.t_start
        return {"name": self.name, "done": self.t_done is not None, "seconds": elapsed,
                "payload_bytes": st.total_payload_download, "wanted": st.total_wanted,
                "wanted_done": st.total_wanted_done, "redials": self.redials, "hash_failures": self.hash_failures,
                "errors": list(self.errors), "peers": st.num_peers, "state": str(st.state),
                "disconnects": self.disconnects[-5:]}

    def close(self):
        try:
            self.ses.remove_torrent(self.h)
        except RuntimeError:
            pass
        self.ses.pause()


def run_all(leechers, timeout, tick=0.05, stall=30.0):
    """Drives leechers until all are complete or timeout seconds pass, or one makes no progress for `stall`
    seconds. Returns the list of reports; raises if any leecher is incomplete or saw a hash failure or a storage
    error."""
    t_end = time.monotonic() + timeout
    pending = list(leechers)
    stalled = None
    while pending and time.monotonic() < t_end:
        pending = [l for l in pending if not l.poll()]
        now = time.monotonic()
        stalled = next((l for l in pending if now - l.t_progress > stall), None)
        if stalled is not None:
            break
        if pending:
            time.sleep(tick)
    reports = [l.report() for l in leechers]
    bad = [r for r in reports if not r["done"] or r["hash_failures"] or r["errors"]]
    if bad:
        why = ("%s made no progress for %.0f s" % (stalled.name, stall)) if stalled is not None else \
            ("not all done within %.0f s" % timeout)
        raise AssertionError("%d of %d leechers failed (%s); first: %r" % (len(bad), len(leechers), why, bad[0]))
    return reports


def download(name, save_dir, peer, timeout, torrent=None, magnet=None, encryption=False):
    """One complete download; returns its report (raises on failure)."""
    l = Leecher(name, save_dir, peer, torrent=torrent, magnet=magnet, encryption=encryption)
    try:
        return run_all([l], timeout)[0]
    finally:
        l.close()
