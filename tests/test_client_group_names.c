/* SPDX-License-Identifier: MIT */
/*
 * Groups' local names and listing through libcairn (cairn.h) over the in-memory relay
 * (tests/support/memrelay.h), with the homes of tests/group_world.h: contacts and groups share
 * one namespace (no entry point makes them share a name); cairn_rename renames a group, whose
 * conversation, reads, sends and reports follow and whose members see no change; a welcome
 * whose group name is taken here gets "NAME (2)"; cairn_groups lists groups (and
 * cairn_contacts does not); a home of data model 2 gets its groups' index entries on open; a
 * join kept for a later commit is dropped when its group is gone or after its life, and the
 * keys of a join we sent that no welcome answers are forgotten after theirs.
 */
#define _XOPEN_SOURCE 700
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "api_group_common.h"

enum { A, B, C };

/* Three homes, B and C contacts of A ("bob" and "carol"; both call A "alice"). */
static int setup(void **state)
{
	struct fixture *f = fixture_new(3);
	pair(f, B, "bob");
	pair(f, C, "carol");
	*state = f;
	return 0;
}

/* ---- what the API shows ---- */

struct groups {
	unsigned n;
	char name[8][CAIRN_NAME_MAX + 1];
	struct cairn_group_info info[8];
};

static int on_group(void *ctx, const struct cairn_group_info *g)
{
	struct groups *s = ctx;
	assert_true(s->n < 8);
	snprintf(s->name[s->n], sizeof(s->name[0]), "%s", g->name);
	s->info[s->n] = *g;
	s->info[s->n].name = s->name[s->n];
	s->n++;
	return 0;
}

static struct groups groups(struct cairn *c)
{
	struct groups s = {0};
	assert_int_equal(cairn_groups(c, on_group, &s), 0);
	return s;
}

static int on_contact(void *ctx, const struct cairn_contact *k)
{
	(void)k;
	++*(unsigned *)ctx;
	return 0;
}

static unsigned contacts(struct cairn *c)
{
	unsigned n = 0;
	assert_int_equal(cairn_contacts(c, on_contact, &n), 0);
	return n;
}

/* What cairn_read shows of conversation NAME: messages, and the last one's label/sender. */
struct shown {
	unsigned n, from_sender;
	char contact[CAIRN_NAME_MAX + 1], sender[CAIRN_NAME_MAX + 1], last[64];
};

static int on_message(void *ctx, const struct cairn_message *m)
{
	struct shown *s = ctx;
	s->n++;
	snprintf(s->contact, sizeof(s->contact), "%s", m->contact);
	snprintf(s->last, sizeof(s->last), "%.*s", (int)m->len, (const char *)m->text);
	s->sender[0] = '\0';
	if (m->sender != NULL) {
		s->from_sender++;
		snprintf(s->sender, sizeof(s->sender), "%s", m->sender);
	}
	return 0;
}

static struct shown shown(struct cairn *c, const char *name)
{
	struct shown s = {0};
	assert_int_equal(cairn_read(c, name, on_message, &s), 0);
	return s;
}

static void say(struct cairn *c, const char *group, const char *text)
{
	assert_int_equal(cairn_send(c, group, (const uint8_t *)text, strlen(text), NULL), 0);
}

/* The group GROUP of home A with Bob and Carol in it. */
static void make_group(struct fixture *f, const char *group)
{
	struct cairn *a = f->w->h[A].c;
	assert_int_equal(cairn_group_create(a, group, f->addr), 0);
	assert_int_equal(cairn_group_add(a, group, "bob"), 0);
	assert_int_equal(cairn_group_add(a, group, "carol"), 0);
	sync_all(f, 5);
	assert_int_equal(members(a, group).n, 3);
}

/* ---- one namespace ---- */

static void test_one_namespace(void **state)
{
	struct fixture *f = *state;
	struct cairn *a = f->w->h[A].c, *b = f->w->h[B].c;
	const char *relays[] = {f->addr};
	char *invite = NULL;
	assert_int_equal(cairn_group_create(a, "bob", f->addr), CAIRN_EEXIST);
	assert_int_equal(cairn_group_create(a, "friends", f->addr), 0);
	assert_int_equal(cairn_group_create(a, "friends", f->addr), CAIRN_EEXIST);
	/* A contact cannot take a group's name, by invite, by accepting, or by renaming. */
	assert_int_equal(cairn_invite_create(a, relays, 1, "friends", &invite), CAIRN_EEXIST);
	assert_null(invite);
	assert_int_equal(cairn_invite_create(b, relays, 1, "zed", &invite), 0);
	assert_int_equal(cairn_invite_accept(a, invite, "friends", NULL, 0), CAIRN_EEXIST);
	cairn_free(invite);
	assert_int_equal(cairn_rename(a, "bob", "friends"), CAIRN_EEXIST);
	assert_int_equal(cairn_rename(a, "friends", "bob"), CAIRN_EEXIST);
	assert_int_equal(cairn_rename(a, "nobody", "x"), CAIRN_ENOTFOUND);
	assert_int_equal(cairn_rename(a, "friends", ""), CAIRN_EINVAL);
	/* Nothing changed: two contacts, one group, each under its name. */
	assert_int_equal(contacts(a), 2);
	struct groups g = groups(a);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.name[0], "friends");
	assert_int_equal(g.info[0].members, 1);
	assert_int_equal(g.info[0].admin, 1);
	assert_int_equal(g.info[0].removed, 0);
	char number[CAIRN_SAFETY_NUMBER_LEN + 1];
	assert_int_equal(cairn_safety_number(a, "bob", number), 0);
	assert_int_equal(cairn_safety_number(a, "friends", number), CAIRN_ENOTFOUND);
}

/* ---- rename ---- */

static struct shown reported;

static int on_report(void *ctx, const struct cairn_message *m)
{
	(void)ctx;
	if (m->sender != NULL) /* a group's message */
		on_message(&reported, m);
	return 0;
}

static void test_rename_group(void **state)
{
	struct fixture *f = *state;
	struct cairn *a = f->w->h[A].c, *b = f->w->h[B].c;
	make_group(f, "friends");
	say(b, "friends", "before");
	sync_all(f, 2);
	assert_int_equal(cairn_rename(a, "friends", "team"), 0);
	/* The old name is free, the new one leads to the same group and history. */
	struct shown s = {0};
	assert_int_equal(cairn_read(a, "friends", on_message, &s), CAIRN_ENOTFOUND);
	struct members none = {0};
	assert_int_equal(cairn_group_members(a, "friends", on_member, &none), CAIRN_ENOTFOUND);
	s = shown(a, "team");
	assert_string_equal(s.contact, "team");
	assert_string_equal(s.last, "before");
	assert_string_equal(s.sender, "bob");
	assert_int_equal(members(a, "team").n, 3);
	struct groups g = groups(a);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.name[0], "team");
	/* Sending and receiving under the new name; the members still call it "friends". */
	say(a, "team", "after");
	say(b, "friends", "from bob");
	sync_all(f, 2);
	s = shown(b, "friends");
	assert_string_equal(s.contact, "friends");
	assert_int_equal(s.n, 3);
	g = groups(b);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.name[0], "friends");
	assert_int_equal(members(f->w->h[C].c, "friends").n, 3);
	/* A report of a new group message names the group as we call it now. */
	say(f->w->h[C].c, "friends", "from carol");
	memset(&reported, 0, sizeof(reported));
	struct cairn_sync_result res;
	assert_int_equal(cairn_sync(a, &res, on_report, NULL), 0);
	assert_int_equal(reported.n, 1);
	assert_string_equal(reported.contact, "team");
	assert_string_equal(reported.sender, "carol");
	/* The freed name can be taken, and renaming back works. */
	assert_int_equal(cairn_group_create(a, "friends", f->addr), 0);
	assert_int_equal(cairn_rename(a, "team", "friends"), CAIRN_EEXIST);
	assert_int_equal(cairn_rename(a, "team", "the team"), 0);
	assert_int_equal(cairn_rename(a, "the team", "the team"), 0);
	s = shown(a, "the team");
	assert_string_equal(s.last, "from carol");
	g = groups(a);
	assert_int_equal(g.n, 2);
	assert_string_equal(g.name[0], "the team");
	assert_string_equal(g.name[1], "friends");
	/* A contact renamed: its messages in the group name it anew. */
	assert_int_equal(cairn_rename(a, "bob", "robert"), 0);
	s = shown(a, "the team");
	assert_int_equal(s.n, 4);
	assert_string_equal(s.sender, "carol");
	assert_int_equal(contacts(a), 2);
}

/* ---- welcomes ---- */

static void test_welcome_name_taken(void **state)
{
	struct fixture *f = *state;
	struct cairn *a = f->w->h[A].c, *b = f->w->h[B].c, *c = f->w->h[C].c;
	/* Bob and Carol call Alice "alice"; Carol has a group "alice (2)" too. */
	assert_int_equal(cairn_group_create(c, "alice (2)", f->addr), 0);
	make_group(f, "alice");
	struct groups g = groups(b);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.name[0], "alice (2)");
	assert_int_equal(g.info[0].members, 3);
	assert_int_equal(g.info[0].admin, 0);
	g = groups(c);
	assert_int_equal(g.n, 2);
	assert_string_equal(g.name[0], "alice (2)");
	assert_string_equal(g.name[1], "alice (3)");
	assert_int_equal(g.info[1].members, 3);
	assert_int_equal(g.info[0].members, 1);
	/* Alice's own name for it is the group's own name; the contact is untouched. */
	g = groups(a);
	assert_string_equal(g.name[0], "alice");
	char number[CAIRN_SAFETY_NUMBER_LEN + 1];
	assert_int_equal(cairn_safety_number(b, "alice", number), 0);
	say(a, "alice", "to the group");
	assert_int_equal(cairn_queue(a, "bob", (const uint8_t *)"direct", 6, NULL), 0);
	sync_all(f, 2);
	struct shown s = shown(b, "alice (2)");
	assert_string_equal(s.last, "to the group");
	assert_string_equal(s.sender, "alice");
	s = shown(b, "alice");
	assert_string_equal(s.last, "direct");
	assert_int_equal(s.from_sender, 0);
	/* Unread counts are the group's own, and reading clears them. */
	g = groups(c);
	assert_int_equal(g.info[1].unread, 1);
	uint64_t epoch = 0;
	assert_int_equal(cairn_group_safety_number(c, "alice (3)", number, &epoch), 0);
	assert_int_equal(g.info[1].epoch, epoch);
	s = shown(c, "alice (3)");
	g = groups(c);
	assert_int_equal(g.info[1].unread, 0);
	assert_int_equal(contacts(c), 1); /* cairn_contacts lists no group */
}

/* ---- a home of data model 2 ---- */

static void test_upgrade_model_2(void **state)
{
	struct fixture *f = *state;
	struct cairn *a = f->w->h[A].c;
	make_group(f, "family");
	say(f->w->h[B].c, "family", "hello family");
	sync_all(f, 2);
	/* What the previous version wrote: no index entry for the group, which a contact could
	 * then share its name with, and model 2. */
	uint8_t gid[GROUP_ID_LEN];
	assert_int_equal(client_group_find(a, "family", gid), 0);
	assert_int_equal(cstate_begin(a->st), 0);
	assert_int_equal(cstate_del(a->st, REC_NAME, "family", 6), 0);
	const uint8_t model = 2;
	assert_int_equal(
	    cstate_put(a->st, REC_META, RECORD_META_KEY, strlen(RECORD_META_KEY), &model, 1), 0);
	assert_int_equal(cstate_commit(a->st), 0);
	assert_int_equal(cairn_rename(a, "carol", "family"), 0);
	gw_restart(f->w, A);
	a = f->w->h[A].c;
	/* The contact keeps the name; the group is "family (2)", whole. */
	struct groups g = groups(a);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.name[0], "family (2)");
	uint8_t again[GROUP_ID_LEN];
	assert_int_equal(client_group_find(a, "family (2)", again), 0);
	assert_memory_equal(gid, again, GROUP_ID_LEN);
	assert_int_equal(client_group_find(a, "family", again), CAIRN_ENOTFOUND);
	struct shown s = shown(a, "family (2)");
	assert_string_equal(s.last, "hello family");
	assert_string_equal(s.sender, "bob");
	char number[CAIRN_SAFETY_NUMBER_LEN + 1];
	assert_int_equal(cairn_safety_number(a, "family", number), 0);
	say(a, "family (2)", "after the upgrade");
	sync_all(f, 2);
	s = shown(f->w->h[B].c, "family");
	assert_string_equal(s.last, "after the upgrade");
	/* Once: a second open finds model 3 and changes nothing. */
	gw_restart(f->w, A);
	g = groups(f->w->h[A].c);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.name[0], "family (2)");
}

/* ---- kept joins ---- */

static int64_t skew_s;

static int64_t skewed_wall(void *ctx)
{
	(void)ctx;
	return (int64_t)time(NULL) + skew_s;
}

#define KEPT_LEN (CAIRN_KEY_LEN + GROUP_JOIN_LEN + 8)

static int count_kept(void *ctx, const uint8_t *v, size_t len)
{
	(void)v;
	*(unsigned *)ctx += len == KEPT_LEN;
	return 0;
}

static unsigned kept_joins(struct cairn *c)
{
	unsigned n = 0;
	assert_true(cstate_list(c->st, REC_GROUP_OFFER, count_kept, &n) >= 0);
	return n;
}

/* Alice's group "friends" with a commit of hers pending (a rotation, not sent), and Carol's
 * join to an offer of it handed to Alice's client as it comes over 1:1: kept. */
static void keep_a_join(struct fixture *f, uint8_t gid[GROUP_ID_LEN])
{
	struct cairn *a = f->w->h[A].c;
	assert_int_equal(cairn_group_create(a, "friends", f->addr), 0);
	sync_all(f, 1);
	assert_int_equal(client_group_find(a, "friends", gid), 0);
	assert_int_equal(cairn_group_add(a, "friends", "carol"), 0);
	assert_int_equal(group_commit(a, gid, NULL, 0), 0);
	uint8_t join[GROUP_JOIN_LEN];
	assert_int_equal(group_join_make(f->w->h[C].c, gid, join), 0);
	struct contact k;
	assert_int_equal(client_load_contact(a, "carol", &k), 0);
	struct receive_effects fx = {0};
	assert_int_equal(client_group_appmsg(a, k.id, APPMSG_GROUP_JOIN, join, sizeof(join), &fx),
	                 0);
	contact_wipe(&k);
	assert_int_equal(kept_joins(a), 1);
	/* While the commit is pending and the join young, it stays. */
	assert_int_equal(client_groups_tick(a), 0);
	assert_int_equal(kept_joins(a), 1);
}

static void test_kept_join_group_gone(void **state)
{
	struct fixture *f = *state;
	struct cairn *a = f->w->h[A].c;
	uint8_t gid[GROUP_ID_LEN];
	keep_a_join(f, gid);
	/* A commit removed us: the join can never be ours to commit. */
	struct group_state *g = NULL;
	assert_int_equal(group_txn_load(a, gid, &g), 0);
	g->removed = true;
	assert_int_equal(group_txn_end(a, g, 0), 0);
	assert_int_equal(client_groups_tick(a), 0);
	assert_int_equal(kept_joins(a), 0);
}

static void test_kept_join_life(void **state)
{
	struct fixture *f = *state;
	struct cairn *a = f->w->h[A].c;
	uint8_t gid[GROUP_ID_LEN];
	keep_a_join(f, gid);
	struct client_env env = f->w->env;
	env.wall_s = skewed_wall;
	skew_s = GROUP_LOG_TTL - 3600;
	client_set_env(a, &env);
	assert_int_equal(client_groups_tick(a), 0);
	assert_int_equal(kept_joins(a), 1); /* not yet */
	skew_s = GROUP_LOG_TTL + 3600;
	assert_int_equal(client_groups_tick(a), 0);
	assert_int_equal(kept_joins(a), 0);
	client_set_env(a, &f->w->env);
}

/* Records of KIND in C's store (every length). */
static int count_any(void *ctx, const uint8_t *v, size_t len)
{
	(void)v;
	(void)len;
	++*(unsigned *)ctx;
	return 0;
}

static unsigned records(struct cairn *c, uint32_t kind)
{
	unsigned n = 0;
	assert_true(cstate_list(c->st, kind, count_any, &n) >= 0);
	return n;
}

/* Bob answers an offer with a join that no welcome answers (Alice never syncs again): his
 * join's keys are forgotten after their life; a join a welcome answered leaves no note. */
static void test_join_never_welcomed(void **state)
{
	struct fixture *f = *state;
	struct cairn *a = f->w->h[A].c, *b = f->w->h[B].c, *c = f->w->h[C].c;
	struct cairn_sync_result res;
	make_group(f, "answered");
	assert_int_equal(client_groups_tick(b), 0);
	assert_int_equal(records(b, REC_GROUP_JOINING), 0);
	assert_int_equal(records(b, REC_GROUP_JOINING_AT), 0);
	assert_int_equal(records(c, REC_GROUP_JOINING_AT), 0);
	assert_int_equal(cairn_group_create(a, "never", f->addr), 0);
	assert_int_equal(cairn_group_add(a, "never", "bob"), 0);
	assert_int_equal(cairn_sync(a, &res, NULL, NULL), 0);
	assert_int_equal(cairn_sync(b, &res, NULL, NULL), 0);
	assert_int_equal(records(b, REC_GROUP_JOINING), 1);
	assert_int_equal(records(b, REC_GROUP_JOINING_AT), 1);
	struct client_env env = f->w->env;
	env.wall_s = skewed_wall;
	skew_s = GROUP_LOG_TTL - 3600;
	client_set_env(b, &env);
	assert_int_equal(client_groups_tick(b), 0);
	assert_int_equal(records(b, REC_GROUP_JOINING), 1); /* not yet */
	skew_s = GROUP_LOG_TTL + 3600;
	assert_int_equal(client_groups_tick(b), 0);
	assert_int_equal(records(b, REC_GROUP_JOINING), 0);
	assert_int_equal(records(b, REC_GROUP_JOINING_AT), 0);
	client_set_env(b, &f->w->env);
	/* Bob is still in the group he was welcomed to. */
	assert_int_equal(members(b, "answered").n, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_one_namespace, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rename_group, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_welcome_name_taken, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_upgrade_model_2, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_kept_join_group_gone, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_kept_join_life, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_join_never_welcomed, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
