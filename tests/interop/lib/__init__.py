"""Interop harness: drives real BitTorrent clients (python-libtorrent, aria2c) and raw sockets against a seeder
(hekate, or a python-libtorrent reference seeder) on 127.0.0.1. Every module here is plain Python 3 (run with
/usr/bin/python3, the only interpreter that can import libtorrent); nothing reaches beyond 127.0.0.1."""
