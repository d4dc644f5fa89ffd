#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Recomputes the intake vectors of docs/PROTOCOL.md section 10.9 from the text of sections 5.10
and 10 alone, with libraries other than the ones Cairn is built on: Python's hashlib (BLAKE2b,
SHA-512), hmac and base64, and the `cryptography` package (OpenSSL: Ed25519, X25519,
ChaCha20-Poly1305), with HChaCha20 and the Ed25519-to-X25519 map written out (the primitives
and the Double Ratchet are e2e.py's). Nothing comes from the C code.

It builds the intake address, the owner's prekey bundle for the first bundle log, and the
requester's first message (type 3) under that bundle, then opens the message again as the owner
would and checks that it does not open as a type 1 (another EAD) nor under the invite labels.
It also recomputes the proof-of-work digest and the INTAKE and SEND_WORK commands.

    python3 tests/vectors/intake.py          check; exit status 1 on any mismatch
    python3 tests/vectors/intake.py --print  print the blocks (to write the spec)

Debian: apt-get install python3-cryptography.
"""
import base64
import hashlib
import os
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import (SPEC, Ratchet, aead_open, aead_seal, dh, ed_pk_to_x, ed_public,  # noqa: E402
                 ed_seed_to_x, hkdf, kdf_ck, kdf_rk, pad, read_vectors, unpad, x_public)

OWNER_SEED = b"\x01" * 32
REQUESTER_SEED = b"\x02" * 32
PREKEY_PRIVATE = b"\x31" * 32
EPHEMERAL_PRIVATE = b"\x32" * 32
RATCHET_PRIVATE = b"\x33" * 32
CREATED, EXPIRES, WORK_BITS = 1767225600, 1768435200, 20
REPLY = bytes(range(0x61, 0x79))
MESSAGE = b"hello embassy"


def u16(v):
    return struct.pack(">H", v)


def u64(v):
    return struct.pack(">Q", v)


# --- the intake address (10.1) ---------------------------------------------------------------

def address(identity, points):
    out = bytes([4]) + identity + bytes([len(points)])
    for sender_id, log_id, relay in points:
        out += sender_id + log_id + u16(len(relay)) + relay
    return out


# --- the prekey bundle (10.3) -----------------------------------------------------------------

def bundle(seed, prekey, created, expires, work_bits, log_id):
    body = bytes([1]) + ed_public(seed) + prekey + u64(created) + u64(expires) + \
        bytes([work_bits])
    assert len(body) == 82
    sig = Ed25519PrivateKey.from_private_bytes(seed).sign(b"cairn/1 intake bundle" + log_id + body)
    return body + sig


def bundle_verifies(b, identity, log_id):
    try:
        Ed25519PublicKey.from_public_bytes(identity).verify(
            b[82:], b"cairn/1 intake bundle" + log_id + b[:82])
        return True
    except InvalidSignature:
        return False


# --- the first message (10.4) -----------------------------------------------------------------

def x3dh(labels, ika_seed, iki, ek, spk):
    """The requester's side: DH1..DH3, box key, RK || HKa || NHKb, prefix."""
    dh1, dh2, dh3 = dh(ed_seed_to_x(ika_seed), spk), dh(ek, ed_pk_to_x(iki)), dh(ek, spk)
    f = b"\xff" * 32
    box_key = hkdf(None, f + dh2 + dh3, labels[0], 32)
    sk = hkdf(None, f + dh1 + dh2 + dh3, labels[1], 96)
    ika = ed_public(ika_seed)
    box = aead_seal(box_key, bytes(24), ika, x_public(ek) + spk + iki)
    return dict(dh1=dh1, dh2=dh2, dh3=dh3, box_key=box_key, root_key=sk[:32], hka=sk[32:64],
                nhkb=sk[64:], prefix=x_public(ek) + spk + box)


INTAKE_LABELS = (b"cairn/1 intake identity", b"cairn/1 intake x3dh")
INVITE_LABELS = (b"cairn/1 x3dh identity", b"cairn/1 x3dh")


def owner_open(labels, iki_seed, spk_priv, env, new_priv):
    """The owner's side: the box, then RatchetInitBobHE and the first decrypt; None on failure."""
    prefix = env[1:113]
    ek, spk, box = prefix[:32], prefix[32:64], prefix[64:]
    if spk != x_public(spk_priv):
        return None
    iki = ed_public(iki_seed)
    dh2, dh3 = dh(ed_seed_to_x(iki_seed), ek), dh(spk_priv, ek)
    f = b"\xff" * 32
    ika = aead_open(hkdf(None, f + dh2 + dh3, labels[0], 32), bytes(24), box, ek + spk + iki)
    if ika is None:
        return None
    dh1 = dh(spk_priv, ed_pk_to_x(ika))
    sk = hkdf(None, f + dh1 + dh2 + dh3, labels[1], 96)
    o = Ratchet(ika + iki)
    o.dhs, o.rk, o.nhks, o.nhkr = spk_priv, sk[:32], sk[64:], sk[32:64]
    got = o.decrypt(env[:113], env[113:], new_priv)
    return got and (ika, unpad(got))


# --- proof of work and the commands (5.10, 5.7) --------------------------------------------------

def b2(data):
    return hashlib.blake2b(data, digest_size=32).digest()


def work_digest(sender_id, envelope, work):
    return b2(b"cairn/1 work" + sender_id + b2(envelope) + work)


def sufficient(digest, bits):
    return int.from_bytes(digest, "big") >> (256 - bits) == 0


def mp_uint(v):
    assert 0 <= v < 128
    return bytes([v])


def mp_bin(b):
    assert len(b) < 256
    return b"\xc4" + bytes([len(b)]) + b


def mp_array(items):
    assert len(items) < 16
    return bytes([0x90 | len(items)]) + b"".join(items)


class Check:
    def __init__(self, show, vectors):
        self.show, self.vectors, self.bad = show, vectors, 0
        self.printed = set()

    def __call__(self, block, key, got):
        got = got.hex() if isinstance(got, bytes) else str(got)
        if self.show:
            if block not in self.printed:
                if self.printed:
                    print("```\n")
                print("```vector %s" % block)
                self.printed.add(block)
            print("%s: %s" % (key, got))
            return
        want = self.vectors.get(block, {}).get(key)
        if want != got:
            print("MISMATCH %s %s\n  spec:     %s\n  computed: %s" % (block, key, want, got))
            self.bad += 1

    def done(self):
        if self.show and self.printed:
            print("```")


def main():
    show = "--print" in sys.argv[1:]
    v = read_vectors(SPEC)
    check = Check(show, v)
    h = bytes.fromhex

    # intake/address: two points, on the relays of address/ipv4 and address/onion.
    iki = ed_public(OWNER_SEED)
    relays = [v["address/ipv4"]["text"].encode(), v["address/onion"]["text"].encode()]
    points = [(b"\x41" * 24, b"\x51" * 24, relays[0]), (b"\x42" * 24, b"\x52" * 24, relays[1])]
    addr = address(iki, points)
    assert 85 <= len(addr) <= 1514
    text = "cairn-intake:" + base64.urlsafe_b64encode(addr).decode().rstrip("=")
    check("intake/address", "hex", addr)
    check("intake/address", "text", text)

    # intake/bundle, for the first point's log.
    spk = x_public(PREKEY_PRIVATE)
    log_id = points[0][1]
    bun = bundle(OWNER_SEED, spk, CREATED, EXPIRES, WORK_BITS, log_id)
    assert len(bun) == 146 and bundle_verifies(bun, iki, log_id)
    assert not bundle_verifies(bun, iki, points[1][1])  # bound to its log
    check("intake/bundle", "prekey_public", spk)
    check("intake/bundle", "signature", bun[82:])
    check("intake/bundle", "bundle", bun)

    # intake/first: X3DH with SPK for OPK and the intake labels, then RatchetInitAliceHE.
    ika = ed_public(REQUESTER_SEED)
    k = x3dh(INTAKE_LABELS, REQUESTER_SEED, iki, EPHEMERAL_PRIVATE, spk)
    for name in ("dh1", "dh2", "dh3", "box_key", "root_key", "hka", "nhkb", "prefix"):
        check("intake/first", name, k[name])
    a = Ratchet(ika + iki)
    a.dhs, a.dhr, a.hks, a.nhkr = RATCHET_PRIVATE, spk, k["hka"], k["nhkb"]
    a.rk, a.cks, a.nhks = kdf_rk(k["root_key"], dh(RATCHET_PRIVATE, spk))
    ead = b"\x03" + k["prefix"]
    content = u16(len(REPLY)) + REPLY + MESSAGE
    env = ead + a.encrypt(ead, pad(content, 1 + 112 + 96))
    assert len(env) == 896
    check("intake/first", "envelope", env)

    # The owner opens it; the same bytes do not open as a type 1, nor under the invite labels.
    new_priv = os.urandom(32)
    assert owner_open(INTAKE_LABELS, OWNER_SEED, PREKEY_PRIVATE, env, new_priv) == (ika, content)
    assert not owner_open(INTAKE_LABELS, OWNER_SEED, PREKEY_PRIVATE, b"\x01" + env[1:], new_priv)
    assert not owner_open(INVITE_LABELS, OWNER_SEED, PREKEY_PRIVATE, env, new_priv)
    assert k != x3dh(INVITE_LABELS, REQUESTER_SEED, iki, EPHEMERAL_PRIVATE, spk)

    # work/digest: the smallest sufficient nonce from 0.
    wd = v["work/digest"]
    sender, envelope = h(wd["sender_id"]), h(wd["envelope"])
    t, bits = int(wd["time"]), int(wd["work_bits"])
    assert envelope == b"\x5e" * 896 and sender == b"\x41" * 24
    nonce = 0
    while not sufficient(work_digest(sender, envelope, u64(t) + u64(nonce)), bits):
        nonce += 1
    work = u64(t) + u64(nonce)
    if not show:
        check("work/digest", "envelope_hash", b2(envelope))
        check("work/digest", "nonce", nonce)
        check("work/digest", "work", work)
        check("work/digest", "work_digest", work_digest(sender, envelope, work))
        # codec/intake and codec/send-work (5.7: one msgpack array per command).
        check("codec/intake", "hex", mp_array([mp_uint(13), mp_uint(7), mp_bin(b"\x43" * 24),
                                               mp_uint(20)]))
        check("codec/send-work", "work", work)
        check("codec/send-work", "hex", mp_array([mp_uint(14), mp_uint(8), mp_bin(sender),
                                                  mp_bin(work), mp_bin(b"hello")]))

    check.done()
    if not show:
        print("intake vectors: %s" % ("%d mismatches" % check.bad if check.bad else "all match"))
    return 1 if check.bad else 0


if __name__ == "__main__":
    sys.exit(main())
