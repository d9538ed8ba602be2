#!/usr/bin/python3
"""lt_seeder: the reference seeder, python-libtorrent in its own process (so its CPU and memory can be measured
apart from the leechers). Serves every .torrent found under the given folders, data beside it (the same layout as
hekate). Listens on 127.0.0.1:PORT only; no DHT, LSD, UPnP, NAT-PMP, uTP, PEX or trackers.

usage: lt_seeder.py -p PORT [--high-performance] [--seed-mode] DIR...
  --high-performance  start from lt.high_performance_seed() settings
  --seed-mode         add torrents in seed mode (no hash check of the data at start)
  --encryption        accept MSE/PE (pe_enabled in and out, RC4 or plaintext: libtorrent's defaults) instead of
                      refusing it (issue 9's encrypted benchmark)
Prints "READY <n> torrents seeding" once no torrent is being checked any more; stops on SIGTERM/SIGINT."""
import argparse
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import libtorrent as lt  # noqa: E402

from lib import lt_client  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-p", "--port", type=int, required=True)
    ap.add_argument("--high-performance", action="store_true")
    ap.add_argument("--seed-mode", action="store_true")
    ap.add_argument("--encryption", action="store_true")
    ap.add_argument("dirs", nargs="+")
    a = ap.parse_args()
    stop = []
    signal.signal(signal.SIGTERM, lambda s, f: stop.append(s))
    signal.signal(signal.SIGINT, lambda s, f: stop.append(s))
    settings = lt_client.seeder_settings(a.port, a.high_performance)
    if a.encryption:
        settings.update({"out_enc_policy": lt_client.ENC_ENABLED, "in_enc_policy": lt_client.ENC_ENABLED,
                         "allowed_enc_level": int(lt.enc_level.pe_both)})
    ses = lt_client.new_session(settings)
    handles = []
    for d in a.dirs:
        for root, _, files in os.walk(d):
            for fn in sorted(files):
                if not fn.endswith(".torrent"):
                    continue
                atp = lt.add_torrent_params()
                try:
                    atp.ti = lt.torrent_info(os.path.join(root, fn))
                except RuntimeError as e:
                    print("rejected %s: %s" % (os.path.join(root, fn), e), flush=True)
                    continue
                atp.save_path = root
                atp.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
                if a.seed_mode:
                    atp.flags |= lt.torrent_flags.seed_mode
                handles.append(ses.add_torrent(atp))
    t_end = time.monotonic() + 600
    checking = (lt.torrent_status.checking_files, lt.torrent_status.checking_resume_data)
    while not stop and time.monotonic() < t_end:
        if all(h.status().state not in checking for h in handles):
            break
        time.sleep(0.05)
    seeding = sum(1 for h in handles if h.status().is_seeding)
    for h in handles:
        if not h.status().is_seeding:
            print("not seeding %s: %s" % (h.status().name, h.status().errc.message()), flush=True)
    print("READY %d torrents seeding on port %d" % (seeding, ses.listen_port()), flush=True)
    while not stop:
        for al in ses.pop_alerts():
            if isinstance(al, (lt.torrent_error_alert, lt.file_error_alert)):
                print("error: %s" % al.message(), flush=True)
        time.sleep(0.2)
    ses.pause()
    print("stopped", flush=True)
    os._exit(0)


if __name__ == "__main__":
    main()
