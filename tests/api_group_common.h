/* SPDX-License-Identifier: MIT */
/*
 * What the tests of groups through libcairn's public API over the in-memory relay share
 * (test_client_api_group, test_client_group_invite): homes in a group_world.h world beside a
 * memrelay, home 0 (Alice) paired with others, syncing every home, and a group's members as
 * cairn_group_members lists them. Header-only: each test file includes it once, after
 * cmocka.h.
 */
#ifndef CAIRN_TESTS_API_GROUP_COMMON_H
#define CAIRN_TESTS_API_GROUP_COMMON_H

#include "group_world.h"
#include "memrelay.h"

struct fixture {
	struct world *w;
	struct memrelay *r;
	const char *addr;
};

/* Home 0 (Alice) and home I become contacts (she names it NAME, it names her "alice"), both
 * established. */
static inline void pair(struct fixture *f, unsigned i, const char *name)
{
	char *invite = NULL;
	struct cairn_sync_result res;
	const char *relays[] = {f->addr};
	assert_int_equal(cairn_invite_create(f->w->h[0].c, relays, 1, name, &invite), 0);
	assert_int_equal(cairn_invite_accept(f->w->h[i].c, invite, "alice", NULL, 0), 0);
	cairn_free(invite);
	assert_int_equal(cairn_sync(f->w->h[0].c, &res, NULL, NULL), 0);
	assert_int_equal(cairn_queue(f->w->h[0].c, name, (const uint8_t *)"hi", 2, NULL), 0);
	assert_int_equal(cairn_sync(f->w->h[0].c, &res, NULL, NULL), 0);
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

/* A fixture of HOMES homes beside a fresh memrelay, none paired yet. */
static inline struct fixture *fixture_new(unsigned homes)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->r = memrelay_new(NULL);
	assert_non_null(f->r);
	f->addr = memrelay_address(f->r);
	f->w = gw_new();
	memrelay_env_skipping(&f->w->env);
	gw_homes(f->w, homes);
	return f;
}

static inline int teardown(void **state)
{
	struct fixture *f = *state;
	gw_free(f->w);
	memrelay_free(f->r);
	free(f);
	return 0;
}

struct members {
	unsigned n, admins, selfs, contacts;
	char names[8][CAIRN_NAME_MAX + 1];
	char ids[8][CAIRN_MEMBER_ID_LEN + 1];
};

static inline int on_member(void *ctx, const struct cairn_group_member *m)
{
	struct members *s = ctx;
	assert_true(s->n < 8);
	assert_int_equal(strlen(m->id), CAIRN_MEMBER_ID_LEN);
	snprintf(s->names[s->n], sizeof(s->names[0]), "%s", m->name);
	snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", m->id);
	s->admins += m->admin != 0;
	s->selfs += m->self != 0;
	s->contacts += m->contact != 0;
	s->n++;
	return 0;
}

static inline struct members members(struct cairn *c, const char *group)
{
	struct members s = {0};
	assert_int_equal(cairn_group_members(c, group, on_member, &s), 0);
	return s;
}

static inline bool has_member(const struct members *s, const char *name)
{
	for (unsigned i = 0; i < s->n; i++)
		if (strcmp(s->names[i], name) == 0 || strcmp(s->ids[i], name) == 0)
			return true;
	return false;
}

/* The short id under which C lists member NAME of GROUP. */
static inline void id_of(struct cairn *c, const char *group, const char *name,
                  char out[CAIRN_MEMBER_ID_LEN + 1])
{
	struct members s = members(c, group);
	for (unsigned i = 0; i < s.n; i++)
		if (strcmp(s.names[i], name) == 0) {
			memcpy(out, s.ids[i], CAIRN_MEMBER_ID_LEN + 1);
			return;
		}
	fail_msg("no member %s", name);
}

#endif
