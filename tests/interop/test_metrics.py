#!/usr/bin/python3
"""Interop: the /metrics endpoint (--metrics). hekate serves a 2 MiB torrent with --metrics on a free loopback port;
(a) before any download the body passes Debian's `promtool check metrics` and says 0 bytes served; (b) the data
file is evicted from the page cache and a python-libtorrent leecher downloads the torrent (verified byte for byte),
after which hekate_uploaded_bytes_total and the torrent's own hekate_torrent_uploaded_bytes_total{info_hash=...} are
at least its size, the disk loads were counted in the latency histogram (cumulative buckets, +Inf = _count) and
promtool still passes; (c) a real Prometheus server (Debian's /usr/bin/prometheus, its own config and storage in the work
directory, on 127.0.0.1) scrapes hekate every second until its query API returns a nonzero
hekate_uploaded_bytes_total; it is stopped by PID; (d) bad requests get errors (POST: 405, another path: 404, a
100 KiB header: 431 or a closed connection, a request left half-sent does not hold up other scrapes) and serving
goes on (a second download, by a libtorrent that tries MSE first, counted in hekate_mse_handshakes_total); (e) a second hekate with 100,000 tiny torrents: the scrape body stays under
1 MiB and its latency (the median of 7 scrapes) under 100 ms, both printed, and the per-torrent series stay at
--metrics-top=10. The 100,000 .torrent files (one shared 1-byte data file, an extra key in each info dictionary
makes the info-hashes differ) are written to a directory of their own in /dev/shm when it is a writable tmpfs
(about 400 MiB there for a few seconds; creating them on the disk filesystem took 90-165 s on a loaded machine),
else in the work directory; it is removed at the end. Deadline 280 s."""
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import bencode, fixtures, lt_client, procs, seeders, verify  # noqa: E402
from lib.fixtures import KiB, MiB  # noqa: E402
from lib.procs import free_port, wait_port  # noqa: E402

PROMTOOL = "/usr/bin/promtool"
PROMETHEUS = "/usr/bin/prometheus"
MANY = 100000
BODY_CAP = 1 << 20
LATENCY_CAP = 0.100


def scrape(port, path="/metrics", timeout=10.0):
    """(status, content type, body) of one GET; urllib raises nothing for HTTP errors here."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def value(body, series):
    """The value of one sample line `series VALUE` (series with its labels exactly), or None."""
    m = re.search(r"^%s (\S+)$" % re.escape(series), body, re.M)
    return float(m.group(1)) if m else None


def promtool_check(p, body):
    path = p.path("body-%d.prom" % int(time.monotonic() * 1000))
    with open(path, "w") as f:
        f.write(body)
    with open(path, "rb") as f:
        r = subprocess.run([PROMTOOL, "check", "metrics"], stdin=f, capture_output=True, timeout=30)
    out = (r.stdout + r.stderr).decode().strip()
    if r.returncode != 0 or out:
        raise AssertionError("promtool check metrics: status %d: %s" % (r.returncode, out))
    return "promtool check metrics: status 0, no complaint (%d bytes)" % len(body)


def start_hekate_metrics(p, build_dir, dirs, name, extra=()):
    mport = free_port()
    hk = seeders.start_hekate(p, build_dir, dirs, name=name, wait=False,
                              args=["--metrics=127.0.0.1:%d" % mport] + list(extra))
    wait_port(mport, hk.child, timeout=60)
    return hk, mport


def before_download(p, mport):
    status, ctype, body = scrape(mport)
    if status != 200 or not ctype.startswith("text/plain; version=0.0.4"):
        raise AssertionError("GET /metrics: %s %r" % (status, ctype))
    if value(body, "hekate_uploaded_bytes_total") != 0:
        raise AssertionError("bytes served before any download: %r" % value(body, "hekate_uploaded_bytes_total"))
    if value(body, 'hekate_torrents{state="served"}') != 1:
        raise AssertionError("torrents served: %r" % value(body, 'hekate_torrents{state="served"}'))
    return promtool_check(p, body)


def evict(path):
    """Drops the file's pages from the page cache (written back first), so serving it needs disk loads."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def disk_histogram(body):
    """(disk loads, histogram _count, +Inf bucket, buckets cumulative?) from one body."""
    n = "hekate_disk_load_duration_seconds"
    buckets = [float(v) for v in re.findall(r"^%s_bucket\{le=\"[^\"]+\"\} (\S+)$" % n, body, re.M)]
    cumulative = all(a <= b for a, b in zip(buckets, buckets[1:]))
    return (value(body, "hekate_disk_loads_total"), value(body, n + "_count"),
            value(body, n + '_bucket{le="+Inf"}'), cumulative)


def after_download(p, seeder, mport, fx, save):
    evict(fx.data_path(fx.files[0][0]))
    r = lt_client.download("leecher", save, seeder.addr, timeout=min(60, p.remaining()), torrent=fx.torrent)
    verify.verify_download(fx, save)
    _, _, body = scrape(mport)
    total = value(body, "hekate_uploaded_bytes_total")
    mine = value(body, 'hekate_torrent_uploaded_bytes_total{info_hash="%s"}' % fx.info_hash)
    if total is None or total < fx.total_size or mine is None or mine < fx.total_size:
        raise AssertionError("after a %d-byte download: total %r, torrent %r" % (fx.total_size, total, mine))
    if value(body, "hekate_sent_bytes_total") < total:
        raise AssertionError("protocol bytes below payload bytes")
    loads, count, inf, cumulative = disk_histogram(body)
    if not loads or not count or count > loads or inf != count or not cumulative:
        raise AssertionError("from evicted data: %r disk loads, histogram count %r, +Inf %r, cumulative %s" % (
            loads, count, inf, cumulative))
    promtool_check(p, body)
    return "downloaded in %.2f s; hekate_uploaded_bytes_total %d, the torrent's series %d; %d disk loads, %d in " \
           "the latency histogram; promtool passes" % (r["seconds"], total, mine, loads, count)


def prometheus_scrapes(p, mport):
    wport = free_port()
    cfg = p.path("prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
                "scrape_configs:\n  - job_name: hekate\n    static_configs:\n      - targets: ['127.0.0.1:%d']\n"
                % mport)
    prom = p.start("prometheus", [PROMETHEUS, "--config.file=" + cfg, "--storage.tsdb.path=" + p.path("tsdb"),
                                  "--web.listen-address=127.0.0.1:%d" % wport, "--log.level=warn"])
    try:
        wait_port(wport, prom, timeout=60)
        url = "http://127.0.0.1:%d/api/v1/query?query=hekate_uploaded_bytes_total" % wport
        t_end = time.monotonic() + min(60, p.remaining())
        last = None
        while time.monotonic() < t_end:
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    last = json.loads(r.read().decode())
            except (urllib.error.URLError, OSError, ValueError) as e:
                last = repr(e)
            res = last.get("data", {}).get("result", []) if isinstance(last, dict) else []
            if res and float(res[0]["value"][1]) > 0:
                return "Prometheus %s (pid %d) reads hekate_uploaded_bytes_total = %s" % (
                    PROMETHEUS, prom.pid, res[0]["value"][1])
            time.sleep(0.5)
        raise AssertionError("Prometheus never returned a nonzero hekate_uploaded_bytes_total: %r" % (last,))
    finally:
        p.stop(prom)


def raw_request(port, data, read_timeout=5.0):
    """Sends data on a new connection; returns what came back before the server closed (or the timeout)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=read_timeout)
    got = b""
    try:
        try:
            s.sendall(data)
        except OSError:
            pass  # the server may close while a huge header is still being sent
        while True:
            try:
                chunk = s.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            got += chunk
    finally:
        s.close()
    return got


def bad_requests(p, seeder, mport, fx):
    out = []
    r = raw_request(mport, b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
    if not r.startswith(b"HTTP/1.1 405"):
        raise AssertionError("POST: %r" % r[:80])
    out.append("POST 405")
    status, _, _ = scrape(mport, "/other")
    if status != 404:
        raise AssertionError("GET /other: %s" % status)
    out.append("/other 404")
    r = raw_request(mport, b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (100 * KiB) + b"\r\n\r\n")
    if r and not r.startswith(b"HTTP/1.1 431"):
        raise AssertionError("100 KiB header: %r" % r[:80])
    out.append("100 KiB header: %s" % (r[9:12].decode() if r else "connection closed"))
    half = socket.create_connection(("127.0.0.1", mport), timeout=5)
    try:
        half.sendall(b"GET /metr")
        t0 = time.monotonic()
        status, _, body = scrape(mport)
        took = time.monotonic() - t0
        if status != 200 or value(body, "hekate_uploaded_bytes_total") is None:
            raise AssertionError("scrape beside a half-sent request: %s" % status)
        out.append("a scrape beside a half-sent request: 200 in %.1f ms" % (took * 1000))
    finally:
        half.close()
    save = p.path("dl2")
    lt_client.download("leecher2", save, seeder.addr, timeout=min(60, p.remaining()), torrent=fx.torrent,
                       encryption=True)
    verify.verify_download(fx, save)
    seeder.assert_alive("after the bad requests")
    _, _, body = scrape(mport)
    if value(body, "hekate_uploaded_bytes_total") < 2 * fx.total_size:
        raise AssertionError("after two downloads: %r" % value(body, "hekate_uploaded_bytes_total"))
    if not value(body, "hekate_mse_handshakes_total"):
        raise AssertionError("an encrypting leecher, but hekate_mse_handshakes_total is %r"
                             % value(body, "hekate_mse_handshakes_total"))
    out.append("a second download (libtorrent trying MSE first) served and counted, %d MSE handshake(s)"
               % value(body, "hekate_mse_handshakes_total"))
    return "; ".join(out)


def many_folder(p):
    """A fresh directory for the many torrents: in /dev/shm when it is usable (see the top comment)."""
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        return tempfile.mkdtemp(prefix="hekate-test_metrics-", dir="/dev/shm")
    return p.path("many")


def make_many_sharing(folder, n):
    """n torrents over one 1-byte data file: t000000.torrent ... each with its own `x-nonce` in info."""
    os.makedirs(folder, exist_ok=True)
    content = b"x"
    with open(os.path.join(folder, "shared.bin"), "wb") as f:
        f.write(content)
    pieces = hashlib.sha1(content).digest()
    for i in range(n):
        info = {b"name": b"shared.bin", b"piece length": 16 * KiB, b"length": 1, b"pieces": pieces, b"x-nonce": i}
        fd = os.open(os.path.join(folder, "t%06d.torrent" % i), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, bencode.encode({b"info": info}))
        finally:
            os.close(fd)


def many_torrents(p, build_dir):
    folder = many_folder(p)
    try:
        return many_torrents_in(p, build_dir, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def many_torrents_in(p, build_dir, folder):
    t0 = time.monotonic()
    make_many_sharing(folder, MANY)
    made = time.monotonic() - t0
    hk, mport = start_hekate_metrics(p, build_dir, [folder], "hekate-many", ["--metrics-top=10"])
    try:
        t_end = time.monotonic() + min(150, p.remaining() - 10)
        served = None
        while time.monotonic() < t_end:
            hk.assert_alive("while scanning %d torrents" % MANY)
            try:
                _, _, body = scrape(mport, timeout=30)
                served = value(body, 'hekate_torrents{state="served"}')
            except (urllib.error.URLError, OSError):
                served = None
            if served == MANY:
                break
            time.sleep(0.5)
        if served != MANY:
            raise AssertionError("torrents served after the first scan: %r of %d" % (served, MANY))
        times, sizes = [], []
        for _ in range(7):
            t = time.monotonic()
            status, _, body = scrape(mport)
            times.append(time.monotonic() - t)
            sizes.append(len(body.encode()))
            if status != 200:
                raise AssertionError("scrape: %s" % status)
        promtool_check(p, body)
        per_torrent = len(re.findall(r"^hekate_torrent_uploaded_bytes_total\{", body, re.M))
        median = statistics.median(times)
        report = "%d torrents (made in %.1f s): body %d bytes (cap %d), latency median %.1f ms, max %.1f ms " \
                 "(cap %.0f ms), %d per-torrent series" % (MANY, made, max(sizes), BODY_CAP, median * 1000,
                                                             max(times) * 1000, LATENCY_CAP * 1000, per_torrent)
        print("  " + report)
        if max(sizes) >= BODY_CAP or median >= LATENCY_CAP or per_torrent != 10:
            raise AssertionError(report)
        hk.stop_cleanly(p, signal.SIGTERM)
        return report
    finally:
        p.stop(hk.child)


def body(p, checks, build_dir, source_dir):
    fx = fixtures.make_single(p.path("seed", "one"), "metrics.bin", 2 * MiB + 333, 11, 64 * KiB)
    # --verify=off: the disk-load histogram is checked from evicted data, which lazy piece verification would read
    # (page in) before any load is needed; verification's own counters are checked by test_corrupt_piece.
    seeder, mport = start_hekate_metrics(p, build_dir, [p.path("seed")], "hekate", ["--verify=off"])
    print("hekate on port %d, metrics on %d (pid %d)" % (seeder.port, mport, seeder.pid))
    checks.run("before_download_promtool", before_download, p, mport)
    checks.run("after_download_bytes_served", after_download, p, seeder, mport, fx, p.path("dl"))
    checks.run("prometheus_scrapes_nonzero", prometheus_scrapes, p, mport)
    checks.run("bad_requests_serving_continues", bad_requests, p, seeder, mport, fx)
    checks.run("seeder_stops_cleanly", seeder.stop_cleanly, p, signal.SIGINT)
    checks.run("many_torrents_body_and_latency", many_torrents, p, build_dir)


if __name__ == "__main__":
    procs.main_wrapper("test_metrics", 280, body)
