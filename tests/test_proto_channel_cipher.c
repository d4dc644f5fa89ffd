/* SPDX-License-Identifier: MIT */
/*
 * The transport cipher through the protocol channel (docs/PROTOCOL.md 2.5): the vector
 * handshake/nk-aesgcm as a client and a relay channel write it, AES-256-GCM when both sides
 * have it, ChaCha20-Poly1305 when the relay's CPU lacks it (the availability check
 * overridden), when the client's does, or when the client is told not to offer
 * (CAIRN_TRANSPORT_CIPHER=chacha); and a frame sealed with the other cipher fails the channel.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "chanpair.h"
#include "mdvec.h"

static int setup(void **state)
{
	(void)state;
	return sodium_init() < 0 ? -1 : 0;
}

static int teardown_each(void **state)
{
	(void)state;
	noise_aesgcm_set_available(-1);
	return 0;
}

static void need_aes(void)
{
	if (!crypto_aead_aes256gcm_is_available())
		skip();
}

/*
 * A pair whose client sees AES as CLIENT_AES and relay as RELAY_AES (the override, read at
 * channel_init), the client with transport CLIENT_T; runs the handshake and a PING each way.
 * Returns the cipher both sessions agreed on.
 */
static enum noise_cipher_alg run_pair(int client_aes, int relay_aes,
                                      enum channel_transport client_t)
{
	struct pair p;
	memset(&p, 0, sizeof(p));
	p.env.now = NOW;
	crypto_box_keypair(p.pub, p.priv);
	struct channel_options co = {.role = CHANNEL_INITIATOR,
	                             .relay_public = p.pub,
	                             .now = env_now,
	                             .uniform = env_uniform,
	                             .ctx = &p.env,
	                             .transport = client_t};
	struct channel_options ro = {
	    .role = CHANNEL_RESPONDER, .now = env_now, .uniform = env_uniform, .ctx = &p.env};
	noise_aesgcm_set_available(client_aes);
	assert_int_equal(channel_init(&p.client, &co), 0);
	noise_aesgcm_set_available(relay_aes);
	assert_int_equal(channel_init(&p.relay, &ro), 0);
	noise_aesgcm_set_available(-1);
	p.cache = replay_cache_new(64);
	assert_non_null(p.cache);
	handshake(&p);

	const struct cairn_session *cs = channel_session(&p.client);
	const struct cairn_session *rs = channel_session(&p.relay);
	assert_non_null(cs);
	assert_non_null(rs);
	enum noise_cipher_alg alg = cs->send.alg;
	assert_int_equal(cs->recv.alg, alg);
	assert_int_equal(rs->send.alg, alg);
	assert_int_equal(rs->recv.alg, alg);

	struct seen sc = {0}, sr = {0};
	queue_ping(&p.client, 11);
	assert_int_equal(channel_flush(&p.client), 0);
	pump(&p, &p.client, &p.relay, 4096, &sr);
	assert_int_equal(sr.failed, 0);
	assert_int_equal(sr.n, 1);
	assert_int_equal(sr.ids[0], 11);
	queue_ping(&p.relay, 12);
	assert_int_equal(channel_flush(&p.relay), 0);
	pump(&p, &p.relay, &p.client, 4096, &sc);
	assert_int_equal(sc.failed, 0);
	assert_int_equal(sc.n, 1);
	assert_int_equal(sc.ids[0], 12);
	pair_free(&p);
	return alg;
}

static void test_negotiated(void **state)
{
	(void)state;
	need_aes();
	assert_int_equal(run_pair(1, 1, CHANNEL_TRANSPORT_AUTO), NOISE_CIPHER_AESGCM);
	/* The relay's CPU lacks AES: it chooses ChaCha for a client that offered. */
	assert_int_equal(run_pair(1, 0, CHANNEL_TRANSPORT_AUTO), NOISE_CIPHER_CHACHAPOLY);
	/* The client's CPU lacks it: no offer. */
	assert_int_equal(run_pair(0, 1, CHANNEL_TRANSPORT_AUTO), NOISE_CIPHER_CHACHAPOLY);
	/* Told not to offer (CAIRN_TRANSPORT_CIPHER=chacha). */
	assert_int_equal(run_pair(1, 1, channel_transport_parse("chacha")),
	                 NOISE_CIPHER_CHACHAPOLY);
	assert_int_equal(channel_transport_parse(NULL), CHANNEL_TRANSPORT_AUTO);
	assert_int_equal(channel_transport_parse("aes"), CHANNEL_TRANSPORT_AUTO);
}

/* The vector's message 1 and 2 as the channels write them: padding lengths 2 and 4 from the
 * script become 3 and 5, the offer and the choice taking the first byte. */
static void test_vector_through_channel(void **state)
{
	(void)state;
	need_aes();
	const char *v = "handshake/nk-aesgcm";
	uint8_t rpriv[32], rpub[32], ce[32], re[32], m1[512], m2[512], h[64];
	mdvec_hex(v, "relay_static_private", rpriv, 32);
	mdvec_hex(v, "relay_static_public", rpub, 32);
	mdvec_hex(v, "client_ephemeral_private", ce, 32);
	mdvec_hex(v, "relay_ephemeral_private", re, 32);
	size_t l1 = mdvec_hex(v, "message1", m1, sizeof(m1));
	size_t l2 = mdvec_hex(v, "message2", m2, sizeof(m2));
	mdvec_hex(v, "handshake_hash", h, 64);

	struct env ce_env = {.now = NOW, .pads = {2}, .npads = 1};
	struct env re_env = {.now = NOW, .pads = {4}, .npads = 1};
	struct channel c, r;
	struct channel_options co = {.role = CHANNEL_INITIATOR,
	                             .relay_public = rpub,
	                             .now = env_now,
	                             .uniform = env_uniform,
	                             .ctx = &ce_env,
	                             .ephemeral = ce};
	struct channel_options ro = {.role = CHANNEL_RESPONDER,
	                             .now = env_now,
	                             .uniform = env_uniform,
	                             .ctx = &re_env,
	                             .ephemeral = re};
	assert_int_equal(channel_init(&c, &co), 0);
	assert_int_equal(channel_init(&r, &ro), 0);
	const uint8_t *out;
	size_t len = channel_output(&c, &out);
	assert_int_equal(len, 2 + l1);
	assert_memory_equal(out + 2, m1, l1);
	assert_int_equal(channel_feed(&r, out, len), len);
	channel_output_consume(&c, len);
	assert_int_equal(channel_accept(&r, rpriv, rpub, NULL), 0);
	len = channel_output(&r, &out);
	assert_int_equal(len, 2 + l2);
	assert_memory_equal(out + 2, m2, l2);
	assert_int_equal(channel_feed(&c, out, len), len);
	struct channel_event ev;
	assert_int_equal(channel_next_event(&c, &ev), CHANNEL_EV_OPEN);
	assert_memory_equal(channel_session(&c)->h, h, 64);
	assert_int_equal(channel_session(&c)->send.alg, NOISE_CIPHER_AESGCM);
	assert_int_equal(channel_session(&r)->recv.alg, NOISE_CIPHER_AESGCM);
	channel_free(&c);
	channel_free(&r);
}

/* A relay that opens with the other cipher than the client seals with fails the channel
 * (3: fatal), in both directions of the mistake. */
static void test_wrong_cipher_fails_channel(void **state)
{
	(void)state;
	need_aes();
	for (int aes_session = 0; aes_session < 2; aes_session++) {
		struct pair p;
		pair_init_ex(&p, 0, 0);
		if (!aes_session) {
			channel_free(&p.client);
			struct channel_options co = {.role = CHANNEL_INITIATOR,
			                             .relay_public = p.pub,
			                             .now = env_now,
			                             .uniform = env_uniform,
			                             .ctx = &p.env,
			                             .transport = CHANNEL_TRANSPORT_CHACHA};
			assert_int_equal(channel_init(&p.client, &co), 0);
		}
		handshake(&p);
		enum noise_cipher_alg want = aes_session ? NOISE_CIPHER_AESGCM : NOISE_CIPHER_CHACHAPOLY;
		assert_int_equal(channel_session(&p.client)->send.alg, want);
		noise_cipher_set_alg(&p.relay.session.recv,
		                     aes_session ? NOISE_CIPHER_CHACHAPOLY : NOISE_CIPHER_AESGCM);
		struct seen sr = {0};
		queue_ping(&p.client, 5);
		assert_int_equal(channel_flush(&p.client), 0);
		pump(&p, &p.client, &p.relay, 4096, &sr);
		assert_int_equal(sr.n, 0);
		assert_int_equal(sr.failed, 1);
		assert_int_equal(sr.error, CAIRN_EAUTH);
		pair_free(&p);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_negotiated, teardown_each),
	    cmocka_unit_test_teardown(test_vector_through_channel, teardown_each),
	    cmocka_unit_test_teardown(test_wrong_cipher_fails_channel, teardown_each),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
