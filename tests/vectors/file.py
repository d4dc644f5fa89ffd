#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Recomputes the file vectors of docs/PROTOCOL.md section 11 (`file/classes`, `file/chunk`,
`e2e/appmsg-file`) from the text of the spec alone, with libraries other than the ones Cairn is
built on: Python's hashlib (BLAKE2b), the `cryptography` package (OpenSSL) for the raw
ChaCha20-IETF keystream, and HChaCha20 and Poly1305 written here in pure Python. libsodium's
secretstream push, as its crypto_secretstream_xchacha20poly1305.c does it:

    k      = HChaCha20(key, header[0..16))
    nonce  = counter (u32 little-endian, 1 for the first push) || header[16..24)
    block 0 of ChaCha20-IETF(k, nonce) is the Poly1305 key (its first 32 bytes)
    b      = ChaCha20-IETF(k, nonce, block counter 1) XOR (tag || 63 zero bytes)
    c      = ChaCha20-IETF(k, nonce, block counter 2) XOR message
    mac    = Poly1305(ad || pad16(ad) || b || c || mlen & 15 zero bytes
                      || u64le(len(ad)) || u64le(64 + mlen))
    push   = b[0] || c || mac

(the zero bytes after c are libsodium's `(0x10 - 64 + mlen) & 0xf`, which is mlen & 15, not
the usual padding to 16). Nothing comes from the C code.

    python3 tests/vectors/file.py          check; exit status 1 on any mismatch
    python3 tests/vectors/file.py --print  print the blocks (to write the spec)

Debian: apt-get install python3-cryptography.
"""
import hashlib
import os
import struct
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import SPEC, read_vectors  # noqa: E402
from intake import Check  # noqa: E402

P = 16363
ENTRY = 16384
TAG_MESSAGE, TAG_FINAL = 0, 3


def _rotl(v, c):
    return ((v << c) & 0xFFFFFFFF) | (v >> (32 - c))


def hchacha20(key, nonce16):
    """HChaCha20 (draft-irtf-cfrg-xchacha section 2.2): the ChaCha20 rounds without the final
    addition, words 0..3 and 12..15 of the state."""
    s = list(struct.unpack("<4I", b"expand 32-byte k")) + list(struct.unpack("<8I", key)) + \
        list(struct.unpack("<4I", nonce16))

    def qr(a, b, c, d):
        s[a] = (s[a] + s[b]) & 0xFFFFFFFF
        s[d] = _rotl(s[d] ^ s[a], 16)
        s[c] = (s[c] + s[d]) & 0xFFFFFFFF
        s[b] = _rotl(s[b] ^ s[c], 12)
        s[a] = (s[a] + s[b]) & 0xFFFFFFFF
        s[d] = _rotl(s[d] ^ s[a], 8)
        s[c] = (s[c] + s[d]) & 0xFFFFFFFF
        s[b] = _rotl(s[b] ^ s[c], 7)

    for _ in range(10):
        qr(0, 4, 8, 12); qr(1, 5, 9, 13); qr(2, 6, 10, 14); qr(3, 7, 11, 15)  # noqa: E702
        qr(0, 5, 10, 15); qr(1, 6, 11, 12); qr(2, 7, 8, 13); qr(3, 4, 9, 14)  # noqa: E702
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def chacha20_ietf(key, nonce12, counter, data):
    """ChaCha20 (RFC 8439) from block COUNTER, XORed into DATA (OpenSSL's 16-byte IV is the
    32-bit block counter, little-endian, then the 96-bit nonce)."""
    iv = struct.pack("<I", counter) + nonce12
    return Cipher(algorithms.ChaCha20(key, iv), mode=None).encryptor().update(data)


def poly1305(key, msg):
    """Poly1305 (RFC 8439 section 2.5) in integers."""
    r = int.from_bytes(key[:16], "little") & 0x0ffffffc0ffffffc0ffffffc0fffffff
    s = int.from_bytes(key[16:32], "little")
    p = (1 << 130) - 5
    acc = 0
    for i in range(0, len(msg), 16):
        n = int.from_bytes(msg[i:i + 16] + b"\x01", "little")
        acc = (acc + n) * r % p
    return ((acc + s) & ((1 << 128) - 1)).to_bytes(16, "little")


class Push:
    """libsodium's secretstream, push side, from KEY and HEADER as init_pull sets it up."""

    def __init__(self, key, header):
        self.k = hchacha20(key, header[:16])
        self.counter = 1
        self.inonce = header[16:24]

    def push(self, m, tag, ad=b""):
        nonce = struct.pack("<I", self.counter) + self.inonce
        polykey = chacha20_ietf(self.k, nonce, 0, bytes(64))[:32]
        b = chacha20_ietf(self.k, nonce, 1, bytes([tag]) + bytes(63))
        c = chacha20_ietf(self.k, nonce, 2, m)
        mac = poly1305(polykey, ad + bytes((16 - len(ad)) & 15) + b + c +
                       bytes(len(m) & 15) + struct.pack("<QQ", len(ad), 64 + len(m)))
        self.inonce = bytes(x ^ y for x, y in zip(self.inonce, mac[:8]))
        self.counter = (self.counter + 1) & 0xFFFFFFFF
        assert tag & 2 == 0 or tag == TAG_FINAL  # a rekey only after the last push here
        return b[:1] + c + mac


def file_class(n):
    if n <= 32:
        return n
    step = 1 << (n.bit_length() - 5)
    return (n + step - 1) // step * step


def chunks_of(size):
    return file_class(max(1, -(-size // P)))


def entries(key, header, content):
    """Every entry of a file: i (u32, big-endian) || push_i of the zero-padded stream."""
    n = chunks_of(len(content))
    stream = content + bytes(n * P - len(content))
    s = Push(key, header)
    out = []
    for i in range(n):
        e = struct.pack(">I", i) + s.push(stream[i * P:(i + 1) * P],
                                          TAG_FINAL if i == n - 1 else TAG_MESSAGE)
        assert len(e) == ENTRY
        out.append(e)
    return out


def main():
    show = "--print" in sys.argv[1:]
    v = read_vectors(SPEC)
    check = Check(show, v)
    h = bytes.fromhex

    # A known answer for the pure-Python parts: RFC 8439 2.5.2 (Poly1305) and the draft's
    # HChaCha20 test vector (section 2.2.1).
    assert poly1305(h("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b"),
                    b"Cryptographic Forum Research Group").hex() == \
        "a8061dc1305136c6c22b8baf0c0127a9"
    assert hchacha20(h("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"),
                     h("000000090000004a0000000031415927")).hex() == \
        "82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc"

    ns = [1, 2, 32, 33, 34, 62, 641, 12817, 131241]
    check("file/classes", "n", " ".join(str(n) for n in ns))
    check("file/classes", "class", " ".join(str(file_class(n)) for n in ns))
    assert chunks_of(1 << 31) == 139264 and -(-(1 << 31) // P) == 131241

    key, header = b"\x81" * 32, b"\x82" * 24
    content = b"hello"
    e = entries(key, header, content)
    for k, val in (("key", key), ("header", header), ("size", len(content)),
                   ("content", content), ("chunks", len(e)), ("entry_head", e[0][:48]),
                   ("entry_blake2b", hashlib.blake2b(e[0], digest_size=32).digest())):
        check("file/chunk", k, val)

    # e2e/appmsg-file: the same file as a file message.
    relay = b"cairn://" + b"A" * 43 + b"@127.0.0.1:7443"
    name = b"report.pdf"
    digest = hashlib.blake2b(content, digest_size=32).digest()
    log_id, delete_secret = b"\x83" * 24, b"\x84" * 32
    data = bytes([1]) + struct.pack(">QI", len(content), len(e)) + digest + key + header + \
        log_id + delete_secret + struct.pack(">H", len(relay)) + relay + \
        bytes([len(name)]) + name
    message_id = bytes(range(0x30, 0x40))
    sent_at = 1767225600
    whole = bytes([8]) + message_id + struct.pack(">QHH", sent_at, 0, 1) + data
    for k, val in (("kind", 8), ("message_id", message_id), ("sent_at", sent_at),
                   ("part_index", 0), ("part_count", 1), ("size", len(content)),
                   ("chunks", len(e)), ("digest", digest), ("key", key), ("header", header),
                   ("log_id", log_id), ("delete_secret", delete_secret),
                   ("relay", relay.decode()), ("name", name.decode()), ("data", data),
                   ("hex", whole)):
        check("e2e/appmsg-file", k, val)

    check.done()
    if not show:
        print("file vectors: %s" % ("%d mismatches" % check.bad if check.bad else "all match"))
    return 1 if check.bad else 0


if __name__ == "__main__":
    sys.exit(main())
