#!/usr/bin/python3
"""Interop (issue 10): a hybrid (v1 + v2, BEP 52) torrent made by libtorrent's creator, served warm from the resume
state, is checked against its v2 hashes as one read from its .torrent is. One entry of its piece layers is altered
(outside the info dict: the info-hash and the v1 hashes still match the data, only the v2 check can see it). Cold
(--state=FILE --verify=full, no file yet): the pass finds piece 1 damaged; SIGTERM saves the state. Warm: the torrent
is served from the state with its verified pieces (the summary line), the pass checks the one piece not marked good,
and finds piece 1 damaged again (a state without the v2 offsets would check it through v1 only and find it good); a
client asking for piece 1 never gets it while piece 0 is sent. Deadline 120 s."""
import hashlib
import os
import signal
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import bencode, fixtures, peerwire, procs, seeders  # noqa: E402
from lib.fixtures import KiB  # noqa: E402

PL = 32 * KiB


def make_hybrid(folder):
    """folder/hy/{big, small} and folder/hy.torrent with piece-layer entry 1 of big altered; its info-hash (hex)."""
    os.makedirs(os.path.join(folder, "hy"))
    fixtures.write_det_file(os.path.join(folder, "hy", "big"), 41, 5 * 16 * KiB + 300)
    fixtures.write_det_file(os.path.join(folder, "hy", "small"), 42, 20 * KiB)
    tpath = os.path.join(folder, "hy.torrent")
    fixtures.make_lt_hybrid(folder, "hy", PL, tpath)
    raw = open(tpath, "rb").read()
    top = bencode.decode(raw)
    assert top[b"info"].get(b"meta version") == 2 and b"pieces" in top[b"info"], "not a hybrid"
    root = top[b"info"][b"file tree"][b"big"][b""][b"pieces root"]
    layer = top[b"piece layers"][root]
    assert len(layer) == 32 * 3 and raw.count(layer) == 1, len(layer)
    at = raw.index(layer) + 32 + 9  # entry 1: piece 1
    with open(tpath, "r+b") as f:
        f.seek(at)
        f.write(bytes([raw[at] ^ 1]))
    return hashlib.sha1(bencode.encode(top[b"info"])).hexdigest()


def piece_sent(hk, ih_hex, piece, size):
    """True if hekate sends `size` bytes of piece `piece`; False if it rejects the request or sends nothing."""
    c = peerwire.PeerConn(hk.addr, timeout=10)
    try:
        c.handshake(bytes.fromhex(ih_hex))
        c.send_msg(peerwire.INTERESTED)
        c.recv_until({peerwire.UNCHOKE})
        c.send_raw(peerwire.request_msg(piece, 0, size))
        try:
            mid, payload, _ = c.recv_until({peerwire.PIECE, peerwire.REJECT}, timeout=3)
        except (EOFError, OSError, AssertionError):
            return False
        return mid == peerwire.PIECE and len(payload) == 8 + size
    finally:
        c.close()


def body(p, checks, build_dir, source_dir):
    seed = p.path("seed")
    ih = make_hybrid(seed)
    state = p.path("state")
    args = ["--no-watch", "--state=" + state, "--verify=full", "-v"]
    damaged = r"(?i)torrent %s \(hy\): damaged: piece 1 fails its hash" % ih

    def cold():
        hk = seeders.start_hekate(p, build_dir, [seed], args=args, name="cold")
        m = hk.wait_log(r"verify: pass done.*; (\d+) torrents? damaged", 30)
        assert m.group(1) == "1", m.group(0)
        hk.wait_log(damaged, 1)
        hk.stop_cleanly(p, signal.SIGTERM)
        hk.wait_log(r"resume state saved \(at the stop\): 1 torrents?;", 5)
        return "read cold: piece 1 damaged (its piece-layer entry); state saved"
    checks.run("cold_hybrid_fails_its_altered_piece_layer", cold)

    def warm():
        hk = seeders.start_hekate(p, build_dir, [seed], args=args, name="warm")
        m = hk.wait_log(r"resume state: (\d+) torrents? served from it in [0-9.]+ s \((\d+) with verified pieces", 30)
        assert (m.group(1), m.group(2)) == ("1", "1"), m.group(0)
        m = hk.wait_log(r"verify: pass done.*; (\d+) torrents? damaged", 30)
        assert m.group(1) == "1", "warm: %s (the v2 check was not made)" % m.group(0)
        hk.wait_log(damaged, 1)
        assert piece_sent(hk, ih, 0, 16 * KiB), "piece 0 not sent"
        assert not piece_sent(hk, ih, 1, 16 * KiB), "the damaged piece 1 was sent"
        hk.stop_cleanly(p, signal.SIGTERM)
        return "served from the state (%s): piece 1 damaged again; piece 0 sent, piece 1 not" % m.group(0)
    checks.run("warm_hybrid_checked_against_v2_as_cold", warm)


if __name__ == "__main__":
    procs.main_wrapper("test_resume_hybrid", 120, body)
