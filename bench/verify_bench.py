#!/usr/bin/python3
"""verify_bench: hekate's full verification rate next to `sha1sum` of the same files, in the same invocation
(issue 10 item 6). One single-file torrent of --size-mib (default 4096) in --piece-kib pieces (default 1024), made
once with mktorrent in --workdir. Then, --rounds times, alternating so neither side always finds the page cache in
the other's favour:
  sha1sum DATA                 the reference: one thread reading and hashing the file
  hekate --verify DIR          the full check of every piece on the disk threads (EVP SHA-1), then exit 0
each run both warm (the file in the page cache: CPU-bound) and, with --cold, after posix_fadvise(DONTNEED) on the
file (its pages dropped: disk-bound). Rates are bytes / wall time of the whole process (start, scan, check, exit),
so hekate's start-up is charged to it; hekate's own line (bytes hashed by its pass over the pass's time) is shown
too. Prints one line per run, then the ratio hekate / sha1sum of the median rates (acceptance: >= 0.8).

usage: verify_bench.py --build-dir BUILD [--size-mib 4096] [--piece-kib 1024] [--rounds 3] [--cold]
                       [--workdir DIR] [--hekate-args "--disk-threads 8"] [--json out.json]"""
import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "interop"))
from lib import fixtures, procs  # noqa: E402
from lib.fixtures import KiB, MiB  # noqa: E402


def make_data(path, size):
    """size bytes of pseudo-random data (fast: a 16 MiB random block, each copy xored with its index)."""
    if os.path.exists(path) and os.path.getsize(path) == size:
        return False
    block = os.urandom(16 * MiB)
    with open(path, "wb") as f:
        left, i = size, 0
        while left > 0:
            n = min(left, len(block))
            chunk = block[:n] if i == 0 else (int.from_bytes(block[:8], "little") ^ i).to_bytes(8, "little") + block[8:n]
            f.write(chunk)
            left -= n
            i += 1
    return True


def drop_cache(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def warm(path):
    with open(path, "rb") as f:
        while f.read(16 * MiB):
            pass


def timed(p, name, argv, timeout):
    t0 = time.monotonic()
    rc, out = p.run(name, argv, timeout)
    return rc, out, time.monotonic() - t0


def one_round(p, a, data, folder, size, cold, results):
    for who in ("sha1sum", "hekate") if len(results) % 4 == 0 else ("hekate", "sha1sum"):  # alternate the order
        if cold:
            drop_cache(data)
        else:
            warm(data)
        if who == "sha1sum":
            rc, out, secs = timed(p, "sha1sum", ["sha1sum", data], 3600)
            own = None
        else:
            argv = [os.path.join(a.build_dir, "backend-real", "hekate"), "-q", "--verify"] + \
                shlex.split(a.hekate_args) + [folder]
            rc, out, secs = timed(p, "hekate-verify", argv, 3600)
            line = [ln for ln in out.splitlines() if " torrent checked:" in ln or " torrents checked:" in ln]
            own = line[-1] if line else None
            if rc != 0 or not own or "1 intact" not in own:
                raise RuntimeError("hekate --verify failed (exit %d):\n%s" % (rc, out[-2000:]))
        if rc != 0:
            raise RuntimeError("%s failed (exit %d): %s" % (who, rc, out[-2000:]))
        r = {"who": who, "cold": cold, "seconds": secs, "rate": size / secs, "own": own}
        results.append(r)
        print("%-8s %-4s %8.2f s  %8.1f MiB/s%s" % (who, "cold" if cold else "warm", secs, r["rate"] / MiB,
                                                   ("   [" + own + "]") if own else ""), flush=True)


def summary(results, cold):
    rs = [r for r in results if r["cold"] == cold]
    if not rs:
        return None
    h = statistics.median(r["rate"] for r in rs if r["who"] == "hekate")
    s = statistics.median(r["rate"] for r in rs if r["who"] == "sha1sum")
    print("%s: hekate %.1f MiB/s, sha1sum %.1f MiB/s (medians): ratio %.3f (acceptance >= 0.8)" % (
        "cold" if cold else "warm", h / MiB, s / MiB, h / s), flush=True)
    return {"hekate": h, "sha1sum": s, "ratio": h / s}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--size-mib", type=int, default=4096)
    ap.add_argument("--piece-kib", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cold", action="store_true")
    ap.add_argument("--workdir", default="/tmp/hekate-verify-bench")
    ap.add_argument("--hekate-args", default="")
    ap.add_argument("--json")
    a = ap.parse_args()
    folder = os.path.join(a.workdir, "seed")
    os.makedirs(folder, exist_ok=True)
    data = os.path.join(folder, "big.bin")
    size = a.size_mib * MiB
    tpath = data + ".torrent"
    if make_data(data, size) or not os.path.exists(tpath):
        print("made %s (%d MiB); torrent with mktorrent ..." % (data, a.size_mib), flush=True)
        fixtures.make_torrent_file(data, tpath, a.piece_kib * KiB, "mktorrent")
    print("data %s: %d MiB in %d KiB pieces; %d round(s)" % (data, a.size_mib, a.piece_kib, a.rounds), flush=True)
    out = {"size": size, "piece": a.piece_kib * KiB, "runs": []}
    with procs.Procs("verify_bench", 4 * 3600) as p:
        for cold in ([False, True] if a.cold else [False]):
            for _ in range(a.rounds):
                one_round(p, a, data, folder, size, cold, out["runs"])
        out["warm"] = summary(out["runs"], False)
        if a.cold:
            out["cold"] = summary(out["runs"], True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
