#!/usr/bin/env python3
"""Writes N tiny single-file torrents for the start-up benchmark (bench/startup_bench.sh): DIR/dNNNN/tNNNNNNN.torrent
and its 1-byte data file tNNNNNNN.dat beside it, PER_DIR torrents per folder (default 1000). Each data byte and the
torrent's name differ, so every info-hash is distinct. Usage: gen_tiny_torrents.py N DIR [PER_DIR]"""
import hashlib
import os
import sys


def bstr(b):
    return str(len(b)).encode() + b":" + b


def torrent(name, data):
    info = (b"d6:lengthi" + str(len(data)).encode() + b"e4:name" + bstr(name) +
            b"12:piece lengthi16384e6:pieces" + bstr(hashlib.sha1(data).digest()) + b"e")
    return b"d4:info" + info + b"e"


def main():
    main_args(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1000)


def main_args(n, root, per=1000):
    for i in range(n):
        d = os.path.join(root, "d%04d" % (i // per))
        if i % per == 0:
            os.makedirs(d, exist_ok=True)
        name = b"t%07d.dat" % i
        data = bytes([i & 0xff])
        with open(os.path.join(d, "t%07d.dat" % i), "wb") as f:
            f.write(data)
        with open(os.path.join(d, "t%07d.torrent" % i), "wb") as f:
            f.write(torrent(name, data))


if __name__ == "__main__":
    main()
