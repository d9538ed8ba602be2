#!/usr/bin/python3
"""CLI (issue 10): `hekate --verify DIR...` checks every torrent under the folders and exits. An intact folder (a
single-file and a multi-file torrent): exit status 0, a summary saying 2 intact, no "damaged" line. The same with one
byte flipped in piece 3 of the single-file torrent and piece 1 of the multi-file one's second file: exit 1, one
"damaged" line per torrent naming its .torrent, its info-hash and exactly its bad piece; the good torrent in a third
folder is not named. A torrent whose data file is missing: exit 1, "rejected". Usage errors exit 2 (--verify with
-l, --verify=bogus, --verify-rate=0). --verify=full serves while it checks (a request for the last piece, which the
pass at 8 KiB/s reaches only after ~6 s, is checked first and served within 3 s) and logs the progress and "pass
done".
Deadline 120 s."""
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import fixtures, peerwire, procs, seeders  # noqa: E402
from lib.fixtures import KiB  # noqa: E402
from lib import bencode  # noqa: E402



def flip(path, off):
    with open(path, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 0x5A]))


def body(p, checks, build_dir, source_dir):
    hekate = seeders.hekate_binary(build_dir)
    a = fixtures.make_single(p.path("a"), "one.bin", 300 * KiB + 77, 21, 32 * KiB)
    b = fixtures.make_multi(p.path("b"), "multi", [("x.bin", 40 * KiB + 5), ("y.bin", 100 * KiB)], 22, 16 * KiB)
    c = fixtures.make_single(p.path("c"), "other.bin", 64 * KiB, 23, 16 * KiB)

    def run(args, timeout=60):
        rc, out = p.run("hekate-verify", [hekate] + args, timeout=timeout)
        print("$ hekate %s -> %d\n%s" % (" ".join(args), rc, out))
        return rc, out

    def intact():
        rc, out = run(["--verify", p.path("a"), p.path("b")])
        assert rc == 0, "exit %d for intact data" % rc
        assert "2 torrents checked: 2 intact, 0 damaged" in out, out
        assert "damaged " not in out.replace("0 damaged", "")
        return "exit 0, 2 intact"

    def damaged():
        flip(a.data_path(a.files[0][0]), 3 * a.piece_length + 100)
        # multi-file: a byte of piece 4 (16 KiB pieces) inside the second file
        start = b.files[0][1]
        assert start <= 4 * b.piece_length + 10 < start + b.files[1][1], b.files
        flip(b.data_path(b.files[1][0]), 4 * b.piece_length + 10 - start)
        rc, out = run(["--verify", "--verify-rate=64M", p.path("a"), p.path("b"), p.path("c")])
        assert rc == 1, "exit %d with damaged data" % rc
        lines = [l for l in out.splitlines() if l.startswith("damaged ")]
        assert len(lines) == 2, lines
        assert a.torrent in lines[0] and b.torrent in lines[1], "not in path order: %r" % lines
        la = [l for l in lines if a.torrent in l]
        lb = [l for l in lines if b.torrent in l]
        assert la and la[0].endswith(": piece 3 fails its hash"), lines
        assert a.info_hash.lower() in la[0].lower(), la
        assert lb and lb[0].endswith(": piece 4 fails its hash"), lines
        assert c.torrent not in out.replace("checked", ""), "the intact torrent is named"
        assert "3 torrents checked: 1 intact, 2 damaged" in out, out
        return "exit 1; %s" % "; ".join(lines)

    def missing():
        d = fixtures.make_single(p.path("d"), "gone.bin", 50 * KiB, 24, 16 * KiB)
        os.unlink(d.data_path(d.files[0][0]))
        rc, out = run(["--verify", p.path("c"), p.path("d")])
        assert rc == 1, "exit %d with a data file missing" % rc
        assert "rejected %s" % d.torrent in out, out
        assert "1 intact, 0 damaged, 0 unreadable, 1 rejected" in out, out
        return "exit 1, the torrent without data rejected"

    def hybrid_v2_layers():
        # a hybrid (v1 + v2) torrent made by libtorrent: intact, then one entry of its piece layers altered (outside
        # the info dict: the v1 hashes still match the data, only the BEP 52 check can see it)
        folder = p.path("h")
        os.makedirs(os.path.join(folder, "hy"))
        fixtures.write_det_file(os.path.join(folder, "hy", "big"), 31, 5 * 16 * KiB + 300)
        fixtures.write_det_file(os.path.join(folder, "hy", "small"), 32, 20 * KiB)
        tpath = os.path.join(folder, "hy.torrent")
        fixtures.make_lt_hybrid(folder, "hy", 32 * KiB, tpath)
        rc, out = run(["--verify", folder])
        assert rc == 0 and "1 torrent checked: 1 intact, 0 damaged" in out, out
        raw = open(tpath, "rb").read()
        top = bencode.decode(raw)
        root = top[b"info"][b"file tree"][b"big"][b""][b"pieces root"]
        layer = top[b"piece layers"][root]
        assert len(layer) == 32 * 3 and raw.count(layer) == 1, len(layer)
        at = raw.index(layer) + 32 + 5  # entry 1: piece 1
        with open(tpath, "r+b") as f:
            f.seek(at)
            f.write(bytes([raw[at] ^ 1]))
        rc, out = run(["--verify", folder])
        assert rc == 1, "exit %d with an altered piece layer" % rc
        lines = [l for l in out.splitlines() if l.startswith("damaged ")]
        assert len(lines) == 1 and lines[0].endswith(": piece 1 fails its hash"), out
        return "intact hybrid: exit 0; altered piece-layer entry 1: exit 1, %s" % lines[0]

    def usage():
        for args in (["--verify", "-l", p.path("c")], ["--verify=bogus", p.path("c")],
                     ["--verify", "--verify-rate=0", p.path("c")]):
            rc, out = run(args, timeout=20)
            assert rc == 2, "%r: exit %d, expected 2" % (args, rc)
        return "exit 2 for each"

    def full_mode_serves_and_reports():
        seeder = seeders.start_hekate(p, build_dir, [p.path("c")], args=["--verify=full", "--verify-rate=8K"])
        try:
            last = c.num_pieces - 1  # the pass at 8 KiB/s reaches it after ~6 s: a request is checked first
            t0 = time.monotonic()
            got = peerwire.fetch_piece(seeder.addr, c, last, timeout=10)
            took = time.monotonic() - t0
            assert took < 3, "piece %d took %.1f s: the request waited for the background pass" % (last, took)
            assert "verify: pass done" not in seeder.child.log(), "the pass was over before the request"
            t_end = time.monotonic() + 20
            while "verify: pass done" not in seeder.child.log() and time.monotonic() < t_end:
                time.sleep(0.2)
            log = seeder.child.log()
            assert "verify: pass done" in log, log[-2000:]
            assert "verify: 0/1 torrents" in log, "no progress line in %s" % log[-2000:]
            assert "0 torrents damaged" in log, log[-2000:]
        finally:
            seeder.stop_cleanly(p)
        return "piece %d (%d bytes) served in %.2f s while the pass ran; 64 KiB at 8 KiB/s: progress lines, then " \
            "the pass done" % (last, len(got), took)

    checks.run("intact_exits_0", intact)
    checks.run("damaged_exits_1_naming_torrent_and_piece", damaged)
    checks.run("missing_data_exits_1", missing)
    checks.run("hybrid_v2_piece_layers", hybrid_v2_layers)
    checks.run("usage_errors_exit_2", usage)
    checks.run("full_mode_serves_and_reports", full_mode_serves_and_reports)


if __name__ == "__main__":
    procs.main_wrapper("test_verify_cli", 120, body)
