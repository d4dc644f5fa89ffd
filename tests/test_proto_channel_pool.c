/* SPDX-License-Identifier: MIT */
/*
 * The pool of idle channels' buffers (proto/chanpool.h) between a client and a relay channel
 * talking in memory: a relay channel's emptied buffers go to the pool whole and the next
 * channel that needs buffers writes into the same blocks; the plaintext they held is wiped
 * before the pool keeps them; the pool keeps at most CHANNEL_POOL_SLOTS sets and frees them
 * all on a tick that took none.
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
#include "chanpool.h"

#define SMALL 4096
#define MARK  0xe5

static uint8_t body[600];

/* The client sends a SEND whose envelope is MARK bytes; the relay reads it (its plaintext in
 * the relay's open-frame buffer) and answers with an ENVELOPE of the same bytes, sealed and
 * sent (its plaintext in the relay's batch). */
static void exchange(struct pair *p)
{
	static const uint8_t sid[CAIRN_MAILBOX_ID_LEN] = {4};
	struct cairn_msg send = {.type = CAIRN_CMD_SEND,
	                         .request_id = 5,
	                         .sender_id = sid,
	                         .envelope = body,
	                         .envelope_len = sizeof(body)};
	assert_int_equal(channel_queue(&p->client, &send), 0);
	assert_int_equal(channel_flush(&p->client), 0);
	struct seen rs = {0};
	pump(p, &p->client, &p->relay, 65536, &rs);
	assert_int_equal(rs.n, 1);
	struct cairn_msg m = {
	    .type = CAIRN_REPLY_ENVELOPE, .envelope = body, .envelope_len = sizeof(body)};
	assert_int_equal(channel_queue(&p->relay, &m), 0);
	assert_int_equal(channel_flush(&p->relay), 0);
	struct seen cs = {0};
	pump(p, &p->relay, &p->client, 65536, &cs);
	assert_int_equal(cs.n, 1);
	assert_int_equal(cs.env_len[0], sizeof(body));
}

/* True when B's whole capacity holds no run of 16 MARK bytes (the envelope's plaintext). */
static bool no_plaintext(const struct channel_buf *b)
{
	static uint8_t run[16];
	memset(run, MARK, sizeof(run));
	for (size_t i = 0; b->data != NULL && i + sizeof(run) <= b->cap; i++)
		if (memcmp(b->data + i, run, sizeof(run)) == 0)
			return false;
	return true;
}

static void test_reuse_and_wipe(void **state)
{
	(void)state;
	memset(body, MARK, sizeof(body));
	struct channel_pool pool = {0};
	struct pair a, b;
	pair_init_ex(&a, 0, 0);
	pair_init_ex(&b, 0, 0);
	handshake(&a);
	handshake(&b);
	/* Message 2 left A's relay with an output buffer: give it back first. */
	channel_pool_give(&pool, &a.relay, NULL, SMALL);
	channel_pool_give(&pool, &b.relay, NULL, SMALL);
	channel_pool_free(&pool);

	exchange(&a);
	struct channel_bufs *set = a.relay.bufs;
	assert_non_null(set);
	uint8_t *plain = set->plain.data, *batch = set->batch.data, *out = set->out.data;
	assert_non_null(plain);
	assert_non_null(batch);
	assert_false(no_plaintext(&set->plain)); /* the test can see plaintext where it is */
	assert_false(no_plaintext(&set->batch));

	/* The output taken as a write in flight (conn.c) comes back as the spare. */
	struct channel_buf flight = {0};
	channel_output_swap(&a.relay, &flight);
	assert_null(set->out.data);
	assert_ptr_equal(flight.data, out);
	flight.len = 0; /* sent */
	channel_pool_give(&pool, &a.relay, &flight, SMALL);
	assert_null(a.relay.bufs);
	assert_int_equal(channel_memory(&a.relay), 0);
	assert_null(flight.data);
	assert_int_equal(pool.sets.count, 1);
	assert_ptr_equal(pool.sets.slot[0], set);
	assert_ptr_equal(set->out.data, out); /* the spare went back into the set */
	assert_true(no_plaintext(&set->plain));
	assert_true(no_plaintext(&set->batch));

	/* B's relay takes the same set and its exchange writes into the same blocks. */
	channel_pool_lend(&pool, &b.relay);
	assert_int_equal(pool.sets.count, 0);
	assert_ptr_equal(b.relay.bufs, set);
	exchange(&b);
	assert_ptr_equal(b.relay.bufs, set);
	assert_ptr_equal(set->plain.data, plain);
	assert_ptr_equal(set->batch.data, batch);
	assert_ptr_equal(set->out.data, out);

	/* Lending to a channel that holds buffers changes nothing. */
	channel_pool_give(&pool, &b.relay, NULL, SMALL);
	assert_int_equal(pool.sets.count, 1);
	exchange(&a);
	channel_pool_lend(&pool, &a.relay);
	assert_int_equal(pool.sets.count, 1);
	assert_ptr_not_equal(a.relay.bufs, set);

	channel_pool_free(&pool);
	assert_int_equal(pool.sets.count, 0);
	pair_free(&a);
	pair_free(&b);
}

static void test_busy_not_pooled(void **state)
{
	(void)state;
	memset(body, MARK, sizeof(body));
	struct channel_pool pool = {0};
	struct pair a;
	pair_init_ex(&a, 0, 0);
	handshake(&a);
	exchange(&a);
	/* Output not yet sent: the set stays with the channel, whole. */
	struct channel_bufs *set = a.relay.bufs;
	struct cairn_msg ping = {.type = CAIRN_REPLY_OK, .request_id = 9};
	assert_int_equal(channel_queue(&a.relay, &ping), 0);
	channel_pool_give(&pool, &a.relay, NULL, SMALL);
	assert_int_equal(pool.sets.count, 0);
	assert_ptr_equal(a.relay.bufs, set);
	assert_non_null(set->batch.data);
	/* Larger than SMALL: the set is not pooled, and its small empty buffers are freed. */
	static uint8_t big[9000];
	struct cairn_msg m = {.type = CAIRN_REPLY_ENVELOPE, .envelope = big, .envelope_len = 9000};
	assert_int_equal(channel_queue(&a.relay, &m), 0);
	assert_int_equal(channel_flush(&a.relay), 0);
	channel_output_consume(&a.relay, channel_output_pending(&a.relay));
	channel_pool_give(&pool, &a.relay, NULL, SMALL);
	assert_int_equal(pool.sets.count, 0);
	assert_non_null(a.relay.bufs);
	assert_true(channel_memory(&a.relay) > 9000);
	pair_free(&a);
}

static void test_bound_and_tick(void **state)
{
	(void)state;
	memset(body, MARK, sizeof(body));
	enum { N = CHANNEL_POOL_SLOTS + 4 };
	struct channel_pool pool = {0};
	struct pair *pairs = calloc(N, sizeof(*pairs));
	assert_non_null(pairs);
	for (int i = 0; i < N; i++) {
		pair_init_ex(&pairs[i], 0, 0);
		handshake(&pairs[i]);
		channel_pool_give(&pool, &pairs[i].relay, NULL, SMALL);
	}
	assert_int_equal(pool.sets.count, CHANNEL_POOL_SLOTS);
	for (int i = 0; i < N; i++) {
		/* Every relay channel idle holds nothing: pooled, or freed beyond the bound. */
		assert_null(pairs[i].relay.bufs);
		assert_int_equal(channel_memory(&pairs[i].relay), 0);
	}
	/* A tick after a take keeps the pool; the next one without a take empties it. */
	channel_pool_lend(&pool, &pairs[0].relay);
	exchange(&pairs[0]);
	channel_pool_give(&pool, &pairs[0].relay, NULL, SMALL);
	assert_int_equal(pool.sets.count, CHANNEL_POOL_SLOTS);
	channel_pool_tick(&pool);
	assert_int_equal(pool.sets.count, CHANNEL_POOL_SLOTS);
	channel_pool_tick(&pool);
	assert_int_equal(pool.sets.count, 0);
	for (int i = 0; i < N; i++)
		pair_free(&pairs[i]);
	free(pairs);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reuse_and_wipe),
	    cmocka_unit_test(test_busy_not_pooled),
	    cmocka_unit_test(test_bound_and_tick),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
