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

#include "channel.h"
#include "mdvec.h"

#define NOW 1767225600u

/* Injected clock and randomness: a fixed time, and padding lengths from a script. */
struct env {
	uint64_t now;
	uint32_t pads[4];
	unsigned npads, next;
};

static uint64_t env_now(void *ctx)
{
	return ((struct env *)ctx)->now;
}

static uint32_t env_uniform(void *ctx, uint32_t upper)
{
	struct env *e = ctx;
	uint32_t v = e->next < e->npads ? e->pads[e->next++] : 7;
	return v % upper;
}

struct pair {
	struct env env;
	uint8_t priv[32], pub[32];
	struct channel client, relay;
	struct replay_cache *cache;
};

static void pair_init_ex(struct pair *p, size_t client_frame, size_t relay_frame)
{
	memset(p, 0, sizeof(*p));
	p->env.now = NOW;
	crypto_box_keypair(p->pub, p->priv);
	struct channel_options co = {.role = CHANNEL_INITIATOR,
	                             .relay_public = p->pub,
	                             .frame_size = client_frame,
	                             .now = env_now,
	                             .uniform = env_uniform,
	                             .ctx = &p->env};
	struct channel_options ro = {.role = CHANNEL_RESPONDER,
	                             .frame_size = relay_frame,
	                             .now = env_now,
	                             .uniform = env_uniform,
	                             .ctx = &p->env};
	assert_int_equal(channel_init(&p->client, &co), 0);
	assert_int_equal(channel_init(&p->relay, &ro), 0);
	p->cache = replay_cache_new(64);
	assert_non_null(p->cache);
}

static void pair_free(struct pair *p)
{
	channel_free(&p->client);
	channel_free(&p->relay);
	replay_cache_free(p->cache);
}

/* What one side saw: the messages, in order, and the last non-message event. */
#define SEEN_MAX 512
struct seen {
	unsigned n, opened, bad, failed, hellos;
	int error;
	uint8_t types[SEEN_MAX];
	uint32_t ids[SEEN_MAX];
	size_t env_len[SEEN_MAX];
};

/* Drains TO's events; a relay answers message 1 at once (with P's cache). */
static void drain(struct pair *p, struct channel *to, struct seen *s)
{
	struct channel_event ev;
	for (;;) {
		switch (channel_next_event(to, &ev)) {
		case CHANNEL_EV_NONE:
			return;
		case CHANNEL_EV_HELLO:
			s->hellos++;
			if (channel_accept(to, p->priv, p->pub, p->cache) != 0)
				continue;
			break;
		case CHANNEL_EV_OPEN:
			s->opened++;
			break;
		case CHANNEL_EV_MESSAGE:
		case CHANNEL_EV_BAD_MESSAGE:
			if (ev.type == CHANNEL_EV_BAD_MESSAGE) {
				s->bad++;
				s->error = ev.error;
			}
			assert_true(s->n < SEEN_MAX);
			s->types[s->n] = ev.msg.type;
			s->ids[s->n] = ev.msg.request_id;
			s->env_len[s->n] = ev.msg.envelope_len;
			s->n++;
			break;
		case CHANNEL_EV_FAILED:
			s->failed++;
			s->error = ev.error;
			return;
		}
	}
}

/* Feeds IN to TO in pieces of at most STEP bytes, draining events as they come. */
static void feed(struct pair *p, struct channel *to, const uint8_t *in, size_t len, size_t step,
                 struct seen *s)
{
	size_t pos = 0;
	while (pos < len) {
		size_t n = len - pos < step ? len - pos : step;
		size_t used = channel_feed(to, in + pos, n);
		pos += used;
		drain(p, to, s);
		if (channel_state(to) == CHANNEL_FAILED) {
			assert_int_equal(channel_feed(to, in + pos, len - pos), len - pos);
			return;
		}
		assert_true(used > 0 || n == 0 || channel_state(to) != CHANNEL_HELLO_READY);
	}
}

/* Moves everything FROM has sealed into TO. */
static void pump(struct pair *p, struct channel *from, struct channel *to, size_t step,
                 struct seen *s)
{
	const uint8_t *data;
	size_t len = channel_output(from, &data);
	uint8_t *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	if (len > 0)
		memcpy(copy, data, len);
	channel_output_consume(from, len);
	feed(p, to, copy, len, step, s);
	free(copy);
}

static void handshake(struct pair *p)
{
	struct seen rs = {0}, cs = {0};
	pump(p, &p->client, &p->relay, 65536, &rs);
	assert_int_equal(rs.hellos, 1);
	assert_int_equal(rs.opened, 1);
	pump(p, &p->relay, &p->client, 65536, &cs);
	assert_int_equal(cs.opened, 1);
	assert_int_equal(channel_state(&p->client), CHANNEL_OPEN);
	assert_memory_equal(channel_session(&p->client)->h, channel_session(&p->relay)->h,
	                    CAIRN_HASH_LEN);
}

static void queue_ping(struct channel *ch, uint32_t id)
{
	struct cairn_msg m = {.type = CAIRN_CMD_PING, .request_id = id};
	assert_int_equal(channel_queue(ch, &m), 0);
}

/* Wire sizes of the five buckets (4.2). */
static bool is_bucket_frame(size_t len)
{
	return len == 274 || len == 1042 || len == 4114 || len == 16914 || len == 65537;
}

/* Checks that OUT (LEN bytes) is whole frames each of a permitted size; returns the count. */
static unsigned count_frames(const uint8_t *out, size_t len, size_t fixed)
{
	unsigned n = 0;
	for (size_t pos = 0; pos < len; n++) {
		assert_true(len - pos >= 2);
		size_t flen = 2 + ((size_t)out[pos] << 8 | out[pos + 1]);
		assert_true(flen <= len - pos);
		if (fixed)
			assert_int_equal(flen, 2 + fixed + CAIRN_AEAD_TAG_LEN);
		else
			assert_true(is_bucket_frame(flen));
		pos += flen;
	}
	return n;
}

/* ---- vectors ------------------------------------------------------------------------ */

static void test_vector_handshake(void **state)
{
	(void)state;
	const char *v = "handshake/nk";
	uint8_t rpriv[32], rpub[32], ce[32], re[32], m1[512], m2[512], h[64];
	mdvec_hex(v, "relay_static_private", rpriv, 32);
	mdvec_hex(v, "relay_static_public", rpub, 32);
	mdvec_hex(v, "client_ephemeral_private", ce, 32);
	mdvec_hex(v, "relay_ephemeral_private", re, 32);
	size_t l1 = mdvec_hex(v, "message1", m1, sizeof(m1));
	size_t l2 = mdvec_hex(v, "message2", m2, sizeof(m2));
	mdvec_hex(v, "handshake_hash", h, 64);

	struct env ce_env = {.now = NOW, .pads = {3}, .npads = 1};
	struct env re_env = {.now = NOW, .pads = {5}, .npads = 1};
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
	channel_free(&c);
	channel_free(&r);
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
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vector_handshake), cmocka_unit_test(test_vector_frame),
	    cmocka_unit_test(test_batch_one_frame),  cmocka_unit_test(test_split_full_batch),
	    cmocka_unit_test(test_fixed_frame_size), cmocka_unit_test(test_every_bucket),
	    cmocka_unit_test(test_dribble),          cmocka_unit_test(test_handshake_refusals),
	    cmocka_unit_test(test_hostile_frames),   cmocka_unit_test(test_bad_message_codes),
	    cmocka_unit_test(test_output_bound),     cmocka_unit_test(test_bad_options),
	    cmocka_unit_test(test_trim_small_close),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
