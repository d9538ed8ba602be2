#!/usr/bin/python3
"""floor: the cheapest way to move the same bytes over loopback TCP, as a floor for seed_bench.py.

  floor.py recv PORT_FILE          listen on 127.0.0.1 (any port, written to PORT_FILE), accept one connection,
                                   read until EOF into one reused buffer, print "DONE <bytes>"
  floor.py send PORT FILE REPEAT MODE
                                   connect, print "READY", wait for SIGUSR1, then send FILE REPEAT times and print
                                   "SENT <bytes> <calls>", close, and sleep until SIGTERM (so that its /proc/PID/stat
                                   can still be read). MODE: mmap (send() from a read-only mapping in 1 MiB slices:
                                   one copy from the page cache into the socket, what a writev-from-mmap seeder does)
                                   or sendfile (os.sendfile in 1 MiB slices)."""
import mmap
import os
import signal
import socket
import sys
import time

CHUNK = 1 << 20


def recv(port_file):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(ls.getsockname()[1]))
    os.rename(port_file + ".tmp", port_file)
    c, _ = ls.accept()
    buf = bytearray(4 << 20)
    total = 0
    while True:
        n = c.recv_into(buf)
        if n == 0:
            break
        total += n
    print("DONE %d" % total, flush=True)


def send(port, path, repeat, mode):
    go = []
    signal.signal(signal.SIGUSR1, lambda s, f: go.append(1))
    fd = os.open(path, os.O_RDONLY)
    size = os.fstat(fd).st_size
    mm = mmap.mmap(fd, size, prot=mmap.PROT_READ)
    view = memoryview(mm)
    s = socket.create_connection(("127.0.0.1", port))
    print("READY", flush=True)
    while not go:
        signal.pause()
    total = calls = 0
    for _ in range(repeat):
        off = 0
        while off < size:
            if mode == "mmap":
                n = s.send(view[off:off + CHUNK])
            else:
                n = os.sendfile(s.fileno(), fd, off, min(CHUNK, size - off))
            off += n
            total += n
            calls += 1
    s.shutdown(socket.SHUT_WR)
    s.close()
    print("SENT %d %d" % (total, calls), flush=True)
    signal.signal(signal.SIGTERM, lambda s_, f: os._exit(0))
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    if sys.argv[1] == "recv":
        recv(sys.argv[2])
    else:
        send(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5])
