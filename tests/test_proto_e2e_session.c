/* SPDX-License-Identifier: MIT */
/*
 * The end-to-end layer (docs/PROTOCOL.md section 8), the second part of test_proto_e2e: one-time
 * key use, type bytes and prefixes bound to the session, identity authentication, envelope
 * padding and safety numbers, with system randomness.
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
	/* Type 3 (intake, PROTOCOL.md 10.4) has a type 1's layout: e2e_open reads it, and these
	 * bytes do not authenticate. A type no one defined is refused unread. */
	assert_int_equal(e2e_open(s.a, env, sizeof(env), buf, sizeof(buf), &o, NULL), CAIRN_EAUTH);
	env[0] = 4;
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
