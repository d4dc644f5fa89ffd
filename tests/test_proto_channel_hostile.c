/* SPDX-License-Identifier: MIT */
/*
 * The protocol channel (proto/channel.h) under hostile input: every refusal of the responder's
 * handshake silent (docs/PROTOCOL.md 2.2), frames with bad lengths, tags and padding, garbage
 * and trailing bytes after the handshake (4, 5.8), and commands of sound structure but wrong
 * content answered with the code 5.1 gives.
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

/* Every refusal is silent (2.2): FAILED, no output, and later input swallowed. */
static void check_silent_failure(struct pair *p, struct seen *s, int error)
{
	assert_int_equal(s->failed, 1);
	assert_int_equal(s->opened, 0);
	if (error != 0)
		assert_int_equal(s->error, error);
	assert_int_equal(channel_state(&p->relay), CHANNEL_FAILED);
	assert_int_equal(channel_output_pending(&p->relay), 0);
	uint8_t junk[100] = {0};
	assert_int_equal(channel_feed(&p->relay, junk, sizeof(junk)), sizeof(junk));
	assert_int_equal(channel_output_pending(&p->relay), 0);
}

static void test_handshake_refusals(void **state)
{
	(void)state;
	struct pair p;
	struct seen s;
	const uint8_t *out;
	uint8_t m1[400];
	size_t l1;

	/* Length outside 57..312 before the body is read. */
	pair_init_ex(&p, 0, 0);
	memset(&s, 0, sizeof(s));
	uint8_t big[2] = {0x01, 0x39}; /* 313 */
	feed(&p, &p.relay, big, 2, 2, &s);
	check_silent_failure(&p, &s, CAIRN_EFRAME);
	pair_free(&p);

	/* A flipped byte: decryption fails. */
	pair_init_ex(&p, 0, 0);
	memset(&s, 0, sizeof(s));
	l1 = channel_output(&p.client, &out);
	memcpy(m1, out, l1);
	m1[l1 - 1] ^= 1;
	feed(&p, &p.relay, m1, l1, l1, &s);
	check_silent_failure(&p, &s, 0);
	pair_free(&p);

	/* The relay's clock 200 s away. */
	pair_init_ex(&p, 0, 0);
	memset(&s, 0, sizeof(s));
	l1 = channel_output(&p.client, &out);
	memcpy(m1, out, l1);
	p.env.now = NOW + 200;
	feed(&p, &p.relay, m1, l1, l1, &s);
	check_silent_failure(&p, &s, CAIRN_ECLOCK);
	pair_free(&p);

	/* A replayed message 1 meets the cache. */
	pair_init_ex(&p, 0, 0);
	memset(&s, 0, sizeof(s));
	l1 = channel_output(&p.client, &out);
	memcpy(m1, out, l1);
	handshake(&p);
	channel_free(&p.relay);
	struct channel_options ro = {.role = CHANNEL_RESPONDER, .now = env_now, .ctx = &p.env};
	assert_int_equal(channel_init(&p.relay, &ro), 0);
	feed(&p, &p.relay, m1, l1, l1, &s);
	check_silent_failure(&p, &s, CAIRN_EREPLAY);
	pair_free(&p);

	/* Bytes after message 1 while message 2 is computed: an initiator cannot send them. */
	pair_init_ex(&p, 0, 0);
	l1 = channel_output(&p.client, &out);
	memcpy(m1, out, l1);
	m1[l1] = 0;
	assert_int_equal(channel_feed(&p.relay, m1, l1 + 1), l1);
	struct channel_event ev;
	assert_int_equal(channel_next_event(&p.relay, &ev), CHANNEL_EV_HELLO);
	/* Until the hello is taken, nothing more is consumed. */
	assert_int_equal(channel_feed(&p.relay, m1 + l1, 1), 0);
	struct channel_hello w;
	assert_int_equal(channel_hello_take(&p.relay, &w), 0);
	assert_int_equal(channel_hello_take(&p.relay, &(struct channel_hello){0}), CAIRN_ESTATE);
	assert_int_equal(channel_hello_respond(&w, p.priv, p.pub), 0);
	assert_int_equal(channel_feed(&p.relay, m1 + l1, 1), 1);
	assert_int_equal(channel_hello_finish(&p.relay, &w, p.cache), CAIRN_ESTATE);
	memset(&s, 0, sizeof(s));
	drain(&p, &p.relay, &s);
	check_silent_failure(&p, &s, CAIRN_EFRAME);
	pair_free(&p);

	/* The client refuses a message 2 not made with the relay's key. */
	pair_init_ex(&p, 0, 0);
	memset(&s, 0, sizeof(s));
	uint8_t fake[2 + CAIRN_HANDSHAKE2_MIN];
	randombytes_buf(fake, sizeof(fake));
	fake[0] = 0;
	fake[1] = CAIRN_HANDSHAKE2_MIN;
	feed(&p, &p.client, fake, sizeof(fake), 5, &s);
	assert_int_equal(s.failed, 1);
	assert_int_equal(channel_queue(&p.client, &(struct cairn_msg){.type = 1}), CAIRN_ESTATE);
	pair_free(&p);
}

/* ---- hostile frames after the handshake ---------------------------------------------- */

/* Seals PLAIN (LEN bytes, the whole plaintext with its header) with C's send cipher. */
static size_t seal_raw(struct channel *c, const uint8_t *plain, size_t len, uint8_t *out)
{
	size_t clen = 0;
	assert_int_equal(noise_cipher_encrypt(&c->session.send, NULL, 0, plain, len, out + 2,
	                                      CAIRN_NOISE_MSG_MAX, &clen),
	                 0);
	out[0] = (uint8_t)(clen >> 8);
	out[1] = (uint8_t)clen;
	return clen + 2;
}

static void test_hostile_frames(void **state)
{
	(void)state;
	static uint8_t plain[1024], wire[2048];
	struct pair p;
	struct seen s;

	/* A length below 18 after the handshake. */
	pair_init_ex(&p, 0, 0);
	handshake(&p);
	memset(&s, 0, sizeof(s));
	uint8_t shorty[2] = {0, 17};
	feed(&p, &p.relay, shorty, 2, 1, &s);
	assert_int_equal(s.failed, 1);
	assert_int_equal(s.error, CAIRN_EFRAME);
	pair_free(&p);

	/* A bad tag. */
	pair_init_ex(&p, 0, 0);
	handshake(&p);
	memset(&s, 0, sizeof(s));
	queue_ping(&p.client, 1);
	assert_int_equal(channel_flush(&p.client), 0);
	const uint8_t *out;
	size_t len = channel_output(&p.client, &out);
	memcpy(wire, out, len);
	wire[len - 1] ^= 0x80;
	feed(&p, &p.relay, wire, len, len, &s);
	assert_int_equal(s.failed, 1);
	assert_int_equal(s.error, CAIRN_EAUTH);
	assert_int_equal(s.n, 0);
	pair_free(&p);

	/* Non-zero padding. */
	pair_init_ex(&p, 0, 0);
	handshake(&p);
	memset(&s, 0, sizeof(s));
	memset(plain, 0, 256);
	plain[1] = 3;
	memcpy(plain + 2, "\x92\x01\x01", 3);
	plain[200] = 1;
	len = seal_raw(&p.client, plain, 256, wire);
	feed(&p, &p.relay, wire, len, len, &s);
	assert_int_equal(s.error, CAIRN_EPADDING);
	assert_int_equal(s.n, 0);
	pair_free(&p);

	/* A content length past the plaintext. */
	pair_init_ex(&p, 0, 0);
	handshake(&p);
	memset(&s, 0, sizeof(s));
	memset(plain, 0, 256);
	plain[0] = 1;
	len = seal_raw(&p.client, plain, 256, wire);
	feed(&p, &p.relay, wire, len, len, &s);
	assert_int_equal(s.error, CAIRN_EPADDING);
	pair_free(&p);

	/* Garbage where a frame should be: a length, then bytes no key made. */
	pair_init_ex(&p, 0, 0);
	handshake(&p);
	memset(&s, 0, sizeof(s));
	randombytes_buf(wire, 300);
	wire[0] = 0;
	wire[1] = 200;
	feed(&p, &p.relay, wire, 300, 300, &s);
	assert_int_equal(s.error, CAIRN_EAUTH);
	pair_free(&p);

	/* Commands, then an unknown one and a malformed SEND (answered, the channel goes on),
	 * then trailing bytes that start an object the frame does not hold (fatal, after the
	 * commands before it ran). */
	pair_init_ex(&p, 0, 0);
	handshake(&p);
	memset(&s, 0, sizeof(s));
	memset(plain, 0, 256);
	const uint8_t content[] = {0x92, 0x01, 0x07,       /* PING 7 */
	                           0x92, 0x63, 0x08,       /* type 99, id 8 */
	                           0x93, 0x08, 0x09, 0xc0, /* SEND 9 with nil: wrong type */
	                           0x92, 0x01, 0x0a,       /* PING 10 */
	                           0x93, 0x01};            /* truncated */
	plain[1] = sizeof(content);
	memcpy(plain + 2, content, sizeof(content));
	len = seal_raw(&p.client, plain, 256, wire);
	feed(&p, &p.relay, wire, len, len, &s);
	assert_int_equal(s.n, 4);
	assert_int_equal(s.bad, 2);
	assert_int_equal(s.ids[0], 7);
	assert_int_equal(s.ids[1], 8);
	assert_int_equal(s.ids[2], 9);
	assert_int_equal(s.ids[3], 10);
	assert_int_equal(s.failed, 1);
	assert_int_equal(s.error, CAIRN_ETRUNCATED);
	pair_free(&p);

	/* A client meets a reply it cannot read: fatal for it. */
	pair_init_ex(&p, 0, 0);
	handshake(&p);
	memset(&s, 0, sizeof(s));
	memset(plain, 0, 256);
	plain[1] = 3;
	memcpy(plain + 2, "\x92\x63\x01", 3);
	len = seal_raw(&p.relay, plain, 256, wire);
	feed(&p, &p.client, wire, len, 3, &s);
	assert_int_equal(s.failed, 1);
	assert_int_equal(s.error, CAIRN_EUNKNOWN);
	pair_free(&p);
}

/* The ERROR code for an oversized SEND is `too big` (5.8), for other wrong types `bad
 * request`. */
static void test_bad_message_codes(void **state)
{
	(void)state;
	struct pair p;
	pair_init_ex(&p, 0, 0);
	handshake(&p);
	static uint8_t plain[CAIRN_FRAME_PLAINTEXT_MAX], wire[CAIRN_NOISE_MSG_MAX + 2];
	size_t envlen = CAIRN_ENVELOPE_MAX + 1;
	uint8_t *q = plain + 2;
	*q++ = 0x95;
	*q++ = 0x08;
	*q++ = 0x03;
	*q++ = 0xc4;
	*q++ = 24;
	memset(q, 1, 24);
	q += 24;
	*q++ = 0xc0;
	*q++ = 0xc6;
	*q++ = (uint8_t)(envlen >> 24);
	*q++ = (uint8_t)(envlen >> 16);
	*q++ = (uint8_t)(envlen >> 8);
	*q++ = (uint8_t)envlen;
	memset(q, 0, envlen);
	q += envlen;
	size_t clen = (size_t)(q - plain - 2);
	plain[0] = (uint8_t)(clen >> 8);
	plain[1] = (uint8_t)clen;
	size_t len = seal_raw(&p.client, plain, clen + 2, wire);
	struct seen s = {0};
	feed(&p, &p.relay, wire, len, len, &s);
	assert_int_equal(s.bad, 1);
	assert_int_equal(s.error, CAIRN_ETOOBIG);
	assert_int_equal(s.failed, 0);
	pair_free(&p);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_handshake_refusals),
	    cmocka_unit_test(test_hostile_frames),
	    cmocka_unit_test(test_bad_message_codes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
