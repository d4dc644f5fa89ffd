/* SPDX-License-Identifier: MIT */
/*
 * The protocol channel (proto/channel.h): a client and a relay channel talking in memory
 * (handshake, batches, a full batch split into frames, a fixed frame size, every bucket), the
 * published vectors of docs/PROTOCOL.md 2.4 and 4.2 through the channel, and hostile input
 * (bad lengths, tags and padding, dribbled bytes, garbage, trailing bytes) with the outcome
 * sections 2.2, 4 and 5.8 give for each.
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

/* ---- vectors ------------------------------------------------------------------------ */

/*
 * Vector V's handshake as a client and a relay channel write it, with transport T on both
 * sides and the scripted padding lengths PAD1 and PAD2 (each + 1 when an offer or a choice
 * takes the first padding byte, 2.5); returns the cipher the client's session uses.
 */
static enum noise_cipher_alg vector_handshake(const char *v, enum channel_transport t,
                                              uint32_t pad1, uint32_t pad2)
{
	uint8_t rpriv[32], rpub[32], ce[32], re[32], m1[512], m2[512], h[64];
	mdvec_hex(v, "relay_static_private", rpriv, 32);
	mdvec_hex(v, "relay_static_public", rpub, 32);
	mdvec_hex(v, "client_ephemeral_private", ce, 32);
	mdvec_hex(v, "relay_ephemeral_private", re, 32);
	size_t l1 = mdvec_hex(v, "message1", m1, sizeof(m1));
	size_t l2 = mdvec_hex(v, "message2", m2, sizeof(m2));
	mdvec_hex(v, "handshake_hash", h, 64);

	struct env ce_env = {.now = NOW, .pads = {pad1}, .npads = 1};
	struct env re_env = {.now = NOW, .pads = {pad2}, .npads = 1};
	struct channel c, r;
	struct channel_options co = {.role = CHANNEL_INITIATOR,
	                             .relay_public = rpub,
	                             .now = env_now,
	                             .uniform = env_uniform,
	                             .ctx = &ce_env,
	                             .ephemeral = ce,
	                             .transport = t};
	struct channel_options ro = {.role = CHANNEL_RESPONDER,
	                             .now = env_now,
	                             .uniform = env_uniform,
	                             .ctx = &re_env,
	                             .ephemeral = re,
	                             .transport = t};
	assert_int_equal(channel_init(&c, &co), 0);
	assert_int_equal(channel_init(&r, &ro), 0);

	const uint8_t *out;
	size_t len = channel_output(&c, &out);
	assert_int_equal(len, 2 + l1);
	assert_int_equal(out[0] << 8 | out[1], l1);
	assert_memory_equal(out + 2, m1, l1);
	assert_int_equal(channel_feed(&r, out, len), len);
	channel_output_consume(&c, len);

	/* Message 2 computed as the relay does it: taken, answered, installed. */
	struct channel_event ev;
	assert_int_equal(channel_next_event(&r, &ev), CHANNEL_EV_HELLO);
	struct channel_hello w;
	assert_int_equal(channel_hello_take(&r, &w), 0);
	assert_int_equal(channel_state(&r), CHANNEL_HELLO_PENDING);
	assert_int_equal(channel_next_event(&r, &ev), CHANNEL_EV_NONE);
	assert_int_equal(channel_hello_respond(&w, rpriv, rpub), 0);
	assert_int_equal(channel_hello_finish(&r, &w, NULL), 0);
	assert_int_equal(channel_next_event(&r, &ev), CHANNEL_EV_OPEN);
	len = channel_output(&r, &out);
	assert_int_equal(len, 2 + l2);
	assert_memory_equal(out + 2, m2, l2);
	assert_memory_equal(channel_session(&r)->h, h, 64);

	assert_int_equal(channel_feed(&c, out, len), len);
	assert_int_equal(channel_next_event(&c, &ev), CHANNEL_EV_OPEN);
	assert_memory_equal(channel_session(&c)->h, h, 64);
	enum noise_cipher_alg alg = channel_session(&c)->send.alg;
	assert_int_equal(channel_session(&r)->recv.alg, alg);
	channel_free(&c);
	channel_free(&r);
	return alg;
}

static void test_vector_handshake(void **state)
{
	(void)state;
	/* As 2.4: no offer. */
	assert_int_equal(vector_handshake("handshake/nk", CHANNEL_TRANSPORT_CHACHA, 3, 5),
	                 NOISE_CIPHER_CHACHAPOLY);
	/* As 2.5, where this CPU has AES: padding 2 and 4 from the script become 3 and 5. */
	if (crypto_aead_aes256gcm_is_available())
		assert_int_equal(
		    vector_handshake("handshake/nk-aesgcm", CHANNEL_TRANSPORT_AUTO, 2, 4),
		    NOISE_CIPHER_AESGCM);
}

static void test_vector_frame(void **state)
{
	(void)state;
	struct pair p;
	pair_init_ex(&p, 0, 0);
	handshake(&p);
	uint8_t key[32], frame[512];
	mdvec_hex("frame/ping", "send_key", key, 32);
	size_t flen = mdvec_hex("frame/ping", "frame", frame, sizeof(frame));
	noise_cipher_init(&p.client.session.send, key);
	noise_cipher_init(&p.relay.session.recv, key);

	queue_ping(&p.client, 0);
	assert_int_equal(channel_output_pending(&p.client), 3);
	assert_int_equal(channel_flush(&p.client), 0);
	const uint8_t *out;
	assert_int_equal(channel_output(&p.client, &out), flen);
	assert_memory_equal(out, frame, flen);

	struct seen s = {0};
	feed(&p, &p.relay, frame, flen, flen, &s);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.types[0], CAIRN_CMD_PING);
	assert_int_equal(s.ids[0], 0);
	pair_free(&p);
}

/* ---- talking ------------------------------------------------------------------------ */

static void test_batch_one_frame(void **state)
{
	(void)state;
	struct pair p;
	pair_init_ex(&p, 0, 0);
	handshake(&p);
	for (uint32_t i = 1; i <= 10; i++)
		queue_ping(&p.client, i);
	assert_int_equal(channel_flush(&p.client), 0);
	const uint8_t *out;
	size_t len = channel_output(&p.client, &out);
	assert_int_equal(count_frames(out, len, 0), 1);

	struct seen s = {0};
	pump(&p, &p.client, &p.relay, 65536, &s);
	assert_int_equal(s.n, 10);
	for (unsigned i = 0; i < 10; i++)
		assert_int_equal(s.ids[i], i + 1);

	/* And back: an OK for each, in one frame too. */
	for (uint32_t i = 1; i <= 10; i++) {
		struct cairn_msg ok = {.type = CAIRN_REPLY_OK, .request_id = i};
		assert_int_equal(channel_queue(&p.relay, &ok), 0);
	}
	assert_int_equal(channel_flush(&p.relay), 0);
	struct seen c = {0};
	pump(&p, &p.relay, &p.client, 100, &c);
	assert_int_equal(c.n, 10);
	assert_int_equal(c.types[9], CAIRN_REPLY_OK);
	pair_free(&p);
}

/* Queue N DELIVERs of 1 KiB on the relay's side of P and flush: the sealed bytes' length. */
static size_t flush_delivers(struct pair *p, unsigned n)
{
	static uint8_t env[1024];
	for (unsigned i = 0; i < n; i++) {
		struct cairn_msg m = {.type = CAIRN_REPLY_ENVELOPE,
		                      .request_id = 1,
		                      .envelope_id = i + 1,
		                      .envelope = env,
		                      .envelope_len = sizeof(env)};
		assert_int_equal(channel_queue(&p->relay, &m), 0);
	}
	assert_int_equal(channel_flush(&p->relay), 0);
	const uint8_t *out;
	size_t len = channel_output(&p->relay, &out);
	(void)count_frames(out, len, 0);
	channel_output_consume(&p->relay, len);
	return len;
}

/* One message is sealed as it is, in the smallest bucket that holds it; several are cut
 * where padding wastes least (4.2): five 1 KiB DELIVERs go as two 4,096-byte frames (four
 * and one), not one of 16,896. */
static void test_batch_cut(void **state)
{
	(void)state;
	struct pair p;
	pair_init_ex(&p, 0, 0);
	handshake(&p);
	const uint8_t *out;
	channel_output_consume(&p.relay, channel_output(&p.relay, &out));
	assert_int_equal(flush_delivers(&p, 1), 4114);
	assert_int_equal(p.relay.frames_out, 1);
	assert_int_equal(flush_delivers(&p, 5), 2 * 4114);
	assert_int_equal(p.relay.frames_out, 3);
	pair_free(&p);
}

/* A batch larger than one frame: split at message boundaries, all in order, every frame a
 * bucket size, fed in odd-sized pieces. */
static void test_split_full_batch(void **state)
{
	(void)state;
	struct pair p;
	pair_init_ex(&p, 0, 0);
	handshake(&p);
	static uint8_t env[CAIRN_ENVELOPE_MAX];
	randombytes_buf(env, sizeof(env));
	uint8_t sid[CAIRN_MAILBOX_ID_LEN] = {1};
	size_t sizes[] = {1000, 5000, 16384, 100, 12000, 3000, 16000, 0, 900};
	unsigned n = 0;
	for (unsigned round = 0; round < 6; round++)
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			struct cairn_msg m = {.type = CAIRN_CMD_SEND,
			                      .request_id = ++n,
			                      .sender_id = sid,
			                      .envelope = env,
			                      .envelope_len = sizes[i]};
			if (m.envelope_len > CAIRN_ENVELOPE_MAX)
				m.envelope_len = CAIRN_ENVELOPE_MAX;
			assert_int_equal(channel_queue(&p.client, &m), 0);
		}
	assert_int_equal(channel_flush(&p.client), 0);
	assert_int_equal(channel_output_pending(&p.client),
	                 channel_output(&p.client, &(const uint8_t *){0}));
	const uint8_t *out;
	size_t len = channel_output(&p.client, &out);
	unsigned frames = count_frames(out, len, 0);
	assert_true(frames > 4);
	assert_int_equal(p.client.frames_out, frames);

	struct seen s = {0};
	pump(&p, &p.client, &p.relay, 7777, &s);
	assert_int_equal(s.failed, 0);
	assert_int_equal(s.n, n);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(s.ids[i], i + 1);
		size_t want = sizes[i % (sizeof(sizes) / sizeof(sizes[0]))];
		assert_int_equal(s.env_len[i],
		                 want > CAIRN_ENVELOPE_MAX ? CAIRN_ENVELOPE_MAX : want);
	}
	assert_int_equal(p.relay.frames_in, frames);
	pair_free(&p);
}

static void test_fixed_frame_size(void **state)
{
	(void)state;
	struct pair p;
	pair_init_ex(&p, 0, CAIRN_FRAME_FIXED_MIN);
	handshake(&p);
	static uint8_t env[8000];
	memset(env, 0xab, sizeof(env));
	unsigned n = 0;
	for (; n < 9; n++) {
		struct cairn_msg m = {.type = CAIRN_REPLY_ENVELOPE,
		                      .request_id = 5,
		                      .envelope_id = n,
		                      .envelope = env,
		                      .envelope_len = 7000};
		assert_int_equal(channel_queue(&p.relay, &m), 0);
	}
	queue_ping(&p.relay, 0); /* a PING from the relay: the client decodes it all the same */
	assert_int_equal(channel_flush(&p.relay), 0);
	const uint8_t *out;
	size_t len = channel_output(&p.relay, &out);
	/* Two envelopes of ~7 KB per 16896-byte frame. */
	assert_int_equal(count_frames(out, len, CAIRN_FRAME_FIXED_MIN), 5);
	struct seen s = {0};
	pump(&p, &p.relay, &p.client, 1000, &s);
	assert_int_equal(s.n, 10);
	assert_int_equal(s.env_len[8], 7000);
	pair_free(&p);
}

/* Each bucket is reached, and the frame on the wire has that bucket's size. */
static void test_every_bucket(void **state)
{
	(void)state;
	struct pair p;
	pair_init_ex(&p, 0, 0);
	handshake(&p);
	static uint8_t env[CAIRN_ENVELOPE_MAX];
	uint8_t sid[CAIRN_MAILBOX_ID_LEN] = {2};
	/* The largest bucket takes four full-sized SENDs, which fill it past 7/8. */
	size_t lens[] = {10, 500, 2000, 10000, 16000};
	unsigned count[] = {1, 1, 1, 1, 4};
	size_t wires[] = {274, 1042, 4114, 16914, 65537};
	for (size_t i = 0; i < 5; i++) {
		for (unsigned k = 0; k < count[i]; k++) {
			struct cairn_msg m = {.type = CAIRN_CMD_SEND,
			                      .request_id = (uint32_t)i,
			                      .sender_id = sid,
			                      .envelope = env,
			                      .envelope_len = lens[i]};
			assert_int_equal(channel_queue(&p.client, &m), 0);
		}
		assert_int_equal(channel_flush(&p.client), 0);
		const uint8_t *out;
		assert_int_equal(channel_output(&p.client, &out), wires[i]);
		struct seen s = {0};
		pump(&p, &p.client, &p.relay, 65536, &s);
		assert_int_equal(s.n, count[i]);
		assert_int_equal(s.env_len[0], lens[i]);
	}
	/* An empty frame is cover traffic: no event. */
	uint8_t cover[300];
	size_t clen = 0;
	assert_int_equal(
	    frame_seal(&p.client.session.send, NULL, 0, 0, cover, sizeof(cover), &clen), 0);
	struct seen s = {0};
	feed(&p, &p.relay, cover, clen, clen, &s);
	assert_int_equal(s.n + s.failed, 0);
	pair_free(&p);
}

/* The whole conversation dribbled a byte at a time gives the same events. */
static void test_dribble(void **state)
{
	(void)state;
	struct pair p;
	pair_init_ex(&p, 0, 0);
	struct seen rs = {0}, cs = {0};
	pump(&p, &p.client, &p.relay, 1, &rs);
	pump(&p, &p.relay, &p.client, 1, &cs);
	assert_int_equal(rs.opened + cs.opened, 2);
	for (uint32_t i = 1; i <= 3; i++)
		queue_ping(&p.client, i);
	assert_int_equal(channel_flush(&p.client), 0);
	queue_ping(&p.client, 4);
	assert_int_equal(channel_flush(&p.client), 0);
	pump(&p, &p.client, &p.relay, 1, &rs);
	assert_int_equal(rs.n, 4);
	assert_int_equal(rs.ids[3], 4);
	/* A frame half received holds no more memory than the bytes that came. */
	assert_true(channel_memory(&p.relay) < 70000);
	pair_free(&p);
}

/* ---- the responder's handshake -------------------------------------------------------- */

/* Output stops at its bound; swapping the buffer out hands the bytes over whole. */
static void test_output_bound(void **state)
{
	(void)state;
	struct pair p;
	pair_init_ex(&p, 0, 0);
	handshake(&p);
	p.relay.output_max = 2000;
	static uint8_t env[900];
	int rc = 0;
	unsigned n = 0;
	while (rc == 0 && n < 100) {
		struct cairn_msg m = {.type = CAIRN_REPLY_ENVELOPE,
		                      .request_id = 1,
		                      .envelope_id = n,
		                      .envelope = env,
		                      .envelope_len = sizeof(env)};
		if ((rc = channel_queue(&p.relay, &m)) == 0)
			n++;
	}
	assert_int_equal(rc, CAIRN_EFULL);
	assert_true(n >= 2 && n <= 4);
	assert_int_equal(channel_flush(&p.relay), 0);
	struct channel_buf b = {0};
	size_t pending = channel_output_pending(&p.relay);
	channel_output_swap(&p.relay, &b);
	assert_int_equal(b.len, pending);
	assert_int_equal(channel_output_pending(&p.relay), 0);
	struct seen s = {0};
	feed(&p, &p.client, b.data, b.len, 4096, &s);
	assert_int_equal(s.n, n);
	channel_buf_free(&b);
	channel_trim(&p.relay);
	channel_trim(&p.client);
	assert_true(channel_memory(&p.relay) == 0);
	pair_free(&p);
}

/* A relay's use: the handshake state goes once open, small idle buffers go while large ones
 * stay (channel_trim_small), and a closed channel keeps its last event's memory readable. */
static void test_trim_small_close(void **state)
{
	(void)state;
	struct pair p;
	pair_init_ex(&p, 0, 0);
	handshake(&p);
	assert_null(p.relay.hs);
	assert_null(p.client.hs);
	static uint8_t env[9000];
	memset(env, 0xe5, sizeof(env));
	for (size_t len = 200; len <= sizeof(env); len += sizeof(env) - 200) {
		struct cairn_msg m = {
		    .type = CAIRN_REPLY_ENVELOPE, .envelope = env, .envelope_len = len};
		assert_int_equal(channel_queue(&p.relay, &m), 0);
		assert_int_equal(channel_flush(&p.relay), 0);
		channel_output_consume(&p.relay, channel_output_pending(&p.relay));
		channel_trim_small(&p.relay, 4096);
		assert_true(len > 4096 ? channel_memory(&p.relay) > 2 * len
		                       : channel_memory(&p.relay) == 0);
	}
	channel_trim(&p.relay);
	assert_int_equal(channel_memory(&p.relay), 0);
	assert_null(p.relay.bufs); /* not even the buffers' descriptors: allocated again below */
	static const uint8_t sid[CAIRN_MAILBOX_ID_LEN] = {4};
	struct cairn_msg send = {.type = CAIRN_CMD_SEND,
	                         .request_id = 5,
	                         .sender_id = sid,
	                         .envelope = env,
	                         .envelope_len = 600};
	assert_int_equal(channel_queue(&p.client, &send), 0);
	assert_int_equal(channel_flush(&p.client), 0);
	const uint8_t *data;
	size_t len = channel_output(&p.client, &data);
	assert_int_equal(channel_feed(&p.relay, data, len), len);
	struct channel_event ev;
	assert_int_equal(channel_next_event(&p.relay, &ev), CHANNEL_EV_MESSAGE);
	channel_close(&p.relay);
	assert_memory_equal(ev.msg.envelope, env, 600); /* still readable (ASan) */
	assert_null(channel_session(&p.relay));
	assert_int_equal(channel_queue(&p.relay, &send), CAIRN_ESTATE);
	assert_int_equal(channel_next_event(&p.relay, &ev), CHANNEL_EV_FAILED);
	assert_int_equal(channel_feed(&p.relay, data, len), len);
	assert_int_equal(channel_output(&p.relay, &data), 0);
	pair_free(&p);
}

static void test_bad_options(void **state)
{
	(void)state;
	struct channel ch;
	uint8_t key[32] = {9};
	struct channel_options o = {.role = CHANNEL_INITIATOR, .now = env_now};
	assert_int_equal(channel_init(&ch, &o), CAIRN_EINVAL); /* no relay key */
	o.relay_public = key;
	o.now = NULL;
	assert_int_equal(channel_init(&ch, &o), CAIRN_EINVAL); /* no clock */
	o.now = env_now;
	o.frame_size = CAIRN_FRAME_FIXED_MIN - 1;
	assert_int_equal(channel_init(&ch, &o), CAIRN_EINVAL);
	channel_free(&ch); /* safe after a failed init */
	/* The relay's "no bound of the channel's own" (SIZE_MAX) is kept as the largest the
	 * channel's 32-bit field holds. */
	o.role = CHANNEL_RESPONDER; /* reads no clock before message 1 */
	o.frame_size = CAIRN_FRAME_PLAINTEXT_MAX;
	o.output_max = SIZE_MAX;
	assert_int_equal(channel_init(&ch, &o), 0);
	assert_int_equal(ch.frame_size, CAIRN_FRAME_PLAINTEXT_MAX);
	assert_int_equal(ch.output_max, UINT32_MAX);
	channel_free(&ch);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vector_handshake), cmocka_unit_test(test_vector_frame),
	    cmocka_unit_test(test_batch_one_frame),  cmocka_unit_test(test_split_full_batch),
	    cmocka_unit_test(test_fixed_frame_size), cmocka_unit_test(test_every_bucket),
	    cmocka_unit_test(test_dribble),          cmocka_unit_test(test_output_bound),
	    cmocka_unit_test(test_bad_options),      cmocka_unit_test(test_trim_small_close),
	    cmocka_unit_test(test_batch_cut),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
