/* SPDX-License-Identifier: MIT */
/*
 * Integration: the transport cipher (docs/PROTOCOL.md 2.5) against the real cairn-relay. A
 * client that offers AES-256-GCM gets it (on a CPU with AES: the relay's is the same), one
 * told not to offer (as CAIRN_TRANSPORT_CIPHER=chacha does) gets ChaCha20-Poly1305, and
 * envelopes go between the two kinds of connection both ways, through the relay's open and
 * seal of each.
 */
#include <signal.h>
#include <stdio.h>

#include "it_common.h"

static int setup(void **state)
{
	static struct relayproc r;
	if (sodium_init() < 0)
		return -1;
	return it_relay_setup(state, &r, "");
}

/* Connects C offering per T; returns the cipher the handshake settled on. */
static enum noise_cipher_alg connect_with(struct tclient *c, const struct relayproc *r,
                                          enum channel_transport t)
{
	tclient_transport = t;
	assert_int_equal(tclient_connect(c, r->port, r->pub), 0);
	tclient_transport = CHANNEL_TRANSPORT_AUTO;
	const struct cairn_session *s = channel_session(&c->ch);
	assert_non_null(s);
	assert_int_equal(s->send.alg, s->recv.alg);
	return (enum noise_cipher_alg)s->send.alg;
}

/* An owner connected per OWNER_T receives, online, what a sender connected per SENDER_T
 * sends: COUNT envelopes of 1 KiB, each byte checked, and one PING round trip each. */
static void relay_between(const struct relayproc *r, enum channel_transport owner_t,
                          enum channel_transport sender_t, enum noise_cipher_alg want_owner,
                          enum noise_cipher_alg want_sender)
{
	enum { COUNT = 20, SIZE = 1024 };
	struct tclient owner, sender;
	struct owner o;
	assert_int_equal(connect_with(&owner, r, owner_t), want_owner);
	assert_int_equal(connect_with(&sender, r, sender_t), want_sender);
	assert_int_equal(tclient_create(&owner, o.rid, o.sid, o.pk, o.sk), 0);
	assert_int_equal(it_simple(&owner, CAIRN_CMD_SUBSCRIBE, o.rid), 0);
	static uint8_t body[SIZE];
	for (int i = 0; i < COUNT; i++) {
		randombytes_buf(body, sizeof(body));
		assert_int_equal(it_send(&sender, o.sid, NULL, body, sizeof(body)), 0);
		struct cairn_msg env;
		assert_int_equal(tclient_recv(&owner, &env, 5000), 0);
		assert_int_equal(env.type, CAIRN_REPLY_ENVELOPE);
		assert_int_equal(env.envelope_len, sizeof(body));
		assert_memory_equal(env.envelope, body, sizeof(body));
		assert_int_equal(it_ack(&owner, o.rid, env.envelope_id), 0);
	}
	struct cairn_msg ping = {.type = CAIRN_CMD_PING, .request_id = 9}, reply;
	assert_int_equal(tclient_call(&sender, &ping, &reply), 0);
	assert_int_equal(reply.type, CAIRN_REPLY_OK);
	tclient_close(&owner);
	tclient_close(&sender);
}

static void test_aes_and_chacha_connections(void **state)
{
	struct relayproc *r = *state;
	if (!crypto_aead_aes256gcm_is_available())
		skip(); /* no AES here: every connection is ChaCha, as the next test checks */
	relay_between(r, CHANNEL_TRANSPORT_AUTO, CHANNEL_TRANSPORT_AUTO, NOISE_CIPHER_AESGCM,
	              NOISE_CIPHER_AESGCM);
	relay_between(r, CHANNEL_TRANSPORT_AUTO, CHANNEL_TRANSPORT_CHACHA, NOISE_CIPHER_AESGCM,
	              NOISE_CIPHER_CHACHAPOLY);
	relay_between(r, CHANNEL_TRANSPORT_CHACHA, CHANNEL_TRANSPORT_AUTO, NOISE_CIPHER_CHACHAPOLY,
	              NOISE_CIPHER_AESGCM);
}

/* A client that does not offer (an old one, or CAIRN_TRANSPORT_CIPHER=chacha) works as
 * before, on any CPU. */
static void test_chacha_only(void **state)
{
	struct relayproc *r = *state;
	relay_between(r, CHANNEL_TRANSPORT_CHACHA, CHANNEL_TRANSPORT_CHACHA,
	              NOISE_CIPHER_CHACHAPOLY, NOISE_CIPHER_CHACHAPOLY);
	assert_int_equal(channel_transport_parse("chacha"), CHANNEL_TRANSPORT_CHACHA);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_aes_and_chacha_connections),
	    cmocka_unit_test(test_chacha_only),
	};
	return cmocka_run_group_tests(tests, setup, it_relay_teardown);
}
