/* SPDX-License-Identifier: MIT */
/*
 * The Cairn handshake (docs/PROTOCOL.md section 2): the published vector, client/relay round
 * trips, every way the relay refuses a message 1 (length, key, garbage, version, clock,
 * replay, full cache) and the replay cache's memory over time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "handshake.h"
#include "mdvec.h"

#define VEC  "handshake/nk"
#define NOW  1767225600u
#define WIN  CAIRN_HELLO_WINDOW_S
#define NK   "Noise_NK_25519_ChaChaPoly_BLAKE2b"
#define MAXM 512

struct relay_keys {
	uint8_t priv[32], pub[32];
};

static void relay_keys_new(struct relay_keys *k)
{
	crypto_box_keypair(k->pub, k->priv);
}

/* Client message 1 with a fresh ephemeral key. */
static size_t hello(struct noise_handshake *hs, const struct relay_keys *k, uint64_t ts, size_t pad,
                    uint8_t out[static MAXM])
{
	size_t len = 0;
	assert_int_equal(cairn_handshake_client_start(hs, k->pub, NULL, ts, pad, out, MAXM, &len),
	                 0);
	return len;
}

static int respond(const struct relay_keys *k, struct replay_cache *cache, uint64_t now,
                   const uint8_t *m1, size_t len1, struct cairn_session *s)
{
	uint8_t out[MAXM];
	size_t outlen = 0;
	int rc = cairn_handshake_relay_respond(k->priv, k->pub, NULL, cache, now, m1, len1, 0, out,
	                                       sizeof(out), &outlen, s);
	if (rc != 0)
		assert_int_equal(outlen, 0);
	return rc;
}

/* One transport message each way between two sessions. */
static void check_sessions_talk(struct cairn_session *client, struct cairn_session *relay)
{
	uint8_t ct[64], pt[64];
	size_t len, plen;
	assert_memory_equal(client->h, relay->h, CAIRN_HASH_LEN);
	assert_int_equal(noise_cipher_encrypt(&client->send, NULL, 0, (const uint8_t *)"ping", 4,
	                                      ct, sizeof(ct), &len),
	                 0);
	assert_int_equal(
	    noise_cipher_decrypt(&relay->recv, NULL, 0, ct, len, pt, sizeof(pt), &plen), 0);
	assert_memory_equal(pt, "ping", 4);
	assert_int_equal(noise_cipher_encrypt(&relay->send, NULL, 0, (const uint8_t *)"pong", 4, ct,
	                                      sizeof(ct), &len),
	                 0);
	assert_int_equal(
	    noise_cipher_decrypt(&client->recv, NULL, 0, ct, len, pt, sizeof(pt), &plen), 0);
	assert_memory_equal(pt, "pong", 4);
	/* Directions are distinct keys: the client cannot read its own message back. */
	assert_int_equal(noise_cipher_encrypt(&client->send, NULL, 0, (const uint8_t *)"x", 1, ct,
	                                      sizeof(ct), &len),
	                 0);
	assert_int_equal(
	    noise_cipher_decrypt(&client->recv, NULL, 0, ct, len, pt, sizeof(pt), &plen),
	    CAIRN_EAUTH);
}

static void test_spec_vector(void **state)
{
	struct relay_keys k;
	uint8_t ce[32], re[32], pub[32], p1[64], p2[64], m1[MAXM], m2[MAXM], h[64];
	uint8_t out1[MAXM], out2[MAXM];
	size_t len1, len2;
	struct noise_handshake hs;
	struct cairn_session cs, rs;

	assert_int_equal(mdvec_hex(VEC, "relay_static_private", k.priv, 32), 32);
	assert_int_equal(mdvec_hex(VEC, "relay_static_public", k.pub, 32), 32);
	assert_int_equal(mdvec_hex(VEC, "client_ephemeral_private", ce, 32), 32);
	assert_int_equal(mdvec_hex(VEC, "relay_ephemeral_private", re, 32), 32);
	uint64_t ts = strtoull(mdvec_str(VEC, "timestamp"), NULL, 10);
	assert_int_equal(ts, NOW);
	size_t plen1 = mdvec_hex(VEC, "payload1", p1, sizeof(p1));
	size_t plen2 = mdvec_hex(VEC, "payload2", p2, sizeof(p2));
	size_t mlen1 = mdvec_hex(VEC, "message1", m1, sizeof(m1));
	size_t mlen2 = mdvec_hex(VEC, "message2", m2, sizeof(m2));
	assert_int_equal(mdvec_hex(VEC, "handshake_hash", h, sizeof(h)), 64);

	/* The key pair is consistent, and the payloads are as section 2.1 lays them out. */
	crypto_scalarmult_base(pub, k.priv);
	assert_memory_equal(pub, k.pub, 32);
	static const uint8_t want_p1[] = {1, 0, 0, 0, 0, 0x69, 0x55, 0xb9, 0, 0, 0, 0};
	static const uint8_t want_p2[] = {1, 0, 0, 0, 0, 0};
	assert_int_equal(plen1, sizeof(want_p1));
	assert_memory_equal(p1, want_p1, plen1);
	assert_int_equal(plen2, sizeof(want_p2));
	assert_memory_equal(p2, want_p2, plen2);
	assert_int_equal(mlen1, 32 + plen1 + 16);
	assert_int_equal(mlen2, 32 + plen2 + 16);

	assert_int_equal(
	    cairn_handshake_client_start(&hs, k.pub, ce, ts, plen1 - 9, out1, sizeof(out1), &len1),
	    0);
	assert_int_equal(len1, mlen1);
	assert_memory_equal(out1, m1, mlen1);
	assert_int_equal(cairn_handshake_relay_respond(k.priv, k.pub, re, NULL, ts, m1, mlen1,
	                                               plen2 - 1, out2, sizeof(out2), &len2, &rs),
	                 0);
	assert_int_equal(len2, mlen2);
	assert_memory_equal(out2, m2, mlen2);
	assert_int_equal(cairn_handshake_client_finish(&hs, m2, mlen2, &cs), 0);
	assert_memory_equal(cs.h, h, 64);
	assert_memory_equal(rs.h, h, 64);
	check_sessions_talk(&cs, &rs);

	/* The relay reads the payload back as the vector states it. */
	struct noise_handshake r;
	uint8_t got[64];
	size_t glen;
	assert_int_equal(noise_handshake_init(&r, NK, NOISE_RESPONDER,
	                                      (const uint8_t *)CAIRN_PROLOGUE, 7, k.priv, NULL,
	                                      NULL, NULL),
	                 0);
	assert_int_equal(noise_handshake_read_message(&r, m1, mlen1, got, sizeof(got), &glen), 0);
	assert_int_equal(glen, plen1);
	assert_memory_equal(got, p1, plen1);
	noise_handshake_wipe(&r);
	cairn_session_wipe(&cs);
	cairn_session_wipe(&rs);
	assert_true(sodium_is_zero((const uint8_t *)&hs, sizeof(hs))); /* finish wiped it */
}

static void test_round_trip(void **state)
{
	struct relay_keys k;
	relay_keys_new(&k);
	struct replay_cache *cache = replay_cache_new(16);
	assert_non_null(cache);
	for (int i = 0; i < 4; i++) {
		struct noise_handshake hs;
		struct cairn_session cs, rs;
		uint8_t m1[MAXM], m2[MAXM];
		size_t len2;
		size_t len1 = hello(&hs, &k, NOW + (uint64_t)i, 17 * (size_t)i, m1);
		assert_int_equal(cairn_handshake_relay_respond(k.priv, k.pub, NULL, cache, NOW, m1,
		                                               len1, 40 * (size_t)i, m2, sizeof(m2),
		                                               &len2, &rs),
		                 0);
		assert_int_equal(cairn_handshake_client_finish(&hs, m2, len2, &cs), 0);
		check_sessions_talk(&cs, &rs);
		cairn_session_wipe(&cs);
		cairn_session_wipe(&rs);
		assert_true(sodium_is_zero((const uint8_t *)&cs, sizeof(cs)));
	}
	replay_cache_free(cache);
}

static void test_padding_sets_lengths(void **state)
{
	struct relay_keys k;
	relay_keys_new(&k);
	uint8_t m1[MAXM], m2[MAXM];
	size_t len2;
	for (size_t pad = 0; pad <= CAIRN_HELLO_PAD_MAX; pad++) {
		struct noise_handshake hs;
		struct cairn_session cs, rs;
		size_t len1 = hello(&hs, &k, NOW, pad, m1);
		assert_int_equal(len1, CAIRN_HANDSHAKE1_MIN + pad);
		size_t pad2 = CAIRN_HELLO_PAD_MAX - pad;
		assert_int_equal(cairn_handshake_relay_respond(k.priv, k.pub, NULL, NULL, NOW, m1,
		                                               len1, pad2, m2, sizeof(m2), &len2,
		                                               &rs),
		                 0);
		assert_int_equal(len2, CAIRN_HANDSHAKE2_MIN + pad2);
		assert_int_equal(cairn_handshake_client_finish(&hs, m2, len2, &cs), 0);
		assert_memory_equal(cs.h, rs.h, CAIRN_HASH_LEN);
	}
	assert_int_equal(CAIRN_HANDSHAKE1_MIN, 57);
	assert_int_equal(CAIRN_HANDSHAKE1_MAX, 312);
	assert_int_equal(CAIRN_HANDSHAKE2_MIN, 49);
	assert_int_equal(CAIRN_HANDSHAKE2_MAX, 304);

	/* Padding beyond 255 is the caller's error on either side. */
	struct noise_handshake hs;
	struct cairn_session rs;
	size_t len = 1;
	assert_int_equal(
	    cairn_handshake_client_start(&hs, k.pub, NULL, NOW, 256, m1, sizeof(m1), &len),
	    CAIRN_EINVAL);
	assert_int_equal(len, 0);
	size_t len1 = hello(&hs, &k, NOW, 0, m1);
	assert_int_equal(cairn_handshake_relay_respond(k.priv, k.pub, NULL, NULL, NOW, m1, len1,
	                                               256, m2, sizeof(m2), &len2, &rs),
	                 CAIRN_EINVAL);
	/* Message 1 needs room for itself. */
	assert_int_equal(cairn_handshake_client_start(&hs, k.pub, NULL, NOW, 10, m1,
	                                              CAIRN_HANDSHAKE1_MIN + 9, &len),
	                 CAIRN_ENOBUFS);
	noise_handshake_wipe(&hs);
}

static void test_replay_rejected(void **state)
{
	struct relay_keys k;
	relay_keys_new(&k);
	struct replay_cache *cache = replay_cache_new(16);
	struct noise_handshake hs;
	struct cairn_session rs;
	uint8_t m1[MAXM];
	size_t len1 = hello(&hs, &k, NOW, 5, m1);
	assert_int_equal(respond(&k, cache, NOW, m1, len1, &rs), 0);
	assert_int_equal(respond(&k, cache, NOW, m1, len1, &rs), CAIRN_EREPLAY);
	assert_true(sodium_is_zero((const uint8_t *)&rs, sizeof(rs)));
	/* Later, while the timestamp is still in the window, still refused. */
	assert_int_equal(respond(&k, cache, NOW + WIN, m1, len1, &rs), CAIRN_EREPLAY);
	/* Without a cache the relay cannot tell (the caller opted out). */
	assert_int_equal(respond(&k, NULL, NOW, m1, len1, &rs), 0);
	noise_handshake_wipe(&hs);
	replay_cache_free(cache);
}

/*
 * The relay's clock jumps (issue 16): the window follows the relay's clock, whatever it did,
 * and a message 1 accepted before a jump is refused after it, whichever way the clock went and
 * however long it takes to come back to that message's time, while other clients' handshakes
 * turn the cache's generations over.
 */
static void test_clock_jumps(void **state)
{
	(void)state;
	struct relay_keys k;
	relay_keys_new(&k);
	struct replay_cache *cache = replay_cache_new(64);
	struct noise_handshake hs;
	struct cairn_session rs;
	uint8_t m1[MAXM], other[MAXM];
	size_t len1 = hello(&hs, &k, NOW, 0, m1);
	assert_int_equal(respond(&k, cache, NOW, m1, len1, &rs), 0);
	const uint64_t day = 86400;

	/* Back a day: a client whose clock says the new time gets in; the captured message is
	 * outside the window (ECLOCK), and stays refused as the clock walks back up to its time
	 * with handshakes along the way (each more than a generation after the last), until
	 * it is in the window again. */
	for (uint64_t t = NOW - day; t < NOW - WIN; t += day / 16) {
		size_t n = hello(&hs, &k, t, 0, other);
		assert_int_equal(respond(&k, cache, t, other, n, &rs), 0);
		assert_int_equal(respond(&k, cache, t, m1, len1, &rs), CAIRN_ECLOCK);
	}
	assert_int_equal(respond(&k, cache, NOW - WIN, m1, len1, &rs), CAIRN_EREPLAY);
	assert_int_equal(respond(&k, cache, NOW + WIN, m1, len1, &rs), CAIRN_EREPLAY);

	/* Forward a day: the new time's clients get in, the old message is out of the window;
	 * put back, it is still refused. */
	size_t n = hello(&hs, &k, NOW + day, 0, other);
	assert_int_equal(respond(&k, cache, NOW + day, other, n, &rs), 0);
	assert_int_equal(respond(&k, cache, NOW + day, m1, len1, &rs), CAIRN_ECLOCK);
	len1 = hello(&hs, &k, NOW + 2 * WIN, 0, m1);
	assert_int_equal(respond(&k, cache, NOW + 2 * WIN, m1, len1, &rs), 0);
	n = hello(&hs, &k, NOW + day + 3 * WIN, 0, other);
	assert_int_equal(respond(&k, cache, NOW + day + 3 * WIN, other, n, &rs), 0);
	assert_int_equal(respond(&k, cache, NOW + 2 * WIN, m1, len1, &rs), CAIRN_EREPLAY);
	noise_handshake_wipe(&hs);
	replay_cache_free(cache);
}

static void test_clock_window(void **state)
{
	struct relay_keys k;
	relay_keys_new(&k);
	struct replay_cache *cache = replay_cache_new(16);
	struct noise_handshake hs;
	struct cairn_session rs;
	uint8_t m1[MAXM];
	size_t len1 = hello(&hs, &k, NOW, 0, m1);
	/* Client clock ahead of the relay, then behind it. */
	assert_int_equal(respond(&k, cache, NOW - WIN - 1, m1, len1, &rs), CAIRN_ECLOCK);
	assert_int_equal(respond(&k, cache, NOW + WIN + 1, m1, len1, &rs), CAIRN_ECLOCK);
	assert_int_equal(respond(&k, cache, 0, m1, len1, &rs), CAIRN_ECLOCK);
	assert_int_equal(respond(&k, cache, UINT64_MAX, m1, len1, &rs), CAIRN_ECLOCK);
	/* A refused message took no cache slot: it is accepted at the edge of the window. */
	assert_int_equal(respond(&k, cache, NOW + WIN, m1, len1, &rs), 0);
	len1 = hello(&hs, &k, NOW, 0, m1);
	assert_int_equal(respond(&k, cache, NOW - WIN, m1, len1, &rs), 0);
	len1 = hello(&hs, &k, UINT64_MAX, 0, m1);
	assert_int_equal(respond(&k, cache, NOW, m1, len1, &rs), CAIRN_ECLOCK);
	len1 = hello(&hs, &k, 0, 0, m1);
	assert_int_equal(respond(&k, cache, NOW, m1, len1, &rs), CAIRN_ECLOCK);
	noise_handshake_wipe(&hs);
	replay_cache_free(cache);
}

/* Message 1 that is valid Noise but carries PAYLOAD (for version and length checks). */
static size_t raw_message1(const struct relay_keys *k, const uint8_t *payload, size_t plen,
                           uint8_t out[static MAXM])
{
	struct noise_handshake hs;
	size_t len;
	assert_int_equal(noise_handshake_init(&hs, NK, NOISE_INITIATOR,
	                                      (const uint8_t *)CAIRN_PROLOGUE, 7, NULL, NULL,
	                                      k->pub, NULL),
	                 0);
	assert_int_equal(noise_handshake_write_message(&hs, payload, plen, out, MAXM, &len), 0);
	noise_handshake_wipe(&hs);
	return len;
}

static void test_bad_message1(void **state)
{
	struct relay_keys k, other;
	relay_keys_new(&k);
	relay_keys_new(&other);
	/* Capacity 1: if any refused message reached the cache, the good one below would not
	 * fit. */
	struct replay_cache *cache = replay_cache_new(1);
	struct noise_handshake hs;
	struct cairn_session rs;
	uint8_t m1[MAXM], bad[MAXM];

	/* Wrong relay key: the client encrypted to someone else. */
	size_t len1 = hello(&hs, &other, NOW, 10, m1);
	assert_int_equal(respond(&k, cache, NOW, m1, len1, &rs), CAIRN_EAUTH);

	/* Garbage of every accepted length, and outside it. */
	for (size_t len = 0; len < sizeof(bad); len++) {
		randombytes_buf(bad, len);
		int want = len < CAIRN_HANDSHAKE1_MIN || len > CAIRN_HANDSHAKE1_MAX ? CAIRN_EFRAME
		                                                                    : CAIRN_EAUTH;
		assert_int_equal(respond(&k, cache, NOW, bad, len, &rs), want);
	}

	/* A low-order (all-zero) ephemeral key is refused like any forgery. */
	memset(bad, 0, sizeof(bad));
	assert_int_equal(respond(&k, cache, NOW, bad, CAIRN_HANDSHAKE1_MIN, &rs), CAIRN_EAUTH);

	/* Truncated and extended versions of a good message. */
	len1 = hello(&hs, &k, NOW, 10, m1);
	assert_int_equal(respond(&k, cache, NOW, m1, len1 - 1, &rs), CAIRN_EAUTH);
	assert_int_equal(respond(&k, cache, NOW, m1, 40, &rs), CAIRN_EFRAME);
	m1[len1] = 0;
	assert_int_equal(respond(&k, cache, NOW, m1, len1 + 1, &rs), CAIRN_EAUTH);
	/* Any flipped byte. */
	for (size_t i = 0; i < len1; i++) {
		memcpy(bad, m1, len1);
		bad[i] ^= 0x80;
		assert_int_equal(respond(&k, cache, NOW, bad, len1, &rs), CAIRN_EAUTH);
	}

	/* Authentic but wrong version, and an authentic payload too short for a timestamp. */
	uint8_t p[CAIRN_HELLO1_FIXED_LEN + 4] = {2, 0, 0, 0, 0, 0x69, 0x55, 0xb9, 0};
	size_t blen = raw_message1(&k, p, sizeof(p), bad);
	assert_int_equal(respond(&k, cache, NOW, bad, blen, &rs), CAIRN_EBADREQ);
	p[0] = 0;
	blen = raw_message1(&k, p, sizeof(p), bad);
	assert_int_equal(respond(&k, cache, NOW, bad, blen, &rs), CAIRN_EBADREQ);
	p[0] = 1;
	blen = raw_message1(&k, p, sizeof(p), bad);
	assert_int_equal(respond(&k, cache, NOW, bad, blen, &rs), 0); /* control */
	blen = raw_message1(&k, p, 8, bad);
	assert_int_equal(respond(&k, NULL, NOW, bad, blen, &rs), CAIRN_EFRAME);

	/* Nonzero padding is ignored on receipt. */
	uint8_t q[CAIRN_HELLO1_FIXED_LEN + 2] = {1, 0, 0, 0, 0, 0x69, 0x55, 0xb9, 0, 0xff, 0xee};
	blen = raw_message1(&k, q, sizeof(q), bad);
	assert_int_equal(respond(&k, NULL, NOW, bad, blen, &rs), 0);

	/* Too little room for message 2 is refused before the cache records anything. */
	struct replay_cache *c2 = replay_cache_new(1);
	uint8_t out[MAXM];
	size_t outlen;
	len1 = hello(&hs, &k, NOW, 0, m1);
	assert_int_equal(cairn_handshake_relay_respond(k.priv, k.pub, NULL, c2, NOW, m1, len1, 3,
	                                               out, CAIRN_HANDSHAKE2_MIN + 2, &outlen, &rs),
	                 CAIRN_ENOBUFS);
	assert_int_equal(cairn_handshake_relay_respond(k.priv, k.pub, NULL, c2, NOW, m1, len1, 3,
	                                               out, CAIRN_HANDSHAKE2_MIN + 3, &outlen, &rs),
	                 0);
	noise_handshake_wipe(&hs);
	replay_cache_free(cache);
	replay_cache_free(c2);
}

static void test_bad_message2(void **state)
{
	struct relay_keys k;
	relay_keys_new(&k);
	struct noise_handshake hs;
	struct cairn_session cs, rs;
	uint8_t m1[MAXM], m2[MAXM], bad[MAXM];
	size_t len2;

	/* A good message 2, then broken copies of it, each against a fresh client state. */
	uint8_t ce[32];
	randombytes_buf(ce, sizeof(ce));
	size_t len1 = 0;
	assert_int_equal(cairn_handshake_client_start(&hs, k.pub, ce, NOW, 0, m1, MAXM, &len1), 0);
	assert_int_equal(cairn_handshake_relay_respond(k.priv, k.pub, NULL, NULL, NOW, m1, len1, 7,
	                                               m2, sizeof(m2), &len2, &rs),
	                 0);
	noise_handshake_wipe(&hs);
	struct {
		size_t len;
		size_t flip; /* byte to flip, or SIZE_MAX */
		int want;
	} cases[] = {
	    {len2 - 1, SIZE_MAX, CAIRN_EAUTH},
	    {len2, 0, CAIRN_EAUTH},
	    {len2, 40, CAIRN_EAUTH},
	    {len2, len2 - 1, CAIRN_EAUTH},
	    {CAIRN_HANDSHAKE2_MIN - 1, SIZE_MAX, CAIRN_EFRAME},
	    {CAIRN_HANDSHAKE2_MAX + 1, SIZE_MAX, CAIRN_EFRAME},
	    {len2, SIZE_MAX, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(bad, 0, sizeof(bad));
		memcpy(bad, m2, len2);
		if (cases[i].flip != SIZE_MAX)
			bad[cases[i].flip] ^= 1;
		assert_int_equal(
		    cairn_handshake_client_start(&hs, k.pub, ce, NOW, 0, m1, MAXM, &len1), 0);
		assert_int_equal(cairn_handshake_client_finish(&hs, bad, cases[i].len, &cs),
		                 cases[i].want);
		/* Either way the handshake state is gone. */
		assert_true(sodium_is_zero((const uint8_t *)&hs, sizeof(hs)));
		if (cases[i].want == 0)
			check_sessions_talk(&cs, &rs);
		else
			assert_true(sodium_is_zero((const uint8_t *)&cs, sizeof(cs)));
	}

	/* A low-order relay ephemeral key. */
	memset(bad, 0, sizeof(bad));
	assert_int_equal(cairn_handshake_client_start(&hs, k.pub, NULL, NOW, 0, m1, MAXM, &len1),
	                 0);
	assert_int_equal(cairn_handshake_client_finish(&hs, bad, CAIRN_HANDSHAKE2_MIN, &cs),
	                 CAIRN_EAUTH);

	/* An authentic message 2 with the wrong version. */
	assert_int_equal(cairn_handshake_client_start(&hs, k.pub, NULL, NOW, 0, m1, MAXM, &len1),
	                 0);
	struct noise_handshake r;
	uint8_t pl[64];
	size_t plen;
	assert_int_equal(noise_handshake_init(&r, NK, NOISE_RESPONDER,
	                                      (const uint8_t *)CAIRN_PROLOGUE, 7, k.priv, NULL,
	                                      NULL, NULL),
	                 0);
	assert_int_equal(noise_handshake_read_message(&r, m1, len1, pl, sizeof(pl), &plen), 0);
	const uint8_t v2[] = {2, 0, 0};
	assert_int_equal(noise_handshake_write_message(&r, v2, sizeof(v2), bad, sizeof(bad), &len2),
	                 0);
	assert_int_equal(cairn_handshake_client_finish(&hs, bad, len2, &cs), CAIRN_EBADREQ);
	assert_true(sodium_is_zero((const uint8_t *)&cs, sizeof(cs)));
	noise_handshake_wipe(&r);
	cairn_session_wipe(&rs);
}

static void key_n(uint8_t key[static 32], unsigned n)
{
	memset(key, 0, 32);
	memcpy(key, &n, sizeof(n));
	key[31] = 0xa5;
}

/* Every key is remembered while it is at most 2 windows old, whatever the rotation phase. */
static void test_replay_cache_memory(void **state)
{
	struct replay_cache *c = replay_cache_new(64);
	assert_non_null(c);
	uint8_t key[32];
	const uint64_t t0 = 1000000, step = 13;
	unsigned n = 0;
	for (uint64_t t = t0; t < t0 + 3000; t += step, n++) {
		key_n(key, n);
		assert_int_equal(replay_cache_add(c, key, t), 0);
		for (unsigned j = 0; j <= n; j++) {
			uint64_t added = t0 + j * step;
			if (t - added > 2 * WIN)
				continue;
			key_n(key, j);
			assert_int_equal(replay_cache_add(c, key, t), CAIRN_EREPLAY);
		}
	}
	replay_cache_free(c);

	/* And forgotten once 4 windows old at most: two generations of 2 windows each. */
	c = replay_cache_new(4);
	key_n(key, 1);
	assert_int_equal(replay_cache_add(c, key, t0), 0);
	assert_int_equal(replay_cache_add(c, key, t0 + 2 * WIN), CAIRN_EREPLAY);
	assert_int_equal(replay_cache_add(c, key, t0 + 4 * WIN - 1), CAIRN_EREPLAY);
	assert_int_equal(replay_cache_add(c, key, t0 + 4 * WIN), 0);
	/* A long idle gap (or a step forward) rotates once: the newest generation stays for one
	 * more, so that a clock put back still finds its keys; the next rotation forgets it. */
	assert_int_equal(replay_cache_add(c, key, t0 + 100 * WIN), CAIRN_EREPLAY);
	assert_int_equal(replay_cache_add(c, key, t0 + 4 * WIN), CAIRN_EREPLAY);
	assert_int_equal(replay_cache_add(c, key, t0 + 102 * WIN), 0);
	/* A clock stepping back keeps keys rather than dropping them. */
	assert_int_equal(replay_cache_add(c, key, t0), CAIRN_EREPLAY);
	assert_int_equal(replay_cache_add(c, key, t0 + 2 * WIN - 1), CAIRN_EREPLAY);
	replay_cache_free(c);

	/* Tables grow from a small start as keys arrive (here 1024 slots to 8192) and keep every
	 * key through each doubling and through the early rotation a full generation causes. A
	 * table doubles only past three quarters full: 768 keys in 1024 slots, 769 in 2048. */
	c = replay_cache_new(5000);
	assert_int_equal(replay_cache_slots(c), 1024);
	for (unsigned i = 0; i < 5000; i++) {
		key_n(key, i);
		assert_int_equal(replay_cache_add(c, key, t0), 0);
		if (i + 1 == 768 || i + 1 == 769)
			assert_int_equal(replay_cache_slots(c), i + 1 == 768 ? 1024 : 2048);
	}
	assert_int_equal(replay_cache_slots(c), 8192); /* 4/3 of 5000 is 6667 */
	key_n(key, 5000);
	assert_int_equal(replay_cache_add(c, key, t0), 0);
	for (unsigned i = 0; i <= 5000; i++) {
		key_n(key, i);
		assert_int_equal(replay_cache_add(c, key, t0 + 1), CAIRN_EREPLAY);
	}
	replay_cache_free(c);
}

static void test_replay_cache_full(void **state)
{
	assert_null(replay_cache_new(0));
	replay_cache_free(NULL);
	struct replay_cache *c = replay_cache_new(3);
	assert_non_null(c);
	uint8_t key[32];
	for (unsigned i = 0; i < 3; i++) {
		key_n(key, i);
		assert_int_equal(replay_cache_add(c, key, NOW), 0);
	}
	/* Full: the next generation starts at once and the older one is forgotten; the keys of
	 * the full one are still refused. */
	key_n(key, 3);
	assert_int_equal(replay_cache_add(c, key, NOW), 0);
	for (unsigned i = 0; i <= 3; i++) {
		key_n(key, i);
		assert_int_equal(replay_cache_add(c, key, NOW), CAIRN_EREPLAY);
	}
	for (unsigned i = 4; i < 6; i++) {
		key_n(key, i);
		assert_int_equal(replay_cache_add(c, key, NOW), 0);
	}
	/* Key 6 fills the generation holding 3..5: 0..2 are forgotten, 3..5 still known. */
	key_n(key, 6);
	assert_int_equal(replay_cache_add(c, key, NOW), 0);
	key_n(key, 0);
	assert_int_equal(replay_cache_add(c, key, NOW), 0);
	key_n(key, 4);
	assert_int_equal(replay_cache_add(c, key, NOW), CAIRN_EREPLAY);
	replay_cache_free(c);

	/* Through the relay: a full cache never refuses a new client. */
	struct relay_keys k;
	relay_keys_new(&k);
	c = replay_cache_new(1);
	struct noise_handshake hs;
	struct cairn_session rs;
	uint8_t m1[MAXM];
	for (int i = 0; i < 3; i++) {
		size_t len1 = hello(&hs, &k, NOW, 0, m1);
		assert_int_equal(respond(&k, c, NOW, m1, len1, &rs), 0);
	}
	noise_handshake_wipe(&hs);
	replay_cache_free(c);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_spec_vector),          cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_padding_sets_lengths), cmocka_unit_test(test_replay_rejected),
	    cmocka_unit_test(test_clock_window),         cmocka_unit_test(test_bad_message1),
	    cmocka_unit_test(test_bad_message2),         cmocka_unit_test(test_replay_cache_memory),
	    cmocka_unit_test(test_replay_cache_full),    cmocka_unit_test(test_clock_jumps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
