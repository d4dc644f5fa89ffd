/* SPDX-License-Identifier: MIT */
/*
 * The transport cipher through the protocol channel (docs/PROTOCOL.md 2.5; its vector is
 * checked through the channel in test_proto_channel): AES-256-GCM when both sides have it,
 * ChaCha20-Poly1305 when the relay's CPU lacks it (the availability check overridden), when the
 * client's does, or when the client is told not to offer (CAIRN_TRANSPORT_CIPHER=chacha); and a
 * frame sealed with the other cipher fails the channel.
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

/* Opens P: its client sees AES as CLIENT_AES and its relay as RELAY_AES (the override, read
 * at channel_init), the client with transport CLIENT_T; runs the handshake. */
static void pair_open(struct pair *p, int client_aes, int relay_aes,
                      enum channel_transport client_t)
{
	memset(p, 0, sizeof(*p));
	p->env.now = NOW;
	crypto_box_keypair(p->pub, p->priv);
	struct channel_options co = {.role = CHANNEL_INITIATOR,
	                             .relay_public = p->pub,
	                             .now = env_now,
	                             .uniform = env_uniform,
	                             .ctx = &p->env,
	                             .transport = client_t};
	struct channel_options ro = {
	    .role = CHANNEL_RESPONDER, .now = env_now, .uniform = env_uniform, .ctx = &p->env};
	noise_aesgcm_set_available(client_aes);
	assert_int_equal(channel_init(&p->client, &co), 0);
	noise_aesgcm_set_available(relay_aes);
	assert_int_equal(channel_init(&p->relay, &ro), 0);
	noise_aesgcm_set_available(-1);
	p->cache = replay_cache_new(64);
	assert_non_null(p->cache);
	handshake(p);
}

/* A pair opened as pair_open says, then a PING each way. Returns the cipher both sessions
 * agreed on. */
static enum noise_cipher_alg run_pair(int client_aes, int relay_aes,
                                      enum channel_transport client_t)
{
	struct pair p;
	pair_open(&p, client_aes, relay_aes, client_t);
	const struct cairn_session *cs = channel_session(&p.client);
	const struct cairn_session *rs = channel_session(&p.relay);
	assert_non_null(cs);
	assert_non_null(rs);
	enum noise_cipher_alg alg = cs->send.alg;
	assert_int_equal(cs->recv.alg, alg);
	assert_int_equal(rs->send.alg, alg);
	assert_int_equal(rs->recv.alg, alg);

	for (uint32_t id = 11; id <= 12; id++) {
		struct channel *from = id == 11 ? &p.client : &p.relay;
		struct channel *to = id == 11 ? &p.relay : &p.client;
		struct seen seen = {0};
		queue_ping(from, id);
		assert_int_equal(channel_flush(from), 0);
		pump(&p, from, to, 4096, &seen);
		assert_int_equal(seen.failed, 0);
		assert_int_equal(seen.n, 1);
		assert_int_equal(seen.ids[0], id);
	}
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

/* A relay that opens with the other cipher than the client seals with fails the channel
 * (3: fatal), in both directions of the mistake. */
static void test_wrong_cipher_fails_channel(void **state)
{
	(void)state;
	need_aes();
	for (int aes_session = 0; aes_session < 2; aes_session++) {
		struct pair p;
		pair_open(&p, 1, 1,
		          aes_session ? CHANNEL_TRANSPORT_AUTO : CHANNEL_TRANSPORT_CHACHA);
		enum noise_cipher_alg want =
		    aes_session ? NOISE_CIPHER_AESGCM : NOISE_CIPHER_CHACHAPOLY;
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
	    cmocka_unit_test_teardown(test_wrong_cipher_fails_channel, teardown_each),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
