"""verify: byte-for-byte comparison of a client's download with the seeder's files."""
import os

CHUNK = 1 << 20


def compare_files(expected, actual):
    """Raises AssertionError naming the first differing offset; returns the number of bytes compared."""
    if not os.path.isfile(actual):
        raise AssertionError("missing download: %s" % actual)
    se, sa = os.path.getsize(expected), os.path.getsize(actual)
    if se != sa:
        raise AssertionError("%s: size %d, expected %d" % (actual, sa, se))
    off = 0
    with open(expected, "rb") as fe, open(actual, "rb") as fa:
        while True:
            a, b = fe.read(CHUNK), fa.read(CHUNK)
            if a != b:
                i = next(i for i in range(min(len(a), len(b))) if a[i] != b[i]) if a and b else 0
                raise AssertionError("%s differs from %s at offset %d" % (actual, expected, off + i))
            if not a:
                return off
            off += len(a)


def verify_download(fixture, save_dir):
    """Every file of the fixture, downloaded into save_dir, equals the seeder's copy. Returns bytes verified."""
    total = 0
    for rel, _size in fixture.files:
        total += compare_files(fixture.data_path(rel), fixture.download_path(save_dir, rel))
    if total != fixture.total_size:
        raise AssertionError("verified %d bytes, torrent has %d" % (total, fixture.total_size))
    return total
