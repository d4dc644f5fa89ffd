#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Recomputes the private-routing vectors of docs/PROTOCOL.md section 5.11 (`forward/seal`,
`forward/reply`), the bundle item of 5.12 (`bundle/item`) and the codec vectors of FORWARD, FORWARDED and SEALED (5.7) from the text of
the spec alone, with libraries other than the ones Cairn is built on: Python's hashlib
(BLAKE2b) and the `cryptography` package (OpenSSL: X25519, ChaCha20-Poly1305). Nothing comes
from the C code.

    python3 tests/vectors/forward.py          check; exit status 1 on any mismatch
    python3 tests/vectors/forward.py --print  print the blocks (to write the spec)

Debian: apt-get install python3-cryptography.
"""
import hashlib
import os
import struct
import sys

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import SPEC, dh, read_vectors, x_public  # noqa: E402
from intake import Check, mp_array, mp_bin, mp_uint  # noqa: E402

EPHEMERAL_SECRET = b"\x71" * 32
RELAY_SECRET = b"\x72" * 32
INNER_SIZES = (1024, 4096, 16640)
REPLY_SIZE = 1024


def seal_keys(eph_pub, relay_pub, shared):
    keys = hashlib.blake2b(b"cairn/1 forward" + eph_pub + relay_pub + shared,
                           digest_size=64).digest()
    return keys[:32], keys[32:]


def pad_inner(command, sizes):
    body = struct.pack(">I", len(command)) + command
    size = min(s for s in sizes if s >= len(body))
    return body + bytes(size - len(body))


def aead(key, pt):
    return ChaCha20Poly1305(key).encrypt(bytes(12), pt, b"")


def unaead(key, ct):
    return ChaCha20Poly1305(key).decrypt(bytes(12), ct, b"")


def mp_uint32(v):
    """A msgpack uint 32 (0xce): the shortest form of not_after's values from 2^16 to 2^32."""
    assert 65536 <= v < 2 ** 32
    return b"\xce" + struct.pack(">I", v)


def mp_bin16(b):
    assert 256 <= len(b) < 65536
    return b"\xc5" + struct.pack(">H", len(b)) + b


def main():
    show = "--print" in sys.argv[1:]
    v = read_vectors(SPEC)
    check = Check(show, v)

    # forward/seal: a SEND (5.7's codec/send fields, request id 0) sealed for the relay.
    command = mp_array([mp_uint(8), mp_uint(0), mp_bin(b"\x33" * 24), mp_bin(b"\x66" * 32),
                        mp_bin(b"hello")])
    eph_pub, relay_pub = x_public(EPHEMERAL_SECRET), x_public(RELAY_SECRET)
    shared = dh(EPHEMERAL_SECRET, relay_pub)
    assert shared == dh(RELAY_SECRET, eph_pub)
    k_req, k_rep = seal_keys(eph_pub, relay_pub, shared)
    inner = pad_inner(command, INNER_SIZES)
    assert len(inner) == 1024
    sealed = eph_pub + aead(k_req, inner)
    assert len(sealed) == 32 + 1024 + 16
    for key, val in (("ephemeral_secret", EPHEMERAL_SECRET), ("relay_secret", RELAY_SECRET),
                     ("ephemeral_public", eph_pub), ("relay_public", relay_pub),
                     ("command", command), ("dh", shared), ("k_req", k_req),
                     ("k_rep", k_rep), ("sealed", sealed)):
        check("forward/seal", key, val)

    # forward/reply: the relay's OK (request id 0) sealed with k_rep.
    reply = mp_array([mp_uint(64), mp_uint(0)])
    sealed_reply = aead(k_rep, pad_inner(reply, (REPLY_SIZE,)))
    assert len(sealed_reply) == 1040
    assert unaead(k_rep, sealed_reply)[4:4 + len(reply)] == reply
    check("forward/reply", "reply", reply)
    check("forward/reply", "sealed_reply", sealed_reply)

    # codec/forward, codec/forwarded, codec/sealed (5.7): `relay` is address/ipv4's text,
    # `sealed` 49 x 0x77 (the smallest sealed command) and SEALED's 17 x 0x78.
    relay = v["address/ipv4"]["text"].encode()
    small = b"\x77" * 49
    check("codec/forward", "relay", relay)
    check("codec/forward", "sealed", small)
    check("codec/forward", "hex", mp_array([mp_uint(15), mp_uint(7), mp_bin(relay),
                                            mp_bin(small)]))
    check("codec/forwarded", "sealed", sealed)
    check("codec/forwarded", "hex", mp_array([mp_uint(16), mp_uint(7), mp_bin16(sealed)]))
    check("codec/sealed", "sealed", b"\x78" * 17)
    check("codec/sealed", "hex", mp_array([mp_uint(72), mp_uint(7), mp_bin(b"\x78" * 17)]))

    # bundle/item (5.12): the same SEND's fields as a BUNDLED with not_after 14 days after
    # 2026-01-01, sealed with the same keys and always the largest inner (16640 bytes).
    not_after = 1767225600 + 14 * 86400
    bundled = mp_array([mp_uint(17), mp_uint(0), mp_uint32(not_after), mp_bin(b"\x33" * 24),
                        mp_bin(b"\x66" * 32), mp_bin(b"hello")])
    item = eph_pub + aead(k_req, pad_inner(bundled, (16640,)))
    assert len(item) == 16688
    check("bundle/item", "ephemeral_secret", EPHEMERAL_SECRET)
    check("bundle/item", "relay_secret", RELAY_SECRET)
    check("bundle/item", "not_after", not_after)
    check("bundle/item", "command", bundled)
    check("bundle/item", "sealed_len", len(item))
    check("bundle/item", "sealed_head", item[:64])
    check("bundle/item", "sealed_blake2b", hashlib.blake2b(item, digest_size=32).digest())

    check.done()
    if not show:
        print("forward vectors: %s" % ("%d mismatches" % check.bad if check.bad else "all match"))
    return 1 if check.bad else 0


if __name__ == "__main__":
    sys.exit(main())
