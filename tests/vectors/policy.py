#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Recomputes the relay policy vectors of docs/PROTOCOL.md section 5.13 (`policy/body`,
`policy/sign`) and the codec vectors of POLICY (`codec/policy`, `codec/policy-have`,
`codec/policy-reply`, `codec/policy-none`) from the text of the spec alone, with libraries other
than the ones Cairn is built on: Python's hashlib (SHA-512, BLAKE2b), Edwards25519 arithmetic
written out here (RFC 8032 section 5.1) for XEdDSA (Signal's XEdDSA specification), and the
`cryptography` package (OpenSSL: X25519, and Ed25519 to verify the signature as a client
does). Nothing comes from the C code.

    python3 tests/vectors/policy.py          check; exit status 1 on any mismatch
    python3 tests/vectors/policy.py --print  print the blocks (to write the spec)

Debian: apt-get install python3-cryptography.
"""
import hashlib
import os
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import SPEC, ed_pk_to_x, read_vectors, x_public  # noqa: E402
from intake import Check, mp_array, mp_bin, mp_uint  # noqa: E402

RELAY_SECRET = b"\x72" * 32
Z = b"\x73" * 64
LABEL = b"cairn/1 policy"

# --- Edwards25519 (RFC 8032 5.1) -----------------------------------------------------------
P = 2**255 - 19
Q = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P


def _recover_x(y, sign):
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * pow(2, (P - 1) // 4, P) % P
    assert (x * x - x2) % P == 0
    if x & 1 != sign:
        x = P - x
    return x


_BY = 4 * pow(5, P - 2, P) % P
BASE = (_recover_x(_BY, 0), _BY, 1, _recover_x(_BY, 0) * _BY % P)


def _add(p1, p2):
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = 2 * t1 * t2 * D % P
    dd = 2 * z1 * z2 % P
    e, f, g, h = b - a, dd - c, dd + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def scalarmult_base(n):
    acc, pt = (0, 1, 1, 0), BASE
    while n > 0:
        if n & 1:
            acc = _add(acc, pt)
        pt = _add(pt, pt)
        n >>= 1
    return acc


def encode_point(pt):
    x, y, z, _ = pt
    zi = pow(z, P - 2, P)
    x, y = x * zi % P, y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def clamp(k):
    k = bytearray(k)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    return int.from_bytes(k, "little")


def sha512_int(data):
    return int.from_bytes(hashlib.sha512(data).digest(), "little")


def xeddsa_keypair(secret):
    """XEdDSA calculate_key_pair: A = the Edwards form of k*B with sign bit 0, a = +-k mod q."""
    k = clamp(secret)
    e = encode_point(scalarmult_base(k))
    a = k % Q
    if e[31] & 0x80:
        a = (Q - a) % Q
    big_a = encode_point(scalarmult_base(a))
    assert big_a[31] & 0x80 == 0 and big_a[:31] == e[:31]
    return big_a, a


def xeddsa_sign(secret, msg, z):
    big_a, a = xeddsa_keypair(secret)
    prefix = b"\xfe" + b"\xff" * 31  # hash_1's prefix: 2^256 - 1 - 1, little-endian
    r = sha512_int(prefix + a.to_bytes(32, "little") + msg + z) % Q
    big_r = encode_point(scalarmult_base(r))
    h = sha512_int(big_r + big_a + msg) % Q
    s = (r + h * a) % Q
    return big_r + s.to_bytes(32, "little")


# --- msgpack, shortest forms (5.1) ---------------------------------------------------------
def mp_str(s):
    b = s.encode("utf-8")
    if len(b) < 32:
        return bytes([0xa0 | len(b)]) + b
    if len(b) < 256:
        return b"\xd9" + bytes([len(b)]) + b
    return b"\xda" + struct.pack(">H", len(b)) + b


def mp_uint_any(v):
    if v < 128:
        return mp_uint(v)
    if v < 256:
        return b"\xcc" + bytes([v])
    if v < 65536:
        return b"\xcd" + struct.pack(">H", v)
    return b"\xce" + struct.pack(">I", v)


def mp_bin_any(b):
    if len(b) < 256:
        return mp_bin(b)
    return b"\xc5" + struct.pack(">H", len(b)) + b


def main():
    show = "--print" in sys.argv[1:]
    v = read_vectors(SPEC)
    check = Check(show, v)

    fields = {
        "jurisdiction": "Iceland",
        "contact": "ops@relay.example.org",
        "ttl": 1814400,
        "logging": "errors only; never addresses or mailbox ids",
        "retention": "envelopes until acknowledged or ttl; nothing else",
        "forwarding": 1,
        "statement": "We answer no request for data we do not hold, and we hold none.",
    }
    relay_public = x_public(RELAY_SECRET)
    big_a, _ = xeddsa_keypair(RELAY_SECRET)
    # What a verifier checks first: A maps to the address key, and its sign bit is 0.
    assert ed_pk_to_x(big_a) == relay_public and big_a[31] & 0x80 == 0
    body = mp_array([mp_uint(1), mp_bin(big_a), mp_str(fields["jurisdiction"]),
                     mp_str(fields["contact"]), mp_uint_any(fields["ttl"]),
                     mp_str(fields["logging"]), mp_str(fields["retention"]),
                     mp_uint(fields["forwarding"]), mp_str(fields["statement"])])
    assert len(body) <= 4096
    check("policy/body", "relay_secret", RELAY_SECRET)
    check("policy/body", "relay_public", relay_public)
    check("policy/body", "edwards_public", big_a)
    for key in ("jurisdiction", "contact", "ttl", "logging", "retention", "forwarding",
                "statement"):
        check("policy/body", key, fields[key])
    check("policy/body", "body", body)
    digest = hashlib.blake2b(body, digest_size=32).digest()
    check("policy/body", "digest", digest)

    sig = xeddsa_sign(RELAY_SECRET, LABEL + body, Z)
    # The client's check is a plain Ed25519 verify by A (OpenSSL here, libsodium in C).
    Ed25519PublicKey.from_public_bytes(big_a).verify(sig, LABEL + body)
    bad = bytearray(body)
    bad[-1] ^= 1
    try:
        Ed25519PublicKey.from_public_bytes(big_a).verify(sig, LABEL + bytes(bad))
        raise SystemExit("a changed body verified")
    except InvalidSignature:
        pass
    check("policy/sign", "z", Z)
    check("policy/sign", "signature", sig)

    # codec vectors (5.7's request id 7).
    check("codec/policy", "hex", mp_array([mp_uint(18), mp_uint(7), b"\xc0"]))
    check("codec/policy-have", "have", digest)
    check("codec/policy-have", "hex", mp_array([mp_uint(18), mp_uint(7), mp_bin(digest)]))
    check("codec/policy-reply", "hex", mp_array([mp_uint(73), mp_uint(7), mp_bin_any(body),
                                                 mp_bin(sig)]))
    check("codec/policy-none", "hex", mp_array([mp_uint(73), mp_uint(7), b"\xc0"]))

    check.done()
    if not show:
        print("policy vectors: %s" % ("%d mismatches" % check.bad if check.bad else "all match"))
    return 1 if check.bad else 0


if __name__ == "__main__":
    sys.exit(main())
