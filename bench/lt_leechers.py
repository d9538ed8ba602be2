#!/usr/bin/python3
"""lt_leechers: one process running COUNT python-libtorrent leechers (one session each) against one seeder, for
seed_bench.py. Leecher number g (FIRST <= g < FIRST+COUNT, out of TOTAL) wants WANT consecutive pieces starting at
piece g * pieces / TOTAL (wrapping), so that together the leechers ask the seeder for the whole file evenly.
Data goes to SAVE_ROOT/<g>/ (use a tmpfs so the leechers' writes cost little). --encryption forced: every leecher
requires MSE/PE with RC4 (out/in_enc_policy = pe_forced, allowed_enc_level = pe_rc4). Prints one JSON line:
{"leechers": [{"g", "t_start", "t_done", "payload", "wanted", "hash_failures", "redials"}...]} with
time.monotonic() stamps (CLOCK_MONOTONIC: comparable across processes). Exit status 1 if any leecher failed."""
import argparse
import json
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "interop"))
import libtorrent as lt  # noqa: E402

from lib import lt_client, procs  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--torrent", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--first", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--total", type=int, required=True)
    ap.add_argument("--want", type=int, required=True, help="pieces each leecher downloads")
    ap.add_argument("--save-root", required=True)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--encryption", choices=("plain", "forced"), default="plain")
    a = ap.parse_args()
    n = lt.torrent_info(a.torrent).num_pieces()
    want = min(a.want, n)
    settings = None
    if a.encryption == "forced":
        settings = {"out_enc_policy": int(lt.enc_policy.pe_forced), "in_enc_policy": int(lt.enc_policy.pe_forced),
                    "allowed_enc_level": int(lt.enc_level.pe_rc4)}
    leechers = []
    for g in range(a.first, a.first + a.count):
        start = g * n // a.total
        sel = (lambda s: (lambda i: (i - s) % n < want))(start)
        # each leecher from its own address (g is unique across the worker processes): hekate's per-address caps
        leechers.append(lt_client.Leecher("L%d" % g, os.path.join(a.save_root, str(g)), ("127.0.0.1", a.port),
                                          torrent=a.torrent, piece_filter=sel, settings=settings,
                                          source=procs.source_address(g, procs.HOST_LT)))
    ok = True
    try:
        reports = lt_client.run_all(leechers, a.timeout, tick=0.02, stall=120)
    except AssertionError as e:
        sys.stderr.write("%s\n" % e)
        reports = [l.report() for l in leechers]
        ok = False
    out = []
    for l, r in zip(leechers, reports):
        out.append({"g": int(l.name[1:]), "t_start": l.t_start, "t_done": l.t_done, "payload": r["payload_bytes"],
                    "wanted": r["wanted"], "hash_failures": r["hash_failures"], "redials": r["redials"],
                    "done": r["done"]})
    print(json.dumps({"leechers": out}), flush=True)
    os._exit(0 if ok else 1)


if __name__ == "__main__":
    main()
