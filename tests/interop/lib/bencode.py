"""bencode: a strict encoder/decoder used to craft and inspect .torrent files in tests (not a general library).

decode() accepts exactly one canonical value (sorted unique dict keys, no leading zeros) and raises ValueError with
the offset of the first problem; encode() writes the canonical form. Keys and strings are bytes."""


def encode(v):
    out = []
    _enc(v, out)
    return b"".join(out)


def _enc(v, out):
    if isinstance(v, bool):
        raise TypeError("bool is not bencodable")
    if isinstance(v, int):
        out.append(b"i%de" % v)
    elif isinstance(v, str):
        _enc(v.encode("utf-8"), out)
    elif isinstance(v, (bytes, bytearray)):
        out.append(b"%d:" % len(v))
        out.append(bytes(v))
    elif isinstance(v, (list, tuple)):
        out.append(b"l")
        for x in v:
            _enc(x, out)
        out.append(b"e")
    elif isinstance(v, dict):
        out.append(b"d")
        keys = [(k.encode("utf-8") if isinstance(k, str) else bytes(k), k) for k in v]
        for kb, k in sorted(keys):
            _enc(kb, out)
            _enc(v[k], out)
        out.append(b"e")
    else:
        raise TypeError("cannot bencode %r" % type(v))


def decode(data):
    v, pos = _dec(data, 0, 0)
    if pos != len(data):
        raise ValueError("trailing bytes at offset %d" % pos)
    return v


def _dec(d, i, depth):
    if depth > 64:
        raise ValueError("nesting too deep at offset %d" % i)
    if i >= len(d):
        raise ValueError("unexpected end at offset %d" % i)
    c = d[i:i + 1]
    if c == b"i":
        j = d.index(b"e", i)
        s = d[i + 1:j]
        if not s or s == b"-0" or (s[:1] == b"0" and len(s) > 1) or s[:2] == b"-0":
            raise ValueError("bad integer at offset %d" % i)
        return int(s), j + 1
    if c == b"l":
        i += 1
        out = []
        while d[i:i + 1] != b"e":
            v, i = _dec(d, i, depth + 1)
            out.append(v)
        return out, i + 1
    if c == b"d":
        i += 1
        out = {}
        last = None
        while d[i:i + 1] != b"e":
            k, i = _dec(d, i, depth + 1)
            if not isinstance(k, bytes):
                raise ValueError("non-string key at offset %d" % i)
            if last is not None and k <= last:
                raise ValueError("unsorted or duplicate key at offset %d" % i)
            last = k
            out[k], i = _dec(d, i, depth + 1)
        return out, i + 1
    if c.isdigit():
        j = d.index(b":", i)
        s = d[i:j]
        if s[:1] == b"0" and len(s) > 1:
            raise ValueError("bad string length at offset %d" % i)
        n = int(s)
        if j + 1 + n > len(d):
            raise ValueError("string past the end at offset %d" % i)
        return d[j + 1:j + 1 + n], j + 1 + n
    raise ValueError("unexpected byte %r at offset %d" % (c, i))


def info_bytes(torrent_bytes):
    """The exact bytes of the 'info' value inside a .torrent (for the info-hash), found by re-encoding: valid for
    canonical files, which is what every tool used here writes (checked by the caller against libtorrent)."""
    return encode(decode(torrent_bytes)[b"info"])
