"""procs: processes started by a test, each in its own process group, logs captured, always stopped by PID.

Procs (a context manager) owns a temporary work directory (logs/ for every child's stdout+stderr). start() runs a
command with start_new_session=True, so the child leads its own process group and anything it forks can be stopped
with it (os.killpg on the group id, which is the child's own PID: never a broad kill by name), and dies with the test
process if that is killed outright (PR_SET_PDEATHSIG). stop() sends SIGTERM,
waits, then SIGKILL. On leaving the context every still-running child is stopped; if the body raised, every log is
printed. A watchdog thread enforces the test's hard deadline even if the main thread is stuck in a C call: it stops
the children and exits the interpreter with status 1.

free_port() binds port 0 on 127.0.0.1 to find a free TCP port (the usual small race is accepted: tests fail loudly if
the port is taken meanwhile).

source_address(i, host) names a loopback address for client number i to connect from, each i in its own /24 of
127.0.0.0/8 (127.(1 + i // 256).(i % 256).host, i < 65024): hekate caps connections per address and per /24
(--max-peers-per-address, --max-peers-per-prefix), so clients that stand for distinct hosts must come from distinct
addresses. 127.0.0.0/24 (127.0.0.1, the default source) is never handed out. The host byte separates uses:
HOST_LT (libtorrent leechers), HOST_RAW (raw peer-wire clients), HOST_IDLE (bench/idle_conns.py)."""
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback


class DeadlineExceeded(Exception):
    pass


_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # Runs in the child between fork and exec: if the test process is killed outright (SIGKILL from ctest's own
    # timeout), the kernel sends SIGKILL to this child too, so nothing outlives the test.
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


# Ports handed out by free_port: below the kernel's ephemeral range (32768-60999 by default), so that no outgoing
# connection of a test running in parallel (clients, trackers, the DHT) can take a port between the moment it is
# picked and the moment the process it is meant for binds it. Each process starts at a random place in the range and
# walks it, so parallel tests rarely try the same ports.
# HEKATE_PORT_RANGE=LOW-HIGH narrows it (helpers sharing one machine each take their own range; HK_TEST_PORTS is
# the same setting under its earlier name).
PORT_LOW, PORT_HIGH = 10000, 32767
_range = os.environ.get("HEKATE_PORT_RANGE") or os.environ.get("HK_TEST_PORTS")
if _range:
    PORT_LOW, PORT_HIGH = (int(x) for x in _range.split("-", 1))
_next_port = [None]


def _bindable(port):
    """true if port is free on the wildcard address for TCP and for UDP (hekate binds both on its port)."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("", port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def free_port():
    """A port that is free now for TCP and UDP, outside the ephemeral range (see PORT_LOW)."""
    span = PORT_HIGH - PORT_LOW + 1
    if _next_port[0] is None:
        _next_port[0] = int.from_bytes(os.urandom(4), "little") % span
    for _ in range(2000):
        port = PORT_LOW + _next_port[0] % span
        _next_port[0] += 1
        if _bindable(port):
            return port
    raise RuntimeError("no free port in %d-%d" % (PORT_LOW, PORT_HIGH))


HOST_LT, HOST_RAW, HOST_IDLE = 1, 2, 3


def source_address(i, host=HOST_RAW):
    if not 0 <= i < 254 * 256 or not 1 <= host <= 254:
        raise ValueError("source_address(%r, %r): i in [0, 65024), host in [1, 254]" % (i, host))
    return "127.%d.%d.%d" % (1 + i // 256, i % 256, host)


class Child:
    def __init__(self, name, argv, popen, log_path):
        self.name = name
        self.argv = argv
        self.popen = popen
        self.pid = popen.pid
        self.log_path = log_path

    def alive(self):
        return self.popen.poll() is None

    def returncode(self):
        return self.popen.poll()

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def __repr__(self):
        return "<%s pid %d>" % (self.name, self.pid)


class Procs:
    def __init__(self, name, deadline_s, keep=False):
        self.name = name
        self.deadline_s = deadline_s
        self.t0 = time.monotonic()
        self.children = []
        self.keep = keep or bool(os.environ.get("HEKATE_INTEROP_KEEP"))
        self.root = tempfile.mkdtemp(prefix="hekate-%s-" % name)
        self.logs = os.path.join(self.root, "logs")
        os.mkdir(self.logs)
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, daemon=True)
        self._watchdog.start()

    # -- time
    def remaining(self):
        return self.deadline_s - (time.monotonic() - self.t0)

    def check_deadline(self, what=""):
        if self.remaining() <= 0:
            raise DeadlineExceeded("%s: test deadline of %d s exceeded %s" % (self.name, self.deadline_s, what))

    def _watch(self):
        # Backstop: 15 s after the deadline, whatever the main thread is doing, stop everything and exit.
        if self._done.wait(self.deadline_s + 15):
            return
        sys.stderr.write("%s: HARD DEADLINE (%d s) exceeded: stopping children and exiting\n"
                         % (self.name, self.deadline_s))
        self.stop_all()
        self.dump_logs()
        sys.stderr.flush()
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)
        os._exit(1)

    # -- processes
    def path(self, *parts):
        p = os.path.join(self.root, *parts)
        return p

    def start(self, name, argv, cwd=None, env=None, stdin=subprocess.DEVNULL):
        log_path = os.path.join(self.logs, "%s.%d.log" % (name, len(self.children)))
        logf = open(log_path, "wb")
        try:
            popen = subprocess.Popen(argv, stdin=stdin, stdout=logf, stderr=subprocess.STDOUT, cwd=cwd, env=env,
                                     start_new_session=True, preexec_fn=_die_with_parent)
        finally:
            logf.close()
        c = Child(name, argv, popen, log_path)
        with self._lock:
            self.children.append(c)
        return c

    def run(self, name, argv, timeout, cwd=None, env=None):
        """Runs a command to completion (bounded); returns (returncode, output)."""
        c = self.start(name, argv, cwd=cwd, env=env)
        try:
            c.popen.wait(timeout=min(timeout, max(1, self.remaining())))
        except subprocess.TimeoutExpired:
            self.stop(c)
            raise DeadlineExceeded("%s did not finish within %s s: %s" % (name, timeout, " ".join(argv)))
        return c.popen.returncode, c.log()

    def stop(self, c, sig=signal.SIGTERM, grace=10.0):
        """Stops one child (and its process group) by PID; returns its exit status."""
        if c.popen.poll() is None:
            try:
                os.killpg(c.pid, sig)
            except ProcessLookupError:
                pass
            try:
                c.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        # The leader may be gone while members of its group live on: SIGKILL the group in any case.
        try:
            os.killpg(c.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            c.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        return c.popen.returncode

    def stop_all(self):
        with self._lock:
            children = list(self.children)
        for c in reversed(children):
            try:
                self.stop(c, grace=3.0)
            except Exception:  # noqa: BLE001 - cleanup must go on
                pass

    def dump_logs(self):
        with self._lock:
            children = list(self.children)
        for c in children:
            text = c.log()
            sys.stderr.write("----- log of %s (pid %d, exit %s): %s\n" % (c.name, c.pid, c.popen.poll(),
                                                                        " ".join(c.argv)))
            if len(text) > 20000:
                text = "[... %d bytes cut ...]\n" % (len(text) - 20000) + text[-20000:]
            sys.stderr.write(text)
            sys.stderr.write("\n----- end of log of %s\n" % c.name)

    def close(self, failed):
        self._done.set()
        self.stop_all()
        if failed:
            self.dump_logs()
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)
        else:
            sys.stderr.write("kept work directory %s\n" % self.root)

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        self.close(et is not None)
        return False


def wait_port(port, child=None, timeout=20.0, host="127.0.0.1"):
    """Waits until a TCP connect to host:port succeeds; fails early if child exits."""
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if child is not None and not child.alive():
            raise RuntimeError("%s exited (status %s) before listening on %d" % (child.name, child.returncode(), port))
        try:
            s = socket.create_connection((host, port), timeout=1.0)
            s.close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on %s:%d after %.0f s" % (host, port, timeout))


STARTED_LINE = re.compile(r"hekate \S+: serving \d+ torrents? on port")


def wait_started(child, timeout=60.0):
    """Waits for hekate's start-up line (printed once the first scan is over; not with -q). hekate serves while its
    first scan runs, so a listening port no longer means that every torrent of the folders is served yet."""
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if STARTED_LINE.search(child.log()):
            return
        if not child.alive():
            raise RuntimeError("%s exited (status %s) before its first scan ended" % (child.name, child.returncode()))
        time.sleep(0.02)
    raise RuntimeError("%s: no start-up line after %.0f s" % (child.name, timeout))


class Checks:
    """Named sub-checks of one test script: each is run, timed and reported; the script fails if any failed."""

    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.failures = []

    def run(self, name, fn, *args, **kw):
        t0 = time.monotonic()
        try:
            r = fn(*args, **kw)
        except DeadlineExceeded:
            raise
        except Exception as e:  # noqa: BLE001 - every failure is reported, then the next check runs
            self.failed += 1
            self.failures.append(name)
            sys.stdout.write("FAIL %s (%.1f s): %s\n" % (name, time.monotonic() - t0, e))
            traceback.print_exc(file=sys.stdout)
            sys.stdout.flush()
            return None
        self.passed += 1
        sys.stdout.write("ok   %s (%.1f s)%s\n" % (name, time.monotonic() - t0, (": " + r) if isinstance(r, str) else ""))
        sys.stdout.flush()
        return r


def main_wrapper(name, deadline_s, body):
    """Entry point of a test script: argv is BUILD_DIR SOURCE_DIR. Runs body(procs, checks, build_dir, source_dir)
    under the deadline and prints 'N passed, N failed'. Exit status 0 only if every check passed."""
    if len(sys.argv) < 3:
        sys.stderr.write("usage: %s BUILD_DIR SOURCE_DIR\n" % sys.argv[0])
        sys.exit(2)
    build_dir, source_dir = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    checks = Checks()
    failed = True
    procs = Procs(name, deadline_s)

    def on_signal(signum, frame):
        if signum == signal.SIGALRM:
            raise DeadlineExceeded("%s: test deadline of %d s exceeded" % (name, deadline_s))
        raise DeadlineExceeded("%s: stopped by signal %d" % (name, signum))
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGALRM, on_signal)
    signal.alarm(deadline_s)
    try:
        body(procs, checks, build_dir, source_dir)
        failed = checks.failed > 0
    except BaseException:  # noqa: BLE001 - report everything, including the deadline
        traceback.print_exc()
        checks.failed += 1
        failed = True
    finally:
        signal.alarm(0)
        procs.close(failed)
    print("%s: %d passed, %d failed" % (name, checks.passed, checks.failed))
    sys.stdout.flush()
    # Leave without running libtorrent's session destructors in interpreter teardown (they can block).
    os._exit(1 if failed else 0)
