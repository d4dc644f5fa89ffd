/* SPDX-License-Identifier: MIT */
/*
 * The end-to-end layer's session setup and formats (docs/PROTOCOL.md section 8): HKDF, the
 * invite payload, the X3DH first message (vectors recomputed independently from the spec's
 * formulas), envelope payloads and padding, one-time key use, identity authentication and
 * safety numbers.
 *
 * This program has HKDF, the invite payload, mailbox lists and the X3DH vectors;
 * test_proto_e2e_session has one-time keys, type confusion, identities, padding and safety
 * numbers. What both use is proto_e2e_common.[ch].
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
#include "proto_e2e_common.h"

static struct e2e_rng script_rng(struct script *s, const char *v1, const char *k1, const char *v2,
                                 const char *k2)
{
	memset(s, 0, sizeof(*s));
	assert_int_equal(mdvec_hex(v1, k1, s->keys[s->n++], 32), 32);
	if (v2 != NULL)
		assert_int_equal(mdvec_hex(v2, k2, s->keys[s->n++], 32), 32);
	return (struct e2e_rng){script_fill, s};
}

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
	uint8_t opk_priv[32], ek[32], rpriv[32], ikm[128], okm[96], v[96];
	uint8_t sh[32], rko[96], mk[32];
	static const uint8_t one = 1;
	assert_int_equal(mdvec_hex("e2e/invite", "onetime_private", opk_priv, 32), 32);
	assert_int_equal(mdvec_hex(V, "ephemeral_private", ek, 32), 32);
	assert_int_equal(mdvec_hex(V, "ratchet_private", rpriv, 32), 32);
	x3dh_ikm_check(V, ii, ia, ek, opk, ikm);
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

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hkdf_rfc5869),
	    cmocka_unit_test(test_invite),
	    cmocka_unit_test(test_mailbox_list),
	    cmocka_unit_test(test_vectors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
