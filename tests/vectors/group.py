#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Recomputes the group vectors of docs/PROTOCOL.md section 9 (groups: the group log commands of
5.9 and the group end-to-end layer) from fixed inputs, with libraries other than the ones Cairn
is built on: Python's hashlib and hmac (SHA-256, SHA-512, BLAKE2b, HMAC, HKDF written out from
RFC 5869) and the `cryptography` package (OpenSSL: Ed25519, X25519, ChaCha20-Poly1305), with
HChaCha20 written out (the primitives are shared with e2e.py). Nothing comes from the C code.

It builds one group's history: Alice creates it (genesis, epoch 0), adds Bob and Carol
(epoch 1), Bob posts a text and a key update, Alice removes Carol and moves the group to a fresh
log (epoch 2); plus the 1:1 offer, join and welcome payloads, the group invite, the group safety
number, the relay commands, and the commit sizes at 5, 200 and 1,000 members. Every value is
compared with the ```vector group/...``` blocks of PROTOCOL.md (each block must hold exactly the
keys computed here); every entry is also opened again as a member would, and the removed member
is checked to fail on the new epoch.

    python3 tests/vectors/group.py          check; exit status 1 on any mismatch
    python3 tests/vectors/group.py --print  print the blocks (to write the spec)

Debian: apt-get install python3-cryptography.
"""
import hashlib
import os
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

# The primitives of 8.1 (HKDF, HMAC, XChaCha20-Poly1305 with HChaCha20 written out, the vector
# reader, X25519 and Ed25519 public keys) are e2e.py's: both scripts stand apart from the C code.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import SPEC, aead_open, aead_seal, dh, ed_public, hkdf, hmac256, read_vectors, x_public  # noqa: E402


def sha256(data):
    return hashlib.sha256(data).digest()


def ed_sign(seed, msg):
    return Ed25519PrivateKey.from_private_bytes(seed).sign(msg)


def ed_verify(pub, sig, msg):
    try:
        Ed25519PublicKey.from_public_bytes(pub).verify(sig, msg)
        return True
    except InvalidSignature:
        return False


def u16(v):
    return struct.pack(">H", v)


def u32(v):
    return struct.pack(">I", v)


def u64(v):
    return struct.pack(">Q", v)


def xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


# --- relay commands (5.9): the msgpack subset of 5.1, written out ------------------------------

def mp_uint(v):
    if v < 128:
        return bytes([v])
    if v < 256:
        return b"\xcc" + bytes([v])
    if v < 65536:
        return b"\xcd" + u16(v)
    if v < 2**32:
        return b"\xce" + u32(v)
    return b"\xcf" + u64(v)


def mp_bin(b):
    if len(b) < 256:
        return b"\xc4" + bytes([len(b)]) + b
    if len(b) < 65536:
        return b"\xc5" + u16(len(b)) + b
    return b"\xc6" + u32(len(b)) + b


def mp_array(items):
    assert len(items) < 16
    return bytes([0x90 + len(items)]) + b"".join(items)


def log_digest(secret, log_id):
    """5.9: BLAKE2b-256(message = secret, key = log_id), as 5.5 keys with the sender id."""
    return hashlib.blake2b(secret, digest_size=32, key=log_id).digest()


# --- group state (9.2, 9.3) -------------------------------------------------------------------

ROLE_MEMBER, ROLE_ADMIN = 1, 2
SIZES = (896, 3968, 16384)
ENTRY_OVERHEAD = 24 + 23 + 16      # hnonce, eheader, body tag
PART_MAX = 16384 - ENTRY_OVERHEAD - 2 - 17 - 64


class Member:
    def __init__(self, identity, sign_key, group_key, serial, role):
        self.identity, self.sign_key, self.group_key = identity, sign_key, group_key
        self.serial, self.role = serial, role

    def encode(self):
        return self.identity + self.sign_key + self.group_key + u32(self.serial) + bytes([self.role])


def roster_bytes(roster):
    return u16(len(roster)) + b"".join(m.encode() for m in roster)


def roster_hash(roster):
    return sha256(b"cairn/1 group roster" + roster_bytes(roster))


def ctx(group_id, epoch, head):
    return group_id + u64(epoch) + head


def schedule(secret, c):
    k = hkdf(None, secret, b"cairn/1 group epoch" + c, 160)
    return {"header_key": k[0:32], "commit_key": k[32:64], "sender_base": k[64:96],
            "init_secret": k[96:128], "confirm_key": k[128:160]}


def sender_chain(sender_base, index):
    return hkdf(None, sender_base, b"cairn/1 group sender" + u16(index), 32)


def kdf_ck(ck):
    return hmac256(ck, b"\x01"), hmac256(ck, b"\x02")


def message_keys(mk):
    o = hkdf(None, mk, b"cairn/1 group message keys", 56)
    return o[:32], o[32:56]


def pad_body(content):
    total = next(s for s in SIZES if s >= ENTRY_OVERHEAD + 2 + len(content))
    n = total - ENTRY_OVERHEAD
    return u16(len(content)) + content + bytes(n - 2 - len(content))


def unpad(pt):
    n = struct.unpack(">H", pt[:2])[0]
    assert 2 + n <= len(pt) and not any(pt[2 + n:])
    return pt[2:2 + n]


def seal_entry(header_key, body_key, body_nonce, hnonce, kind, sender, n, content):
    header = bytes([kind]) + u16(sender) + u32(n)
    eh = aead_seal(header_key, hnonce, header, b"")
    body = aead_seal(body_key, body_nonce, pad_body(content), hnonce + eh)
    return hnonce + eh + body


def open_header(header_key, entry):
    h = aead_open(header_key, entry[:24], entry[24:47], b"")
    if h is None:
        return None
    return h[0], struct.unpack(">H", h[1:3])[0], struct.unpack(">I", h[3:7])[0]


def appmsg(kind, message_id, sent_at, data, part_index=0, part_count=1):
    return bytes([kind]) + message_id + u64(sent_at) + u16(part_index) + u16(part_count) + data


def location(relay, log_id, credential):
    r = relay.encode()
    return u16(len(r)) + r + log_id + credential


def build_commit(st, committer, committer_sign_seed, last_seq, changes, new_roster, seals_for,
                 commit_secret, eph_priv, move=None):
    """Returns (commit bytes, head, epoch secret, schedule, extras) per 9.5.
    ST is the previous epoch: group_id, epoch, head, init_secret (0^32 for genesis)."""
    gid, epoch = st["group_id"], st["next_epoch"]
    eph = x_public(eph_priv)
    prev = st["init_secret"]
    body = bytes([1]) + gid + u64(epoch) + st["head"] + u16(committer) + u64(last_seq)
    body += bytes([len(changes)]) + b"".join(changes)
    extras = {}
    if move is None:
        body += u16(0)
    else:
        move_key = hkdf(prev, commit_secret, b"cairn/1 group move", 32)
        box = aead_seal(move_key, bytes(24), move, gid + u64(epoch))
        extras["move_key"], extras["move_box"] = move_key, box
        body += u16(len(box)) + box
    body += eph + roster_hash(new_roster) + u16(len(seals_for))
    for i, m in enumerate(seals_for):
        pad_i = hkdf(None, dh(eph_priv, m.group_key),
                     b"cairn/1 group seal" + gid + u64(epoch) + st["head"] + eph + m.group_key, 32)
        extras["pad_%d" % i] = pad_i
        body += u32(m.serial) + xor(commit_secret, pad_i)
    sig = ed_sign(committer_sign_seed, b"cairn/1 group commit" + body)
    head = sha256(b"cairn/1 group head" + body + sig)
    secret = hkdf(prev, commit_secret, b"cairn/1 group next" + head, 32)
    sch = schedule(secret, ctx(gid, epoch, head))
    confirm = hmac256(sch["confirm_key"], head)
    return body + sig + confirm, head, secret, sch, extras


def part_tbs(c, commit_id, k, count, piece):
    return b"cairn/1 group commit part" + c + commit_id + bytes([k, count]) + piece


def commit_entries(commit, commit_id, keys, c, committer, sign_seed, hnonces):
    """Cuts COMMIT into parts (9.5), signs each, and seals each as a kind 2 entry under KEYS,
    the schedule of the epoch whose context is C."""
    slices = [commit[i:i + PART_MAX] for i in range(0, len(commit), PART_MAX)]
    assert len(slices) <= 16
    out = []
    for i, piece in enumerate(slices):
        sig = ed_sign(sign_seed, part_tbs(c, commit_id, i, len(slices), piece))
        content = commit_id + bytes([len(slices)]) + piece + sig
        out.append(seal_entry(keys["header_key"], keys["commit_key"], hnonces[i], hnonces[i], 2,
                              committer, i, content))
    return out


def open_commit_entry(header_key, commit_key, entry):
    kind, sender, n = open_header(header_key, entry)
    assert kind == 2
    pt = aead_open(commit_key, entry[:24], entry[47:], entry[:47])
    return sender, n, unpad(pt)


def safety(group_id, epoch, head):
    d = hashlib.sha512(b"cairn/1 group safety number" + group_id + u64(epoch) + head).digest()
    s = "".join("%05d" % (int.from_bytes(d[5 * j:5 * j + 5], "big") % 100000) for j in range(12))
    return " ".join(s[k:k + 5] for k in range(0, 60, 5))


def commit_size(seals, changes_len=0, move_len=0):
    return 232 + changes_len + move_len + 36 * seals


def wire_size(commit_len):
    """The entries a commit of COMMIT_LEN bytes takes in the log (9.5, 9.4), as text."""
    sizes, left = [], commit_len
    while left > 0:
        s = min(left, PART_MAX)
        sizes.append(next(z for z in SIZES if z >= ENTRY_OVERHEAD + 2 + 17 + 64 + s))
        left -= s
    if len(sizes) == 1:
        return "%d bytes, one entry of %d" % (commit_len, sizes[0])
    return "%d bytes, entries %s = %d" % (commit_len, " + ".join(map(str, sizes)), sum(sizes))


# --- the history ------------------------------------------------------------------------------

def compute():
    h = bytes.fromhex
    out = {}
    gid = h("67" * 16)
    relay1 = "cairn://AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@127.0.0.1:7443"
    relay2 = "cairn://__________________________________________8@relay.example.org:7443"
    sent_at = 1767225600

    def person(id_seed, sign_seed, gk_priv):
        return {"id_seed": h(id_seed * 32), "sign_seed": h(sign_seed * 32), "gk": h(gk_priv * 32)}

    alice = person("11", "a1", "b1")
    bob = person("22", "a2", "b2")
    carol = person("23", "a3", "b3")
    for p in (alice, bob, carol):
        p["identity"], p["sign_key"] = ed_public(p["id_seed"]), ed_public(p["sign_seed"])
        p["group_key"] = x_public(p["gk"])

    def member(p, role):
        return Member(p["identity"], p["sign_key"], p["group_key"], 0, role)

    def add(p, role):
        return b"\x01" + p["identity"] + p["sign_key"] + p["group_key"] + bytes([role])

    # Relay commands (5.9).
    log_id, cred, dsec = h("77" * 24), h("66" * 32), h("99" * 32)
    cdig, ddig = log_digest(cred, log_id), log_digest(dsec, log_id)
    out["group/log-digests"] = {"log_id": log_id.hex(), "credential": cred.hex(),
                                "credential_digest": cdig.hex(), "delete_secret": dsec.hex(),
                                "delete_digest": ddig.hex()}
    hello = b"hello"
    cmds = [
        ("group/log-create", [9, 7], [("log_id", log_id), ("credential_digest", cdig),
                                      ("delete_digest", ddig)]),
        ("group/log-append", [10, 7], [("log_id", log_id), ("credential", cred),
                                       ("entry", hello)]),
        ("group/log-read", [11, 300], [("log_id", log_id), ("from_seq", 4294967296),
                                       ("follow", 1)]),
        ("group/log-delete", [12, 7], [("log_id", log_id), ("delete_secret", dsec)]),
        ("group/appended", [69, 7], [("seq", 1)]),
        ("group/log-state", [70, 300], [("first_seq", 1), ("next_seq", 300)]),
        ("group/log-entry", [71, 300], [("seq", 4294967296), ("entry", hello)]),
    ]
    for name, (typ, rid), fields in cmds:
        items = [mp_uint(typ), mp_uint(rid)]
        blk = {"type": str(typ), "request_id": str(rid)}
        for k, v in fields:
            if isinstance(v, int):
                items.append(mp_uint(v))
                blk[k] = str(v)
            else:
                items.append(mp_bin(v))
                blk[k] = v.hex()
        blk["hex"] = mp_array(items).hex()
        out[name] = blk

    # Genesis (epoch 0): Alice alone, admin; settings 7 days / 1000 messages.
    g_secret, g_eph = h("c0" * 32), h("e0" * 32)
    settings = b"\x04" + u32(604800) + u32(1000)
    r0 = [member(alice, ROLE_ADMIN)]
    st = {"group_id": gid, "next_epoch": 0, "head": bytes(32), "init_secret": bytes(32)}
    c0, head0, e0, s0, _ = build_commit(st, 0, alice["sign_seed"], 0,
                                        [add(alice, ROLE_ADMIN), settings], r0, [], g_secret, g_eph)
    # The genesis entry is sealed under the keys of the epoch it creates (9.5).
    g_id, g_nonce = h("60" * 16), h("50" * 24)
    ent0 = commit_entries(c0, g_id, s0, ctx(gid, 0, head0), 0, alice["sign_seed"], [g_nonce])
    assert len(ent0) == 1
    out["group/genesis"] = {
        "group_id": gid.hex(), "alice_identity_seed": alice["id_seed"].hex(),
        "alice_identity": alice["identity"].hex(), "alice_sign_seed": alice["sign_seed"].hex(),
        "alice_sign_key": alice["sign_key"].hex(), "alice_group_private": alice["gk"].hex(),
        "alice_group_key": alice["group_key"].hex(), "commit_secret": g_secret.hex(),
        "ephemeral_private": g_eph.hex(), "roster": roster_bytes(r0).hex(),
        "roster_hash": roster_hash(r0).hex(), "commit": c0.hex(), "head": head0.hex(),
        "epoch_secret": e0.hex(),
        "header_key": s0["header_key"].hex(), "commit_key": s0["commit_key"].hex(),
        "sender_base": s0["sender_base"].hex(), "init_secret": s0["init_secret"].hex(),
        "confirm_key": s0["confirm_key"].hex(), "commit_id": g_id.hex(),
        "hnonce": g_nonce.hex(), "entry": ent0[0].hex()}

    # Epoch 1: Alice adds Bob and Carol after reading the genesis (seq 1). Sealed to Alice only.
    c1_secret, c1_eph = h("c1" * 32), h("e1" * 32)
    r1 = [member(alice, ROLE_ADMIN), member(bob, ROLE_MEMBER), member(carol, ROLE_MEMBER)]
    st = {"group_id": gid, "next_epoch": 1, "head": head0, "init_secret": s0["init_secret"]}
    c1, head1, e1, s1, x1 = build_commit(st, 0, alice["sign_seed"], 1,
                                         [add(bob, ROLE_MEMBER), add(carol, ROLE_MEMBER)], r1,
                                         [r1[0]], c1_secret, c1_eph)
    c1_id, c1_nonce = h("61" * 16), h("51" * 24)
    ent1 = commit_entries(c1, c1_id, s0, ctx(gid, 0, head0), 0, alice["sign_seed"], [c1_nonce])
    out["group/add"] = {
        "bob_identity_seed": bob["id_seed"].hex(), "bob_sign_seed": bob["sign_seed"].hex(),
        "bob_group_private": bob["gk"].hex(), "carol_identity_seed": carol["id_seed"].hex(),
        "carol_sign_seed": carol["sign_seed"].hex(), "carol_group_private": carol["gk"].hex(),
        "commit_secret": c1_secret.hex(), "ephemeral_private": c1_eph.hex(),
        "last_seq": "1", "pad_0": x1["pad_0"].hex(), "roster": roster_bytes(r1).hex(),
        "roster_hash": roster_hash(r1).hex(), "commit": c1.hex(), "head": head1.hex(),
        "epoch_secret": e1.hex(), "header_key": s1["header_key"].hex(),
        "commit_key": s1["commit_key"].hex(), "sender_base": s1["sender_base"].hex(),
        "init_secret": s1["init_secret"].hex(), "confirm_key": s1["confirm_key"].hex(),
        "commit_id": c1_id.hex(), "hnonce": c1_nonce.hex(), "entry": ent1[0].hex()}

    # Alice opens her own commit from the log as a crash-recovering committer would (9.6).
    snd, n, content = open_commit_entry(s0["header_key"], s0["commit_key"], ent1[0])
    assert (snd, n, content[:16], content[16]) == (0, 0, c1_id, 1) and content[17:-64] == c1
    assert ed_verify(alice["sign_key"], content[-64:], part_tbs(ctx(gid, 0, head0), c1_id, 0, 1, c1))
    seal = c1[-96 - 36:-96]
    assert seal[:4] == u32(0)
    pad_a = hkdf(None, dh(alice["gk"], x_public(c1_eph)),
                 b"cairn/1 group seal" + gid + u64(1) + head0 + x_public(c1_eph) + alice["group_key"],
                 32)
    assert xor(seal[4:], pad_a) == c1_secret

    # Offer, join, welcome over the 1:1 session (9.8): data of application kinds 4, 5, 6.
    name = "Lawyers".encode()
    offer = gid + bytes([len(name)]) + name
    join = gid + bob["sign_key"] + bob["group_key"]
    loc1 = location(relay1, log_id, cred)
    welcome = (gid + u64(1) + head1 + e1 + u16(1) + u32(604800) + u32(1000) + u64(2) + loc1
               + bytes([len(name)]) + name + roster_bytes(r1))
    out["group/offer"] = {"name": "Lawyers", "data": offer.hex()}
    out["group/join"] = {"data": join.hex()}
    out["group/welcome"] = {"index": "1", "commit_seq": "2", "relay": relay1,
                            "data": welcome.hex()}

    # Epoch 1, seq 3: Bob (sender 1) writes a text, n = 0.
    ck = sender_chain(s1["sender_base"], 1)
    mk, ck1 = kdf_ck(ck)
    key, body_nonce = message_keys(mk)
    text = appmsg(1, h("70" * 16), sent_at, "hello, group".encode())
    c = ctx(gid, 1, head1)
    sig = ed_sign(bob["sign_seed"], b"cairn/1 group message" + c + u16(1) + u32(0) + text)
    m_nonce = h("52" * 24)
    ent_m = seal_entry(s1["header_key"], key, body_nonce, m_nonce, 1, 1, 0, text + sig)
    assert len(ent_m) == 896
    out["group/message"] = {"sender": "1", "n": "0", "chain_key": ck.hex(),
                            "message_key": mk.hex(), "key": key.hex(),
                            "body_nonce": body_nonce.hex(), "payload": text.hex(),
                            "signature": sig.hex(), "hnonce": m_nonce.hex(),
                            "entry": ent_m.hex()}
    # Carol opens it: header, chain, body, signature.
    kind, snd, n = open_header(s1["header_key"], ent_m)
    assert (kind, snd, n) == (1, 1, 0)
    k2, bn2 = message_keys(kdf_ck(sender_chain(s1["sender_base"], snd))[0])
    body = unpad(aead_open(k2, bn2, ent_m[47:], ent_m[:47]))
    assert body[:-64] == text
    assert ed_verify(bob["sign_key"], body[-64:], b"cairn/1 group message" + c + u16(1) + u32(0)
                     + body[:-64])

    # Seq 4: Bob's key update, n = 1: serial 1, fresh group key, 0 messages in epoch 0.
    bob_gk1 = h("b4" * 32)
    ku_data = u32(1) + x_public(bob_gk1) + u32(0)
    ku = appmsg(16, h("71" * 16), sent_at, ku_data)
    mk2, _ = kdf_ck(ck1)
    key2, bn2 = message_keys(mk2)
    sig2 = ed_sign(bob["sign_seed"], b"cairn/1 group message" + c + u16(1) + u32(1) + ku)
    ku_nonce = h("53" * 24)
    ent_k = seal_entry(s1["header_key"], key2, bn2, ku_nonce, 1, 1, 1, ku + sig2)
    out["group/keyupdate"] = {"sender": "1", "n": "1", "group_private": bob_gk1.hex(),
                              "group_key": x_public(bob_gk1).hex(), "data": ku_data.hex(),
                              "payload": ku.hex(), "hnonce": ku_nonce.hex(),
                              "entry": ent_k.hex()}

    # Epoch 2: Alice removes Carol (index 2) after reading seq 4, moving to a fresh log.
    c2_secret, c2_eph = h("c2" * 32), h("e2" * 32)
    log2, cred2 = h("78" * 24), h("68" * 32)
    move = location(relay2, log2, cred2)
    bob_m = Member(bob["identity"], bob["sign_key"], x_public(bob_gk1), 1, ROLE_MEMBER)
    r2 = [member(alice, ROLE_ADMIN), bob_m]
    st = {"group_id": gid, "next_epoch": 2, "head": head1, "init_secret": s1["init_secret"]}
    c2, head2, e2, s2, x2 = build_commit(st, 0, alice["sign_seed"], 4, [b"\x02" + u16(2)], r2,
                                         r2, c2_secret, c2_eph, move)
    c2_id, c2_nonce = h("62" * 16), h("54" * 24)
    ent2 = commit_entries(c2, c2_id, s1, ctx(gid, 1, head1), 0, alice["sign_seed"], [c2_nonce])
    out["group/remove"] = {
        "commit_secret": c2_secret.hex(), "ephemeral_private": c2_eph.hex(), "last_seq": "4",
        "location": move.hex(), "move_key": x2["move_key"].hex(),
        "move_box": x2["move_box"].hex(), "pad_0": x2["pad_0"].hex(),
        "pad_1": x2["pad_1"].hex(), "roster": roster_bytes(r2).hex(),
        "roster_hash": roster_hash(r2).hex(), "commit": c2.hex(), "head": head2.hex(),
        "epoch_secret": e2.hex(), "confirm_key": s2["confirm_key"].hex(),
        "commit_id": c2_id.hex(), "hnonce": c2_nonce.hex(), "entry": ent2[0].hex()}

    # Bob processes it with his serial 1 key; Carol, holding all her state, reads the commit
    # (epoch 1 keys) but cannot get the secret: no seal for her, and the move box does not open
    # under anything she can derive.
    _, _, content = open_commit_entry(s1["header_key"], s1["commit_key"], ent2[0])
    cm = content[17:-64]
    eph2 = x_public(c2_eph)
    seals = cm[-96 - 2 * 36:-96]
    assert seals[36:40] == u32(1)
    pad_b = hkdf(None, dh(bob_gk1, eph2),
                 b"cairn/1 group seal" + gid + u64(2) + head1 + eph2 + x_public(bob_gk1), 32)
    cs = xor(seals[40:72], pad_b)
    assert cs == c2_secret
    assert hkdf(s1["init_secret"], cs, b"cairn/1 group next" + head2, 32) == e2
    assert hmac256(s2["confirm_key"], head2) == cm[-32:]
    assert aead_open(hkdf(s1["init_secret"], cs, b"cairn/1 group move", 32), bytes(24),
                     x2["move_box"], gid + u64(2)) == move
    for guess in (carol["gk"], s1["init_secret"], s1["sender_base"], e1):
        assert aead_open(hkdf(s1["init_secret"], guess, b"cairn/1 group move", 32), bytes(24),
                         x2["move_box"], gid + u64(2)) is None
    # An epoch 2 entry does not open under Carol's epoch 1 header key.
    probe = seal_entry(s2["header_key"], s2["commit_key"], h("55" * 24), h("55" * 24), 2, 0, 0, b"x")
    assert open_header(s1["header_key"], probe) is None

    out["group/safety"] = {"epoch": "2", "head": head2.hex(), "number": safety(gid, 2, head2)}

    # Group invite (9.8): an 8.2 invite with version 3 and the group trailer.
    inv = (bytes([3]) + alice["identity"] + h("7b0d47d93427f8311160781c7c733fd89f88970aef490d8aa0ee19a4cb8a1b14")
           + bytes([1]) + h("aa" * 24) + h("bb" * 32) + u16(len(relay1)) + relay1.encode()
           + gid + bytes([len(name)]) + name)
    out["group/invite"] = {"identity": alice["identity"].hex(),
                           "onetime": "7b0d47d93427f8311160781c7c733fd89f88970aef490d8aa0ee19a4cb8a1b14",
                           "sender_id_1": "aa" * 24, "credential_1": "bb" * 32, "relay_1": relay1,
                           "group_id": gid.hex(), "name": "Lawyers", "invite": inv.hex()}

    # Commit sizes (9.5): a rotation (no change) and a removal with a move at N members.
    move_box_len = len(x2["move_box"])
    sizes = {"move_box": str(move_box_len)}
    for n in (5, 200, 1000):
        rot, rem = commit_size(n), commit_size(n - 1, 3, move_box_len)
        sizes["rotate_%d" % n] = wire_size(rot)
        sizes["remove_%d" % n] = wire_size(rem)
    assert commit_size(2, 3, move_box_len) == len(c2)  # r2: 2 seals, 1 change of 3 bytes
    assert (len(c0), len(c1)) == (commit_size(0, 98 + 9), commit_size(1, 2 * 98))
    # And with real bytes: a rotation commit at 1,000 members, cut into parts, sealed, opened
    # and put together again, takes the entries the table says.
    big = [Member(ed_public(u32(i) * 8), ed_public(u32(i) * 8), x_public(u32(i + 1) * 8), 0,
                  ROLE_ADMIN if i == 0 else ROLE_MEMBER) for i in range(1000)]
    st = {"group_id": gid, "next_epoch": 3, "head": head2, "init_secret": s2["init_secret"]}
    cb, _, _, _, _ = build_commit(st, 0, alice["sign_seed"], 9, [], big, big, h("c3" * 32),
                                  h("e3" * 32))
    assert len(cb) == commit_size(1000)
    nonces = [bytes([0x56 + i]) * 24 for i in range(3)]
    ents = commit_entries(cb, h("63" * 16), s2, ctx(gid, 2, head2), 0, alice["sign_seed"], nonces)
    assert "entries " + " + ".join(str(len(e)) for e in ents) in sizes["rotate_1000"]
    parts = [open_commit_entry(s2["header_key"], s2["commit_key"], e)[2] for e in ents]
    assert all(p[16] == 3 for p in parts) and b"".join(p[17:-64] for p in parts) == cb
    out["group/sizes"] = sizes
    return out


def main():
    show = "--print" in sys.argv[1:]
    got = compute()
    if show:
        for name, blk in got.items():
            print("```vector %s" % name)
            for k, v in blk.items():
                print("%s: %s" % (k, v))
            print("```\n")
        return 0
    spec = read_vectors(SPEC)
    bad = 0
    for name, blk in got.items():
        want = spec.get(name)
        if want is None:
            print("MISSING vector %s in PROTOCOL.md" % name)
            bad += 1
            continue
        for k in sorted(set(blk) | set(want)):
            if blk.get(k) != want.get(k):
                print("MISMATCH %s %s\n  spec:     %s\n  computed: %s" % (name, k, want.get(k),
                                                                          blk.get(k)))
                bad += 1
    extra = [n for n in spec if n.startswith("group/") and n not in got]
    for n in extra:
        print("UNCHECKED vector %s in PROTOCOL.md" % n)
        bad += 1
    print("group vectors: %s" % ("%d mismatches" % bad if bad else "all match (%d blocks)" % len(got)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
