"""mse: a minimal MSE/PE initiator (side A of the Message Stream Encryption handshake) for raw-socket tests: 768-bit
DH with the spec's prime and generator 2, SKEY = the info-hash, crypto_provide RC4 only, the BitTorrent handshake
carried as the initial payload (IA). RC4 (first 1024 bytes of each key's stream discarded) comes from libcrypto
through ctypes; everything else is the standard library.

connect(addr, info_hash, handshake_bytes) returns (sock, enc): the socket once the handshake is sent (it reads only
Yb, never the seeder's reply, so a caller may go on never reading), and enc, the keyA cipher to encrypt every later
byte sent."""
import ctypes
import ctypes.util
import hashlib
import os
import socket

P = int("FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD"
        "3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563", 16)
G = 2
CRYPTO_PLAIN, CRYPTO_RC4 = 1, 2

_lib = ctypes.CDLL(ctypes.util.find_library("crypto"))
_lib.RC4_set_key.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p]
_lib.RC4.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_char_p]


class RC4:
    """One direction: RC4 keyed with key, the first 1024 bytes of keystream discarded."""

    def __init__(self, key):
        self.state = ctypes.create_string_buffer(2048)   # RC4_KEY: 2 + 256 ints (1032 bytes)
        _lib.RC4_set_key(self.state, len(key), key)
        self.apply(bytes(1024))

    def apply(self, data):
        data = bytes(data)
        out = ctypes.create_string_buffer(len(data))
        _lib.RC4(self.state, len(data), data, out)
        return out.raw


def _h(*parts):
    return hashlib.sha1(b"".join(parts)).digest()


def _recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def connect(addr, info_hash, ia, provide=CRYPTO_RC4, timeout=10.0, rcvbuf=None):
    """The MSE handshake as side A with IA = ia; see the module doc. info_hash is 20 bytes."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect(addr)
    xa = int.from_bytes(os.urandom(20), "big")
    ya = pow(G, xa, P).to_bytes(96, "big")
    s.sendall(ya + os.urandom(int.from_bytes(os.urandom(1), "big") % 64))
    yb = int.from_bytes(_recv_exact(s, 96), "big")
    secret = pow(yb, xa, P).to_bytes(96, "big")
    enc = RC4(_h(b"keyA", secret, info_hash))
    req2 = _h(b"req2", info_hash)
    req3 = _h(b"req3", secret)
    obfuscated = bytes(a ^ b for a, b in zip(req2, req3))
    pad_c = b""
    body = bytes(8) + provide.to_bytes(4, "big") + len(pad_c).to_bytes(2, "big") + pad_c + len(ia).to_bytes(2, "big")
    s.sendall(_h(b"req1", secret) + obfuscated + enc.apply(body) + enc.apply(ia))
    return s, enc
