"""seeders: start the seeder under test. HEKATE_INTEROP_SEEDER=libtorrent swaps hekate for the python-libtorrent
reference seeder (lt_seeder.py), which is how the harness itself is validated; the default is hekate, taken from
BUILD_DIR/backend-real/hekate (a missing binary is a test failure, not a skip)."""
import os
import time

from .procs import free_port, wait_port

HERE = os.path.dirname(os.path.abspath(__file__))


class Seeder:
    def __init__(self, kind, child, port):
        self.kind = kind
        self.child = child
        self.port = port
        self.addr = ("127.0.0.1", port)

    @property
    def pid(self):
        return self.child.pid

    def alive(self):
        return self.child.alive()

    def assert_alive(self, what=""):
        if not self.child.alive():
            raise AssertionError("%s exited (status %s) %s" % (self.kind, self.child.returncode(), what))


def seeder_kind():
    k = os.environ.get("HEKATE_INTEROP_SEEDER", "hekate")
    if k not in ("hekate", "libtorrent"):
        raise ValueError("HEKATE_INTEROP_SEEDER must be hekate or libtorrent, not %r" % k)
    return k


def hekate_binary(build_dir):
    p = os.path.join(build_dir, "backend-real", "hekate")
    if not (os.path.isfile(p) and os.access(p, os.X_OK)):
        raise RuntimeError("hekate is not built: %s does not exist" % p)
    return p


def start_hekate(procs, build_dir, dirs, port=None, args=(), name="hekate", wait=True):
    port = port or free_port()
    argv = [hekate_binary(build_dir), "-t", "--bind", "127.0.0.1", "-p", str(port)] + list(args) + list(dirs)
    child = procs.start(name, argv)
    if wait:
        wait_port(port, child, timeout=30)
    return Seeder("hekate", child, port)


def start_lt_seeder(procs, dirs, port=None, high_performance=False, seed_mode=False, name="lt_seeder", timeout=120):
    port = port or free_port()
    argv = ["/usr/bin/python3", os.path.join(HERE, "lt_seeder.py"), "-p", str(port)]
    if high_performance:
        argv.append("--high-performance")
    if seed_mode:
        argv.append("--seed-mode")
    child = procs.start(name, argv + list(dirs))
    t_end = time.monotonic() + timeout
    while "READY" not in child.log():
        if not child.alive():
            raise RuntimeError("lt_seeder exited (%s) before READY" % child.returncode())
        if time.monotonic() > t_end:
            raise RuntimeError("lt_seeder not READY after %d s" % timeout)
        time.sleep(0.05)
    wait_port(port, child, timeout=10)
    return Seeder("libtorrent", child, port)


def start_seeder(procs, build_dir, dirs, args=(), kind=None, **kw):
    kind = kind or seeder_kind()
    if kind == "hekate":
        return start_hekate(procs, build_dir, dirs, args=args, **kw)
    return start_lt_seeder(procs, dirs, **kw)
