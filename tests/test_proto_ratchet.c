/* SPDX-License-Identifier: MIT */
/*
 * The Double Ratchet with header encryption (docs/PROTOCOL.md section 8.4): conversations both
 * ways, lost and out-of-order messages, replays, tampering (envelope associated data included),
 * MAX_SKIP and the total skipped-key cap, state serialization round trips and strict parsing. Every
 * failure must leave the state byte for byte as it was.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "ratchet.h"

#define MSG_MAX 256

/* A deterministic random source: BLAKE2b(seed || counter) seeds each draw. */
struct det_rng {
	uint8_t seed[32];
	uint64_t ctr;
};

static void det_fill(void *ctx, uint8_t *out, size_t len)
{
	struct det_rng *d = ctx;
	uint8_t s[randombytes_SEEDBYTES];
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, sizeof(s));
	crypto_generichash_update(&st, d->seed, sizeof(d->seed));
	crypto_generichash_update(&st, (const uint8_t *)&d->ctr, sizeof(d->ctr));
	crypto_generichash_final(&st, s, sizeof(s));
	d->ctr++;
	randombytes_buf_deterministic(out, len, s);
}

static struct det_rng det_state = {{7}, 0};
static const struct e2e_rng det = {det_fill, &det_state};

struct msg {
	uint8_t b[MSG_MAX];
	size_t len;
};

struct pair {
	struct ratchet *a; /* sends first (accepter) */
	struct ratchet *b; /* receives first (inviter) */
};

static void pair_new(struct pair *p)
{
	struct ratchet_init k;
	uint8_t priv[32], pub[32];
	det_fill(&det_state, (uint8_t *)&k, sizeof(k));
	det_fill(&det_state, priv, sizeof(priv));
	crypto_scalarmult_base(pub, priv);
	assert_int_equal(ratchet_new_initiator(&p->a, &k, pub, &det), 0);
	assert_int_equal(ratchet_new_responder(&p->b, &k, priv), 0);
}

static void pair_free(struct pair *p)
{
	ratchet_free(p->a);
	ratchet_free(p->b);
}

/* Encrypts TEXT with envelope associated data EAD (EAD_LEN bytes). */
static struct msg enc_ead(struct ratchet *r, const uint8_t *ead, size_t ead_len, const char *text)
{
	struct msg m;
	assert_int_equal(ratchet_encrypt(r, ead, ead_len, (const uint8_t *)text, strlen(text), m.b,
	                                 sizeof(m.b), &m.len),
	                 0);
	assert_int_equal(m.len, RATCHET_OVERHEAD + strlen(text));
	return m;
}

static struct msg enc(struct ratchet *r, const char *text)
{
	return enc_ead(r, NULL, 0, text);
}

static void dec_ok_ead(struct ratchet *r, const uint8_t *ead, size_t ead_len, const struct msg *m,
                       const char *text)
{
	uint8_t out[MSG_MAX];
	size_t n = 99;
	assert_int_equal(ratchet_decrypt(r, ead, ead_len, m->b, m->len, out, sizeof(out), &n, &det),
	                 0);
	assert_int_equal(n, strlen(text));
	assert_memory_equal(out, text, n);
}

static void dec_ok(struct ratchet *r, const struct msg *m, const char *text)
{
	dec_ok_ead(r, NULL, 0, m, text);
}

/* Serialized state, for "unchanged" checks. Heap: up to 136 KiB. */
static uint8_t *snap(const struct ratchet *r, size_t *len)
{
	uint8_t *b = malloc(RATCHET_STATE_MAX);
	assert_non_null(b);
	assert_int_equal(ratchet_serialize(r, b, RATCHET_STATE_MAX, len), 0);
	assert_int_equal(*len, ratchet_serialized_len(r));
	return b;
}

/* Decrypt with EAD must fail with WANT and leave R exactly as it was. */
static void dec_fails_ead(struct ratchet *r, const uint8_t *ead, size_t ead_len, const uint8_t *m,
                          size_t len, int want)
{
	size_t before_len, after_len, n = 99;
	uint8_t *before = snap(r, &before_len);
	uint8_t out[MSG_MAX + 16];
	memset(out, 0xaa, sizeof(out));
	assert_int_equal(ratchet_decrypt(r, ead, ead_len, m, len, out, sizeof(out), &n, &det),
	                 want);
	assert_int_equal(n, 0);
	assert_true(sodium_is_zero(out, sizeof(out)));
	uint8_t *after = snap(r, &after_len);
	assert_int_equal(before_len, after_len);
	assert_memory_equal(before, after, before_len);
	free(before);
	free(after);
}

static void dec_fails(struct ratchet *r, const uint8_t *m, size_t len, int want)
{
	dec_fails_ead(r, NULL, 0, m, len, want);
}

static void test_conversation(void **state)
{
	struct pair p;
	pair_new(&p);
	uint8_t buf[MSG_MAX];
	size_t n;
	/* The inviter cannot send before it has heard from the accepter. */
	assert_int_equal(
	    ratchet_encrypt(p.b, NULL, 0, (const uint8_t *)"x", 1, buf, sizeof(buf), &n),
	    CAIRN_ESTATE);
	for (int round = 0; round < 5; round++) {
		struct msg m1 = enc(p.a, "from a, one");
		struct msg m2 = enc(p.a, "from a, two");
		dec_ok(p.b, &m1, "from a, one");
		dec_ok(p.b, &m2, "from a, two");
		struct msg r1 = enc(p.b, "from b");
		dec_ok(p.a, &r1, "from b");
	}
	/* An empty message works too. */
	struct msg e = enc(p.a, "");
	dec_ok(p.b, &e, "");
	assert_int_equal(ratchet_skipped_count(p.a), 0);
	assert_int_equal(ratchet_skipped_count(p.b), 0);
	pair_free(&p);
}

static void test_out_of_order(void **state)
{
	struct pair p;
	pair_new(&p);
	struct msg m[5];
	char t[5][8];
	for (int i = 0; i < 5; i++) {
		snprintf(t[i], sizeof(t[i]), "m%d", i);
		m[i] = enc(p.a, t[i]);
	}
	dec_ok(p.b, &m[4], t[4]);
	assert_int_equal(ratchet_skipped_count(p.b), 4);
	dec_ok(p.b, &m[2], t[2]);
	dec_ok(p.b, &m[0], t[0]);
	assert_int_equal(ratchet_skipped_count(p.b), 2);
	/* A used skipped key is gone: the same message again is refused, state unchanged. */
	dec_fails(p.b, m[2].b, m[2].len, CAIRN_EREPLAY);
	dec_ok(p.b, &m[3], t[3]);
	dec_ok(p.b, &m[1], t[1]);
	assert_int_equal(ratchet_skipped_count(p.b), 0);

	/* Across a DH ratchet step: a1 is lost until after the next chain has started. */
	struct msg a0 = enc(p.a, "a0"), a1 = enc(p.a, "a1");
	dec_ok(p.b, &a0, "a0");
	struct msg b0 = enc(p.b, "b0");
	dec_ok(p.a, &b0, "b0");
	struct msg a2 = enc(p.a, "a2");
	dec_ok(p.b, &a2, "a2"); /* pn = 2: a1's key is stored */
	assert_int_equal(ratchet_skipped_count(p.b), 1);
	dec_ok(p.b, &a1, "a1");
	assert_int_equal(ratchet_skipped_count(p.b), 0);
	pair_free(&p);
}

static void test_replay(void **state)
{
	struct pair p;
	pair_new(&p);
	struct msg a0 = enc(p.a, "a0"), a1 = enc(p.a, "a1");
	dec_ok(p.b, &a0, "a0");
	dec_ok(p.b, &a1, "a1");
	/* In the current chain: the header opens, n < Nr. */
	dec_fails(p.b, a0.b, a0.len, CAIRN_EREPLAY);
	dec_fails(p.b, a1.b, a1.len, CAIRN_EREPLAY);
	/* After the chain has moved on, the old header key is gone too. */
	struct msg b0 = enc(p.b, "b0");
	dec_ok(p.a, &b0, "b0");
	dec_fails(p.a, b0.b, b0.len, CAIRN_EREPLAY);
	struct msg a2 = enc(p.a, "a2");
	dec_ok(p.b, &a2, "a2");
	dec_fails(p.b, a0.b, a0.len, CAIRN_EAUTH);
	dec_fails(p.b, a2.b, a2.len, CAIRN_EREPLAY);
	/* The conversation goes on. */
	struct msg a3 = enc(p.a, "a3");
	dec_ok(p.b, &a3, "a3");
	pair_free(&p);
}

static void test_tamper(void **state)
{
	struct pair p;
	pair_new(&p);
	struct msg m0 = enc(p.a, "first"), m1 = enc(p.a, "tampered?");
	dec_ok(p.b, &m0, "first");
	/* Every byte of nonce, header and body matters. */
	for (size_t i = 0; i < m1.len; i++) {
		struct msg t = m1;
		t.b[i] ^= 0x01;
		size_t before_len;
		uint8_t *before = snap(p.b, &before_len);
		uint8_t out[MSG_MAX];
		size_t n;
		int rc = ratchet_decrypt(p.b, NULL, 0, t.b, t.len, out, sizeof(out), &n, &det);
		assert_true(rc == CAIRN_EAUTH);
		size_t after_len;
		uint8_t *after = snap(p.b, &after_len);
		assert_memory_equal(before, after, before_len);
		free(before);
		free(after);
	}
	/* Truncated, extended, too short, empty. */
	dec_fails(p.b, m1.b, m1.len - 1, CAIRN_EAUTH);
	uint8_t longer[MSG_MAX];
	memcpy(longer, m1.b, m1.len);
	longer[m1.len] = 0;
	dec_fails(p.b, longer, m1.len + 1, CAIRN_EAUTH);
	dec_fails(p.b, m1.b, RATCHET_OVERHEAD - 1, CAIRN_EAUTH);
	dec_fails(p.b, m1.b, 0, CAIRN_EAUTH);
	/* A message of another session. */
	struct pair q;
	pair_new(&q);
	struct msg other = enc(q.a, "other session");
	dec_fails(p.b, other.b, other.len, CAIRN_EAUTH);
	pair_free(&q);
	/* Output buffer too small: refused, state unchanged; then it decrypts. */
	uint8_t small[4];
	size_t n;
	assert_int_equal(
	    ratchet_decrypt(p.b, NULL, 0, m1.b, m1.len, small, sizeof(small), &n, &det),
	    CAIRN_ENOBUFS);
	dec_ok(p.b, &m1, "tampered?");
	pair_free(&p);
}

/*
 * The envelope associated data (section 8.4) is authenticated on every path: the current
 * receiving chain, a new chain (DH ratchet step) and a stored skipped key. Another EAD (one
 * byte changed, cut, extended, absent) is CAIRN_EAUTH with the state unchanged.
 */
static void test_ead_bound(void **state)
{
	struct pair p;
	pair_new(&p);
	uint8_t ead[RATCHET_EAD_MAX + 1], other[RATCHET_EAD_MAX + 1];
	const size_t elen = 113; /* a first message's type and prefix */
	for (size_t i = 0; i < sizeof(ead); i++)
		ead[i] = (uint8_t)(i * 7 + 1);

	/* Refused up front when too long, the state unchanged. */
	uint8_t buf[MSG_MAX];
	size_t n;
	assert_int_equal(ratchet_encrypt(p.a, ead, RATCHET_EAD_MAX + 1, (const uint8_t *)"x", 1,
	                                 buf, sizeof(buf), &n),
	                 CAIRN_EINVAL);
	struct msg m0 = enc_ead(p.a, ead, elen, "m0"), m1 = enc_ead(p.a, ead, elen, "m1");
	struct msg m2 = enc_ead(p.a, ead, 1, "m2");
	dec_fails_ead(p.b, ead, RATCHET_EAD_MAX + 1, m1.b, m1.len, CAIRN_EINVAL);

	/* A new chain for B (its first message); then the current chain; then a skipped key. */
	const struct msg *path[3] = {&m1, &m2, &m0};
	const size_t len[3] = {elen, 1, elen};
	const char *text[3] = {"m1", "m2", "m0"};
	for (int k = 0; k < 3; k++) {
		for (size_t i = 0; i < len[k]; i++) {
			memcpy(other, ead, len[k]);
			other[i] ^= 0x01;
			dec_fails_ead(p.b, other, len[k], path[k]->b, path[k]->len, CAIRN_EAUTH);
		}
		dec_fails_ead(p.b, ead, len[k] - 1, path[k]->b, path[k]->len, CAIRN_EAUTH);
		dec_fails_ead(p.b, ead, len[k] + 1, path[k]->b, path[k]->len, CAIRN_EAUTH);
		dec_fails_ead(p.b, NULL, 0, path[k]->b, path[k]->len, CAIRN_EAUTH);
		dec_ok_ead(p.b, ead, len[k], path[k], text[k]);
		assert_int_equal(ratchet_skipped_count(p.b), k < 2 ? 1 : 0);
	}
	/* And the other way, across B's first DH ratchet step. */
	struct msg r0 = enc_ead(p.b, ead, 1, "r0");
	other[0] = ead[0] ^ 0x03;
	dec_fails_ead(p.a, other, 1, r0.b, r0.len, CAIRN_EAUTH);
	dec_fails_ead(p.a, ead, elen, r0.b, r0.len, CAIRN_EAUTH);
	dec_ok_ead(p.a, ead, 1, &r0, "r0");
	pair_free(&p);
}

static void test_max_skip(void **state)
{
	struct pair p;
	pair_new(&p);
	struct msg m, first, at_limit;
	for (int i = 0; i <= RATCHET_MAX_SKIP + 1; i++) {
		m = enc(p.a, "x");
		if (i == 0)
			first = m;
		if (i == RATCHET_MAX_SKIP)
			at_limit = m;
	}
	/* n = 1001 would skip 1001 keys: refused, nothing stored. */
	dec_fails(p.b, m.b, m.len, CAIRN_ELIMIT);
	assert_int_equal(ratchet_skipped_count(p.b), 0);
	/* n = 1000 skips exactly MAX_SKIP. */
	dec_ok(p.b, &at_limit, "x");
	assert_int_equal(ratchet_skipped_count(p.b), RATCHET_MAX_SKIP);
	dec_ok(p.b, &m, "x");
	dec_ok(p.b, &first, "x");
	assert_int_equal(ratchet_skipped_count(p.b), RATCHET_MAX_SKIP - 1);
	pair_free(&p);
}

/* A sends N messages; B decrypts only the last, which stores N - 1 skipped keys. */
static struct msg send_many_deliver_last(struct pair *p, int n, struct msg *first)
{
	struct msg m;
	for (int i = 0; i < n; i++) {
		m = enc(p->a, "y");
		if (i == 0 && first != NULL)
			*first = m;
		if (i == 1 && first != NULL)
			first[1] = m;
	}
	dec_ok(p->b, &m, "y");
	return m;
}

static void test_total_cap(void **state)
{
	struct pair p;
	pair_new(&p);
	struct msg c1[2], c3[2];
	send_many_deliver_last(&p, RATCHET_MAX_SKIP + 1, c1);
	struct msg r = enc(p.b, "r");
	dec_ok(p.a, &r, "r");
	send_many_deliver_last(&p, RATCHET_MAX_SKIP + 1, NULL);
	assert_int_equal(ratchet_skipped_count(p.b), RATCHET_SKIPPED_MAX);
	r = enc(p.b, "r");
	dec_ok(p.a, &r, "r");
	send_many_deliver_last(&p, 3, c3);
	/* Two more keys stored: the two oldest (chain 1, n = 0 and 1) were evicted. */
	assert_int_equal(ratchet_skipped_count(p.b), RATCHET_SKIPPED_MAX);
	dec_fails(p.b, c1[0].b, c1[0].len, CAIRN_EAUTH);
	dec_fails(p.b, c1[1].b, c1[1].len, CAIRN_EAUTH);
	dec_ok(p.b, &c3[0], "y");
	dec_ok(p.b, &c3[1], "y");
	assert_int_equal(ratchet_skipped_count(p.b), RATCHET_SKIPPED_MAX - 2);
	pair_free(&p);
}

static void test_serialize_round_trip(void **state)
{
	struct pair p;
	pair_new(&p);
	struct msg a0 = enc(p.a, "a0"), a1 = enc(p.a, "a1"), a2 = enc(p.a, "a2");
	dec_ok(p.b, &a2, "a2");
	struct msg b0 = enc(p.b, "b0");
	dec_ok(p.a, &b0, "b0");

	/* Both sides go to bytes and back mid-conversation, with skipped keys stored. */
	struct ratchet *sides[2] = {p.a, p.b};
	for (int i = 0; i < 2; i++) {
		size_t len, len2;
		uint8_t *bytes = snap(sides[i], &len);
		struct ratchet *r = NULL;
		assert_int_equal(ratchet_deserialize(&r, bytes, len), 0);
		uint8_t *again = snap(r, &len2);
		assert_int_equal(len, len2);
		assert_memory_equal(bytes, again, len);
		sodium_memzero(bytes, len);
		free(bytes);
		free(again);
		ratchet_free(sides[i]);
		sides[i] = r;
	}
	p.a = sides[0];
	p.b = sides[1];
	assert_int_equal(ratchet_skipped_count(p.b), 2);
	dec_ok(p.b, &a0, "a0");
	dec_ok(p.b, &a1, "a1");
	struct msg a3 = enc(p.a, "a3");
	dec_ok(p.b, &a3, "a3");
	struct msg b1 = enc(p.b, "b1");
	dec_ok(p.a, &b1, "b1");

	/* A fresh inviter state (no chains yet) round-trips too. */
	struct pair q;
	pair_new(&q);
	size_t len;
	uint8_t *bytes = snap(q.b, &len);
	struct ratchet *r = NULL;
	assert_int_equal(ratchet_deserialize(&r, bytes, len), 0);
	struct msg q0 = enc(q.a, "q0");
	dec_ok(r, &q0, "q0");
	ratchet_free(r);
	free(bytes);
	pair_free(&q);
	pair_free(&p);
}

static void deser_fails(const uint8_t *b, size_t len)
{
	struct ratchet *r = (struct ratchet *)(uintptr_t)1;
	assert_int_equal(ratchet_deserialize(&r, b, len), CAIRN_EINVAL);
	assert_null(r);
}

static void test_deserialize_strict(void **state)
{
	struct pair p;
	pair_new(&p);
	struct msg a0 = enc(p.a, "a0"), a1 = enc(p.a, "a1");
	(void)a0;
	dec_ok(p.b, &a1, "a1"); /* one skipped key */
	size_t len;
	uint8_t *b = snap(p.b, &len);
	assert_int_equal(len, RATCHET_STATE_FIXED_LEN + RATCHET_STATE_ENTRY_LEN);
	uint8_t *t = malloc(len + 1);

	for (size_t cut = 0; cut < len; cut++)
		deser_fails(b, cut);
	memcpy(t, b, len);
	t[len] = 0;
	deser_fails(t, len + 1); /* trailing byte */
	memcpy(t, b, len);
	t[0] = 2; /* version */
	deser_fails(t, len);
	memcpy(t, b, len);
	t[1] |= 0x20; /* unknown flag */
	deser_fails(t, len);
	memcpy(t, b, len);
	t[RATCHET_STATE_FIXED_LEN - 1] = 2; /* count says 2, one entry present */
	deser_fails(t, len);
	memcpy(t, b, len);
	t[RATCHET_STATE_FIXED_LEN - 2] = 0xff; /* count over the cap */
	deser_fails(t, len);

	/* The accepter before any reply: CKr absent, so its bytes must be zero. */
	size_t alen;
	uint8_t *ab = snap(p.a, &alen);
	const size_t ckr_off = 2 + 32 + 32 + 2 * 32;
	assert_true(sodium_is_zero(ab + ckr_off, 32));
	ab[ckr_off] = 1;
	deser_fails(ab, alen);
	ab[ckr_off] = 0;
	ab[1] |= 0x04; /* CKr without HKr */
	deser_fails(ab, alen);
	free(ab);
	free(t);
	free(b);
	pair_free(&p);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_conversation),
	    cmocka_unit_test(test_out_of_order),
	    cmocka_unit_test(test_replay),
	    cmocka_unit_test(test_tamper),
	    cmocka_unit_test(test_ead_bound),
	    cmocka_unit_test(test_max_skip),
	    cmocka_unit_test(test_total_cap),
	    cmocka_unit_test(test_serialize_round_trip),
	    cmocka_unit_test(test_deserialize_strict),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
