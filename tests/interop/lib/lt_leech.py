#!/usr/bin/python3
"""lt_leech: python-libtorrent as a stand-alone client process, for the client matrix (clients.py). Unlike
lt_client's leechers (tuned, in the test's own process), this is libtorrent with its *default* settings, apart from
what keeps it on 127.0.0.1: it listens on 127.0.0.1:PORT, and DHT, local service discovery, UPnP and NAT-PMP (which
would send packets off the host) are off. It finds the seeder through the .torrent's tracker. With
--require-encryption the session forces MSE/PE both ways with RC4 only (what "require encryption" means in every
libtorrent-based client: out_enc_policy = in_enc_policy = pe_forced, allowed_enc_level = pe_rc4).

Usage: lt_leech.py TORRENT SAVE_DIR PORT [--require-encryption]
Prints "progress N/M" lines, "failed_bytes N" whenever libtorrent's count of downloaded bytes that failed their
piece hash (torrent_status.total_failed_bytes) changes, then "COMPLETE" when the torrent is finished or seeding, and keeps running (seeding)
until it is stopped by PID."""
import sys
import time

import libtorrent as lt


def main():
    torrent, save_dir, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    require = "--require-encryption" in sys.argv[4:]
    settings = {"listen_interfaces": "127.0.0.1:%d" % port, "enable_dht": False, "enable_lsd": False,
                "enable_upnp": False, "enable_natpmp": False}
    if require:
        settings.update({"out_enc_policy": int(lt.enc_policy.pe_forced), "in_enc_policy": int(lt.enc_policy.pe_forced),
                         "allowed_enc_level": int(lt.enc_level.rc4), "prefer_rc4": True})
    ses = lt.session(settings)
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(torrent)
    atp.save_path = save_dir
    h = ses.add_torrent(atp)
    last = None
    failed = 0
    done = False
    while True:
        st = h.status()
        now = (st.total_wanted_done, st.total_wanted)
        if now != last:
            print("progress %d/%d state %s" % (now[0], now[1], st.state), flush=True)
            last = now
        if st.total_failed_bytes != failed:
            failed = st.total_failed_bytes
            print("failed_bytes %d" % failed, flush=True)
        if not done and st.total_wanted > 0 and st.total_wanted_done == st.total_wanted and \
                st.state in (lt.torrent_status.finished, lt.torrent_status.seeding):
            print("COMPLETE", flush=True)
            done = True
        for a in ses.pop_alerts():
            if isinstance(a, (lt.torrent_error_alert, lt.file_error_alert, lt.tracker_error_alert)):
                print("alert: %s" % a.message(), flush=True)
        time.sleep(0.1)


if __name__ == "__main__":
    main()
