#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Recomputes the end-to-end test vectors of docs/PROTOCOL.md section 8.8 from the text of
section 8 alone, with libraries other than the ones Cairn is built on: Python's hashlib and hmac
(SHA-256, SHA-512, HMAC, HKDF written out from RFC 5869), the `cryptography` package (OpenSSL:
Ed25519 key derivation, X25519, ChaCha20-Poly1305) and HChaCha20 and the Ed25519-to-X25519 map
written out here. It reads the vectors from PROTOCOL.md, rebuilds the invite, every X3DH and
first-ratchet intermediate, the three envelopes and the safety number, and opens each envelope
again as its receiver would, checking that a changed type byte or prefix does not open.

    python3 tests/vectors/e2e.py          check; exit status 1 on any mismatch
    python3 tests/vectors/e2e.py --print  print the recomputed values (to update the spec)

Debian: apt-get install python3-cryptography.
"""
import hashlib
import hmac
import os
import re
import struct
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.exceptions import InvalidTag

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC = os.path.join(ROOT, "docs", "PROTOCOL.md")
RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


def read_vectors(path):
    """Every ```vector NAME block of the spec as {name: {key: value}}."""
    vectors, cur = {}, None
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        m = re.match(r"^```vector (\S+)$", line)
        if m:
            cur = vectors.setdefault(m.group(1), {})
        elif line.startswith("```"):
            cur = None
        elif cur is not None and ": " in line:
            k, v = line.split(": ", 1)
            cur[k] = v
    return vectors


# --- primitives (section 8.1) ---------------------------------------------------------------

def hkdf(salt, ikm, info, length):
    """HKDF-SHA-256, RFC 5869; an absent salt is 32 zero bytes."""
    prk = hmac.new(salt if salt is not None else bytes(32), ikm, hashlib.sha256).digest()
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:length]


def hmac256(key, data):
    return hmac.new(key, data, hashlib.sha256).digest()


def _rotl(v, c):
    return ((v << c) & 0xFFFFFFFF) | (v >> (32 - c))


def hchacha20(key, nonce16):
    """HChaCha20 (draft-irtf-cfrg-xchacha section 2.2)."""
    s = list(struct.unpack("<4I", b"expand 32-byte k")) + list(struct.unpack("<8I", key)) + \
        list(struct.unpack("<4I", nonce16))

    def qr(a, b, c, d):
        s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = _rotl(s[d] ^ s[a], 16)
        s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = _rotl(s[b] ^ s[c], 12)
        s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = _rotl(s[d] ^ s[a], 8)
        s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = _rotl(s[b] ^ s[c], 7)

    for _ in range(10):
        qr(0, 4, 8, 12); qr(1, 5, 9, 13); qr(2, 6, 10, 14); qr(3, 7, 11, 15)
        qr(0, 5, 10, 15); qr(1, 6, 11, 12); qr(2, 7, 8, 13); qr(3, 4, 9, 14)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def aead_seal(key, nonce, pt, ad):
    """XChaCha20-Poly1305 (IETF): HChaCha20 subkey, then ChaCha20-Poly1305 with 0^4 || n[16:]."""
    return ChaCha20Poly1305(hchacha20(key, nonce[:16])).encrypt(bytes(4) + nonce[16:], pt, ad)


def aead_open(key, nonce, ct, ad):
    try:
        return ChaCha20Poly1305(hchacha20(key, nonce[:16])).decrypt(bytes(4) + nonce[16:], ct, ad)
    except InvalidTag:
        return None


P = 2**255 - 19


def ed_pk_to_x(pk):
    """RFC 7748 section 4.1: u = (1 + y) / (1 - y) mod p."""
    y = int.from_bytes(pk, "little") & ((1 << 255) - 1)
    return ((1 + y) * pow(1 - y, P - 2, P) % P).to_bytes(32, "little")


def ed_seed_to_x(seed):
    """The low 32 bytes of SHA-512(seed) (X25519 clamps them)."""
    return hashlib.sha512(seed).digest()[:32]


def ed_public(seed):
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(*RAW)


def x_public(priv):
    return X25519PrivateKey.from_private_bytes(priv).public_key().public_bytes(*RAW)


def dh(priv, pub):
    out = X25519PrivateKey.from_private_bytes(priv).exchange(X25519PublicKey.from_public_bytes(pub))
    assert out != bytes(32)
    return out


# --- invite (8.2) ----------------------------------------------------------------------------

def mailboxes(v):
    n = int(v["count"])
    out = bytes([n])
    for i in range(1, n + 1):
        relay = v["relay_%d" % i].encode()
        out += bytes.fromhex(v["sender_id_%d" % i]) + bytes.fromhex(v["credential_%d" % i])
        out += struct.pack(">H", len(relay)) + relay
    return out


# --- Double Ratchet with header encryption (8.4) -----------------------------------------------

def kdf_rk(rk, dh_out):
    o = hkdf(rk, dh_out, b"cairn/1 ratchet", 96)
    return o[:32], o[32:64], o[64:]


def kdf_ck(ck):
    return hmac256(ck, b"\x01"), hmac256(ck, b"\x02")


def message_keys(mk):
    o = hkdf(None, mk, b"cairn/1 message keys", 80)
    return o[:32], o[32:56], o[56:80]


class Ratchet:
    """Signal's section 4, only as far as these vectors need (no skipped keys)."""

    def __init__(self, ad):
        self.ad = ad
        self.dhs = self.dhr = self.cks = self.ckr = self.hks = self.hkr = None
        self.ns = self.nr = self.pn = 0

    def encrypt(self, ead, pt):
        mk, self.cks = kdf_ck(self.cks)
        key, body_nonce, header_nonce = message_keys(mk)
        header = x_public(self.dhs) + struct.pack(">II", self.pn, self.ns)
        self.ns += 1
        eh = aead_seal(self.hks, header_nonce, header, self.ad + ead)
        return header_nonce + eh + aead_seal(key, body_nonce, pt, self.ad + ead + header_nonce + eh)

    def decrypt(self, ead, msg, new_priv):
        """Opens MSG under EAD; on failure returns None and changes nothing."""
        nonce, eh, body = msg[:24], msg[24:80], msg[80:]
        header = self.hkr and aead_open(self.hkr, nonce, eh, self.ad + ead)
        saved = dict(self.__dict__)
        if header is None:
            header = aead_open(self.nhkr, nonce, eh, self.ad + ead)
            if header is None:
                return None
            # DHRatchetHE (no keys to skip in these vectors).
            self.pn, self.ns, self.nr = self.ns, 0, 0
            self.hks, self.hkr, self.dhr = self.nhks, self.nhkr, header[:32]
            self.rk, self.ckr, self.nhkr = kdf_rk(self.rk, dh(self.dhs, self.dhr))
            self.dhs = new_priv
            self.rk, self.cks, self.nhks = kdf_rk(self.rk, dh(self.dhs, self.dhr))
        assert struct.unpack(">I", header[36:40])[0] == self.nr
        mk, self.ckr = kdf_ck(self.ckr)
        self.nr += 1
        key, body_nonce, header_nonce = message_keys(mk)
        pt = None
        if header_nonce == nonce:
            pt = aead_open(key, body_nonce, body, self.ad + ead + nonce + eh)
        if pt is None:
            self.__dict__.update(saved)
        return pt


# --- envelopes (8.6) --------------------------------------------------------------------------

SIZES = (896, 3968, 16384)


def pad(content, overhead):
    n = next(s for s in SIZES if s >= overhead + 2 + len(content)) - overhead
    return struct.pack(">H", len(content)) + content + bytes(n - 2 - len(content))


def unpad(pt):
    n = struct.unpack(">H", pt[:2])[0]
    assert 2 + n <= len(pt) and not any(pt[2 + n:])
    return pt[2:2 + n]


class Check:
    def __init__(self, show):
        self.show, self.bad = show, 0

    def __call__(self, name, want, got):
        got = got.hex() if isinstance(got, bytes) else got
        if self.show:
            print("%s: %s" % (name, got))
        elif want != got:
            print("MISMATCH %s\n  spec:     %s\n  computed: %s" % (name, want, got))
            self.bad += 1


def main():
    show = "--print" in sys.argv[1:]
    v = read_vectors(SPEC)
    check = Check(show)
    inv, first, reply, third = v["e2e/invite"], v["e2e/first"], v["e2e/reply"], v["e2e/third"]
    h = bytes.fromhex

    # Invite.
    iki_seed = h(inv["identity_seed"])
    iki = ed_public(iki_seed)
    opk_priv = h(inv["onetime_private"])
    opk = x_public(opk_priv)
    check("e2e/invite identity", inv["identity"], iki)
    check("e2e/invite onetime", inv["onetime"], opk)
    check("e2e/invite invite", inv["invite"], bytes([2]) + iki + opk + mailboxes(inv))

    # First message: X3DH (8.3), the accepter's first KDF_RK and KDF_CK (8.4).
    ika_seed = h(first["accepter_identity_seed"])
    ika = ed_public(ika_seed)
    check("e2e/first accepter_identity", first["accepter_identity"], ika)
    ek, ra1 = h(first["ephemeral_private"]), h(first["ratchet_private"])
    dh1, dh2, dh3 = dh(ed_seed_to_x(ika_seed), opk), dh(ek, ed_pk_to_x(iki)), dh(ek, opk)
    for name, val in (("dh1", dh1), ("dh2", dh2), ("dh3", dh3)):
        check("e2e/first " + name, first[name], val)
    f = b"\xff" * 32
    box_key = hkdf(None, f + dh2 + dh3, b"cairn/1 x3dh identity", 32)
    sk = hkdf(None, f + dh1 + dh2 + dh3, b"cairn/1 x3dh", 96)
    rk, hka, nhkb = sk[:32], sk[32:64], sk[64:]
    check("e2e/first root_key", first["root_key"], rk)
    check("e2e/first hka", first["hka"], hka)
    check("e2e/first nhkb", first["nhkb"], nhkb)
    ad = ika + iki
    box = aead_seal(box_key, bytes(24), ika, x_public(ek) + opk + iki)
    prefix = x_public(ek) + opk + box
    check("e2e/first prefix", first["prefix"], prefix)

    a = Ratchet(ad)  # RatchetInitAliceHE
    a.dhs, a.dhr, a.hks, a.nhkr = ra1, opk, hka, nhkb
    a.rk, a.cks, a.nhks = kdf_rk(rk, dh(ra1, opk))
    check("e2e/first root_key_1", first["root_key_1"], a.rk)
    check("e2e/first chain_key_1", first["chain_key_1"], a.cks)
    check("e2e/first nhks_1", first["nhks_1"], a.nhks)
    check("e2e/first message_key_1", first["message_key_1"], kdf_ck(a.cks)[0])

    reply_bytes, m1 = h(first["reply"]), first["message"].encode()
    ead1 = b"\x01" + prefix
    content = struct.pack(">H", len(reply_bytes)) + reply_bytes + m1
    env1 = ead1 + a.encrypt(ead1, pad(content, 1 + 112 + 96))
    check("e2e/first envelope", first["envelope"], env1)

    # The inviter (RatchetInitBobHE) opens it: DH ratchet with e2e/reply's ratchet key.
    i = Ratchet(ad)
    i.dhs, i.rk, i.nhks, i.nhkr = opk_priv, rk, nhkb, hka
    got = i.decrypt(ead1, env1[113:], h(reply["ratchet_private"]))
    assert got is not None and unpad(got) == content
    m2 = reply["message"].encode()
    env2 = b"\x02" + i.encrypt(b"\x02", pad(m2, 1 + 96))
    check("e2e/reply envelope", reply["envelope"], env2)

    # The accepter opens the reply (DH ratchet with e2e/third's key) and writes a third.
    # Rewritten envelopes do not open: the type byte and the prefix are bound (EAD).
    assert a.decrypt(b"\x01" + prefix, env2[1:], h(third["ratchet_private"])) is None
    assert a.decrypt(b"", env2[1:], h(third["ratchet_private"])) is None
    got = a.decrypt(b"\x02", env2[1:], h(third["ratchet_private"]))
    assert got is not None and unpad(got) == m2
    m3 = third["message"].encode()
    env3 = b"\x02" + a.encrypt(b"\x02", pad(m3, 1 + 96))
    check("e2e/third envelope", third["envelope"], env3)
    assert len(env1) == len(env2) == len(env3) == 896
    assert i.decrypt(b"\x01" + prefix, env3[1:], os.urandom(32)) is None
    assert unpad(i.decrypt(b"\x02", env3[1:], os.urandom(32))) == m3

    # Safety number (8.7).
    saf = v["e2e/safety"]
    digits = []
    for key in (h(saf["a"]), h(saf["b"])):
        d = hashlib.sha512(b"cairn/1 safety number" + key).digest()
        for _ in range(5199):
            d = hashlib.sha512(d + key).digest()
        digits.append("".join("%05d" % (int.from_bytes(d[5 * j:5 * j + 5], "big") % 100000)
                              for j in range(6)))
    s = "".join(sorted(digits))
    check("e2e/safety number", saf["number"], " ".join(s[k:k + 5] for k in range(0, 60, 5)))

    if not show:
        print("e2e vectors: %s" % ("%d mismatches" % check.bad if check.bad else "all match"))
    return 1 if check.bad else 0


if __name__ == "__main__":
    sys.exit(main())
