#!/usr/bin/python3
"""Interop: the real-client matrix with each client's own "require encryption" setting (lib/clients.py:
python-libtorrent out/in_enc_policy = pe_forced with RC4 only, aria2c --bt-require-crypto=true
--bt-min-crypto-level=arc4, Transmission encryption 2, rtorrent protocol.encryption require + require_RC4,
qBittorrent Session\\Encryption=1); ctorrent has no MSE/PE and is left out. Each client downloads the 6 MiB torrent
from hekate (at -v -v) byte for byte, and hekate's own per-peer log must show that every peer it sent blocks to
during that client's run had completed an MSE handshake with RC4 selected ("peer N: mse handshake for torrent HEX:
encrypted rc4", core/seeder.h). Same set-up as test_client_matrix.py (lib/matrix.py). Deadline 240 s. Before MSE/PE
no client with encryption required could connect to hekate at all."""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import clients, matrix  # noqa: E402

if __name__ == "__main__":
    matrix.main("test_client_matrix_encrypted", 240, True, list(clients.ENCRYPTING), hekate_args=("-v", "-v"))
