#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Recomputes the transport handshake vectors of docs/PROTOCOL.md section 2 (`handshake/nk`,
2.4, and `handshake/nk-aesgcm`, 2.5: the client offering and the relay choosing AES-256-GCM,
then three transport messages) from the text of the spec alone: Noise_NK_25519_ChaChaPoly_
BLAKE2b (Noise revision 34) written out here over Python's hashlib (BLAKE2b, HMAC) and the
`cryptography` package (OpenSSL: X25519, ChaCha20-Poly1305, AES-256-GCM). Nothing comes from
the C code.

    python3 tests/vectors/transport.py          check; exit status 1 on any mismatch
    python3 tests/vectors/transport.py --print  print the blocks (to write the spec)

Debian: apt-get install python3-cryptography.
"""
import hashlib
import hmac
import os
import struct
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import SPEC, dh, read_vectors, x_public  # noqa: E402
from intake import Check  # noqa: E402

RELAY_STATIC = b"\x01" * 32
CLIENT_EPHEMERAL = b"\x02" * 32
RELAY_EPHEMERAL = b"\x03" * 32
TIMESTAMP = 1767225600
PROLOGUE = b"cairn/1"
AESGCM_BIT = 0x01


def blake2b(data):
    return hashlib.blake2b(data, digest_size=64).digest()


def hkdf2(ck, ikm):
    """Noise's HKDF with two outputs, over HMAC-BLAKE2b (128-byte block)."""
    temp = hmac.new(ck, ikm, hashlib.blake2b).digest()
    out1 = hmac.new(temp, b"\x01", hashlib.blake2b).digest()
    out2 = hmac.new(temp, out1 + b"\x02", hashlib.blake2b).digest()
    return out1, out2


def chachapoly(key, n, ad, pt):
    """Noise ChaChaPoly: nonce = 32 zero bits || 64-bit counter, little-endian."""
    return ChaCha20Poly1305(key).encrypt(b"\0" * 4 + struct.pack("<Q", n), pt, ad)


def aesgcm(key, n, ad, pt):
    """Noise AESGCM: nonce = 32 zero bits || 64-bit counter, big-endian."""
    return AESGCM(key).encrypt(b"\0" * 4 + struct.pack(">Q", n), pt, ad)


class Symmetric:
    """Noise's SymmetricState, for a 33-byte protocol name (padded to HASHLEN = 64)."""

    def __init__(self, name):
        self.h = name.ljust(64, b"\0")
        self.ck, self.k, self.n = self.h, None, 0

    def mix_hash(self, data):
        self.h = blake2b(self.h + data)

    def mix_key(self, ikm):
        self.ck, temp = hkdf2(self.ck, ikm)
        self.k, self.n = temp[:32], 0

    def encrypt_and_hash(self, pt):
        ct = chachapoly(self.k, self.n, self.h, pt)
        self.n += 1
        self.mix_hash(ct)
        return ct

    def split(self):
        k1, k2 = hkdf2(self.ck, b"")
        return k1[:32], k2[:32]


def handshake(offer, choice):
    """NK with the 2.4 keys: payload1 with padding 3 (its first byte OFFER), payload2 with
    padding 5 (its first byte CHOICE). Returns the values of the vector."""
    rs = x_public(RELAY_STATIC)
    p1 = bytes([1]) + struct.pack(">Q", TIMESTAMP) + bytes([offer, 0, 0])
    p2 = bytes([1, choice, 0, 0, 0, 0])
    st = Symmetric(b"Noise_NK_25519_ChaChaPoly_BLAKE2b")
    st.mix_hash(PROLOGUE)
    st.mix_hash(rs)  # <- s
    e = x_public(CLIENT_EPHEMERAL)  # -> e, es
    st.mix_hash(e)
    st.mix_key(dh(CLIENT_EPHEMERAL, rs))
    m1 = e + st.encrypt_and_hash(p1)
    re = x_public(RELAY_EPHEMERAL)  # <- e, ee
    st.mix_hash(re)
    st.mix_key(dh(RELAY_EPHEMERAL, e))
    m2 = re + st.encrypt_and_hash(p2)
    k1, k2 = st.split()
    return {"relay_static_private": RELAY_STATIC, "relay_static_public": rs,
            "client_ephemeral_private": CLIENT_EPHEMERAL,
            "relay_ephemeral_private": RELAY_EPHEMERAL, "timestamp": TIMESTAMP,
            "payload1": p1, "message1": m1, "payload2": p2, "message2": m2,
            "handshake_hash": st.h}, k1, k2


def main():
    show = "--print" in sys.argv[1:]
    v = read_vectors(SPEC)
    check = Check(show, v)

    # 2.4: no offer, no choice (the handshake of every peer before 2.5).
    vals, _, _ = handshake(0, 0)
    for key, val in vals.items():
        check("handshake/nk", key, val)

    # 2.5: offered and chosen; the transport then seals with AES-256-GCM under Split()'s keys.
    vals, client_key, relay_key = handshake(AESGCM_BIT, AESGCM_BIT)
    block = "handshake/nk-aesgcm"
    for key, val in vals.items():
        check(block, key, val)
    check(block, "client_send_key", client_key)
    check(block, "relay_send_key", relay_key)
    messages = (("transport1", client_key, 0, bytes.fromhex("0003920100")),
                ("transport2", relay_key, 0, bytes.fromhex("0003920200")),
                ("transport3", client_key, 1, bytes.fromhex("0000")))
    for name, key, n, pt in messages:
        check(block, name + "_plaintext", pt)
        check(block, name, aesgcm(key, n, b"", pt))
    # The counter's byte order matters from nonce 1 on: ChaChaPoly's would give another tag.
    assert aesgcm(client_key, 1, b"", b"\0\0") != AESGCM(client_key).encrypt(
        b"\0" * 4 + struct.pack("<Q", 1), b"\0\0", b"")

    check.done()
    if not show:
        print("transport vectors: %s" % ("%d mismatches" % check.bad if check.bad else "all match"))
    return 1 if check.bad else 0


if __name__ == "__main__":
    sys.exit(main())
