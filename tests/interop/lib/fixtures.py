"""fixtures: deterministic data trees and their .torrent files.

Data: det_bytes(seed, n) is a pseudo-random byte stream fixed by (seed, n) (random.Random in 1 MiB chunks, so the
same call always yields the same bytes on one Python version; verification compares against the files on disk, so
nothing depends on the generator's exact output across versions).

A Fixture is one torrent: the data under `folder` (single file: folder/<name>; multi-file: folder/<name>/<path...>,
the layout hekate expects beside the .torrent), the .torrent path, its info-hash (hex, v1) and the list of
(relative path, size) of its files. Torrents are made with the real tools: mktorrent (piece sizes 32 KiB and up;
keeps zero-length files) or transmission-create (piece sizes from 16 KiB; drops zero-length files). make_raw_torrent()
builds a .torrent in Python for crafted, hostile metainfo (paths with '..', wrong lengths) that no tool would write.
"""
import hashlib
import os
import random
import subprocess

from . import bencode

MiB = 1 << 20
KiB = 1 << 10


def det_bytes(seed, n):
    rnd = random.Random(seed)
    out = bytearray()
    while len(out) < n:
        k = min(MiB, n - len(out))
        out += rnd.randbytes(k)
    return bytes(out)


def write_det_file(path, seed, size):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rnd = random.Random(seed)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            k = min(MiB, left)
            f.write(rnd.randbytes(k))
            left -= k


class Fixture:
    def __init__(self, folder, name, files, torrent, multi):
        self.folder = folder          # the directory the seeder scans; holds the .torrent and the data
        self.name = name              # torrent name (file name, or top folder of a multi-file torrent)
        self.files = files            # [(relative path inside the torrent, size)]
        self.torrent = torrent
        self.multi = multi
        with open(torrent, "rb") as f:
            raw = f.read()
        self.metainfo = bencode.decode(raw)
        self.info_hash = hashlib.sha1(bencode.info_bytes(raw)).hexdigest()
        info = self.metainfo[b"info"]
        self.piece_length = info[b"piece length"]
        self.total_size = sum(s for _, s in files)
        self.num_pieces = len(info[b"pieces"]) // 20

    def data_path(self, rel):
        """Where the seeder's copy of a file lives."""
        if self.multi:
            return os.path.join(self.folder, self.name, rel)
        return os.path.join(self.folder, self.name)

    def download_path(self, save_dir, rel):
        """Where a client saving into save_dir puts a file of this torrent."""
        if self.multi:
            return os.path.join(save_dir, self.name, rel)
        return os.path.join(save_dir, self.name)

    def piece_hash(self, index):
        return self.metainfo[b"info"][b"pieces"][20 * index:20 * index + 20]

    def piece_size(self, index):
        if index == self.num_pieces - 1:
            return self.total_size - self.piece_length * (self.num_pieces - 1)
        return self.piece_length

    def read_range(self, offset, length):
        """Bytes [offset, offset+length) of the torrent's concatenated data, from the seeder's files."""
        out = bytearray()
        pos = 0
        for rel, size in self.files:
            lo, hi = max(offset, pos), min(offset + length, pos + size)
            if lo < hi:
                with open(self.data_path(rel), "rb") as f:
                    f.seek(lo - pos)
                    out += f.read(hi - lo)
            pos += size
        return bytes(out)

    def magnet(self, peer=None):
        m = "magnet:?xt=urn:btih:%s" % self.info_hash
        if peer:
            m += "&x.pe=%s:%d" % peer
        return m

    def __repr__(self):
        return "<Fixture %s %s %d files %d bytes, pieces %d x %d>" % (
            self.name, self.info_hash[:12], len(self.files), self.total_size, self.num_pieces, self.piece_length)


def _log2(n):
    k = n.bit_length() - 1
    if 1 << k != n:
        raise ValueError("piece length %d is not a power of two" % n)
    return k


def make_torrent_file(target, out, piece_length, tool=None):
    """Creates out from the file or folder target with a real tool; returns the tool used."""
    if tool is None:
        tool = "mktorrent" if piece_length >= 32 * KiB else "transmission-create"
    if os.path.exists(out):
        os.unlink(out)
    if tool == "mktorrent":
        argv = ["mktorrent", "-d", "-t", "2", "-l", str(_log2(piece_length)), "-o", out, target]
    elif tool == "transmission-create":
        argv = ["transmission-create", "-s", str(piece_length // KiB), "-o", out, target]
    else:
        raise ValueError(tool)
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    if r.returncode != 0 or not os.path.exists(out):
        raise RuntimeError("%s failed (%d): %s" % (argv, r.returncode, r.stdout.decode("utf-8", "replace")))
    return tool


# argv: folder, name, piece length, out (run by Debian's python3, which sees python3-libtorrent)
_LT_HYBRID_PY = """
import os, sys, libtorrent as lt
folder, name, pl, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
os.chdir(folder)
fs = lt.file_storage(); lt.add_files(fs, name)
ct = lt.create_torrent(fs, pl); lt.set_piece_hashes(ct, ".")
open(out, "wb").write(lt.bencode(ct.generate()))
"""


def make_lt_hybrid(folder, name, piece_length, out):
    """Writes out, a hybrid (v1 + v2, BEP 52) .torrent of folder/name made by libtorrent's creator."""
    r = subprocess.run(["/usr/bin/python3", "-c", _LT_HYBRID_PY, folder, name, str(piece_length), out], timeout=60)
    if r.returncode != 0 or not os.path.exists(out):
        raise RuntimeError("libtorrent's creator failed (%d) for %s/%s" % (r.returncode, folder, name))


def make_single(folder, name, size, seed, piece_length, tool=None):
    """A single-file torrent: folder/<name> and folder/<name>.torrent."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    write_det_file(path, seed, size)
    tpath = os.path.join(folder, name + ".torrent")
    make_torrent_file(path, tpath, piece_length, tool)
    return Fixture(folder, name, [(name, size)], tpath, multi=False)


def make_multi(folder, name, spec, seed, piece_length, tool=None):
    """A multi-file torrent: spec is [(relative path, size)]; data in folder/<name>/..., torrent folder/<name>.torrent.
    The file list of the Fixture is taken from the torrent itself (the tool's order, and without what it dropped)."""
    os.makedirs(folder, exist_ok=True)
    root = os.path.join(folder, name)
    for i, (rel, size) in enumerate(spec):
        write_det_file(os.path.join(root, rel), seed * 1000 + i, size)
    tpath = os.path.join(folder, name + ".torrent")
    make_torrent_file(root, tpath, piece_length, tool)
    with open(tpath, "rb") as f:
        info = bencode.decode(f.read())[b"info"]
    files = [("/".join(p.decode("utf-8") for p in fe[b"path"]), fe[b"length"]) for fe in info[b"files"]]
    return Fixture(folder, name, files, tpath, multi=True)


def piece_hashes(chunks_iter, piece_length):
    """SHA-1 of each piece of the concatenation of the byte strings chunks_iter yields."""
    out = []
    buf = bytearray()
    for chunk in chunks_iter:
        buf += chunk
        while len(buf) >= piece_length:
            out.append(hashlib.sha1(bytes(buf[:piece_length])).digest())
            del buf[:piece_length]
    if buf:
        out.append(hashlib.sha1(bytes(buf)).digest())
    return b"".join(out)


def make_raw_torrent(out, name, files, piece_length, content=None, extra_info=None):
    """Writes a .torrent built in Python. files: None for single-file (content is its bytes), or a list of
    (path components as a list of str, bytes) for multi-file. Used for metainfo no real tool writes."""
    if files is None:
        info = {b"name": name, b"piece length": piece_length, b"length": len(content),
                b"pieces": piece_hashes([content], piece_length)}
    else:
        info = {b"name": name, b"piece length": piece_length,
                b"files": [{b"path": list(p), b"length": len(data)} for p, data in files],
                b"pieces": piece_hashes([data for _, data in files], piece_length)}
    if extra_info:
        info.update(extra_info)
    raw = bencode.encode({b"info": info, b"created by": b"hekate interop tests"})
    with open(out, "wb") as f:
        f.write(raw)
    return hashlib.sha1(bencode.encode(info)).hexdigest()


def make_many_tiny(folder, n, prefix="tiny"):
    """n single-file torrents of a few bytes each, written straight into folder (folder/<prefix>NNNNN.bin and its
    .torrent beside it), for tests that need a long scan rather than real data: 20,000 take a second or two. The
    names differ, so the info-hashes do. Returns the list of .torrent paths."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i in range(n):
        name = "%s%05d.bin" % (prefix, i)
        content = b"%d\n" % i
        with open(os.path.join(folder, name), "wb") as f:
            f.write(content)
        info = {b"name": name, b"piece length": 16 * KiB, b"length": len(content),
                b"pieces": hashlib.sha1(content).digest()}
        out = os.path.join(folder, "%s%05d.torrent" % (prefix, i))
        with open(out, "wb") as f:
            f.write(bencode.encode({b"info": info}))
        paths.append(out)
    return paths
