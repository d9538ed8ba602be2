#!/usr/bin/python3
"""Interop: the control socket (--control=PATH) driven by hekatectl. A stale socket file left at PATH is replaced;
the socket is created mode 0600; a second hekate on the same PATH is refused. `status` and `torrents --top 2 --json`
(parsed: the two torrents, most uploaded first after a libtorrent download of one) answer; a .torrent copied into
the served folder after the scan is served once `hekatectl add` names it (a raw peer handshake is answered; an add
outside the folder, or through a symbolic link, is refused); `remove` stops it (the handshake is refused); `rescan`
adds it again (the file is still there; `status` shows the finished rescan). Garbage (random bytes, a NUL, an unknown
command), a 1 MiB line, and 100 clients at once each get an error (the 1 MiB line closes its connection; the
clients beyond the cap are refused, the rest answered), `verify A` says a full check started and hekate's log then
shows that torrent's marks dropped and the pass done with nothing damaged (`verify` of a torrent not served is an
error), `reload-config` says there is no config file (-c),
and after all of it a libtorrent download still completes byte for byte and hekate stops cleanly, removing the
socket. Deadline 150 s."""
import json
import os
import random
import shutil
import signal
import socket
import stat
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import fixtures, lt_client, peerwire, procs, seeders, verify  # noqa: E402
from lib.fixtures import KiB, MiB  # noqa: E402


def ctl_binary(build_dir):
    p = os.path.join(build_dir, "backend-real", "hekatectl")
    if not os.access(p, os.X_OK):
        raise RuntimeError("hekatectl is not built: %s" % p)
    return p


def raw_request(sock_path, data, timeout=10):
    """Sends data on a fresh connection and returns everything read until hekate closes or a line arrives."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock_path)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # hekate stopped reading and closed: its reply is still queued for us
        got = b""
        while not got.endswith(b"\n"):
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
        return got
    finally:
        s.close()


def error_of(reply):
    r = json.loads(reply.decode())
    if r.get("ok") is not False or not r.get("error"):
        raise AssertionError("not an error reply: %r" % reply[:300])
    return r["error"]


def download(p, hk, fixture, tag):
    save = p.path("dl", tag)
    r = lt_client.download(tag, save, hk.addr, timeout=min(60, p.remaining()), torrent=fixture.torrent)
    n = verify.verify_download(fixture, save)
    hk.assert_alive("after downloading " + tag)
    return "%d bytes verified in %.2f s" % (n, r["seconds"])


def body(p, checks, build_dir, source_dir):
    ctl = ctl_binary(build_dir)
    seed = p.path("seed")
    a = fixtures.make_single(seed, "alpha.bin", 2 * MiB + 17, 61, 64 * KiB)
    b = fixtures.make_single(seed, "beta.bin", 1 * MiB + 5, 62, 32 * KiB)
    staging = p.path("staging")
    c = fixtures.make_single(staging, "gamma.bin", 700000, 63, 32 * KiB)
    sock = p.path("hekate.ctl")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # a socket file nobody listens on: a crash's leftover
    stale.bind(sock)
    stale.close()
    # --no-watch: the control commands alone change what is served (the folder watch would add C by itself once its
    # files are copied in, before `add` or just after `remove`: see hekatectl(1))
    hk = seeders.start_hekate(p, build_dir, [seed], args=["--control", sock, "--no-watch"])
    print("hekate on port %d (pid %d), control %s" % (hk.port, hk.pid, sock))

    def hctl(*args, ok=True):
        rc, out = p.run("hekatectl", [ctl, "-s", sock] + list(args), 15)
        if (rc == 0) != ok:
            raise AssertionError("hekatectl %s: exit %s, output %r" % (" ".join(args), rc, out))
        return out

    def mode_0600():
        st = os.lstat(sock)
        if not stat.S_ISSOCK(st.st_mode) or stat.S_IMODE(st.st_mode) != 0o600:
            raise AssertionError("%s: mode %o" % (sock, st.st_mode))
        return "stale socket replaced; a socket of mode 0600"
    checks.run("socket_mode_0600", mode_0600)

    def second_refused():
        rc, out = p.run("hekate-second", [seeders.hekate_binary(build_dir), "-t", "--no-dht", "-p", "0", "--control", sock,
                                          seed], 15)
        if rc != 1 or "another process is listening" not in out:
            raise AssertionError("exit %s, output %r" % (rc, out))
        os.lstat(sock)  # still there, still hekate's
        return out.strip().splitlines()[-1]
    checks.run("second_hekate_on_the_socket_refused", second_refused)

    def status():
        out = hctl("status")
        if "torrents" not in out or "uptime_seconds" not in out:
            raise AssertionError("status: %r" % out)
        r = json.loads(hctl("--json", "status").strip())
        if r["ok"] is not True or r["torrents"] != 2 or r["pid"] != hk.pid:
            raise AssertionError("status --json: %r" % r)
        return "%d torrents, pid %d; table:\n%s" % (r["torrents"], r["pid"], out.rstrip())
    checks.run("status", status)
    checks.run("a_downloads", download, p, hk, a, "a1")

    def top2():
        r = json.loads(hctl("--json", "torrents", "--top", "2").strip())
        ts = r["torrents"]
        if len(ts) != 2 or ts[0]["info_hash"] != a.info_hash or ts[1]["info_hash"] != b.info_hash:
            raise AssertionError("torrents: %r" % r)
        if ts[0]["uploaded"] < a.total_size or ts[1]["uploaded"] != 0 or ts[0]["state"] != "served":
            raise AssertionError("torrents: %r" % r)
        one = json.loads(hctl("--json", "torrents", "--top", "1").strip())["torrents"]
        if [t["info_hash"] for t in one] != [a.info_hash]:
            raise AssertionError("--top 1: %r" % one)
        table = hctl("torrents")
        if a.info_hash not in table or "uploaded" not in table:
            raise AssertionError("table: %r" % table)
        t = json.loads(hctl("--json", "torrent", a.info_hash).strip())["torrent"]
        if t["uploaded"] != ts[0]["uploaded"] or t["path"] != a.torrent:
            raise AssertionError("torrent: %r" % t)
        return "A uploaded %d bytes, first; B 0"  % ts[0]["uploaded"]
    checks.run("torrents_top_2_json", top2)

    def peers():
        r = json.loads(hctl("--json", "peers").strip())
        for k in ("peers", "unchoked", "waiting", "encrypted", "plain"):
            if not isinstance(r.get(k), int):
                raise AssertionError("peers: %r" % r)
        return "peers %d" % r["peers"]
    checks.run("peers", peers)

    c_torrent = os.path.join(seed, os.path.basename(c.torrent))

    def handshake_refused(hk, fixture):
        conn = peerwire.PeerConn(hk.addr, timeout=5)
        try:
            try:
                conn.handshake(fixture.info_hash, timeout=5)
            except (EOFError, ConnectionResetError, BrokenPipeError):
                return "handshake refused"
            raise AssertionError("hekate answered a handshake for %s" % fixture.name)
        finally:
            conn.close()


    def add_c():
        shutil.copy(c.data_path(c.files[0][0]), os.path.join(seed, c.name))
        shutil.copy(c.torrent, c_torrent)
        try:  # not served until asked
            handshake_refused(hk, c)
        except AssertionError:
            raise AssertionError("C served before `add`")
        out = hctl("--json", "add", c_torrent)
        r = json.loads(out.strip())
        if r["info_hash"] != c.info_hash or r["added"] != c_torrent:
            raise AssertionError("add: %r" % r)
        got = peerwire.fetch_piece(hk.addr, c, c.num_pieces - 1)
        again = hctl("add", c_torrent, ok=False)
        return "served after add: last piece (%d bytes) verified; added twice: %s" % (len(got), again.strip())
    checks.run("add_serves_a_new_torrent", add_c)

    def add_confined():
        out1 = hctl("add", c.torrent, ok=False)  # the staging copy: outside the served folder
        if "not below any folder" not in out1:
            raise AssertionError(out1)
        real_sub = os.path.join(seed, "sub")  # a folder inside the served one, reached through a link beside it
        os.makedirs(real_sub)
        shutil.copy(c.torrent, os.path.join(real_sub, "copy.torrent"))
        sub = os.path.join(seed, "linked")
        os.symlink(real_sub, sub)
        out2 = hctl("add", os.path.join(sub, "copy.torrent"), ok=False)
        os.unlink(sub)
        shutil.rmtree(real_sub)
        if "symbolic link" not in out2:
            raise AssertionError(out2)
        out3 = hctl("add", "relative/../x.torrent", ok=False)
        return "; ".join(o.strip() for o in (out1, out2, out3))
    checks.run("add_confined_to_the_folders", add_confined)

    def remove_c():
        r = json.loads(hctl("--json", "remove", c.info_hash).strip())
        if r["removed"] != c_torrent:
            raise AssertionError("remove: %r" % r)
        s = json.loads(hctl("--json", "status").strip())
        if s["torrents"] != 2:
            raise AssertionError("status after remove: %r" % s)
        again = hctl("remove", c.info_hash, ok=False)
        return handshake_refused(hk, c) + "; removed twice: " + again.strip()
    checks.run("remove_stops_serving", remove_c)

    def rescan():
        before = json.loads(hctl("--json", "status").strip())["rescans_done"]
        r = json.loads(hctl("--json", "rescan").strip())
        if r["rescan"] not in ("started", "queued"):
            raise AssertionError("rescan: %r" % r)
        t_end = time.monotonic() + 15
        while True:
            s = json.loads(hctl("--json", "status").strip())
            if s["rescans_done"] > before and not s["rescan_running"]:
                break
            if time.monotonic() > t_end:
                raise AssertionError("the rescan did not finish: %r" % s)
            time.sleep(0.05)
        if s["torrents"] != 3:
            raise AssertionError("after the rescan: %r" % s)
        got = peerwire.fetch_piece(hk.addr, c, 0)
        return "the rescan added C again (%d torrents); its first piece (%d bytes) verified" % (s["torrents"], len(got))
    checks.run("rescan_adds_it_again", rescan)

    def verify_and_reload():
        r = json.loads(hctl("--json", "verify", a.info_hash).strip())
        if r.get("verify") != "started" or r.get("info_hash") != a.info_hash.lower() or r.get("bytes") != a.total_size:
            raise AssertionError("verify: %r" % r)
        t_end = time.monotonic() + 15
        while "verify: pass done" not in hk.child.log() and time.monotonic() < t_end:
            time.sleep(0.1)
        log = hk.child.log()
        if "torrent %s: marks dropped, queued for a full check" % a.info_hash.lower() not in log.lower():
            raise AssertionError("no marks-dropped line for %s" % a.info_hash)
        if "verify: pass done" not in log or "0 torrents damaged" not in log:
            raise AssertionError("the check did not end cleanly: %s" % log[-1500:])
        o1 = hctl("verify", "00" * 20, ok=False)
        o2 = hctl("reload-config", ok=False)
        if "no such torrent" not in o1 or "without a config file" not in o2:
            raise AssertionError("%r %r" % (o1, o2))
        return "verify started and ended (%r); %s / %s" % (r, o1.strip(), o2.strip())
    checks.run("verify_runs_a_full_check_reload_config_without_file", verify_and_reload)

    def garbage():
        rnd = random.Random(7)
        said = []
        for data in (bytes(rnd.randrange(256) for _ in range(3000)).replace(b"\n", b"") + b"\n",
                     b"status\x00now\n", b"frobnicate all\n", b"torrents --top 0\n", b"torrent 12\n", b"\n"):
            said.append(error_of(raw_request(sock, data)))
        # a good request after a bad one on the same connection is still answered
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(sock)
        s.sendall(b"bogus\nstatus\n")
        got = b""
        while got.count(b"\n") < 2:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        s.close()
        lines = got.splitlines()
        if len(lines) != 2 or json.loads(lines[1])["ok"] is not True:
            raise AssertionError("bad then good: %r" % got[:500])
        error_of(lines[0])
        return "; ".join(said)
    checks.run("garbage_refused", garbage)

    def oversized():
        reply = raw_request(sock, b"add /" + b"x" * (1 << 20) + b"\n", timeout=15)
        e = error_of(reply)
        if "too long" not in e:
            raise AssertionError(e)
        hk.assert_alive("after a 1 MiB line")
        return e
    checks.run("one_mib_line_refused", oversized)

    def hundred_clients():
        conns = []
        try:
            for _ in range(100):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                conns.append(s)
                s.connect(sock)  # blocking: waits while the listen backlog is full
                s.settimeout(10)
            for s in conns:
                try:
                    s.sendall(b"status\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # refused at once and closed
            answered = refused = 0
            for s in conns:
                got = b""
                while not got.endswith(b"\n"):
                    try:
                        chunk = s.recv(65536)
                    except ConnectionResetError:
                        chunk = b""
                    if not chunk:
                        break
                    got += chunk
                r = json.loads(got.decode())
                if r["ok"] is True:
                    answered += 1
                elif "too many control clients" in r["error"]:
                    refused += 1
                else:
                    raise AssertionError(got)
            if answered < 1 or refused < 1 or answered + refused != 100 or answered > 16:
                raise AssertionError("%d answered, %d refused" % (answered, refused))
        finally:
            for s in conns:
                s.close()
        time.sleep(0.2)
        hctl("status")  # the slots are free again
        return "%d answered, %d refused (too many control clients)" % (answered, refused)
    checks.run("hundred_clients_at_once", hundred_clients)
    checks.run("b_still_downloads", download, p, hk, b, "b1")
    checks.run("hekate_stops_cleanly", hk.stop_cleanly, p, signal.SIGTERM)

    def socket_removed():
        if os.path.lexists(sock):
            raise AssertionError("%s still there after the stop" % sock)
        rc, out = p.run("hekatectl-after", [ctl, "-s", sock, "status"], 10)
        if rc != 1 or "cannot connect" not in out:
            raise AssertionError("exit %s, %r" % (rc, out))
        return out.strip()
    checks.run("socket_removed_at_the_stop", socket_removed)


if __name__ == "__main__":
    procs.main_wrapper("test_control", 150, body)
