#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_seeder (tests/fuzz/corpus/seeder/): one file per scenario.
Layout (see fuzz_seeder.c): flags byte, chunking-seed byte, then the bytes the peer sends."""
import hashlib
import os
import struct
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "seeder")

AUTO_HS, FAST, EXT, COLD, MULTI, RIVAL, TINY_CREDIT, TINY_REQQ = 1, 2, 4, 8, 16, 32, 64, 128


def msg(mid, payload=b""):
    return struct.pack(">IB", 1 + len(payload), mid) + payload


def block(mid, index, begin, length):
    return msg(mid, struct.pack(">III", index, begin, length))


def req(i, b, l=16384):
    return block(6, i, b, l)


def cancel(i, b, l=16384):
    return block(8, i, b, l)


def ext(eid, payload):
    return msg(20, bytes([eid]) + payload)


INTERESTED, NOT_INTERESTED = msg(2), msg(3)
KEEPALIVE = b"\0\0\0\0"


def single_info_hash():
    info = b"d6:lengthi100000e4:name6:single12:piece lengthi32768e6:pieces80:" + b"\0" * 80 + b"e"
    return hashlib.sha1(info).digest()


def handshake(ih, fast=True, extended=True):
    res = bytearray(8)
    if extended:
        res[5] |= 0x10
    if fast:
        res[7] |= 0x04
    return b"\x13BitTorrent protocol" + bytes(res) + ih + b"-XX0000-000000000000"


seeds = {
    "fast_requests": (AUTO_HS | FAST | EXT, 3,
                      INTERESTED + req(0, 0) + req(0, 16384) + req(3, 0, 1696) + cancel(0, 16384) + req(1, 0)
                      + KEEPALIVE + NOT_INTERESTED),
    "no_fast_bitfield": (AUTO_HS, 7, msg(5, b"\xa0") + INTERESTED + req(2, 0) + req(2, 0) + req(1, 16384)),
    "cold_disk": (AUTO_HS | FAST | COLD, 11, INTERESTED + b"".join(req(i, 0) for i in range(3)) + req(0, 16384)),
    "rival_chokes": (AUTO_HS | FAST | RIVAL | TINY_CREDIT, 5,
                     INTERESTED + b"".join(req(i % 3, (i // 3) * 16384) for i in range(6)) + KEEPALIVE * 4),
    "tiny_queue_flood": (AUTO_HS | FAST | TINY_REQQ, 9,
                         INTERESTED + b"".join(req(i % 3, (i // 3 % 2) * 16384) for i in range(40))),
    "multi_file_pad": (AUTO_HS | FAST | MULTI, 13,
                       INTERESTED + req(0, 0) + req(1, 0) + req(1, 3616, 16384 - 3616) + req(4, 0, 72769 - 65536)),
    "ut_metadata": (AUTO_HS | FAST | EXT, 17,
                    ext(0, b"d1:md11:ut_metadatai3eee") + ext(1, b"d8:msg_typei0e5:piecei0ee")
                    + ext(1, b"d8:msg_typei0e5:piecei0ee") + ext(1, b"d8:msg_typei2e5:piecei0ee")),
    "own_handshake": (0, 21, handshake(single_info_hash()) + INTERESTED + req(0, 0)),
    "seed_have_all": (AUTO_HS | FAST, 2, msg(14)),
    "invalid_request": (AUTO_HS | FAST, 4, INTERESTED + req(0, 0, 16385)),
    "bad_pstr": (0, 1, b"\x13BitTorrent protocoX" + bytes(48)),
}

os.makedirs(OUT, exist_ok=True)
for name, (flags, seed, stream) in seeds.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(bytes([flags, seed]) + stream)
print(f"wrote {len(seeds)} seeds to {OUT}")
