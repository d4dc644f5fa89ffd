/* SPDX-License-Identifier: MIT */
/*
 * The end-to-end layer's session setup and formats (docs/PROTOCOL.md section 8): HKDF, the
 * invite payload, the X3DH first message (vectors recomputed independently from the spec's
 * formulas), envelope payloads and padding, one-time key use, identity authentication and
 * safety numbers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "e2e.h"
#include "invite.h"
#include "kdf.h"
#include "mdvec.h"
#include "pad.h"
#include "safety.h"

/* A scripted random source: hands out the listed 32-byte keys in order. */
struct script {
	uint8_t keys[4][32];
	int n, next;
};

static void script_fill(void *ctx, uint8_t *out, size_t len)
{
	struct script *s = ctx;
	assert_int_equal(len, 32);
	assert_true(s->next < s->n);
	memcpy(out, s->keys[s->next++], 32);
}

static struct e2e_rng script_rng(struct script *s, const char *v1, const char *k1, const char *v2,
                                 const char *k2)
{
	memset(s, 0, sizeof(*s));
	assert_int_equal(mdvec_hex(v1, k1, s->keys[s->n++], 32), 32);
	if (v2 != NULL)
		assert_int_equal(mdvec_hex(v2, k2, s->keys[s->n++], 32), 32);
	return (struct e2e_rng){script_fill, s};
}

struct identity {
	uint8_t pk[32], sk[64];
};

static void identity_from(const char *vec, const char *key, struct identity *id)
{
	uint8_t seed[32];
	assert_int_equal(mdvec_hex(vec, key, seed, 32), 32);
	crypto_sign_seed_keypair(id->pk, id->sk, seed);
}

static void test_hkdf_rfc5869(void **state)
{
	/* RFC 5869 appendix A.1. */
	uint8_t ikm[22], salt[13], info[10], okm[42], want[42];
	memset(ikm, 0x0b, sizeof(ikm));
	for (int i = 0; i < 13; i++)
		salt[i] = (uint8_t)i;
	for (int i = 0; i < 10; i++)
		info[i] = (uint8_t)(0xf0 + i);
	test_unhex(
	    "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b88718"
	    "5865",
	    want, sizeof(want));
	assert_int_equal(kdf_hkdf_sha256(okm, 42, salt, 13, ikm, 22, info, 10), 0);
	assert_memory_equal(okm, want, 42);
	assert_int_equal(kdf_hkdf_sha256(okm, 0, salt, 13, ikm, 22, info, 10), CAIRN_EINVAL);
	assert_int_equal(kdf_hkdf_sha256(okm, KDF_OUT_MAX + 1, NULL, 0, ikm, 22, NULL, 0),
	                 CAIRN_EINVAL);
}

/* Reads mailbox N (1-based) of vector V into M. */
static void load_mailbox(const char *v, int n, struct mailbox_addr *m)
{
	char key[32];
	memset(m, 0, sizeof(*m));
	snprintf(key, sizeof(key), "sender_id_%d", n);
	assert_int_equal(mdvec_hex(v, key, m->sender_id, 24), 24);
	snprintf(key, sizeof(key), "credential_%d", n);
	assert_int_equal(mdvec_hex(v, key, m->credential, 32), 32);
	snprintf(key, sizeof(key), "relay_%d", n);
	snprintf(m->relay, sizeof(m->relay), "%s", mdvec_str(v, key));
}

static void load_invite(struct invite *inv)
{
	const char *V = "e2e/invite";
	memset(inv, 0, sizeof(*inv));
	assert_int_equal(mdvec_hex(V, "identity", inv->identity, 32), 32);
	assert_int_equal(mdvec_hex(V, "onetime", inv->onetime, 32), 32);
	inv->mailboxes.count = (uint8_t)atoi(mdvec_str(V, "count"));
	assert_int_equal(inv->mailboxes.count, 2);
	for (int i = 0; i < inv->mailboxes.count; i++)
		load_mailbox(V, i + 1, &inv->mailboxes.box[i]);
}

/* Offset of mailbox I's relay_len in an invite with mailboxes whose relays are RELAYS. */
static size_t relay_len_at(const struct invite *inv, int i)
{
	size_t off = INVITE_HEADER_LEN + 1;
	for (int j = 0; j < i; j++)
		off += MAILBOX_ENTRY_FIXED + strlen(inv->mailboxes.box[j].relay);
	return off + 24 + 32;
}

static void test_invite(void **state)
{
	struct invite inv, got;
	uint8_t want[INVITE_MAX_LEN], out[INVITE_MAX_LEN + 1];
	size_t wlen, olen;
	load_invite(&inv);
	struct identity id;
	identity_from("e2e/invite", "identity_seed", &id);
	assert_memory_equal(id.pk, inv.identity, 32);
	wlen = mdvec_hex("e2e/invite", "invite", want, sizeof(want));
	assert_int_equal(invite_encode(&inv, out, sizeof(out), &olen), 0);
	assert_int_equal(olen, wlen);
	assert_memory_equal(out, want, wlen);
	assert_int_equal(invite_parse(want, wlen, &got), 0);
	assert_memory_equal(&got, &inv, sizeof(inv));

	/* Every truncation, a trailing byte, a wrong version (1 is the old one-relay form). */
	for (size_t cut = 0; cut < wlen; cut++)
		assert_int_equal(invite_parse(want, cut, &got), CAIRN_EINVAL);
	memcpy(out, want, wlen);
	out[wlen] = 0;
	assert_int_equal(invite_parse(out, wlen + 1, &got), CAIRN_EINVAL);
	assert_true(sodium_is_zero((const uint8_t *)&got, sizeof(got)));
	out[0] = 1;
	assert_int_equal(invite_parse(out, wlen, &got), CAIRN_EINVAL);
	out[0] = 3;
	assert_int_equal(invite_parse(out, wlen, &got), CAIRN_EINVAL);
	/* A count that disagrees with the mailboxes present: 0, 1 (trailing bytes), 3, 5, 255. */
	const uint8_t counts[] = {0, 1, 3, 5, 255};
	for (size_t i = 0; i < sizeof(counts); i++) {
		memcpy(out, want, wlen);
		out[INVITE_HEADER_LEN] = counts[i];
		assert_int_equal(invite_parse(out, wlen, &got), CAIRN_EINVAL);
		assert_true(sodium_is_zero((const uint8_t *)&got, sizeof(got)));
	}
	/* relay_len that disagrees with the bytes present, zero, or over 320. */
	for (int i = 0; i < 2; i++) {
		size_t at = relay_len_at(&inv, i);
		memcpy(out, want, wlen);
		out[at + 1]++;
		assert_int_equal(invite_parse(out, wlen, &got), CAIRN_EINVAL);
		out[at + 1] -= 2;
		assert_int_equal(invite_parse(out, wlen, &got), CAIRN_EINVAL);
		out[at] = out[at + 1] = 0;
		assert_int_equal(invite_parse(out, wlen, &got), CAIRN_EINVAL);
		out[at] = 0x01;
		out[at + 1] = 0x41; /* 321 */
		assert_int_equal(invite_parse(out, wlen, &got), CAIRN_EINVAL);
	}
	/* A NUL in either relay text, or text that is no address. */
	for (int i = 0; i < 2; i++) {
		size_t text = relay_len_at(&inv, i) + 2;
		memcpy(out, want, wlen);
		out[text + 20] = 0;
		assert_int_equal(invite_parse(out, wlen, &got), CAIRN_EADDRESS);
		memcpy(out, want, wlen);
		out[text] = 'C'; /* "Cairn://" */
		assert_int_equal(invite_parse(out, wlen, &got), CAIRN_EADDRESS);
		assert_true(sodium_is_zero((const uint8_t *)&got, sizeof(got)));
	}
	/* Structure is checked before any address: a bad second length beats a bad first text. */
	memcpy(out, want, wlen);
	out[relay_len_at(&inv, 0) + 2] = 'C';
	out[relay_len_at(&inv, 1) + 1] ^= 1;
	assert_int_equal(invite_parse(out, wlen, &got), CAIRN_EINVAL);
	/* An identity key that is not a usable point (the small-order identity element). */
	memcpy(out, want, wlen);
	memset(out + 1, 0, 32);
	out[1] = 1;
	assert_int_equal(invite_parse(out, wlen, &got), CAIRN_EINVAL);
	got = inv;
	memcpy(got.identity, out + 1, 32);
	assert_int_equal(invite_encode(&got, out, sizeof(out), &olen), CAIRN_EINVAL);
	/* Encoding checks the relay text and the buffer. */
	got = inv;
	got.mailboxes.box[1].relay[0] = 'x';
	assert_int_equal(invite_encode(&got, out, sizeof(out), &olen), CAIRN_EADDRESS);
	assert_int_equal(invite_encode(&inv, out, wlen - 1, &olen), CAIRN_ENOBUFS);
	got = inv;
	got.mailboxes.count = 0;
	assert_int_equal(invite_encode(&got, out, sizeof(out), &olen), CAIRN_EINVAL);
}

/* One mailbox list of COUNT entries on distinct relays (keys 1, 2, ...), all valid. */
static void make_list(struct mailbox_list *l, int count)
{
	memset(l, 0, sizeof(*l));
	l->count = (uint8_t)count;
	for (int i = 0; i < count; i++) {
		struct cairn_address a = {.host_type = CAIRN_HOST_NAME,
		                          .port = (uint16_t)(7000 + i)};
		memset(a.key, i + 1, sizeof(a.key));
		snprintf(a.host, sizeof(a.host), "relay%d.example.org", i);
		assert_int_equal(cairn_address_format(&a, l->box[i].relay, sizeof(l->box[i].relay)),
		                 0);
		memset(l->box[i].sender_id, 0x10 + i, 24);
		memset(l->box[i].credential, 0x20 + i, 32);
	}
}

/* The mailbox list on its own: the limit of four, duplicate relays, the longest list. */
static void test_mailbox_list(void **state)
{
	struct mailbox_list l, got;
	uint8_t out[MAILBOX_LIST_MAX + 400];
	size_t len;
	for (int n = 1; n <= CAIRN_MAILBOXES_MAX; n++) {
		make_list(&l, n);
		assert_int_equal(mailbox_list_encode(&l, out, sizeof(out), &len), 0);
		assert_int_equal(out[0], n);
		assert_int_equal(mailbox_list_parse(out, len, &got), 0);
		assert_memory_equal(&got, &l, sizeof(l));
	}
	/* Five mailboxes: a fifth well-formed entry appended and the count raised. */
	make_list(&l, 4);
	assert_int_equal(mailbox_list_encode(&l, out, sizeof(out), &len), 0);
	size_t first = MAILBOX_ENTRY_FIXED + strlen(l.box[0].relay);
	memcpy(out + len, out + 1, first);
	memset(out + len, 0x99, 24);              /* another sender id */
	out[len + 58 + strlen("cairn://")] = 'B'; /* another key */
	out[0] = 5;
	assert_int_equal(mailbox_list_parse(out, len + first, &got), CAIRN_EINVAL);
	assert_true(sodium_is_zero((const uint8_t *)&got, sizeof(got)));
	out[0] = 4;
	assert_int_equal(mailbox_list_parse(out, len + first, &got), CAIRN_EINVAL); /* trailing */
	l.count = 5;
	assert_int_equal(mailbox_list_encode(&l, out, sizeof(out), &len), CAIRN_EINVAL);

	/* The same relay twice: the same text, or the same key under another host name. */
	make_list(&l, 3);
	strcpy(l.box[2].relay, l.box[0].relay);
	assert_int_equal(mailbox_list_encode(&l, out, sizeof(out), &len), CAIRN_EINVAL);
	make_list(&l, 2);
	struct cairn_address a;
	assert_int_equal(cairn_address_parse(l.box[0].relay, &a), 0);
	strcpy(a.host, "127.0.0.1");
	a.host_type = CAIRN_HOST_IPV4;
	assert_int_equal(cairn_address_format(&a, l.box[1].relay, sizeof(l.box[1].relay)), 0);
	assert_int_equal(mailbox_list_encode(&l, out, sizeof(out), &len), CAIRN_EINVAL);
	/* ... which the parser refuses too, from bytes an encoder would not write. */
	make_list(&l, 2);
	assert_int_equal(mailbox_list_encode(&l, out, sizeof(out), &len), 0);
	size_t key2 = 1 + MAILBOX_ENTRY_FIXED + strlen(l.box[0].relay) + 58 + strlen("cairn://");
	memcpy(out + key2, out + 1 + 58 + strlen("cairn://"), 43);
	assert_int_equal(mailbox_list_parse(out, len, &got), CAIRN_EINVAL);
	assert_true(sodium_is_zero((const uint8_t *)&got, sizeof(got)));

	/* The longest list a valid address allows: four 311-byte addresses (a 253-byte host
	 * name and a five-digit port; 320 is the parser's bound). */
	for (int i = 0; i < 4; i++) {
		struct cairn_address b = {.host_type = CAIRN_HOST_NAME, .port = 65535};
		memset(b.key, 0x40 + i, sizeof(b.key));
		char host[254];
		memset(host, 'a' + i, 253);
		host[253] = '\0';
		for (int j = 63; j < 253; j += 64)
			host[j] = '.';
		strcpy(b.host, host);
		assert_int_equal(cairn_address_format(&b, l.box[i].relay, sizeof(l.box[i].relay)),
		                 0);
		assert_int_equal(strlen(l.box[i].relay), 311);
	}
	l.count = 4;
	const size_t longest = 1 + 4 * (MAILBOX_ENTRY_FIXED + 311);
	assert_int_equal(mailbox_list_encode(&l, out, sizeof(out), &len), 0);
	assert_int_equal(len, longest);
	assert_true(len <= MAILBOX_LIST_MAX);
	assert_int_equal(mailbox_list_parse(out, len, &got), 0);
	assert_int_equal(mailbox_list_encode(&l, out, longest - 1, &len), CAIRN_ENOBUFS);
	/* In an invite it makes the longest invite. */
	struct invite inv, back;
	load_invite(&inv);
	inv.mailboxes = l;
	uint8_t bin[INVITE_MAX_LEN];
	assert_int_equal(invite_encode(&inv, bin, sizeof(bin), &len), 0);
	assert_int_equal(len, INVITE_HEADER_LEN + longest);
	assert_int_equal(invite_parse(bin, len, &back), 0);
	assert_memory_equal(&back, &inv, sizeof(inv));
}

/* Recomputes 8.3 and the first KDF_RK/KDF_CK of 8.4 from the formulas and checks them. */
static void check_first_intermediates(const struct identity *ii, const struct identity *ia,
                                      const uint8_t opk[32])
{
	const char *V = "e2e/first";
	uint8_t opk_priv[32], ek[32], rpriv[32], ax[32], ix[32], ikm[128], okm[96], v[96];
	uint8_t sh[32], rko[96], mk[32];
	static const uint8_t one = 1;
	assert_int_equal(mdvec_hex("e2e/invite", "onetime_private", opk_priv, 32), 32);
	assert_int_equal(mdvec_hex(V, "ephemeral_private", ek, 32), 32);
	assert_int_equal(mdvec_hex(V, "ratchet_private", rpriv, 32), 32);
	assert_int_equal(crypto_sign_ed25519_sk_to_curve25519(ax, ia->sk), 0);
	assert_int_equal(crypto_sign_ed25519_pk_to_curve25519(ix, ii->pk), 0);
	memset(ikm, 0xff, 32);
	assert_int_equal(crypto_scalarmult(ikm + 32, ax, opk), 0);
	assert_int_equal(crypto_scalarmult(ikm + 64, ek, ix), 0);
	assert_int_equal(crypto_scalarmult(ikm + 96, ek, opk), 0);
	const char *names[3] = {"dh1", "dh2", "dh3"};
	for (int i = 0; i < 3; i++) {
		assert_int_equal(mdvec_hex(V, names[i], v, 32), 32);
		assert_memory_equal(v, ikm + 32 * (i + 1), 32);
	}
	assert_int_equal(
	    kdf_hkdf_sha256(okm, 96, NULL, 0, ikm, 128, (const uint8_t *)"cairn/1 x3dh", 12), 0);
	assert_int_equal(mdvec_hex(V, "root_key", v, 32), 32);
	assert_memory_equal(v, okm, 32);
	assert_int_equal(mdvec_hex(V, "hka", v, 32), 32);
	assert_memory_equal(v, okm + 32, 32);
	assert_int_equal(mdvec_hex(V, "nhkb", v, 32), 32);
	assert_memory_equal(v, okm + 64, 32);
	assert_int_equal(crypto_scalarmult(sh, rpriv, opk), 0);
	assert_int_equal(
	    kdf_hkdf_sha256(rko, 96, okm, 32, sh, 32, (const uint8_t *)"cairn/1 ratchet", 15), 0);
	assert_int_equal(mdvec_hex(V, "root_key_1", v, 32), 32);
	assert_memory_equal(v, rko, 32);
	assert_int_equal(mdvec_hex(V, "chain_key_1", v, 32), 32);
	assert_memory_equal(v, rko + 32, 32);
	assert_int_equal(mdvec_hex(V, "nhks_1", v, 32), 32);
	assert_memory_equal(v, rko + 64, 32);
	kdf_hmac_sha256(rko + 32, 32, &one, 1, NULL, 0, mk);
	assert_int_equal(mdvec_hex(V, "message_key_1", v, 32), 32);
	assert_memory_equal(v, mk, 32);

	/* The envelope's header opens under HKa with AD || EAD = IKa || IKi || 0x01 || prefix and
	 * the nonce from mk; the body under AD || EAD || header nonce || encrypted header. */
	uint8_t env[CAIRN_ENVELOPE_MAX], keys[80], ad[64 + 113 + 80], header[40], want[40];
	uint8_t body[CAIRN_ENVELOPE_MAX];
	size_t elen = mdvec_hex(V, "envelope", env, sizeof(env));
	assert_int_equal(elen, 896);
	assert_int_equal(
	    kdf_hkdf_sha256(keys, 80, NULL, 0, mk, 32, (const uint8_t *)"cairn/1 message keys", 20),
	    0);
	const uint8_t *rm = env + 1 + X3DH_PREFIX_LEN;
	assert_memory_equal(rm, keys + 56, 24);
	memcpy(ad, ia->pk, 32);
	memcpy(ad + 32, ii->pk, 32);
	memcpy(ad + 64, env, 113);
	memcpy(ad + 64 + 113, rm, 80);
	assert_int_equal(crypto_aead_xchacha20poly1305_ietf_decrypt(header, NULL, NULL, rm + 24, 56,
	                                                            ad, 64 + 113, rm, okm + 32),
	                 0);
	crypto_scalarmult_base(want, rpriv);
	memset(want + 32, 0, 8); /* pn = 0, n = 0 */
	assert_memory_equal(header, want, 40);
	/* Without EAD (the rule before the type byte and prefix were bound) it does not open. */
	assert_int_not_equal(crypto_aead_xchacha20poly1305_ietf_decrypt(header, NULL, NULL, rm + 24,
	                                                                56, ad, 64, rm, okm + 32),
	                     0);
	const size_t blen = elen - 1 - X3DH_PREFIX_LEN - 80;
	assert_int_equal(crypto_aead_xchacha20poly1305_ietf_decrypt(
	                     body, NULL, NULL, rm + 80, blen, ad, sizeof(ad), keys + 32, keys),
	                 0);
	/* content_len || reply_len || reply || message, then zeros. */
	uint8_t reply[E2E_REPLY_MAX];
	size_t rlen = mdvec_hex(V, "reply", reply, sizeof(reply));
	const char *m = mdvec_str(V, "message");
	size_t mlen = strlen(m);
	assert_int_equal(((size_t)body[0] << 8) | body[1], 2 + rlen + mlen);
	assert_int_equal(((size_t)body[2] << 8) | body[3], rlen);
	assert_memory_equal(body + 4, reply, rlen);
	assert_memory_equal(body + 4 + rlen, m, mlen);
	assert_true(sodium_is_zero(body + 4 + rlen + mlen, blen - 16 - 4 - rlen - mlen));
}

static void test_vectors(void **state)
{
	struct identity ii, ia;
	struct invite inv;
	struct script s;
	struct x3dh_onetime otk;
	identity_from("e2e/invite", "identity_seed", &ii);
	identity_from("e2e/first", "accepter_identity_seed", &ia);
	uint8_t v[64];
	assert_int_equal(mdvec_hex("e2e/first", "accepter_identity", v, 32), 32);
	assert_memory_equal(v, ia.pk, 32);
	load_invite(&inv);
	struct e2e_rng rng = script_rng(&s, "e2e/invite", "onetime_private", NULL, NULL);
	x3dh_onetime_generate(&otk, &rng);
	assert_memory_equal(otk.pub, inv.onetime, 32);
	check_first_intermediates(&ii, &ia, otk.pub);

	/* Accepter: prefix and first envelope. */
	uint8_t prefix[X3DH_PREFIX_LEN], want[CAIRN_ENVELOPE_MAX], env[CAIRN_ENVELOPE_MAX];
	uint8_t reply[E2E_REPLY_MAX], buf[CAIRN_ENVELOPE_MAX], peer[32];
	size_t wlen, elen;
	struct ratchet *a = NULL, *i = NULL;
	rng = script_rng(&s, "e2e/first", "ephemeral_private", "e2e/first", "ratchet_private");
	assert_int_equal(x3dh_initiate(inv.identity, inv.onetime, ia.sk, &rng, prefix, &a), 0);
	assert_int_equal(mdvec_hex("e2e/first", "prefix", want, sizeof(want)), X3DH_PREFIX_LEN);
	assert_memory_equal(prefix, want, X3DH_PREFIX_LEN);
	size_t rlen = mdvec_hex("e2e/first", "reply", reply, sizeof(reply));
	char m1[64];
	snprintf(m1, sizeof(m1), "%s", mdvec_str("e2e/first", "message"));
	assert_int_equal(e2e_seal_first(a, prefix, reply, rlen, (const uint8_t *)m1, strlen(m1),
	                                env, sizeof(env), &elen),
	                 0);
	wlen = mdvec_hex("e2e/first", "envelope", want, sizeof(want));
	assert_int_equal(elen, wlen);
	assert_memory_equal(env, want, wlen);

	/* Inviter opens it, learns the accepter's identity and reply, spends the one-time key. */
	struct e2e_opened o;
	uint8_t opk[32];
	assert_int_equal(e2e_first_onetime(env, elen, opk), 0);
	assert_memory_equal(opk, otk.pub, 32);
	rng = script_rng(&s, "e2e/reply", "ratchet_private", NULL, NULL);
	assert_int_equal(
	    e2e_open_first(ii.sk, &otk, env, elen, buf, sizeof(buf), &o, peer, &i, &rng), 0);
	assert_memory_equal(peer, ia.pk, 32);
	assert_true(otk.used);
	assert_true(sodium_is_zero(otk.priv, 32));
	assert_int_equal(o.type, E2E_TYPE_FIRST);
	assert_int_equal(o.reply_len, rlen);
	assert_memory_equal(o.reply, reply, rlen);
	assert_int_equal(o.message_len, strlen(m1));
	assert_memory_equal(o.message, m1, strlen(m1));

	/* The reply, and the accepter's third message. */
	const char *m2 = mdvec_str("e2e/reply", "message");
	char m2c[64];
	snprintf(m2c, sizeof(m2c), "%s", m2);
	assert_int_equal(e2e_seal(i, (const uint8_t *)m2c, strlen(m2c), env, sizeof(env), &elen),
	                 0);
	wlen = mdvec_hex("e2e/reply", "envelope", want, sizeof(want));
	assert_int_equal(elen, wlen);
	assert_memory_equal(env, want, wlen);
	rng = script_rng(&s, "e2e/third", "ratchet_private", NULL, NULL);
	assert_int_equal(e2e_open(a, env, elen, buf, sizeof(buf), &o, &rng), 0);
	assert_int_equal(o.type, E2E_TYPE_MESSAGE);
	assert_null(o.reply);
	assert_int_equal(o.message_len, strlen(m2c));
	assert_memory_equal(o.message, m2c, o.message_len);
	const char *m3 = mdvec_str("e2e/third", "message");
	char m3c[64];
	snprintf(m3c, sizeof(m3c), "%s", m3);
	assert_int_equal(e2e_seal(a, (const uint8_t *)m3c, strlen(m3c), env, sizeof(env), &elen),
	                 0);
	wlen = mdvec_hex("e2e/third", "envelope", want, sizeof(want));
	assert_int_equal(elen, wlen);
	assert_memory_equal(env, want, wlen);
	assert_int_equal(e2e_open(i, env, elen, buf, sizeof(buf), &o, NULL), 0);
	assert_memory_equal(o.message, m3c, strlen(m3c));
	ratchet_free(a);
	ratchet_free(i);
}

/* A fresh inviter (identity + one-time key) and accepter, with system randomness. */
struct setup {
	struct identity ii, ia;
	struct x3dh_onetime otk;
	uint8_t prefix[X3DH_PREFIX_LEN];
	struct ratchet *a;
};

static void setup_new(struct setup *s)
{
	crypto_sign_keypair(s->ii.pk, s->ii.sk);
	crypto_sign_keypair(s->ia.pk, s->ia.sk);
	x3dh_onetime_generate(&s->otk, NULL);
	assert_int_equal(x3dh_initiate(s->ii.pk, s->otk.pub, s->ia.sk, NULL, s->prefix, &s->a), 0);
}

static size_t first(struct setup *s, const char *text, uint8_t env[static CAIRN_ENVELOPE_MAX])
{
	size_t n;
	assert_int_equal(e2e_seal_first(s->a, s->prefix, (const uint8_t *)"rp", 2,
	                                (const uint8_t *)text, strlen(text), env,
	                                CAIRN_ENVELOPE_MAX, &n),
	                 0);
	return n;
}

static void test_onetime_used_once(void **state)
{
	struct setup s;
	setup_new(&s);
	uint8_t e1[CAIRN_ENVELOPE_MAX], e2[CAIRN_ENVELOPE_MAX], buf[CAIRN_ENVELOPE_MAX], peer[32];
	size_t l1 = first(&s, "one", e1), l2 = first(&s, "two", e2);
	struct e2e_opened o;
	struct ratchet *i = NULL;

	/* A forged first message does not spend the key. */
	uint8_t forged[CAIRN_ENVELOPE_MAX];
	memcpy(forged, e1, l1);
	forged[1 + 64 + 3] ^= 1; /* inside the identity box */
	assert_int_equal(
	    e2e_open_first(s.ii.sk, &s.otk, forged, l1, buf, sizeof(buf), &o, peer, &i, NULL),
	    CAIRN_EAUTH);
	assert_null(i);
	assert_false(s.otk.used);
	assert_true(sodium_is_zero(peer, 32));

	/* Message two arrives first (one was lost or delayed): it establishes the session. */
	assert_int_equal(
	    e2e_open_first(s.ii.sk, &s.otk, e2, l2, buf, sizeof(buf), &o, peer, &i, NULL), 0);
	assert_true(s.otk.used);
	assert_memory_equal(o.message, "two", 3);
	/* The key is spent: any first message naming it is refused... */
	struct ratchet *i2 = NULL;
	assert_int_equal(
	    e2e_open_first(s.ii.sk, &s.otk, e1, l1, buf, sizeof(buf), &o, peer, &i2, NULL),
	    CAIRN_EREPLAY);
	assert_null(i2);
	/* ...including another accepter's (the invite leaked): reuse is detected. */
	struct setup t = s;
	crypto_sign_keypair(t.ia.pk, t.ia.sk);
	assert_int_equal(x3dh_initiate(s.ii.pk, s.otk.pub, t.ia.sk, NULL, t.prefix, &t.a), 0);
	uint8_t e3[CAIRN_ENVELOPE_MAX];
	size_t l3 = first(&t, "mallory", e3);
	assert_int_equal(e2e_first_onetime(e3, l3, peer), 0);
	assert_memory_equal(peer, s.otk.pub, 32);
	assert_int_equal(
	    e2e_open_first(s.ii.sk, &s.otk, e3, l3, buf, sizeof(buf), &o, peer, &i2, NULL),
	    CAIRN_EREPLAY);
	/* With the existing session, the delayed first message opens (prefix skipped). */
	assert_int_equal(e2e_open(i, e1, l1, buf, sizeof(buf), &o, NULL), 0);
	assert_int_equal(o.type, E2E_TYPE_FIRST);
	assert_int_equal(o.reply_len, 2);
	assert_memory_equal(o.reply, "rp", 2);
	assert_memory_equal(o.message, "one", 3);
	/* A replay of it is dropped. */
	assert_int_equal(e2e_open(i, e1, l1, buf, sizeof(buf), &o, NULL), CAIRN_EREPLAY);
	assert_null(o.message);
	ratchet_free(t.a);
	ratchet_free(s.a);
	ratchet_free(i);
}

/* Serialized session, for "unchanged" checks (heap: up to 136 KiB). */
static uint8_t *session_snap(const struct ratchet *r, size_t *len)
{
	uint8_t *b = malloc(RATCHET_STATE_MAX);
	assert_non_null(b);
	assert_int_equal(ratchet_serialize(r, b, RATCHET_STATE_MAX, len), 0);
	return b;
}

/*
 * Opening ENV with R must fail with CAIRN_EAUTH, hand back nothing and leave R byte for byte
 * as it was.
 */
static void open_refused(struct ratchet *r, const uint8_t *env, size_t len)
{
	size_t before_len, after_len;
	uint8_t *before = session_snap(r, &before_len);
	uint8_t *buf = malloc(CAIRN_ENVELOPE_MAX);
	assert_non_null(buf);
	struct e2e_opened o;
	int rc = e2e_open(r, env, len, buf, CAIRN_ENVELOPE_MAX, &o, NULL);
	if (rc == 0) {
		/* Say what the forgery turned into, for the failure report. */
		char hex[2 * 16 + 1] = "";
		for (size_t k = 0; k < o.message_len && k < 16; k++)
			snprintf(hex + 2 * k, 3, "%02x", o.message[k]);
		print_message("opened as type %d: reply_len %zu, message %zu bytes: %s\n", o.type,
		              o.reply_len, o.message_len, hex);
	}
	assert_int_equal(rc, CAIRN_EAUTH);
	assert_null(o.message);
	assert_null(o.reply);
	uint8_t *after = session_snap(r, &after_len);
	assert_int_equal(before_len, after_len);
	assert_memory_equal(before, after, before_len);
	free(before);
	free(after);
	free(buf);
}

/* Accepter and inviter with a session each: the inviter has opened the first message. */
static struct ratchet *establish(struct setup *s)
{
	uint8_t env[CAIRN_ENVELOPE_MAX], buf[CAIRN_ENVELOPE_MAX], peer[32];
	struct e2e_opened o;
	struct ratchet *i = NULL;
	size_t len = first(s, "one", env);
	assert_int_equal(
	    e2e_open_first(s->ii.sk, &s->otk, env, len, buf, sizeof(buf), &o, peer, &i, NULL), 0);
	return i;
}

/*
 * The type byte and the prefix are bound (section 8.6): a first message rewritten as an
 * ordinary one (0x02 || ratchet message) must not open, or the reply (the accepter's mailboxes
 * and credentials) would be read as the application message.
 */
static void test_type_first_as_message(void **state)
{
	struct setup s;
	setup_new(&s);
	struct ratchet *i = establish(&s);
	uint8_t env[CAIRN_ENVELOPE_MAX], forged[CAIRN_ENVELOPE_MAX], buf[CAIRN_ENVELOPE_MAX];
	size_t len = first(&s, "two", env);
	forged[0] = E2E_TYPE_MESSAGE;
	memcpy(forged + 1, env + 1 + X3DH_PREFIX_LEN, len - 1 - X3DH_PREFIX_LEN);
	open_refused(i, forged, len - X3DH_PREFIX_LEN);
	/* The genuine envelope still opens: the forgery consumed nothing. */
	struct e2e_opened o;
	assert_int_equal(e2e_open(i, env, len, buf, sizeof(buf), &o, NULL), 0);
	assert_int_equal(o.type, E2E_TYPE_FIRST);
	assert_memory_equal(o.reply, "rp", 2);
	assert_int_equal(o.message_len, 3);
	assert_memory_equal(o.message, "two", 3);
	ratchet_free(s.a);
	ratchet_free(i);
}

/*
 * The other way: an ordinary message given a prefix and type 1 must not open, whatever the
 * prefix (the session's own, or any other bytes).
 */
static void test_type_message_as_first(void **state)
{
	struct setup s;
	setup_new(&s);
	struct ratchet *i = establish(&s);
	uint8_t env[CAIRN_ENVELOPE_MAX], forged[CAIRN_ENVELOPE_MAX], buf[CAIRN_ENVELOPE_MAX];
	struct e2e_opened o;
	size_t len;
	/* Content that would parse as a reply "abc" and a message "xyz". */
	static const uint8_t msg[] = {0, 3, 'a', 'b', 'c', 'x', 'y', 'z'};

	/* The inviter's answer to the accepter, and the accepter's next message to the inviter. */
	struct ratchet *from[2] = {i, s.a}, *to[2] = {s.a, i};
	for (int k = 0; k < 2; k++) {
		assert_int_equal(e2e_seal(from[k], msg, sizeof(msg), env, sizeof(env), &len), 0);
		assert_true(len + X3DH_PREFIX_LEN <= sizeof(forged));
		forged[0] = E2E_TYPE_FIRST;
		memcpy(forged + 1 + X3DH_PREFIX_LEN, env + 1, len - 1);
		memcpy(forged + 1, s.prefix, X3DH_PREFIX_LEN);
		open_refused(to[k], forged, len + X3DH_PREFIX_LEN);
		randombytes_buf(forged + 1, X3DH_PREFIX_LEN);
		open_refused(to[k], forged, len + X3DH_PREFIX_LEN);
		memset(forged + 1, 0, X3DH_PREFIX_LEN);
		open_refused(to[k], forged, len + X3DH_PREFIX_LEN);
		assert_int_equal(e2e_open(to[k], env, len, buf, sizeof(buf), &o, NULL), 0);
		assert_int_equal(o.type, E2E_TYPE_MESSAGE);
		assert_int_equal(o.message_len, sizeof(msg));
		assert_memory_equal(o.message, msg, sizeof(msg));
	}
	ratchet_free(s.a);
	ratchet_free(i);
}

/*
 * A first message to an inviter that already has the session skips the X3DH step, but its
 * prefix is still bound: one flipped bit anywhere in it (ephemeral key, one-time key, identity
 * box) and the envelope does not open.
 */
static void test_prefix_bound_with_session(void **state)
{
	struct setup s;
	setup_new(&s);
	struct ratchet *i = establish(&s);
	uint8_t env[CAIRN_ENVELOPE_MAX], buf[CAIRN_ENVELOPE_MAX];
	size_t len = first(&s, "two", env);
	static const size_t at[] = {1, 1 + 31, 1 + 32, 1 + 63, 1 + 64, 1 + X3DH_PREFIX_LEN - 1};
	for (size_t k = 0; k < sizeof(at) / sizeof(at[0]); k++) {
		env[at[k]] ^= 0x01;
		open_refused(i, env, len);
		env[at[k]] ^= 0x01;
	}
	struct e2e_opened o;
	assert_int_equal(e2e_open(i, env, len, buf, sizeof(buf), &o, NULL), 0);
	assert_memory_equal(o.message, "two", 3);
	ratchet_free(s.a);
	ratchet_free(i);
}

static void test_wrong_identity(void **state)
{
	struct setup s;
	setup_new(&s);
	uint8_t env[CAIRN_ENVELOPE_MAX], buf[CAIRN_ENVELOPE_MAX], peer[32];
	size_t len = first(&s, "hi", env);
	struct e2e_opened o;
	struct ratchet *i = NULL;

	/* Another inviter identity cannot open it. */
	struct identity other;
	crypto_sign_keypair(other.pk, other.sk);
	assert_int_equal(
	    e2e_open_first(other.sk, &s.otk, env, len, buf, sizeof(buf), &o, peer, &i, NULL),
	    CAIRN_EAUTH);

	/* Mallory claims to be the accepter: she knows its public key but not its private key.
	 * She runs X3DH as herself, then re-seals the identity box with the victim's key (she
	 * knows box_key: it needs only her ephemeral key). The inviter then derives DH1 with the
	 * victim's key, gets another SK, and the ratchet message does not decrypt. */
	struct identity mal;
	crypto_sign_keypair(mal.pk, mal.sk);
	uint8_t ek[32], rk[32], ix[32], ikm[96], key[32], ad[96];
	randombytes_buf(ek, 32);
	randombytes_buf(rk, 32);
	struct script sc = {{{0}}, 2, 0};
	memcpy(sc.keys[0], ek, 32);
	memcpy(sc.keys[1], rk, 32);
	struct e2e_rng rng = {script_fill, &sc};
	struct ratchet *m = NULL;
	uint8_t mprefix[X3DH_PREFIX_LEN];
	assert_int_equal(x3dh_initiate(s.ii.pk, s.otk.pub, mal.sk, &rng, mprefix, &m), 0);
	assert_int_equal(crypto_sign_ed25519_pk_to_curve25519(ix, s.ii.pk), 0);
	memset(ikm, 0xff, 32);
	assert_int_equal(crypto_scalarmult(ikm + 32, ek, ix), 0);
	assert_int_equal(crypto_scalarmult(ikm + 64, ek, s.otk.pub), 0);
	assert_int_equal(kdf_hkdf_sha256(key, 32, NULL, 0, ikm, 96,
	                                 (const uint8_t *)"cairn/1 x3dh identity", 21),
	                 0);
	memcpy(ad, mprefix, 64);
	memcpy(ad + 64, s.ii.pk, 32);
	static const uint8_t zero_nonce[24];
	/* Sanity: her own box opens with the recomputed key. */
	assert_int_equal(crypto_aead_xchacha20poly1305_ietf_decrypt(peer, NULL, NULL, mprefix + 64,
	                                                            48, ad, 96, zero_nonce, key),
	                 0);
	assert_memory_equal(peer, mal.pk, 32);
	crypto_aead_xchacha20poly1305_ietf_encrypt(mprefix + 64, NULL, s.ia.pk, 32, ad, 96, NULL,
	                                           zero_nonce, key);
	size_t mlen;
	assert_int_equal(e2e_seal_first(m, mprefix, NULL, 0, (const uint8_t *)"it's me", 7, env,
	                                sizeof(env), &mlen),
	                 0);
	assert_int_equal(
	    e2e_open_first(s.ii.sk, &s.otk, env, mlen, buf, sizeof(buf), &o, peer, &i, NULL),
	    CAIRN_EAUTH);
	assert_null(i);
	assert_false(s.otk.used);
	ratchet_free(m);
	ratchet_free(s.a);
}

static void test_padding(void **state)
{
	static const size_t sizes[] = {896, 3968, 16384};
	struct setup s;
	setup_new(&s);
	uint8_t *msg = calloc(1, CAIRN_ENVELOPE_MAX), env[CAIRN_ENVELOPE_MAX];
	assert_non_null(msg);
	size_t n;
	/* Every envelope, first or not, is one of three sizes. */
	const size_t lens[] = {0, 1, 100, 683, 684, 685, 3000, 16173, E2E_MESSAGE_MAX};
	for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
		int rc = e2e_seal(s.a, msg, lens[k], env, sizeof(env), &n);
		assert_int_equal(rc, 0);
		assert_true(n == sizes[0] || n == sizes[1] || n == sizes[2]);
		if (lens[k] + 2 + 2 <= 16384 - E2E_FIRST_OVERHEAD) {
			assert_int_equal(e2e_seal_first(s.a, s.prefix, NULL, 0, msg, lens[k], env,
			                                sizeof(env), &n),
			                 0);
			assert_true(n == sizes[0] || n == sizes[1] || n == sizes[2]);
		}
	}
	assert_int_equal(pad_len(E2E_MESSAGE_OVERHEAD, 797), 896 - E2E_MESSAGE_OVERHEAD);
	assert_int_equal(pad_len(E2E_MESSAGE_OVERHEAD, 798), 3968 - E2E_MESSAGE_OVERHEAD);
	assert_int_equal(E2E_MESSAGE_MAX, 16285);
	assert_int_equal(e2e_seal(s.a, msg, E2E_MESSAGE_MAX + 1, env, sizeof(env), &n),
	                 CAIRN_ETOOBIG);
	assert_int_equal(e2e_seal(s.a, msg, 10, env, 895, &n), CAIRN_ENOBUFS);
	assert_int_equal(
	    e2e_seal_first(s.a, s.prefix, msg, E2E_REPLY_MAX + 1, msg, 1, env, sizeof(env), &n),
	    CAIRN_EINVAL);

	/* Decoding: zero padding only, a length that fits. */
	const uint8_t *c;
	size_t clen;
	uint8_t p[8] = {0, 3, 'a', 'b', 'c', 0, 0, 0};
	assert_int_equal(pad_decode(p, sizeof(p), &c, &clen), 0);
	assert_int_equal(clen, 3);
	assert_memory_equal(c, "abc", 3);
	assert_int_equal(pad_decode(p, 5, &c, &clen), 0);
	assert_int_equal(pad_decode(p, 4, &c, &clen), CAIRN_EPADDING);
	assert_int_equal(pad_decode(p, 1, &c, &clen), CAIRN_EPADDING);
	p[7] = 1;
	assert_int_equal(pad_decode(p, sizeof(p), &c, &clen), CAIRN_EPADDING);
	assert_null(c);
	assert_int_equal(clen, 0);
	/* Envelope types and lengths the parser refuses. */
	uint8_t opk[32];
	env[0] = 3;
	assert_int_equal(e2e_first_onetime(env, sizeof(env), opk), CAIRN_EINVAL);
	assert_true(sodium_is_zero(opk, 32));
	struct e2e_opened o;
	uint8_t buf[CAIRN_ENVELOPE_MAX];
	assert_int_equal(e2e_open(s.a, env, sizeof(env), buf, sizeof(buf), &o, NULL), CAIRN_EINVAL);
	env[0] = E2E_TYPE_MESSAGE;
	assert_int_equal(e2e_open(s.a, env, E2E_MESSAGE_OVERHEAD - 1, buf, sizeof(buf), &o, NULL),
	                 CAIRN_EINVAL);
	free(msg);
	ratchet_free(s.a);
}

static void test_safety_number(void **state)
{
	uint8_t a[32], b[32];
	char n1[SAFETY_TEXT_LEN], n2[SAFETY_TEXT_LEN];
	assert_int_equal(mdvec_hex("e2e/safety", "a", a, 32), 32);
	assert_int_equal(mdvec_hex("e2e/safety", "b", b, 32), 32);
	safety_number(a, b, n1);
	safety_number(b, a, n2);
	assert_string_equal(n1, mdvec_str("e2e/safety", "number"));
	assert_string_equal(n1, n2);
	assert_int_equal(strlen(n1), 71);
	b[0] ^= 1;
	safety_number(a, b, n2);
	assert_string_not_equal(n1, n2);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hkdf_rfc5869),
	    cmocka_unit_test(test_invite),
	    cmocka_unit_test(test_mailbox_list),
	    cmocka_unit_test(test_vectors),
	    cmocka_unit_test(test_onetime_used_once),
	    cmocka_unit_test(test_wrong_identity),
	    cmocka_unit_test(test_padding),
	    cmocka_unit_test(test_safety_number),
	    cmocka_unit_test(test_type_first_as_message),
	    cmocka_unit_test(test_type_message_as_first),
	    cmocka_unit_test(test_prefix_bound_with_session),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
