/* SPDX-License-Identifier: MIT */
/*
 * The group state (client/group*.c, its logio_handler group_logio_handler) over the real
 * transport (client/logio.c) and the relay's own group log commands in process
 * (tests/support/memrelay.h), instead of group_world.h's logs in memory: a group made by one
 * home, a second added and welcomed, a text each way, every log command on the wire; and the
 * member following in its engine.
 */
#define _XOPEN_SOURCE 700
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "group_world.h"
#include "memrelay.h"

static const struct group_settings settings = {.rotate_seconds = 604800, .rotate_messages = 1000};

/* Every home sends its group outbox and reads its logs through logio_sync until a round
 * moves nothing (reading may queue: a re-commit, a message sent again). */
static void logio_world_sync(struct world *w)
{
	unsigned moved, rounds = 0;
	do {
		moved = 0;
		assert_true(rounds++ < 50);
		for (unsigned i = 0; i < w->n; i++) {
			struct logio_result res;
			assert_int_equal(logio_sync(w->h[i].c, &group_logio_handler, NULL, &res),
			                 0);
			assert_int_equal(res.relays_failed, 0);
			assert_int_equal(res.failures, 0);
			moved += res.sent + res.entries;
		}
	} while (moved > 0);
}

static void test_group_over_memrelay(void **state)
{
	(void)state;
	struct memrelay *r = memrelay_new(NULL);
	assert_non_null(r);
	struct world *w = gw_new();
	memrelay_env_skipping(&w->env); /* real clocks, connects to the memrelay */
	w->sync = logio_world_sync;
	gw_homes(w, 2);
	uint8_t gid[GROUP_ID_LEN];
	assert_int_equal(group_create(w->h[0].c, memrelay_address(r), "friends", &settings, gid),
	                 0);
	unsigned unsent = 0;
	assert_int_equal(group_out_count(w->h[0].c, &unsent), 0);
	assert_true(unsent > 0); /* the create, at least */
	gw_sync(w);
	assert_int_equal(group_out_count(w->h[0].c, &unsent), 0);
	assert_int_equal(unsent, 0);

	unsigned j = 1;
	gw_add(w, 0, gid, &j, 1);
	gw_say(w, 0, gid, "hello from the maker");
	gw_say(w, 1, gid, "hello from the new member");
	gw_sync(w);
	assert_true(gw_has(w, 1, gid, "hello from the maker"));
	assert_true(gw_has(w, 0, gid, "hello from the new member"));
	assert_true(gw_has(w, 0, gid, "hello from the maker"));
	gw_free(w);
	memrelay_free(r);
}

/* One wait (at most MAX_MS) and one step of C's engine. */
static void one_step(struct cairn *c, int max_ms)
{
	struct pollfd fds[8];
	size_t n = 0;
	int timeout = 0;
	assert_int_equal(cairn_engine_fds(c, fds, 8, &n, &timeout), 0);
	assert_true(poll(fds, n, timeout < 0 || timeout > max_ms ? max_ms : timeout) >= 0);
	assert_int_equal(cairn_engine_step(c, fds, n), 0);
}

/* The member follows in its engine (listen): the maker's text reaches it within a few steps,
 * with no sync of its own. */
static void test_group_followed_in_engine(void **state)
{
	(void)state;
	struct memrelay *r = memrelay_new(NULL);
	assert_non_null(r);
	struct world *w = gw_new();
	memrelay_env_skipping(&w->env);
	w->sync = logio_world_sync;
	gw_homes(w, 2);
	uint8_t gid[GROUP_ID_LEN];
	assert_int_equal(group_create(w->h[0].c, memrelay_address(r), "friends", &settings, gid),
	                 0);
	gw_sync(w);
	unsigned j = 1;
	gw_add(w, 0, gid, &j, 1);

	struct cairn *m = w->h[1].c;
	client_set_group_handler(m, &group_logio_handler, NULL);
	assert_int_equal(cairn_engine_start(m, NULL, NULL), 0);
	for (int k = 0; k < 20; k++) /* the follow read is open */
		one_step(m, 20);
	gw_say(w, 0, gid, "followed");
	struct logio_result res;
	assert_int_equal(logio_sync(w->h[0].c, &group_logio_handler, NULL, &res), 0);
	assert_true(res.sent > 0);
	for (int k = 0; !gw_has(w, 1, gid, "followed"); k++) {
		assert_true(k < 200);
		one_step(m, 50);
	}
	cairn_engine_stop(m);
	gw_free(w);
	memrelay_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_group_over_memrelay),
	    cmocka_unit_test(test_group_followed_in_engine),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
