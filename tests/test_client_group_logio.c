/* SPDX-License-Identifier: MIT */
/*
 * The group state (client/group*.c, its logio_handler group_logio_handler) over the real
 * transport (client/logio.c) and the relay's own group log commands in process
 * (tests/support/memrelay.h), instead of group_world.h's logs in memory: a group made by one
 * home, a second added and welcomed, and a text each way, every log command on the wire.
 */
#define _XOPEN_SOURCE 700
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_group_over_memrelay),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
