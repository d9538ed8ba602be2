#!/usr/bin/python3
"""Interop: hekate under systemd (issue 11 item 4), without systemd itself running.
(a) sd_notify: hekate started with NOTIFY_SOCKET naming a datagram socket the test owns (and WATCHDOG_USEC=1 s)
sends READY=1 (with STATUS=serving 1 torrent on port P) only once it is serving (the port accepts and the start-up
report is out when READY=1 arrives, never before the port is bound), WATCHDOG=1 every half second, a periodic
STATUS= summary (the 60 s stats timer), and STOPPING=1 on SIGTERM, then exits 0.
(b) journald: with JOURNAL_STREAM set to the device:inode of hekate's stderr, every log line is "<N>message" (<6>
info, <7> debug at -v) with no timestamp; with JOURNAL_STREAM naming another file, timestamps as usual.
(c) --user/--group: as root, hekate --user=nobody binds, then runs as nobody (/proc/PID/status Uid and Gid, no root
supplementary group) and a libtorrent leecher still downloads byte for byte; an unknown user is refused (exit 1)
with a message naming it; as another user, --user=root is refused and hekate does not serve.
(d) the units: systemd-analyze verify passes on dist/systemd/hekate.service and hekate@.service (ExecStart pointed at
the built binary: verify needs it to exist), with no warning; a misspelt key in a copy is reported (the control).
(e) cmake --install into a temporary prefix puts bin/hekate, bin/hekate-show, share/man/man1/hekate.1 and
lib/systemd/system/hekate{,@}.service in place, the units' ExecStart naming PREFIX/bin/hekate, and both verify.
Every process is stopped by PID; deadline 150 s."""
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import fixtures, lt_client, procs, seeders, verify  # noqa: E402
from lib.procs import free_port, wait_port  # noqa: E402

KiB = 1024
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ", re.M)
UNITS = ("hekate.service", "hekate@.service")


def wait_log(child, text, timeout):
    t_end = time.monotonic() + timeout
    while text not in child.log():
        if not child.alive() or time.monotonic() > t_end:
            raise AssertionError("%s never logged %r: %r" % (child.name, text, child.log()[-2000:]))
        time.sleep(0.02)


def port_accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
        return True
    except OSError:
        return False


class FakeManager:
    """The service manager's end of sd_notify: a bound AF_UNIX datagram socket."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.messages = []  # (monotonic time, text)

    def receive(self, timeout):
        """The next message within timeout, or None."""
        r, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        if not r:
            return None
        text = self.sock.recv(4096).decode("utf-8", "replace")
        self.messages.append((time.monotonic(), text))
        return text

    def wait_for(self, prefix, timeout, on_each=None):
        """The first message starting with prefix within timeout (others are kept); None if none came."""
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            m = self.receive(t_end - time.monotonic())
            if m is not None and on_each:
                on_each(m)
            if m is not None and m.startswith(prefix):
                return m
        return None

    def close(self):
        self.sock.close()


def hekate_env(**extra):
    env = dict(os.environ)
    for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM"):
        env.pop(k, None)
    env.update(extra)
    return env


def start_notify(p, build_dir, seed_dir):
    """(a), first half: READY=1 once serving, and watchdog keep-alives. Returns (child, manager, port) for the rest."""
    mgr = FakeManager(p.path("notify.sock"))
    port = free_port()
    argv = [seeders.hekate_binary(build_dir), "-t", "--no-dht", "--bind", "127.0.0.1", "-p", str(port), seed_dir]
    child = p.start("hekate_notify", argv, env=hekate_env(NOTIFY_SOCKET=mgr.path, WATCHDOG_USEC="1000000"))
    state = {"early": None}

    def look(m):  # whatever arrives before READY=1 must not find the port closed... and READY=1 must find it open
        if m.startswith("READY=1") and not port_accepts(port):
            state["early"] = m
    ready = mgr.wait_for("READY=1", 30, look)
    if ready is None:
        raise AssertionError("no READY=1 within 30 s; received %r" % [m for _, m in mgr.messages])
    if state["early"]:
        raise AssertionError("READY=1 arrived while port %d did not accept" % port)
    if ": serving 1 torrent on port" not in child.log():
        raise AssertionError("READY=1 arrived before the start-up report: %r" % child.log())
    want = "READY=1\nSTATUS=serving 1 torrent on port %d" % port
    if ready != want:
        raise AssertionError("READY message %r, expected %r" % (ready, want))
    return child, mgr, port


def check_ready_and_watchdog(p, state):
    child, mgr, port = state["child"], state["mgr"], state["port"]
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < 2.2:
        m = mgr.receive(2.2 - (time.monotonic() - t0))
        if m == "WATCHDOG=1":
            n += 1
    if not 3 <= n <= 6:
        raise AssertionError("%d WATCHDOG=1 in 2.2 s with WATCHDOG_USEC=1000000 (expected one per 0.5 s)" % n)
    return "READY=1 with its STATUS once port %d accepted; %d WATCHDOG=1 in 2.2 s" % (port, n)


def check_status_and_stopping(p, state):
    child, mgr = state["child"], state["mgr"]
    started = state["t_start"]
    status = mgr.wait_for("STATUS=", max(1.0, 75 - (time.monotonic() - started)))
    if status is None:
        raise AssertionError("no periodic STATUS= within 75 s of start")
    if not re.match(r"STATUS=1 torrent, \d+ peers \(\d+ unchoked, \d+ waiting\), \d+ bytes sent$", status):
        raise AssertionError("periodic status %r" % status)
    os.kill(child.pid, signal.SIGTERM)
    stopping = mgr.wait_for("STOPPING=1", 10)
    if stopping != "STOPPING=1\nSTATUS=stopping":
        raise AssertionError("after SIGTERM: %r (all: %r)" % (stopping, [m for _, m in mgr.messages][-5:]))
    try:  # one SIGTERM, as systemd sends: the stop is hekate's own (p.stop would signal it again)
        code = child.popen.wait(timeout=20)
    except subprocess.TimeoutExpired:
        code = "none within 20 s"
    if code != 0:
        raise AssertionError("exit status %s after SIGTERM" % code)
    return "%s; STOPPING=1 on SIGTERM, exit 0" % status


def run_journal(p, build_dir, seed_dir, matching):
    """hekate -v with JOURNAL_STREAM set to its stderr's identity (matching) or to another file's; its log."""
    port = free_port()
    hk = seeders.hekate_binary(build_dir)
    other = os.stat(p.path("notify.sock")) if os.path.exists(p.path("notify.sock")) else os.stat(seed_dir)
    if matching:  # the identity of the log file stderr is, read in the child itself (stat -L on its own fd 2)
        script = 'JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec "$0" "$@"'
    else:
        script = 'JOURNAL_STREAM=%d:%d exec "$0" "$@"' % (other.st_dev, other.st_ino)
    argv = ["/bin/sh", "-c", script, hk, "-v", "-t", "--no-dht", "--bind", "127.0.0.1", "-p", str(port), seed_dir]
    child = p.start("hekate_journal" if matching else "hekate_nojournal", argv, env=hekate_env())
    wait_port(port, child, timeout=30)
    wait_log(child, ": serving 1 torrent", 30)  # the first scan over: the stop is the serving one
    code = p.stop(child)
    if code != 0:
        raise AssertionError("exit status %s" % code)
    return child.log()


def check_journal(p, build_dir, seed_dir):
    log = run_journal(p, build_dir, seed_dir, True)
    if TIMESTAMP.search(log):
        raise AssertionError("timestamps under journald: %r" % TIMESTAMP.search(log).group(0))
    lines = [l for l in log.splitlines() if l.startswith("<")]
    bad = [l for l in lines if not re.match(r"<[3467]>\S", l)]
    if bad or not any(l.startswith("<6>") for l in lines) or not any(l.startswith("<7>") for l in lines):
        raise AssertionError("journald lines: %r" % lines[:10])
    if not any(l.startswith("<6>") and "stopping" in l for l in lines):
        raise AssertionError("no <6> stop line in %r" % lines[-5:])
    plain = run_journal(p, build_dir, seed_dir, False)
    if not TIMESTAMP.search(plain) or re.search(r"^<\d>", plain, re.M):
        raise AssertionError("JOURNAL_STREAM of another file changed the log: %r" % plain[:300])
    return "%d <N> lines, no timestamp; another stream keeps timestamps" % len(lines)


def proc_ids(pid):
    ids = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, val = line.partition(":")
            if key in ("Uid", "Gid", "Groups"):
                ids[key] = val.split()
    return ids


def check_user_drop(p, build_dir, seed_dir, fx):
    import pwd
    nobody = pwd.getpwnam("nobody")
    for d in (p.root, os.path.dirname(seed_dir), seed_dir):  # the seeded tree must be readable by nobody
        os.chmod(d, 0o755)
    hk = seeders.start_hekate(p, build_dir, [seed_dir], args=["--user=nobody"])
    wait_log(hk.child, "running as uid", 30)  # the port accepts from listen(2) on, just before the drop
    ids = proc_ids(hk.pid)
    if ids["Uid"] != [str(nobody.pw_uid)] * 4 or ids["Gid"] != [str(nobody.pw_gid)] * 4 or "0" in ids["Groups"]:
        raise AssertionError("hekate --user=nobody runs with %r" % ids)
    if "running as uid %d, gid %d" % (nobody.pw_uid, nobody.pw_gid) not in hk.child.log():
        raise AssertionError("no 'running as' line: %r" % hk.child.log())
    save = p.path("dl_nobody")
    lt_client.download("nobody", save, hk.addr, timeout=min(60, p.remaining()), torrent=fx.torrent)
    n = verify.verify_download(fx, save)
    hk.assert_alive("after the download")
    code = p.stop(hk.child)
    if code != 0:
        raise AssertionError("exit status %s" % code)
    return "Uid %s Gid %s; %d bytes downloaded and verified" % (ids["Uid"][0], ids["Gid"][0], n)


def check_refusals(p, build_dir, seed_dir):
    hk = seeders.hekate_binary(build_dir)
    port = free_port()
    code, out = p.run("hekate_nouser", [hk, "-t", "--no-dht", "--bind", "127.0.0.1", "-p", str(port), "--user=no-such-user-hk",
                                        seed_dir], timeout=20, env=hekate_env())
    if code != 1 or "--user: no such user 'no-such-user-hk'" not in out:
        raise AssertionError("unknown user: exit %s, %r" % (code, out))
    detail = "unknown user refused (exit 1, named)"
    if os.getuid() != 0:
        code, out = p.run("hekate_toroot", [hk, "-t", "--no-dht", "--bind", "127.0.0.1", "-p", str(port), "--user=root",
                                            seed_dir], timeout=20, env=hekate_env())
        if code != 1 or "cannot drop privileges to user 'root'" not in out or ": serving" in out:
            raise AssertionError("--user=root as uid %d: exit %s, %r" % (os.getuid(), code, out))
        detail += "; --user=root as a user refused before serving"
    return detail


def verify_unit(p, path, binary, name):
    """systemd-analyze verify on a copy of the unit at path with ExecStart's /usr/bin/hekate replaced by binary."""
    with open(path) as f:
        text = f.read()
    if "ExecStart=/usr/bin/hekate " not in text:
        raise AssertionError("%s: no ExecStart=/usr/bin/hekate" % path)
    os.makedirs(p.path("units"), exist_ok=True)
    copy = p.path("units", name)
    with open(copy, "w") as f:
        f.write(text.replace("/usr/bin/hekate ", binary + " "))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", copy], capture_output=True, text=True, timeout=60)
    return r.returncode, (r.stdout + r.stderr).strip()


def check_units(p, build_dir, source_dir):
    hk = seeders.hekate_binary(build_dir)
    for u in UNITS:
        code, out = verify_unit(p, os.path.join(source_dir, "dist", "systemd", u), hk, u)
        if code != 0 or out:
            raise AssertionError("systemd-analyze verify %s: exit %d: %s" % (u, code, out))
    bad = p.path("units", "broken.service")  # the control: verify does report a mistake
    with open(os.path.join(source_dir, "dist", "systemd", "hekate.service")) as f:
        text = f.read().replace("WatchdogSec=", "WatchdgSec=").replace("/usr/bin/hekate ", hk + " ")
    with open(bad, "w") as f:
        f.write(text)
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", bad], capture_output=True, text=True, timeout=60)
    if "WatchdgSec" not in r.stdout + r.stderr:
        raise AssertionError("a misspelt key went unreported: %r" % (r.stdout + r.stderr))
    return "both units verify cleanly; a misspelt key is reported"


def check_install(p, build_dir, source_dir):
    prefix = p.path("prefix")
    r = subprocess.run(["cmake", "--install", build_dir, "--prefix", prefix], capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0:
        raise AssertionError("cmake --install: %s" % (r.stdout + r.stderr))
    want = ["bin/hekate", "bin/hekate-show", "share/man/man1/hekate.1", "lib/systemd/system/hekate.service",
            "lib/systemd/system/hekate@.service"]
    missing = [w for w in want if not os.path.isfile(os.path.join(prefix, w))]
    if missing:
        raise AssertionError("not installed: %s" % missing)
    for exe in ("bin/hekate", "bin/hekate-show"):
        if not os.access(os.path.join(prefix, exe), os.X_OK):
            raise AssertionError("%s is not executable" % exe)
    rc, out = subprocess.run([os.path.join(prefix, "bin/hekate"), "--version"], capture_output=True, text=True,
                             timeout=10).returncode, None
    if rc != 0:
        raise AssertionError("installed hekate --version: exit %d" % rc)
    for u in UNITS:  # installed as they are, ExecStart naming the installed binary
        unit = os.path.join(prefix, "lib/systemd/system", u)
        with open(unit) as f:
            text = f.read()
        if "\nExecStart=%s/bin/hekate " % prefix not in text:
            raise AssertionError("installed %s does not start %s/bin/hekate" % (u, prefix))
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", unit], capture_output=True, text=True,
                           timeout=60)
        out = (r.stdout + r.stderr).strip()
        if r.returncode != 0 or out:
            raise AssertionError("installed %s: exit %d: %s" % (u, r.returncode, out))
    return "%d files under %s; the installed units start the installed binary and verify" % (len(want), prefix)


def body(p, checks, build_dir, source_dir):
    seed_dir = p.path("seed")
    fx = fixtures.make_single(os.path.join(seed_dir, "sd"), "systemd.bin", 512 * KiB + 99, 61, 32 * KiB)
    state = {"t_start": time.monotonic()}
    started = checks.run("notify_ready", lambda: start_notify(p, build_dir, seed_dir))
    if started:
        state["child"], state["mgr"], state["port"] = started
        checks.run("notify_ready_and_watchdog", check_ready_and_watchdog, p, state)
    checks.run("journald_prefixes", check_journal, p, build_dir, seed_dir)
    if os.getuid() == 0:
        checks.run("user_nobody_serves", check_user_drop, p, build_dir, seed_dir, fx)
    else:
        print("(not root: the --user=nobody run needs root; its refusal path is checked instead)")
    checks.run("user_refusals", check_refusals, p, build_dir, seed_dir)
    checks.run("units_verify", check_units, p, build_dir, source_dir)
    checks.run("cmake_install", check_install, p, build_dir, source_dir)
    if started:  # last: the periodic STATUS= comes from the 60 s stats timer
        checks.run("notify_status_and_stopping", check_status_and_stopping, p, state)
        state["mgr"].close()


if __name__ == "__main__":
    procs.main_wrapper("test_systemd", 150, body)
