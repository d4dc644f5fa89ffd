/* SPDX-License-Identifier: MIT */
/*
 * Intake addresses, prekey bundles and the type 3 first message (docs/PROTOCOL.md section 10):
 * the vectors of 10.9, every parse rule of 10.1 with its error, what a bundle reader refuses,
 * and the first message's life: sealing, opening by the owner, the answer, type confusion,
 * replays, and the prekey's private key staying out of the stored session.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "e2e.h"
#include "intake.h"
#include "invite.h"
#include "kdf.h"
#include "mdvec.h"
#include "proto_e2e_common.h"
#include "work.h"

#define CREATED 1767225600u
#define EXPIRES 1768435200u

static void identity_fill(uint8_t byte, struct identity *id)
{
	uint8_t seed[32];
	memset(seed, byte, sizeof(seed));
	crypto_sign_seed_keypair(id->pk, id->sk, seed);
}

/* The address of intake/address (10.9): owner 32 x 0x01, two points. */
static void address_of_vector(struct intake_address *a)
{
	struct identity owner;
	identity_fill(0x01, &owner);
	memset(a, 0, sizeof(*a));
	memcpy(a->identity, owner.pk, 32);
	a->count = 2;
	const char *relay[2] = {"address/ipv4", "address/onion"};
	for (int i = 0; i < 2; i++) {
		memset(a->point[i].sender_id, 0x41 + i, CAIRN_MAILBOX_ID_LEN);
		memset(a->point[i].log_id, 0x51 + i, CAIRN_LOG_ID_LEN);
		snprintf(a->point[i].relay, sizeof(a->point[i].relay), "%s",
		         mdvec_str(relay[i], "text"));
	}
}

static size_t encoded(const struct intake_address *a, uint8_t out[static INTAKE_MAX_LEN + 8])
{
	size_t n = 0;
	assert_int_equal(intake_encode(a, out, INTAKE_MAX_LEN, &n), 0);
	return n;
}

static void test_address_vector(void **state)
{
	struct intake_address a, b;
	uint8_t want[INTAKE_MAX_LEN], got[INTAKE_MAX_LEN + 8];
	address_of_vector(&a);
	size_t wlen = mdvec_hex("intake/address", "hex", want, sizeof(want));
	size_t n = encoded(&a, got);
	assert_int_equal(n, wlen);
	assert_memory_equal(got, want, wlen);

	/* The text form: the scheme, then base64url without padding. */
	char text[INTAKE_MAX_LEN * 2];
	strcpy(text, INTAKE_SCHEME);
	sodium_bin2base64(text + strlen(INTAKE_SCHEME), sizeof(text) - strlen(INTAKE_SCHEME), got,
	                  n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	assert_string_equal(text, mdvec_str("intake/address", "text"));

	assert_int_equal(intake_parse(want, wlen, &b), 0);
	assert_memory_equal(&a, &b, sizeof(a));

	/* The encoder's buffer is checked. */
	assert_int_equal(intake_encode(&a, got, wlen - 1, &n), CAIRN_ENOBUFS);
	assert_int_equal(n, 0);
}

/* Expects intake_parse to refuse IN with RC and to leave *out zeroed. */
static void refused(const uint8_t *in, size_t len, int rc)
{
	struct intake_address out, zero;
	memset(&out, 0xa5, sizeof(out));
	memset(&zero, 0, sizeof(zero));
	assert_int_equal(intake_parse(in, len, &out), rc);
	assert_memory_equal(&out, &zero, sizeof(out));
}

/* Offsets in a one-point encoding: version, identity, count, then the point. */
#define OFF_COUNT 33
#define OFF_RLEN  (34 + 48)
#define OFF_RELAY (OFF_RLEN + 2)

static const char relay_a[] = "cairn://AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@127.0.0.1:7443";
static const char relay_b[] = "cairn://AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE@10.0.0.2:7443";
/* relay_a's key under another host, as long as relay_b: the same relay as relay_a. */
static const char relay_a2[] = "cairn://AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@10.0.0.3:7443";

static void one_point(struct intake_address *a, const char *relay)
{
	struct identity owner;
	identity_fill(0x01, &owner);
	memset(a, 0, sizeof(*a));
	memcpy(a->identity, owner.pk, 32);
	a->count = 1;
	memset(a->point[0].sender_id, 0x41, CAIRN_MAILBOX_ID_LEN);
	memset(a->point[0].log_id, 0x51, CAIRN_LOG_ID_LEN);
	snprintf(a->point[0].relay, sizeof(a->point[0].relay), "%s", relay);
}

/* An identity key that 8.1's map rejects: the neutral element, a point of small order. */
static void bad_identity(uint8_t key[static 32])
{
	memset(key, 0, 32);
	key[0] = 1;
	assert_int_equal(identity_key_check(key), CAIRN_EINVAL);
}

static void test_address_parse_rules(void **state)
{
	struct intake_address a;
	uint8_t in[INTAKE_MAX_LEN + 8], big[INTAKE_MAX_LEN + 1];
	one_point(&a, relay_a);
	size_t n = encoded(&a, in);
	assert_int_equal(intake_parse(in, n, &a), 0);

	/* 1. Length under 85 or over 1514 (the rest valid as far as it goes). */
	refused(in, INTAKE_MIN_LEN - 1, CAIRN_EINVAL);
	memset(big, 0, sizeof(big));
	memcpy(big, in, n);
	refused(big, INTAKE_MAX_LEN + 1, CAIRN_EINVAL);
	/* 2. Version. */
	in[0] = 3;
	refused(in, n, CAIRN_EINVAL);
	in[0] = INTAKE_VERSION;
	/* 3. Count 0 or over 4. */
	in[OFF_COUNT] = 0;
	refused(in, n, CAIRN_EINVAL);
	in[OFF_COUNT] = 5;
	refused(in, n, CAIRN_EINVAL);
	/* 4. A point cut short: a second point promised, none there. */
	in[OFF_COUNT] = 2;
	refused(in, n, CAIRN_EINVAL);
	in[OFF_COUNT] = 1;
	/* 5. relay_len 0, over 320, past the end. */
	size_t rlen = strlen(relay_a);
	in[OFF_RLEN] = 0;
	in[OFF_RLEN + 1] = 0;
	refused(in, n, CAIRN_EINVAL);
	in[OFF_RLEN] = 321 >> 8;
	in[OFF_RLEN + 1] = 321 & 0xff;
	refused(in, n, CAIRN_EINVAL);
	in[OFF_RLEN] = 0;
	in[OFF_RLEN + 1] = (uint8_t)(rlen + 1);
	refused(in, n, CAIRN_EINVAL);
	in[OFF_RLEN + 1] = (uint8_t)rlen;
	/* 6. Bytes after the last point. */
	in[n] = 0;
	refused(in, n + 1, CAIRN_EINVAL);
	/* 7. Relay text with a NUL, or that is no address. */
	in[OFF_RELAY + 10] = 0;
	refused(in, n, CAIRN_EADDRESS);
	in[OFF_RELAY + 10] = relay_a[10];
	in[OFF_RELAY] = 'x';
	refused(in, n, CAIRN_EADDRESS);
	in[OFF_RELAY] = relay_a[0];
	assert_int_equal(intake_parse(in, n, &a), 0);
	/* 9. An identity key that does not map. */
	bad_identity(in + 1);
	refused(in, n, CAIRN_EINVAL);

	/* The order: structure first (trailing bytes before a bad relay text), relay text before
	 * the identity key. */
	in[OFF_RELAY] = 'x';
	refused(in, n + 1, CAIRN_EINVAL);
	refused(in, n, CAIRN_EADDRESS);

	/* 8. Two points on one relay: the same key under two host names. */
	struct intake_address two;
	one_point(&two, relay_a);
	two.count = 2;
	two.point[1] = two.point[0];
	snprintf(two.point[1].relay, sizeof(two.point[1].relay), "%s", relay_b);
	n = encoded(&two, in);
	assert_int_equal(intake_parse(in, n, &a), 0);
	assert_int_equal(a.count, 2);
	assert_string_equal(a.point[1].relay, relay_b);
	snprintf(two.point[1].relay, sizeof(two.point[1].relay), "%s", relay_a2);
	assert_int_equal(intake_encode(&two, in, sizeof(in), &n), CAIRN_EINVAL);
	/* The encoder refuses it: write relay_a2 over relay_b's text (same length) by hand. */
	snprintf(two.point[1].relay, sizeof(two.point[1].relay), "%s", relay_b);
	n = encoded(&two, in);
	size_t text2 = OFF_RELAY + strlen(relay_a) + 48 + 2;
	assert_int_equal(strlen(relay_a2), strlen(relay_b));
	memcpy(in + text2, relay_a2, strlen(relay_a2));
	refused(in, n, CAIRN_EINVAL);
	/* Relay texts are all checked before they are compared, NULs first. */
	in[text2] = 'x';
	refused(in, n, CAIRN_EADDRESS);
	in[text2] = 'c';
	in[OFF_RELAY + 5] = 0;
	refused(in, n, CAIRN_EADDRESS);
}

static void test_address_encode_refusals(void **state)
{
	struct intake_address a;
	uint8_t out[INTAKE_MAX_LEN];
	size_t n = 99;
	one_point(&a, relay_a);
	a.count = 0;
	assert_int_equal(intake_encode(&a, out, sizeof(out), &n), CAIRN_EINVAL);
	assert_int_equal(n, 0);
	a.count = INTAKE_POINTS_MAX + 1;
	assert_int_equal(intake_encode(&a, out, sizeof(out), &n), CAIRN_EINVAL);
	one_point(&a, "");
	assert_int_equal(intake_encode(&a, out, sizeof(out), &n), CAIRN_EADDRESS);
	one_point(&a, "cairn://nope@127.0.0.1:1");
	assert_int_equal(intake_encode(&a, out, sizeof(out), &n), CAIRN_EADDRESS);
	one_point(&a, relay_a);
	bad_identity(a.identity);
	assert_int_equal(intake_encode(&a, out, sizeof(out), &n), CAIRN_EINVAL);

	/* Four points on long host names, parsed back. */
	char label[61];
	memset(label, 'a', 60);
	label[60] = '\0';
	one_point(&a, relay_a);
	a.count = INTAKE_POINTS_MAX;
	for (int i = 0; i < INTAKE_POINTS_MAX; i++) {
		uint8_t key[32];
		char k64[64];
		memset(key, (uint8_t)(i + 1), sizeof(key));
		sodium_bin2base64(k64, sizeof(k64), key, 32,
		                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
		int w = snprintf(a.point[i].relay, sizeof(a.point[i].relay),
		                 "cairn://%s@%s.%s.%s.example:65535", k64, label, label, label);
		assert_true(w > 240 && w <= CAIRN_ADDRESS_MAX);
		a.point[i].sender_id[0] = (uint8_t)i;
	}
	size_t len = 0;
	assert_int_equal(intake_encode(&a, out, sizeof(out), &len), 0);
	struct intake_address b;
	assert_int_equal(intake_parse(out, len, &b), 0);
	assert_memory_equal(&a, &b, sizeof(a));
}

/* Signs the 82 bytes BODY for LOG_ID by hand, so a test can make a bundle bundle_sign refuses. */
static void sign_raw(uint8_t b[static BUNDLE_LEN], const uint8_t log_id[static 24],
                     const struct identity *id)
{
	uint8_t tbs[21 + 24 + BUNDLE_SIGNED_LEN];
	memcpy(tbs, "cairn/1 intake bundle", 21);
	memcpy(tbs + 21, log_id, 24);
	memcpy(tbs + 45, b, BUNDLE_SIGNED_LEN);
	crypto_sign_detached(b + BUNDLE_SIGNED_LEN, NULL, tbs, sizeof(tbs), id->sk);
}

static void bundle_of_vector(struct intake_bundle *b, struct x3dh_onetime *spk)
{
	struct identity owner;
	identity_fill(0x01, &owner);
	memset(spk, 0, sizeof(*spk));
	memset(spk->priv, 0x31, 32);
	crypto_scalarmult_base(spk->pub, spk->priv);
	memset(b, 0, sizeof(*b));
	memcpy(b->identity, owner.pk, 32);
	memcpy(b->prekey, spk->pub, 32);
	b->created = CREATED;
	b->expires = EXPIRES;
	b->work_bits = 20;
}

static void test_bundle_vector(void **state)
{
	struct identity owner;
	struct intake_bundle b, o;
	struct x3dh_onetime spk;
	uint8_t log_id[24], got[BUNDLE_LEN], want[BUNDLE_LEN], v[64];
	identity_fill(0x01, &owner);
	bundle_of_vector(&b, &spk);
	memset(log_id, 0x51, sizeof(log_id));
	assert_int_equal(mdvec_hex("intake/bundle", "prekey_public", v, 32), 32);
	assert_memory_equal(v, spk.pub, 32);
	assert_int_equal(bundle_sign(&b, log_id, owner.sk, got), 0);
	assert_int_equal(mdvec_hex("intake/bundle", "bundle", want, sizeof(want)), BUNDLE_LEN);
	assert_memory_equal(got, want, BUNDLE_LEN);
	assert_int_equal(mdvec_hex("intake/bundle", "signature", v, 64), 64);
	assert_memory_equal(got + BUNDLE_SIGNED_LEN, v, 64);
	assert_int_equal(bundle_open(want, BUNDLE_LEN, owner.pk, log_id, &o), 0);
	assert_memory_equal(&o, &b, sizeof(b));
}

static void bundle_refused(const uint8_t *in, size_t len, const uint8_t identity[static 32],
                           const uint8_t log_id[static 24], int rc)
{
	struct intake_bundle out, zero;
	memset(&out, 0xa5, sizeof(out));
	memset(&zero, 0, sizeof(zero));
	assert_int_equal(bundle_open(in, len, identity, log_id, &out), rc);
	assert_memory_equal(&out, &zero, sizeof(out));
}

static void test_bundle_refusals(void **state)
{
	struct identity owner, other;
	struct intake_bundle b;
	struct x3dh_onetime spk;
	uint8_t log_id[24], other_log[24], in[BUNDLE_LEN + 1], x[BUNDLE_LEN];
	identity_fill(0x01, &owner);
	identity_fill(0x02, &other);
	memset(log_id, 0x51, sizeof(log_id));
	memset(other_log, 0x52, sizeof(other_log));
	bundle_of_vector(&b, &spk);
	assert_int_equal(bundle_sign(&b, log_id, owner.sk, in), 0);
	in[BUNDLE_LEN] = 0;

	bundle_refused(in, BUNDLE_LEN - 1, owner.pk, log_id, CAIRN_EINVAL);
	bundle_refused(in, BUNDLE_LEN + 1, owner.pk, log_id, CAIRN_EINVAL);
	memcpy(x, in, BUNDLE_LEN);
	x[0] = 2;
	sign_raw(x, log_id, &owner);
	bundle_refused(x, BUNDLE_LEN, owner.pk, log_id, CAIRN_EINVAL);
	/* Another identity: the address's key is not the bundle's, even with a good signature. */
	bundle_refused(in, BUNDLE_LEN, other.pk, log_id, CAIRN_EINVAL);
	memcpy(x, in, BUNDLE_LEN);
	memcpy(x + 1, other.pk, 32);
	sign_raw(x, log_id, &other);
	bundle_refused(x, BUNDLE_LEN, owner.pk, log_id, CAIRN_EINVAL);
	/* Another log: the signature binds it. */
	bundle_refused(in, BUNDLE_LEN, owner.pk, other_log, CAIRN_EAUTH);
	/* Any bit of the signature or of the signed bytes. */
	for (size_t bit = 0; bit < 8 * BUNDLE_LEN; bit += 37) {
		if (bit / 8 < 1 + 32)
			continue; /* version and identity are refused before the signature */
		memcpy(x, in, BUNDLE_LEN);
		x[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		struct intake_bundle o;
		int rc = bundle_open(x, BUNDLE_LEN, owner.pk, log_id, &o);
		assert_true(rc == CAIRN_EAUTH || rc == CAIRN_EINVAL);
	}
	memcpy(x, in, BUNDLE_LEN);
	x[BUNDLE_LEN - 1] ^= 0x01;
	bundle_refused(x, BUNDLE_LEN, owner.pk, log_id, CAIRN_EAUTH);

	/* Fields, each signed properly so that only the field check refuses it. */
	struct intake_bundle bad;
	uint8_t out[BUNDLE_LEN];
	const struct {
		uint64_t created, expires;
		uint8_t bits;
	} cases[] = {{CREATED, CREATED, 20},
	             {CREATED, CREATED - 1, 20},
	             {CREATED, EXPIRES, 0},
	             {CREATED, EXPIRES, 41}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(x, in, BUNDLE_LEN);
		for (int k = 0; k < 8; k++) {
			x[65 + k] = (uint8_t)(cases[i].created >> (56 - 8 * k));
			x[73 + k] = (uint8_t)(cases[i].expires >> (56 - 8 * k));
		}
		x[81] = cases[i].bits;
		sign_raw(x, log_id, &owner);
		bundle_refused(x, BUNDLE_LEN, owner.pk, log_id, CAIRN_EINVAL);
		bad = b;
		bad.created = cases[i].created;
		bad.expires = cases[i].expires;
		bad.work_bits = cases[i].bits;
		assert_int_equal(bundle_sign(&bad, log_id, owner.sk, out), CAIRN_EINVAL);
	}
	/* The edges that are allowed. */
	const uint8_t edge_bits[2] = {WORK_BITS_MIN, WORK_BITS_MAX};
	for (int i = 0; i < 2; i++) {
		struct intake_bundle o;
		bad = b;
		bad.expires = bad.created + 1;
		bad.work_bits = edge_bits[i];
		assert_int_equal(bundle_sign(&bad, log_id, owner.sk, out), 0);
		assert_int_equal(bundle_open(out, BUNDLE_LEN, owner.pk, log_id, &o), 0);
		assert_memory_equal(&o, &bad, sizeof(o));
	}
	/* bundle_sign refuses a key that is not the bundle's identity. */
	assert_int_equal(bundle_sign(&b, log_id, other.sk, out), CAIRN_EINVAL);
	uint8_t mixed[64];
	memcpy(mixed, other.sk, 32);
	memcpy(mixed + 32, owner.pk, 32);
	assert_int_equal(bundle_sign(&b, log_id, mixed, out), CAIRN_EINVAL);
}

/* The intermediates of intake/first from the vector's inputs, by libsodium directly. */
static void check_first_intermediates(const struct identity *iki, const struct identity *ika,
                                      const uint8_t spk[32])
{
	const char *V = "intake/first";
	uint8_t ek[32], ax[32], ix[32], ikm[128], okm[96], key[32], v[96];
	memset(ek, 0x32, sizeof(ek));
	assert_int_equal(crypto_sign_ed25519_sk_to_curve25519(ax, ika->sk), 0);
	assert_int_equal(crypto_sign_ed25519_pk_to_curve25519(ix, iki->pk), 0);
	memset(ikm, 0xff, 32);
	assert_int_equal(crypto_scalarmult(ikm + 32, ax, spk), 0);
	assert_int_equal(crypto_scalarmult(ikm + 64, ek, ix), 0);
	assert_int_equal(crypto_scalarmult(ikm + 96, ek, spk), 0);
	const char *names[3] = {"dh1", "dh2", "dh3"};
	for (int i = 0; i < 3; i++) {
		assert_int_equal(mdvec_hex(V, names[i], v, 32), 32);
		assert_memory_equal(v, ikm + 32 * (i + 1), 32);
	}
	uint8_t box_ikm[96];
	memcpy(box_ikm, ikm, 32);
	memcpy(box_ikm + 32, ikm + 64, 64);
	assert_int_equal(kdf_hkdf_sha256(key, 32, NULL, 0, box_ikm, 96,
	                                 (const uint8_t *)"cairn/1 intake identity", 23),
	                 0);
	assert_int_equal(mdvec_hex(V, "box_key", v, 32), 32);
	assert_memory_equal(v, key, 32);
	assert_int_equal(
	    kdf_hkdf_sha256(okm, 96, NULL, 0, ikm, 128, (const uint8_t *)"cairn/1 intake x3dh", 19),
	    0);
	const char *sk_names[3] = {"root_key", "hka", "nhkb"};
	for (int i = 0; i < 3; i++) {
		assert_int_equal(mdvec_hex(V, sk_names[i], v, 32), 32);
		assert_memory_equal(v, okm + 32 * i, 32);
	}
}

static const uint8_t hello[] = "hello embassy";

static void test_first_vector(void **state)
{
	struct identity owner, req;
	struct intake_bundle b;
	struct x3dh_onetime spk, spk0;
	struct script s = {.n = 2};
	struct e2e_rng rng = {script_fill, &s};
	uint8_t prefix[X3DH_PREFIX_LEN], want[CAIRN_ENVELOPE_MAX], env[CAIRN_ENVELOPE_MAX];
	uint8_t reply[24], buf[CAIRN_ENVELOPE_MAX], peer[32], ek[32], k[32];
	struct ratchet *a = NULL, *o = NULL;
	size_t elen, wlen;

	identity_fill(0x01, &owner);
	identity_fill(0x02, &req);
	bundle_of_vector(&b, &spk);
	check_first_intermediates(&owner, &req, spk.pub);
	memset(s.keys[0], 0x32, 32);
	memset(s.keys[1], 0x33, 32);
	assert_int_equal(x3dh_initiate_intake(owner.pk, b.prekey, req.sk, &rng, prefix, &a), 0);
	assert_int_equal(s.next, 2);
	assert_int_equal(mdvec_hex("intake/first", "prefix", want, sizeof(want)), X3DH_PREFIX_LEN);
	assert_memory_equal(prefix, want, X3DH_PREFIX_LEN);
	for (int i = 0; i < 24; i++)
		reply[i] = (uint8_t)(0x61 + i);
	assert_int_equal(e2e_seal_intake(a, prefix, reply, sizeof(reply), hello, sizeof(hello) - 1,
	                                 env, sizeof(env), &elen),
	                 0);
	wlen = mdvec_hex("intake/first", "envelope", want, sizeof(want));
	assert_int_equal(wlen, 896);
	assert_int_equal(elen, wlen);
	assert_memory_equal(env, want, wlen);

	/* The owner finds the prekey, opens, and keeps the prekey as it was. */
	assert_int_equal(e2e_intake_keys(env, elen, ek, k), 0);
	memset(s.keys[0], 0x32, 32);
	crypto_scalarmult_base(want, s.keys[0]);
	assert_memory_equal(ek, want, 32);
	assert_memory_equal(k, spk.pub, 32);
	spk0 = spk;
	struct e2e_opened res;
	assert_int_equal(
	    e2e_open_intake(owner.sk, &spk, env, elen, buf, sizeof(buf), &res, peer, &o, NULL), 0);
	assert_memory_equal(&spk, &spk0, sizeof(spk));
	assert_memory_equal(peer, req.pk, 32);
	assert_int_equal(res.type, E2E_TYPE_INTAKE);
	assert_int_equal(res.reply_len, 24);
	assert_memory_equal(res.reply, reply, 24);
	assert_int_equal(res.message_len, sizeof(hello) - 1);
	assert_memory_equal(res.message, hello, sizeof(hello) - 1);
	ratchet_free(a);
	ratchet_free(o);
}

/* A requester with a fresh identity, sealing through the owner's prekey SPK. */
struct requester {
	struct identity id;
	uint8_t prefix[X3DH_PREFIX_LEN];
	struct ratchet *r;
};

static void requester_new(struct requester *q, const struct identity *owner,
                          const struct x3dh_onetime *spk)
{
	crypto_sign_keypair(q->id.pk, q->id.sk);
	assert_int_equal(
	    x3dh_initiate_intake(owner->pk, spk->pub, q->id.sk, NULL, q->prefix, &q->r), 0);
}

static size_t seal3(struct requester *q, const char *text, uint8_t env[static CAIRN_ENVELOPE_MAX])
{
	size_t n = 0;
	assert_int_equal(e2e_seal_intake(q->r, q->prefix, (const uint8_t *)"mb", 2,
	                                 (const uint8_t *)text, strlen(text), env,
	                                 CAIRN_ENVELOPE_MAX, &n),
	                 0);
	return n;
}

static void expect_text(const struct e2e_opened *res, int type, const char *text)
{
	assert_int_equal(res->type, type);
	assert_int_equal(res->message_len, strlen(text));
	assert_memory_equal(res->message, text, strlen(text));
}

static void test_round_trip_and_replay(void **state)
{
	struct identity owner;
	struct x3dh_onetime spk;
	struct requester q;
	uint8_t e1[CAIRN_ENVELOPE_MAX], e2[CAIRN_ENVELOPE_MAX], e3[CAIRN_ENVELOPE_MAX];
	uint8_t buf[CAIRN_ENVELOPE_MAX], peer[32];
	struct ratchet *o = NULL, *o2 = NULL;
	struct e2e_opened res;
	crypto_sign_keypair(owner.pk, owner.sk);
	x3dh_onetime_generate(&spk, NULL);
	requester_new(&q, &owner, &spk);

	size_t l1 = seal3(&q, "first", e1), l2 = seal3(&q, "second", e2);
	assert_int_equal(
	    e2e_open_intake(owner.sk, &spk, e1, l1, buf, sizeof(buf), &res, peer, &o, NULL), 0);
	expect_text(&res, E2E_TYPE_INTAKE, "first");
	assert_memory_equal(peer, q.id.pk, 32);
	assert_false(spk.used);
	/* Another requester through the same prekey, after the first opened. */
	struct requester q2;
	requester_new(&q2, &owner, &spk);
	size_t l4 = seal3(&q2, "other", e3);
	assert_int_equal(
	    e2e_open_intake(owner.sk, &spk, e3, l4, buf, sizeof(buf), &res, peer, &o2, NULL), 0);
	assert_memory_equal(peer, q2.id.pk, 32);
	ratchet_free(o2);
	ratchet_free(q2.r);

	/* A further type 3 opens with the session, reply and all. */
	assert_int_equal(e2e_open(o, e2, l2, buf, sizeof(buf), &res, NULL), 0);
	expect_text(&res, E2E_TYPE_INTAKE, "second");
	assert_int_equal(res.reply_len, 2);
	assert_memory_equal(res.reply, "mb", 2);

	/* A replay of the first, given to the session it started, is a replay. */
	assert_int_equal(e2e_open(o, e1, l1, buf, sizeof(buf), &res, NULL), CAIRN_EREPLAY);
	assert_int_equal(e2e_open(o, e2, l2, buf, sizeof(buf), &res, NULL), CAIRN_EREPLAY);

	/* The owner answers with a type 2; the requester opens it and then writes type 2. */
	size_t l3 = 0;
	assert_int_equal(e2e_seal(o, (const uint8_t *)"welcome", 7, e3, sizeof(e3), &l3), 0);
	assert_int_equal(e2e_open(q.r, e3, l3, buf, sizeof(buf), &res, NULL), 0);
	expect_text(&res, E2E_TYPE_MESSAGE, "welcome");
	assert_null(res.reply);
	assert_int_equal(e2e_seal(q.r, (const uint8_t *)"thanks", 6, e3, sizeof(e3), &l3), 0);
	assert_int_equal(e2e_open(o, e3, l3, buf, sizeof(buf), &res, NULL), 0);
	expect_text(&res, E2E_TYPE_MESSAGE, "thanks");
	ratchet_free(o);
	ratchet_free(q.r);
}

static void test_type_confusion(void **state)
{
	struct identity owner;
	struct x3dh_onetime spk, otk, copy;
	struct requester q;
	uint8_t env[CAIRN_ENVELOPE_MAX], e1[CAIRN_ENVELOPE_MAX], buf[CAIRN_ENVELOPE_MAX], peer[32];
	uint8_t k1[32], k2[32], zero[32] = {0};
	struct ratchet *o = NULL, *a = NULL;
	struct e2e_opened res;
	crypto_sign_keypair(owner.pk, owner.sk);
	x3dh_onetime_generate(&spk, NULL);
	requester_new(&q, &owner, &spk);
	size_t n = seal3(&q, "hi", env);

	/* A type 3 rewritten as a type 1, given to the inviter's path with the same key. */
	env[0] = E2E_TYPE_FIRST;
	copy = spk;
	assert_int_equal(e2e_first_onetime(env, n, k1), 0);
	assert_int_equal(
	    e2e_open_first(owner.sk, &copy, env, n, buf, sizeof(buf), &res, peer, &o, NULL),
	    CAIRN_EAUTH);
	assert_null(o);
	assert_false(copy.used);
	assert_int_equal(e2e_intake_keys(env, n, k1, k2), CAIRN_EINVAL);
	assert_memory_equal(k1, zero, 32);
	assert_int_equal(
	    e2e_open_intake(owner.sk, &spk, env, n, buf, sizeof(buf), &res, peer, &o, NULL),
	    CAIRN_EINVAL);
	env[0] = E2E_TYPE_INTAKE;
	assert_int_equal(
	    e2e_open_intake(owner.sk, &spk, env, n, buf, sizeof(buf), &res, peer, &o, NULL), 0);

	/* With the session: a later type 3 rewritten as type 1 fails on the EAD. */
	size_t n2 = seal3(&q, "again", env);
	env[0] = E2E_TYPE_FIRST;
	assert_int_equal(e2e_open(o, env, n2, buf, sizeof(buf), &res, NULL), CAIRN_EAUTH);
	env[0] = E2E_TYPE_INTAKE;
	assert_int_equal(e2e_open(o, env, n2, buf, sizeof(buf), &res, NULL), 0);
	ratchet_free(o);
	o = NULL;

	/* A type 1 (an invite's first message) given to the intake path, as it is and rewritten
	 * as a type 3 with the one-time key in the prekey's place. */
	uint8_t prefix[X3DH_PREFIX_LEN];
	struct identity acc;
	crypto_sign_keypair(acc.pk, acc.sk);
	x3dh_onetime_generate(&otk, NULL);
	assert_int_equal(x3dh_initiate(owner.pk, otk.pub, acc.sk, NULL, prefix, &a), 0);
	size_t m = 0;
	assert_int_equal(e2e_seal_first(a, prefix, (const uint8_t *)"r", 1, (const uint8_t *)"x", 1,
	                                e1, sizeof(e1), &m),
	                 0);
	assert_int_equal(
	    e2e_open_intake(owner.sk, &otk, e1, m, buf, sizeof(buf), &res, peer, &o, NULL),
	    CAIRN_EINVAL);
	e1[0] = E2E_TYPE_INTAKE;
	assert_int_equal(e2e_intake_keys(e1, m, k1, k2), 0);
	assert_memory_equal(k2, otk.pub, 32);
	assert_int_equal(
	    e2e_open_intake(owner.sk, &otk, e1, m, buf, sizeof(buf), &res, peer, &o, NULL),
	    CAIRN_EAUTH);
	assert_null(o);
	assert_memory_equal(peer, zero, 32);
	e1[0] = E2E_TYPE_FIRST;
	assert_int_equal(
	    e2e_open_first(owner.sk, &otk, e1, m, buf, sizeof(buf), &res, peer, &o, NULL), 0);
	assert_true(otk.used);
	ratchet_free(o);
	ratchet_free(a);
	ratchet_free(q.r);
}

static bool contains(const uint8_t *hay, size_t n, const uint8_t *needle, size_t k)
{
	for (size_t i = 0; i + k <= n; i++)
		if (memcmp(hay + i, needle, k) == 0)
			return true;
	return false;
}

static void test_prekey_not_stored(void **state)
{
	struct identity owner;
	struct x3dh_onetime spk;
	struct requester q;
	uint8_t env[CAIRN_ENVELOPE_MAX], buf[CAIRN_ENVELOPE_MAX], peer[32];
	uint8_t st[RATCHET_STATE_MAX];
	struct ratchet *o = NULL;
	struct e2e_opened res;
	size_t sl = 0;
	crypto_sign_keypair(owner.pk, owner.sk);
	x3dh_onetime_generate(&spk, NULL);
	requester_new(&q, &owner, &spk);

	/* Before the first decrypt, the responder's state holds the prekey (8.4's DHs): the
	 * search below can find it. */
	struct ratchet *pre = NULL;
	assert_int_equal(x3dh_respond_intake(owner.sk, &spk, q.prefix, peer, &pre), 0);
	assert_int_equal(ratchet_serialize(pre, st, sizeof(st), &sl), 0);
	assert_true(contains(st, sl, spk.priv, 32));
	ratchet_free(pre);

	size_t n = seal3(&q, "hi", env);
	assert_int_equal(
	    e2e_open_intake(owner.sk, &spk, env, n, buf, sizeof(buf), &res, peer, &o, NULL), 0);
	assert_int_equal(ratchet_serialize(o, st, sizeof(st), &sl), 0);
	assert_false(contains(st, sl, spk.priv, 32));
	ratchet_free(o);
	ratchet_free(q.r);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_address_vector),
	    cmocka_unit_test(test_address_parse_rules),
	    cmocka_unit_test(test_address_encode_refusals),
	    cmocka_unit_test(test_bundle_vector),
	    cmocka_unit_test(test_bundle_refusals),
	    cmocka_unit_test(test_first_vector),
	    cmocka_unit_test(test_round_trip_and_replay),
	    cmocka_unit_test(test_type_confusion),
	    cmocka_unit_test(test_prekey_not_stored),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
