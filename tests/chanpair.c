/* SPDX-License-Identifier: MIT */
/* Two protocol channels talking in memory (see chanpair.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "chanpair.h"
uint64_t env_now(void *ctx)
{
	return ((struct env *)ctx)->now;
}

uint32_t env_uniform(void *ctx, uint32_t upper)
{
	struct env *e = ctx;
	uint32_t v = e->next < e->npads ? e->pads[e->next++] : 7;
	return v % upper;
}

void pair_init_ex(struct pair *p, size_t client_frame, size_t relay_frame)
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

void pair_free(struct pair *p)
{
	channel_free(&p->client);
	channel_free(&p->relay);
	replay_cache_free(p->cache);
}

/* Drains TO's events; a relay answers message 1 at once (with P's cache). */
void drain(struct pair *p, struct channel *to, struct seen *s)
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
void feed(struct pair *p, struct channel *to, const uint8_t *in, size_t len, size_t step,
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
void pump(struct pair *p, struct channel *from, struct channel *to, size_t step, struct seen *s)
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

void handshake(struct pair *p)
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

void queue_ping(struct channel *ch, uint32_t id)
{
	struct cairn_msg m = {.type = CAIRN_CMD_PING, .request_id = id};
	assert_int_equal(channel_queue(ch, &m), 0);
}

/* Wire sizes of the five buckets (4.2). */
bool is_bucket_frame(size_t len)
{
	return len == 274 || len == 1042 || len == 4114 || len == 16914 || len == 65537;
}

/* Checks that OUT (LEN bytes) is whole frames each of a permitted size; returns the count. */
unsigned count_frames(const uint8_t *out, size_t len, size_t fixed)
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
