"""seeders: start the seeder under test. HEKATE_INTEROP_SEEDER=libtorrent swaps hekate for the python-libtorrent
reference seeder (lt_seeder.py), which is how the harness itself is validated; the default is hekate, taken from
BUILD_DIR/backend-real/hekate (a missing binary is a test failure, not a skip)."""
import os
import re
import signal
import subprocess
import time

from .procs import free_port, wait_port, wait_started

HERE = os.path.dirname(os.path.abspath(__file__))
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:", "SUMMARY: UndefinedBehavior")


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

    def wait_log(self, pattern, timeout):
        """The first match of the regular expression pattern in the seeder's log, waited for up to timeout seconds
        (AssertionError with the log's tail when it does not come, or when the seeder dies meanwhile)."""
        rx = re.compile(pattern)
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            m = rx.search(self.child.log())
            if m:
                return m
            self.assert_alive("waiting for /%s/" % pattern)
            time.sleep(0.05)
        raise AssertionError("no /%s/ in the log within %d s; tail:\n%s" % (pattern, timeout, self.child.log()[-3000:]))

    def stop_cleanly(self, procs, sig=signal.SIGTERM):
        """Stops the seeder with sig; it must exit 0 within 10 s and its log must hold no sanitizer report."""
        self.assert_alive("before being stopped")
        self.child.popen.send_signal(sig)
        try:
            status = self.child.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            procs.stop(self.child)
            raise AssertionError("%s did not stop within 10 s of signal %d" % (self.kind, sig))
        log = self.child.log()
        for marker in SANITIZER_MARKERS:
            if marker in log:
                raise AssertionError("%s log holds a sanitizer report (%s)" % (self.kind, marker))
        if status != 0:
            raise AssertionError("%s exited with status %s on signal %d" % (self.kind, status, sig))
        return "exit 0 after signal %d" % sig


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


def start_hekate(procs, build_dir, dirs, port=None, args=(), name="hekate", wait=True, host="127.0.0.1"):
    """host: the address hekate binds (--bind); 127.0.0.1 unless a client needs another (see clients.py).
    The DHT is off (--no-dht: its default bootstrap routers are on the Internet) unless args name a --dht option."""
    port = port or free_port()
    dht = [] if any(str(a).startswith("--dht") for a in args) else ["--no-dht"]
    argv = [hekate_binary(build_dir), "-t"] + dht + ["--bind", host, "-p", str(port)] + list(args) + list(dirs)
    child = procs.start(name, argv)
    if wait:
        wait_port(port, child, timeout=30, host=host)
        if "-q" not in args and "--quiet" not in args:
            wait_started(child)
    s = Seeder("hekate", child, port)
    s.addr = (host, port)
    return s


def start_lt_seeder(procs, dirs, port=None, high_performance=False, seed_mode=False, name="lt_seeder", timeout=120,
                    encryption=False):
    port = port or free_port()
    argv = ["/usr/bin/python3", os.path.join(HERE, "lt_seeder.py"), "-p", str(port)]
    if high_performance:
        argv.append("--high-performance")
    if encryption:
        argv.append("--encryption")  # accept MSE/PE (lt_seeder.py)
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
