#!/usr/bin/python3
"""Interop (issue 12 item 1): hekate-swarm plays the encrypted and magnet scenarios for real against hekate.
scenarios/encrypted.ini: 40 RC4 peers, 20 MSE-then-plaintext peers, 10 RC4 magnet peers and 30 plain ones;
scenarios/magnet.ini: 50 magnet peers beside 50 normal ones. For each: the scenario's torrents made by hekate-swarm,
hekate started with the scenario's options (--hekate-args) and --metrics, hekate-swarm run to its end; it must exit
0 (every [expect] holds: everyone completes, every block verified, at most N unchoked by the seeder's own count),
its MSE line must count one completed handshake per encrypted peer (RC4 and plaintext as the profiles say) and no
failure, every magnet peer must have fetched the metadata over ut_metadata, and hekate's stop line must agree on
the encrypted handshakes. Deadline 200 s (about 30 s when passing)."""
import os
import re
import signal
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import procs, seeders  # noqa: E402

CASES = {  # scenario: (MSE handshakes, of them RC4, magnet peers)
    "encrypted": (70, 50, 10),
    "magnet": (0, 0, 50),
}


def play(p, build_dir, source_dir, name):
    swarm = os.path.join(build_dir, "backend-swarm", "hekate-swarm")
    scenario = os.path.join(source_dir, "scenarios", name + ".ini")
    tdir = p.path("t_" + name)
    rc, out = p.run("make_" + name, [swarm, scenario, "--make-torrents", tdir], 60)
    if rc != 0:
        raise AssertionError("--make-torrents failed (%d): %s" % (rc, out[-500:]))
    rc, args = p.run("args_" + name, [swarm, scenario, "--hekate-args"], 30)
    if rc != 0:
        raise AssertionError("--hekate-args failed (%d)" % rc)
    mport = procs.free_port()
    hk = seeders.start_hekate(p, build_dir, [tdir], args=args.split() + ["--no-watch",
                                                                         "--metrics=127.0.0.1:%d" % mport])
    rc, out = p.run("swarm_" + name, [swarm, scenario, "--target", "127.0.0.1:%d" % hk.port, "--torrents", tdir,
                                      "--metrics", "127.0.0.1:%d" % mport], 120)
    hk.stop_cleanly(p, signal.SIGTERM)
    if rc != 0:
        raise AssertionError("hekate-swarm exited %d:\n%s" % (rc, "\n".join(
            l for l in out.splitlines() if l.startswith(("EXPECT", "result", "fleet", "MSE")))))
    want_mse, want_rc4, want_magnets = CASES[name]
    m = re.search(r"^MSE: (\d+) handshakes \((\d+) RC4, (\d+) plaintext\), (\d+) failed; magnet: (\d+) of (\d+) peers "
                  r"fetched the metadata, (\d+) failures$", out, re.M)
    if not m:
        raise AssertionError("no MSE line in hekate-swarm's summary")
    mse, rc4, plain, failed, fetched, magnets, meta_failed = (int(x) for x in m.groups())
    if (mse, rc4, failed) != (want_mse, want_rc4, 0):
        raise AssertionError("MSE: %d handshakes (%d RC4), %d failed; expected %d (%d RC4), 0" % (
            mse, rc4, failed, want_mse, want_rc4))
    if (fetched, magnets, meta_failed) != (want_magnets, want_magnets, 0):
        raise AssertionError("magnet: %d of %d fetched, %d failures; expected all %d" % (
            fetched, magnets, meta_failed, want_magnets))
    log = hk.child.log()
    if want_mse:
        s = re.search(r"stopped: (\d+) encrypted handshakes, (\d+) failed", log)
        if not s or int(s.group(1)) != want_mse or int(s.group(2)) != 0:
            raise AssertionError("hekate's stop line disagrees: %s" % (s.group(0) if s else "none"))
    return m.group(0)


def body(p, checks, build_dir, source_dir):
    for name in CASES:
        checks.run(name, lambda n=name: play(p, build_dir, source_dir, n))


if __name__ == "__main__":
    procs.main_wrapper("test_swarm_mse_magnet", 200, body)
