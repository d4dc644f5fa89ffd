/* SPDX-License-Identifier: MIT */
/*
 * The cache of handshake states (proto/channel.h, struct channel_hs_cache): a responder
 * channel's state goes back to the cache when the channel is done with it, wiped (message 1
 * and the handshake's secrets included), and the next responder takes the same block; the
 * cache keeps at most CHANNEL_HS_CACHE_SLOTS states and frees them all on a tick that took
 * none. A channel without a cache (a client's) uses malloc as before.
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

static void responder_init(struct pair *p, struct channel *ch, struct channel_hs_cache *cache)
{
	struct channel_options ro = {.role = CHANNEL_RESPONDER,
	                             .now = env_now,
	                             .uniform = env_uniform,
	                             .ctx = &p->env,
	                             .hs_cache = cache};
	assert_int_equal(channel_init(ch, &ro), 0);
}

static bool all_zero(const void *p, size_t len)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < len; i++)
		if (b[i] != 0)
			return false;
	return true;
}

static void test_reuse_and_wipe(void **state)
{
	(void)state;
	struct channel_hs_cache cache = {0};
	struct pair p;
	pair_init_ex(&p, 0, 0);
	assert_null(p.client.hs->cache); /* no cache given: malloc's */
	channel_free(&p.relay);
	responder_init(&p, &p.relay, &cache);
	/* Message 1 arrives: the state holds it until channel_hello_take. */
	const uint8_t *out = NULL;
	size_t len = channel_output(&p.client, &out);
	assert_true(len > 0);
	assert_int_equal(channel_feed(&p.relay, out, len), len);
	struct channel_handshake *hs = p.relay.hs;
	assert_non_null(hs);
	assert_ptr_equal(hs->cache, &cache);
	assert_true(hs->hello_len > 0);
	channel_free(&p.relay);
	/* Kept, and wiped whole: nothing of message 1 or the handshake is left in it. */
	assert_int_equal(cache.states.count, 1);
	assert_ptr_equal(cache.states.slot[0], hs);
	assert_true(all_zero(hs, sizeof(*hs)));
	/* The next responder takes the same block. */
	struct channel next;
	responder_init(&p, &next, &cache);
	assert_ptr_equal(next.hs, hs);
	assert_int_equal(cache.states.count, 0);
	assert_int_equal(next.hs->hello_len, 0);
	channel_free(&next);
	pair_free(&p);
	channel_hs_cache_free(&cache);
	assert_int_equal(cache.states.count, 0);
}

static void test_bound_and_tick(void **state)
{
	(void)state;
	struct channel_hs_cache cache = {0};
	struct pair p;
	pair_init_ex(&p, 0, 0);
	enum { N = CHANNEL_HS_CACHE_SLOTS + 6 };
	static struct channel chs[N];
	for (int i = 0; i < N; i++)
		responder_init(&p, &chs[i], &cache);
	for (int i = 0; i < N; i++)
		channel_free(&chs[i]);
	assert_int_equal(cache.states.count, CHANNEL_HS_CACHE_SLOTS); /* the rest went to free() */
	channel_hs_cache_tick(&cache);                         /* states were taken: kept */
	assert_int_equal(cache.states.count, CHANNEL_HS_CACHE_SLOTS);
	channel_hs_cache_tick(&cache); /* none taken since: all freed */
	assert_int_equal(cache.states.count, 0);
	pair_free(&p);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reuse_and_wipe),
	    cmocka_unit_test(test_bound_and_tick),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
