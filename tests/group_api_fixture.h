/* SPDX-License-Identifier: MIT */
/*
 * The fixture of the tests of groups through libcairn's public API (test_client_api_group,
 * test_client_group_names): three homes of tests/group_world.h on one in-memory relay
 * (tests/support/memrelay.h), B and C contacts of A ("bob" and "carol"; both call A "alice"),
 * each pair past its first exchange. Header-only: each test file includes it once.
 */
#ifndef CAIRN_TESTS_GROUP_API_FIXTURE_H
#define CAIRN_TESTS_GROUP_API_FIXTURE_H

#include "group_world.h"
#include "memrelay.h"

enum { A, B, C };

struct fixture {
	struct world *w;
	struct memrelay *r;
	const char *addr;
};

/* A and home I become contacts (A names it NAME, it names A "alice"), both established. */
static inline void pair(struct fixture *f, unsigned i, const char *name)
{
	char *invite = NULL;
	struct cairn_sync_result res;
	const char *relays[] = {f->addr};
	assert_int_equal(cairn_invite_create(f->w->h[A].c, relays, 1, name, &invite), 0);
	assert_int_equal(cairn_invite_accept(f->w->h[i].c, invite, "alice", NULL, 0), 0);
	cairn_free(invite);
	assert_int_equal(cairn_sync(f->w->h[A].c, &res, NULL, NULL), 0);
	assert_int_equal(cairn_queue(f->w->h[A].c, name, (const uint8_t *)"hi", 2, NULL), 0);
	assert_int_equal(cairn_sync(f->w->h[A].c, &res, NULL, NULL), 0);
	assert_int_equal(cairn_sync(f->w->h[i].c, &res, NULL, NULL), 0);
}

/* Every home syncs, ROUNDS times (an add takes offer, join, commit, welcome). */
static inline void sync_all(struct fixture *f, unsigned rounds)
{
	for (unsigned r = 0; r < rounds; r++)
		for (unsigned i = 0; i < f->w->n; i++) {
			struct cairn_sync_result res;
			assert_int_equal(cairn_sync(f->w->h[i].c, &res, NULL, NULL), 0);
		}
}

static inline int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->r = memrelay_new(NULL);
	assert_non_null(f->r);
	f->addr = memrelay_address(f->r);
	f->w = gw_new();
	memrelay_env_skipping(&f->w->env);
	gw_homes(f->w, 3);
	pair(f, B, "bob");
	pair(f, C, "carol");
	*state = f;
	return 0;
}

static inline int teardown(void **state)
{
	struct fixture *f = *state;
	gw_free(f->w);
	memrelay_free(f->r);
	free(f);
	return 0;
}

#endif
