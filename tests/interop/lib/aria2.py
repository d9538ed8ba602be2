"""aria2: an aria2c leecher. aria2c cannot be handed a peer address, so it is pointed at a FakeTracker that returns
the seeder (--bt-tracker, or the tracker the torrent or magnet link names); DHT, LPD and PEX are off and it stops as
soon as the download is complete (--seed-time=0). Works with a .torrent or a magnet link (metadata then comes from the seeder via ut_metadata)."""
import os

from .procs import free_port


def download(procs, source, save_dir, tracker_url, timeout, name="aria2c", extra=()):
    """source: a .torrent path or a magnet URI. tracker_url None: no --bt-tracker (only the trackers the .torrent or
    the magnet link's tr= name). Returns aria2c's output; raises if it did not exit 0 in time."""
    os.makedirs(save_dir, exist_ok=True)
    argv = ["aria2c", "--dir=" + save_dir, "--seed-time=0", "--enable-dht=false", "--enable-dht6=false",
            "--bt-enable-lpd=false", "--enable-peer-exchange=false", "--disable-ipv6=true",
            "--listen-port=%d" % free_port(), "--bt-tracker-interval=2",
            "--summary-interval=0", "--console-log-level=notice", "--file-allocation=none",
            "--auto-file-renaming=false", "--allow-overwrite=true", "--bt-save-metadata=false",
            "--follow-torrent=mem", "--bt-stop-timeout=%d" % max(10, int(timeout)), "--stop=%d" % int(timeout),
            "--no-conf=true", "--check-certificate=false", "--rpc-save-upload-metadata=false"]
    if tracker_url is not None:
        argv.append("--bt-tracker=" + tracker_url)
    argv += list(extra)
    if source.startswith("magnet:"):
        argv.append(source)
    else:
        argv.append("--torrent-file=" + source)
    rc, out = procs.run(name, argv, timeout=timeout + 15)
    if rc != 0:
        raise AssertionError("aria2c exited %d:\n%s" % (rc, out[-4000:]))
    return out
