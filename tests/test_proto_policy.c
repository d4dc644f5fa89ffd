/* SPDX-License-Identifier: MIT */
/*
 * The relay's signed policy (proto/policy.h, proto/codec.h; PROTOCOL.md 5.13): the published
 * vectors policy/body, policy/sign and the four codec/policy* both ways, a sign/verify round
 * trip with a random Z, and every refusal of the verifier: a flipped byte of body or
 * signature, A with its sign bit set, A of another key, overlong or invalid strings, another
 * version, a long form, trailing bytes; and the codec's rules for the reply's optional field.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "codec.h"
#include "mdvec.h"
#include "policy.h"

#define BODY "policy/body"
#define SIGN "policy/sign"

static uint8_t relay_sk[32], relay_pk[32], body[POLICY_BODY_MAX], sig[64];
static size_t body_len;

static void load(void)
{
	assert_int_equal(mdvec_hex(BODY, "relay_secret", relay_sk, 32), 32);
	assert_int_equal(mdvec_hex(BODY, "relay_public", relay_pk, 32), 32);
	body_len = mdvec_hex(BODY, "body", body, sizeof(body));
	assert_int_equal(mdvec_hex(SIGN, "signature", sig, 64), 64);
}

/* The vector's fields, as a relay would fill them. */
static void vector_policy(struct policy *p)
{
	memset(p, 0, sizeof(*p));
	assert_int_equal(mdvec_hex(BODY, "edwards_public", p->edwards, 32), 32);
	snprintf(p->jurisdiction, sizeof(p->jurisdiction), "%s", mdvec_str(BODY, "jurisdiction"));
	snprintf(p->contact, sizeof(p->contact), "%s", mdvec_str(BODY, "contact"));
	p->ttl_s = (uint32_t)strtoul(mdvec_str(BODY, "ttl"), NULL, 10);
	snprintf(p->logging, sizeof(p->logging), "%s", mdvec_str(BODY, "logging"));
	snprintf(p->retention, sizeof(p->retention), "%s", mdvec_str(BODY, "retention"));
	p->forwarding = (uint8_t)atoi(mdvec_str(BODY, "forwarding"));
	snprintf(p->statement, sizeof(p->statement), "%s", mdvec_str(BODY, "statement"));
}

static void test_body_vector(void **state)
{
	(void)state;
	load();
	static struct policy p, q;
	vector_policy(&p);
	uint8_t a[32];
	assert_int_equal(policy_edwards(relay_sk, a), 0);
	assert_memory_equal(a, p.edwards, 32);

	uint8_t out[POLICY_BODY_MAX];
	size_t len;
	assert_int_equal(policy_encode(&p, out, sizeof(out), &len), 0);
	assert_int_equal(len, body_len);
	assert_memory_equal(out, body, len);
	assert_int_equal(policy_decode(body, body_len, &q), 0);
	assert_memory_equal(&p, &q, sizeof(p));

	uint8_t d[32], want[32];
	policy_digest(body, body_len, d);
	assert_int_equal(mdvec_hex(BODY, "digest", want, 32), 32);
	assert_memory_equal(d, want, 32);
}

static void test_sign_vector(void **state)
{
	(void)state;
	load();
	uint8_t z[64], out[64];
	assert_int_equal(mdvec_hex(SIGN, "z", z, 64), 64);
	assert_int_equal(policy_sign(relay_sk, body, body_len, z, out), 0);
	assert_memory_equal(out, sig, 64);
	static struct policy p;
	assert_int_equal(policy_verify(relay_pk, body, body_len, sig, &p), 0);
	assert_string_equal(p.jurisdiction, "Iceland");
	assert_int_equal(p.ttl_s, 1814400);
	assert_int_equal(p.forwarding, 1);
}

/* Random keys (half of them have a sign bit to flip) and a random Z: always verifies, and
 * two signatures of one body differ (Z is random). */
static void test_round_trip(void **state)
{
	(void)state;
	static struct policy p;
	memset(&p, 0, sizeof(p));
	snprintf(p.statement, sizeof(p.statement), "tést ✓");
	for (int i = 0; i < 64; i++) {
		uint8_t sk[32], pk[32], s1[64], s2[64], b[POLICY_BODY_MAX];
		size_t n;
		randombytes_buf(sk, sizeof(sk));
		crypto_scalarmult_base(pk, sk);
		assert_int_equal(policy_edwards(sk, p.edwards), 0);
		p.ttl_s = (uint32_t)i * 1000u;
		assert_int_equal(policy_encode(&p, b, sizeof(b), &n), 0);
		assert_int_equal(policy_sign(sk, b, n, NULL, s1), 0);
		assert_int_equal(policy_sign(sk, b, n, NULL, s2), 0);
		assert_memory_not_equal(s1, s2, 64);
		assert_int_equal(policy_verify(pk, b, n, s1, NULL), 0);
		assert_int_equal(policy_verify(pk, b, n, s2, NULL), 0);
	}
}

static void test_tamper(void **state)
{
	(void)state;
	load();
	uint8_t b[POLICY_BODY_MAX], s[64];
	/* every byte of the body and of the signature */
	for (size_t i = 0; i < body_len; i++) {
		memcpy(b, body, body_len);
		b[i] ^= 0x01;
		if (policy_verify(relay_pk, b, body_len, sig, NULL) == 0)
			fail_msg("body byte %zu flipped still verifies", i);
	}
	for (size_t i = 0; i < 64; i++) {
		memcpy(s, sig, 64);
		s[i] ^= 0x01;
		if (policy_verify(relay_pk, body, body_len, s, NULL) == 0)
			fail_msg("signature byte %zu flipped still verifies", i);
	}
	/* another relay's key */
	uint8_t other[32];
	memcpy(other, relay_pk, 32);
	other[0] ^= 1;
	assert_int_equal(policy_verify(other, body, body_len, sig, NULL), CAIRN_EAUTH);

	/* A with the sign bit set (the same u), re-signed as a plain Ed25519 key would be
	 * impossible without the scalar; the verifier refuses it before any signature check */
	memcpy(b, body, body_len);
	size_t a_at = 4; /* 0x99, version, 0xc4 0x20 */
	b[a_at + 31] |= 0x80;
	assert_int_equal(policy_verify(relay_pk, b, body_len, sig, NULL), CAIRN_EAUTH);

	/* a body signed correctly by another key, presented for this relay */
	static struct policy p;
	uint8_t sk2[32], pk2[32], s2[64];
	size_t n;
	randombytes_buf(sk2, sizeof(sk2));
	crypto_scalarmult_base(pk2, sk2);
	vector_policy(&p);
	assert_int_equal(policy_edwards(sk2, p.edwards), 0);
	assert_int_equal(policy_encode(&p, b, sizeof(b), &n), 0);
	assert_int_equal(policy_sign(sk2, b, n, NULL, s2), 0);
	assert_int_equal(policy_verify(pk2, b, n, s2, NULL), 0);
	assert_int_equal(policy_verify(relay_pk, b, n, s2, NULL), CAIRN_EAUTH);
	/* ...and the relay's own A in that body, signed by the other key */
	vector_policy(&p);
	assert_int_equal(policy_encode(&p, b, sizeof(b), &n), 0);
	assert_int_equal(policy_sign(sk2, b, n, NULL, s2), 0);
	assert_int_equal(policy_verify(relay_pk, b, n, s2, NULL), CAIRN_EAUTH);
}

static void test_decode_refusals(void **state)
{
	(void)state;
	load();
	static struct policy p;
	uint8_t b[POLICY_BODY_MAX + 8];
	size_t n;

	/* trailing byte */
	memcpy(b, body, body_len);
	b[body_len] = 0x00;
	assert_int_equal(policy_decode(b, body_len + 1, &p), CAIRN_ETRAILING);
	/* wrong version */
	memcpy(b, body, body_len);
	b[1] = 2;
	assert_int_equal(policy_decode(b, body_len, &p), CAIRN_ETYPE);
	/* eight fields */
	memcpy(b, body, body_len);
	b[0] = 0x98;
	assert_int_not_equal(policy_decode(b, body_len, &p), 0);
	/* forwarding 2: the byte before the statement's str 8 header */
	vector_policy(&p);
	p.forwarding = 1;
	assert_int_equal(policy_encode(&p, b, sizeof(b), &n), 0);
	size_t st = strlen(p.statement);
	assert_int_equal(b[n - st - 3], 0x01);
	b[n - st - 3] = 0x02;
	assert_int_equal(policy_decode(b, n, &p), CAIRN_ETYPE);
	/* a long form of the version (uint 8 holding 1) */
	b[0] = 0x99;
	b[1] = 0xcc;
	b[2] = 0x01;
	memcpy(b + 3, body + 2, body_len - 2);
	assert_int_equal(policy_decode(b, body_len + 1, &p), CAIRN_ETYPE);
	/* empty, and over 4096 */
	assert_int_not_equal(policy_decode(body, 0, &p), 0);
	memset(b, 0, sizeof(b));
	assert_int_equal(policy_decode(b, POLICY_BODY_MAX + 1, &p), CAIRN_ETYPE);

	/* strings: 1024 bytes encode and decode; 1025 do not encode; a 1025-byte str in a body
	 * does not decode; invalid UTF-8 and U+0000 neither */
	vector_policy(&p);
	memset(p.statement, 'x', POLICY_TEXT_MAX);
	p.statement[POLICY_TEXT_MAX] = '\0';
	assert_int_equal(policy_encode(&p, b, sizeof(b), &n), 0);
	static struct policy q;
	assert_int_equal(policy_decode(b, n, &q), 0);
	assert_int_equal(strlen(q.statement), POLICY_TEXT_MAX);
	/* the statement's str 16 header is 0xda 0x04 0x00: make it 0x04 0x01 and add a byte */
	assert_int_equal(b[n - POLICY_TEXT_MAX - 3], 0xda);
	b[n - POLICY_TEXT_MAX - 1] = 0x01;
	b[n] = 'x';
	assert_int_equal(policy_decode(b, n + 1, &q), CAIRN_ETYPE);

	snprintf(p.statement, sizeof(p.statement), "bad \xc0\xaf overlong");
	assert_int_equal(policy_encode(&p, b, sizeof(b), &n), CAIRN_EINVAL);
	snprintf(p.statement, sizeof(p.statement), "surrogate \xed\xa0\x80");
	assert_int_equal(policy_encode(&p, b, sizeof(b), &n), CAIRN_EINVAL);
	/* the same bytes put in a body by hand */
	snprintf(p.statement, sizeof(p.statement), "ok \xc3\xa9 ok");
	assert_int_equal(policy_encode(&p, b, sizeof(b), &n), 0);
	b[n - 4] = 0xc0; /* "ok \xc3\xa9 ok": \xa9 is 4th from the end; make \xc3 ... */
	b[n - 5] = 0xc0;
	assert_int_equal(policy_decode(b, n, &q), CAIRN_ETYPE);
	b[n - 5] = 0x00; /* U+0000 then \xc0: refused */
	b[n - 4] = 0x41;
	assert_int_equal(policy_decode(b, n, &q), CAIRN_ETYPE);
	assert_int_equal(policy_text_valid("\xf4\x90\x80\x80", 4), 0); /* above U+10FFFF */
	assert_int_equal(policy_text_valid("\xf0\x9f\x98\x80", 4), 1);
	assert_int_equal(policy_text_valid("\xe2\x82", 2), 0); /* truncated */
	/* five texts of 1024 bytes do not fit 4096 */
	memset(p.jurisdiction, 'j', POLICY_TEXT_MAX);
	memset(p.contact, 'c', POLICY_TEXT_MAX);
	memset(p.logging, 'l', POLICY_TEXT_MAX);
	memset(p.retention, 'r', POLICY_TEXT_MAX);
	assert_int_equal(policy_encode(&p, b, sizeof(b), &n), CAIRN_ENOBUFS);
}

/* M encodes to vector NAME's hex, which decodes back into *M. */
static void codec_vector(const char *name, struct cairn_msg *m)
{
	uint8_t want[8192], out[8192];
	size_t wlen = mdvec_hex(name, "hex", want, sizeof(want)), olen;
	assert_int_equal(cairn_msg_encode(m, out, sizeof(out), &olen), 0);
	assert_int_equal(olen, wlen);
	assert_memory_equal(out, want, wlen);
	/* the decoded fields point into KEEP, which outlives this call */
	static uint8_t keep[8192];
	memcpy(keep, want, wlen);
	assert_int_equal(cairn_msg_decode(keep, wlen, NULL, m, NULL), 0);
}

static void test_codec_vectors(void **state)
{
	(void)state;
	load();
	uint8_t have[32];
	struct cairn_msg m;

	/* POLICY with nil, and with the digest */
	m = (struct cairn_msg){.type = CAIRN_CMD_POLICY, .request_id = 7};
	codec_vector("codec/policy", &m);
	assert_int_equal(m.type, CAIRN_CMD_POLICY);
	assert_null(m.credential);
	assert_int_equal(mdvec_hex("codec/policy-have", "have", have, 32), 32);
	m = (struct cairn_msg){.type = CAIRN_CMD_POLICY, .request_id = 7, .credential = have};
	codec_vector("codec/policy-have", &m);
	assert_memory_equal(m.credential, have, 32);

	/* the reply with a body, and without */
	m = (struct cairn_msg){.type = CAIRN_REPLY_POLICY,
	                       .request_id = 7,
	                       .policy = body,
	                       .policy_len = body_len,
	                       .signature = sig};
	codec_vector("codec/policy-reply", &m);
	assert_int_equal(m.policy_len, body_len);
	assert_memory_equal(m.policy, body, body_len);
	assert_memory_equal(m.signature, sig, 64);
	m = (struct cairn_msg){.type = CAIRN_REPLY_POLICY, .request_id = 7};
	codec_vector("codec/policy-none", &m);
	assert_null(m.policy);
	assert_null(m.signature);
}

static void test_codec_bounds(void **state)
{
	(void)state;
	struct cairn_msg m;
	int have_id;
	static const struct {
		uint8_t bytes[80];
		size_t len;
	} bad[] = {
	    {{0x94, 0x49, 0x07, 0xc0, 0xc0}, 5},             /* nil body with a field after */
	    {{0x93, 0x49, 0x07, 0xc4, 0x01, 0x99}, 6},       /* body without its signature */
	    {{0x94, 0x49, 0x07, 0xc4, 0x00, 0xc4, 0x00}, 7}, /* empty body */
	    {{0x93, 0x12, 0x07, 0xc4, 0x01, 0x00}, 6},       /* have of 1 byte */
	    {{0x92, 0x12, 0x07}, 3},                         /* POLICY without have */
	    {{0x92, 0x49, 0x07}, 3},                         /* reply without anything */
	    {{0x93, 0x49, 0x07, 0xa0}, 4},                   /* body a string */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = cairn_msg_decode(bad[i].bytes, bad[i].len, NULL, &m, &have_id);
		if (rc != CAIRN_ETYPE || have_id != 1)
			fail_msg("case %zu: rc %d have_id %d", i, rc, have_id);
	}
	/* a body of 4097 bytes */
	static uint8_t big[4200];
	big[0] = 0x94, big[1] = 0x49, big[2] = 0x07, big[3] = 0xc5, big[4] = 0x10, big[5] = 0x01;
	big[6 + 4097] = 0xc4;
	big[6 + 4097 + 1] = 64;
	assert_int_equal(cairn_msg_decode(big, 6 + 4097 + 2 + 64, NULL, &m, &have_id), CAIRN_ETYPE);
	/* encoding refuses the same */
	uint8_t out[64];
	size_t olen;
	m = (struct cairn_msg){.type = CAIRN_REPLY_POLICY,
	                       .request_id = 7,
	                       .policy = big,
	                       .policy_len = 4097,
	                       .signature = big};
	assert_int_equal(cairn_msg_encode(&m, big, sizeof(big), &olen), CAIRN_EINVAL);
	m = (struct cairn_msg){
	    .type = CAIRN_REPLY_POLICY, .request_id = 7, .policy = big, .policy_len = 10};
	assert_int_equal(cairn_msg_encode(&m, out, sizeof(out), &olen), CAIRN_EINVAL);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_body_vector),     cmocka_unit_test(test_sign_vector),
	    cmocka_unit_test(test_round_trip),      cmocka_unit_test(test_tamper),
	    cmocka_unit_test(test_decode_refusals), cmocka_unit_test(test_codec_vectors),
	    cmocka_unit_test(test_codec_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
