/* SPDX-License-Identifier: MIT */
/*
 * Disappearing messages (PROTOCOL.md 8.11) through libcairn in-process, over an in-memory
 * relay, with a wall clock the test moves: two changes made at once converge to the later one
 * on both sides (in both orders, and on a tie of the clocks); a message expires while an
 * engine runs, taking its part of the unread count, its parts still reassembling and its
 * unsent outbox entry with it; a message whose time came while the home was closed is gone
 * at open, before any read; a group's timer.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <sodium.h>

#include "cairn/cairn.h"
#include "client.h"
#include "group.h"

#include "api_group_common.h"

#define A 0
#define B 1
#define C 2

/* The wall clock of every home: the test moves it. */
static int64_t fake_now;
static int64_t fake_wall(void *ctx)
{
	(void)ctx;
	return fake_now;
}

static int64_t past_wall(void *ctx)
{
	(void)ctx;
	return (int64_t)time(NULL) - 10 * 86400;
}

static int setup(void **state)
{
	setup_three(state);
	struct fixture *f = *state;
	fake_now = (int64_t)time(NULL);
	f->w->env.wall_s = fake_wall;
	for (unsigned i = 0; i < f->w->n; i++)
		client_set_env(f->w->h[i].c, &f->w->env);
	return 0;
}

/* What cairn_read shows of a conversation. */
struct shown {
	unsigned texts, timers;
	uint32_t last_timer;
	int last_timer_outgoing;
	char sender[CAIRN_NAME_MAX + 1];
	char text[8][64];
	int64_t expires[8];
};

static int on_shown(void *ctx, const struct cairn_message *m)
{
	struct shown *s = ctx;
	if (m->kind == CAIRN_MESSAGE_TIMER) {
		assert_null(m->text);
		s->timers++;
		s->last_timer = m->timer;
		s->last_timer_outgoing = m->outgoing;
		snprintf(s->sender, sizeof(s->sender), "%s", m->sender ? m->sender : "");
		return 0;
	}
	assert_int_equal(m->kind, CAIRN_MESSAGE_TEXT);
	if (s->texts < 8) {
		snprintf(s->text[s->texts], sizeof(s->text[0]), "%.*s", (int)m->len, m->text);
		s->expires[s->texts] = m->expires_at;
	}
	s->texts++;
	return 0;
}

static struct shown shown(struct cairn *c, const char *name)
{
	struct shown s = {0};
	assert_int_equal(cairn_read(c, name, on_shown, &s), 0);
	return s;
}

static bool shows(const struct shown *s, const char *text)
{
	for (unsigned i = 0; i < s->texts && i < 8; i++)
		if (strcmp(s->text[i], text) == 0)
			return true;
	return false;
}

static uint32_t timer_of(struct cairn *c, const char *name)
{
	uint32_t t = 12345;
	assert_int_equal(cairn_timer_get(c, name, &t), 0);
	return t;
}

static void sync1(struct cairn *c)
{
	struct cairn_sync_result res;
	assert_int_equal(cairn_sync(c, &res, NULL, NULL), 0);
}

/* The unread count of contact NAME in C's list, without reading the conversation. */
struct unread_q {
	const char *name;
	unsigned unread;
};
static int on_contact(void *ctx, const struct cairn_contact *k)
{
	struct unread_q *q = ctx;
	if (strcmp(k->name, q->name) == 0)
		q->unread = k->unread;
	return 0;
}
static unsigned unread_of(struct cairn *c, const char *name)
{
	struct unread_q q = {.name = name, .unread = 9999};
	assert_int_equal(cairn_contacts(c, on_contact, &q), 0);
	return q.unread;
}

/* How many records of KIND C's store holds (the raw store, no sweep). */
static int count_rec(void *ctx, const uint8_t *v, size_t len)
{
	(void)v;
	(void)len;
	(*(unsigned *)ctx)++;
	return 0;
}
static unsigned records(struct cairn *c, uint32_t kind)
{
	unsigned n = 0;
	assert_true(cstate_list(c->st, kind, count_rec, &n) >= 0);
	return n;
}

/* Whether the raw store of C holds message TEXT (no sweep: read straight from the records). */
struct has_text {
	const char *text;
	bool found;
};
static int has_one(void *ctx, const uint8_t *v, size_t len)
{
	struct has_text *h = ctx;
	struct stored_message m;
	if (message_parse(v, len, &m) == 0 && m.len == strlen(h->text) &&
	    memcmp(m.text, h->text, m.len) == 0)
		h->found = true;
	return 0;
}
static bool stored(struct cairn *c, const char *text)
{
	struct has_text h = {.text = text};
	assert_true(cstate_list(c->st, REC_MESSAGE, has_one, &h) >= 0);
	return h.found;
}

static void say(struct cairn *c, const char *to, const char *text)
{
	assert_int_equal(cairn_send(c, to, (const uint8_t *)text, strlen(text), NULL), 0);
}

/* Alice and Bob change the timer at once, Alice's change DA seconds after Bob's by their
 * clocks: both end with the later one (on a tie, the same one), and each shows the other's. */
static void change_at_once(struct fixture *f, int64_t da)
{
	struct cairn *a = f->w->h[A].c, *b = f->w->h[B].c;
	int64_t t0 = fake_now;
	fake_now = t0 + (da > 0 ? da : 0);
	assert_int_equal(cairn_timer_queue(a, "bob", 86400), 0);
	fake_now = t0 + (da < 0 ? -da : 0);
	assert_int_equal(cairn_timer_queue(b, "alice", 3600), 0);
	assert_int_equal(timer_of(a, "bob"), 86400); /* ours applies at once */
	assert_int_equal(timer_of(b, "alice"), 3600);
	fake_now = t0 + 10;
	sync1(a);
	sync1(b);
	sync1(a);
	uint32_t ta = timer_of(a, "bob"), tb = timer_of(b, "alice");
	assert_int_equal(ta, tb);
	if (da > 0)
		assert_int_equal(ta, 86400);
	if (da < 0)
		assert_int_equal(ta, 3600);
	struct shown sa = shown(a, "bob"), sb = shown(b, "alice");
	assert_true(sa.timers >= 2 && sb.timers >= 2); /* ours and theirs, each kept */
}

static void test_order_rule(void **state)
{
	struct fixture *f = *state;
	change_at_once(f, 5);  /* Alice's is later */
	change_at_once(f, -5); /* Bob's is later */
	change_at_once(f, 0);  /* the same second: the ids decide, the same way on both */
	/* Off, by Bob: shown at Alice's as his, with 0. */
	assert_int_equal(cairn_timer_set(f->w->h[B].c, "alice", 0), 0);
	sync1(f->w->h[A].c);
	assert_int_equal(timer_of(f->w->h[A].c, "bob"), 0);
	struct shown s = shown(f->w->h[A].c, "bob");
	assert_int_equal(s.last_timer, 0);
	assert_int_equal(s.last_timer_outgoing, 0);
	/* Two changes by one side within a second: the second wins, here and there. */
	assert_int_equal(cairn_timer_queue(f->w->h[A].c, "bob", 60), 0);
	assert_int_equal(cairn_timer_queue(f->w->h[A].c, "bob", 120), 0);
	assert_int_equal(cairn_timer_queue(f->w->h[A].c, "bob", 180), 0);
	assert_int_equal(timer_of(f->w->h[A].c, "bob"), 180);
	sync1(f->w->h[A].c);
	sync1(f->w->h[B].c);
	assert_int_equal(timer_of(f->w->h[B].c, "alice"), 180);
	/* Out of range. */
	assert_int_equal(cairn_timer_set(f->w->h[A].c, "bob", CAIRN_TIMER_MAX_S + 1), CAIRN_EINVAL);
	assert_int_equal(cairn_timer_set(f->w->h[A].c, "nobody", 60), CAIRN_ENOTFOUND);
}

/* Steps C's engine until PRED holds for C (bounded by real time). */
static void engine_until(struct cairn *c, bool (*pred)(struct cairn *c, const void *arg),
                         const void *arg)
{
	struct cairn_engine_callbacks cb = {0};
	assert_int_equal(cairn_engine_start(c, &cb, NULL), 0);
	time_t end = time(NULL) + 60;
	while (!pred(c, arg) && time(NULL) < end) {
		struct pollfd fds[16];
		size_t n;
		int timeout;
		assert_int_equal(cairn_engine_fds(c, fds, 16, &n, &timeout), 0);
		assert_true(poll(fds, n, timeout < 0 || timeout > 20 ? 20 : timeout) >= 0);
		assert_int_equal(cairn_engine_step(c, fds, n), 0);
	}
	cairn_engine_stop(c);
	assert_true(pred(c, arg));
}

static bool gone(struct cairn *c, const void *text)
{
	return !stored(c, text);
}

/* A part of a message of two parts from Bob's contact CONTACT, kept as receive.c keeps it. */
static void half_message(struct cairn *c, const char *contact, const uint8_t id[APPMSG_ID_LEN])
{
	struct contact k;
	assert_int_equal(client_load_contact(c, contact, &k), 0);
	uint8_t raw[128], *text = NULL;
	size_t len = 0, tlen = 0;
	struct appmsg am = {.kind = APPMSG_TEXT,
	                    .sent_at = (uint64_t)fake_now,
	                    .part_count = 2,
	                    .data = (const uint8_t *)"half",
	                    .data_len = 4};
	memcpy(am.id, id, APPMSG_ID_LEN);
	assert_int_equal(appmsg_encode(&am, raw, sizeof(raw), &len), 0);
	assert_int_equal(cstate_begin(c->st), 0);
	assert_int_equal(client_join_parts(c, k.conv, APPMSG_PART_MAX, &am, raw, len, &text, &tlen),
	                 0);
	assert_int_equal(cstate_commit(c->st), 0);
	contact_wipe(&k);
}

static void test_expiry_while_running(void **state)
{
	struct fixture *f = *state;
	struct cairn *a = f->w->h[A].c, *b = f->w->h[B].c;
	assert_int_equal(cairn_timer_set(a, "bob", 60), 0);
	sync1(b);
	assert_int_equal(timer_of(b, "alice"), 60);
	unsigned before = unread_of(b, "alice"); /* pair()'s "hi" */
	int64_t t0 = fake_now;
	say(a, "bob", "m1");
	sync1(b);
	assert_int_equal(unread_of(b, "alice"), before + 1); /* the timer change is no unread */
	struct shown s = shown(b, "alice"); /* read: nothing unread */
	assert_true(shows(&s, "m1"));
	assert_int_equal(s.expires[s.texts - 1], t0 + 60);
	assert_int_equal(unread_of(b, "alice"), 0);
	fake_now = t0 + 30;
	say(a, "bob", "m3");
	sync1(b);
	assert_int_equal(unread_of(b, "alice"), 1);
	uint8_t pid[APPMSG_ID_LEN] = {7};
	half_message(b, "alice", pid);
	assert_int_equal(records(b, REC_PART), 1);
	/* Alice queues one she never sends. */
	assert_int_equal(cairn_queue(a, "bob", (const uint8_t *)"unsent", 6, NULL), 0);
	unsigned queued = 0;
	assert_int_equal(client_outbox_count(a, NULL, &queued), 0);
	assert_int_equal(queued, 1);
	/* m1's time (and the part's) comes while Bob's engine runs: m1 was read, m3 stays
	 * unread. */
	fake_now = t0 + 61;
	engine_until(b, gone, "m1");
	assert_true(stored(b, "m3"));
	assert_int_equal(records(b, REC_PART), 1); /* kept at t0 + 30, like m3 */
	assert_int_equal(unread_of(b, "alice"), 1);
	/* m3's: it was unread, and no longer counts. */
	fake_now = t0 + 91;
	engine_until(b, gone, "m3");
	assert_int_equal(records(b, REC_PART), 0);
	assert_int_equal(unread_of(b, "alice"), 0);
	s = shown(b, "alice");
	assert_false(shows(&s, "m1"));
	assert_false(shows(&s, "m3"));
	assert_true(shows(&s, "hi")); /* stored before the timer: kept */
	/* Alice's own copies and the unsent outbox entry go at her next read. */
	s = shown(a, "bob");
	assert_false(shows(&s, "m1"));
	assert_false(shows(&s, "unsent"));
	assert_int_equal(records(a, REC_EXPIRY), 0);
	assert_int_equal(client_outbox_count(a, NULL, &queued), 0);
	assert_int_equal(queued, 0);
}

static void test_expiry_at_open(void **state)
{
	struct fixture *f = *state;
	struct cairn *a = f->w->h[A].c, *b = f->w->h[B].c;
	/* Written by Bob ten days ago (his clock), not yet sent, under a timer of a day he set
	 * then: due long before the real clock's now. */
	struct client_env past = f->w->env;
	past.wall_s = past_wall;
	client_set_env(b, &past);
	assert_int_equal(cairn_timer_queue(b, "alice", 86400), 0);
	assert_int_equal(cairn_queue(b, "alice", (const uint8_t *)"old news", 8, NULL), 0);
	(void)a;
	assert_true(stored(b, "old news"));
	/* Closed, reopened (cairn_open runs on the real clock): gone before anything reads. */
	gw_restart(f->w, B);
	b = f->w->h[B].c;
	assert_false(stored(b, "old news"));
	assert_int_equal(records(b, REC_EXPIRY), 0);
	client_set_env(b, &f->w->env);
	struct shown s = shown(b, "alice");
	assert_false(shows(&s, "old news"));
	assert_int_equal(s.timers, 0); /* the change was kept under itself: gone too */
	unsigned queued = 9;
	assert_int_equal(client_outbox_count(b, NULL, &queued), 0);
	assert_int_equal(queued, 0); /* neither was ever sent: their envelopes went with them */
	assert_int_equal(timer_of(b, "alice"), 86400); /* the timer itself stays */
}

static void test_group_timer(void **state)
{
	struct fixture *f = *state;
	struct cairn *a = f->w->h[A].c, *b = f->w->h[B].c, *c = f->w->h[C].c;
	assert_int_equal(cairn_group_create(a, "friends", f->addr), 0);
	assert_int_equal(cairn_group_add(a, "friends", "bob"), 0);
	assert_int_equal(cairn_group_add(a, "friends", "carol"), 0);
	sync_all(f, 5);
	assert_int_equal(cairn_timer_set(b, "friends", 3600), 0);
	sync_all(f, 2);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(timer_of(f->w->h[i].c, "friends"), 3600);
	struct shown s = shown(c, "friends");
	assert_int_equal(s.timers, 1);
	assert_int_equal(s.last_timer, 3600);
	s = shown(a, "friends");
	assert_string_equal(s.sender, "bob"); /* named as cairn_group_members names him */
	int64_t t0 = fake_now;
	assert_int_equal(cairn_send(a, "friends", (const uint8_t *)"g1", 2, NULL), 0);
	sync_all(f, 2);
	s = shown(c, "friends");
	assert_true(shows(&s, "g1"));
	fake_now = t0 + 3601;
	for (unsigned i = 0; i < 3; i++) {
		s = shown(f->w->h[i].c, "friends");
		assert_false(shows(&s, "g1"));
		assert_false(stored(f->w->h[i].c, "g1"));
	}
	(void)b;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_order_rule, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_expiry_while_running, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_expiry_at_open, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_group_timer, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
