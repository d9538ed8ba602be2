#!/usr/bin/python3
"""Interop: the real-client matrix with each client's own default settings. python-libtorrent, aria2c,
transmission-daemon, rtorrent, qbittorrent-nox and ctorrent each download a 6 MiB torrent (256 KiB pieces) from
hekate, finding it through a test-local HTTP tracker named in the .torrent; each download is verified byte for
byte. Each check prints the client's time and the few settings its driver changed (lib/clients.py: ports, folders,
and DHT/LSD/UPnP where they would leave the host). libtorrent, qBittorrent and Transmission dial uTP first: their
checks also assert that every peer hekate (at -v -v) sent blocks to came from a uTP connection it accepted
(docs/design.md §17). hekate is bound to 127.0.0.2 (ctorrent ignores peers at its own
address) and transmission runs in a private network namespace (it refuses loopback peers): lib/matrix.py says why.
Clients run one after another, each bounded (45 s) and stopped by PID, also on failure. Deadline 240 s.
Run a subset by naming clients after BUILD_DIR SOURCE_DIR."""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import clients, matrix  # noqa: E402

if __name__ == "__main__":
    matrix.main("test_client_matrix", 240, False, list(clients.KINDS), hekate_args=("-v", "-v"))
