/* SPDX-License-Identifier: MIT */
/*
 * The transport of group logs (client/logio.c) in-process against in-memory relays
 * (tests/support/memrelay.h, which run the relay's own group log commands), with a test
 * handler in place of the group state: a create and appends queued in one home reach a
 * second home in order; a follow read in the engine delivers a new entry within one step; a
 * relay that drops every connection loses and repeats nothing; an append to a log that does
 * not exist reports the log gone and leaves nothing to retry; order per log holds for several
 * logs on two relays; an entry the handler fails on is offered again.
 */
#define _GNU_SOURCE
#include <ftw.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "cairn/cairn.h"
#include "client.h"
#include "logio.h"
#include "memrelay.h"

#define PASS "correct horse battery staple"
#define LOGS 4
#define SEEN 64

/* The test's group state: the logs it reads, its cursors, what it was handed. */
struct th {
	size_t nlogs;
	struct group_log_ref log[LOGS];
	uint64_t cursor[LOGS];
	unsigned states, appended, gone, fail_next, fail_appended;
	uint64_t last_appended_seq;
	size_t n;
	struct {
		size_t log;
		uint64_t seq;
		char text[32];
	} seen[SEEN];
};

static size_t find(struct th *t, const struct group_log_ref *log)
{
	for (size_t i = 0; i < t->nlogs; i++)
		if (memcmp(t->log[i].log_id, log->log_id, CAIRN_LOG_ID_LEN) == 0)
			return i;
	fail_msg("a log the handler does not list");
	return 0;
}

static int th_logs(struct cairn *c, void *ctx,
                   int (*each)(void *, const struct group_log_ref *, uint64_t), void *each_ctx)
{
	(void)c;
	struct th *t = ctx;
	for (size_t i = 0; i < t->nlogs; i++) {
		int rc = each(each_ctx, &t->log[i], t->cursor[i] + 1);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int th_state(struct cairn *c, void *ctx, const struct group_log_ref *log, uint64_t first,
                    uint64_t next)
{
	(void)c;
	(void)log;
	assert_true(first <= next);
	((struct th *)ctx)->states++;
	return 0;
}

static int th_entry(struct cairn *c, void *ctx, const struct group_log_ref *log, uint64_t seq,
                    const uint8_t *entry, size_t len)
{
	(void)c;
	struct th *t = ctx;
	size_t i = find(t, log);
	if (t->fail_next > 0) {
		t->fail_next--;
		return CAIRN_EIO; /* "crashed" before storing: the cursor stays */
	}
	assert_true(seq > t->cursor[i]); /* never twice, always in order */
	assert_true(t->n < SEEN && len < sizeof(t->seen[0].text));
	t->seen[t->n].log = i;
	t->seen[t->n].seq = seq;
	memcpy(t->seen[t->n].text, entry, len);
	t->seen[t->n].text[len] = '\0';
	t->n++;
	t->cursor[i] = seq;
	return 0;
}

static int th_appended(struct cairn *c, void *ctx, const uint8_t out_id[16], uint64_t seq)
{
	(void)c;
	(void)out_id;
	struct th *t = ctx;
	if (t->fail_appended > 0) {
		t->fail_appended--;
		return CAIRN_EIO; /* "crashed" before the state stored it */
	}
	assert_true(seq > 0); /* seqs start at 1 (5.9) */
	t->last_appended_seq = seq;
	t->appended++;
	return 0;
}

static int th_gone(struct cairn *c, void *ctx, const struct group_log_ref *log)
{
	(void)c;
	(void)log;
	((struct th *)ctx)->gone++;
	return 0;
}

static const struct logio_handler handler = {th_logs, th_state, th_entry, th_appended, th_gone};

/* ---- the world ------------------------------------------------------------------------ */

struct world {
	char root[64];
	struct memrelay *relay[2];
	struct client_env env;
	struct cairn *a, *b;
	struct th ta, tb;
};

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static struct cairn *home(struct world *w, const char *name)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", w->root, name);
	struct cairn *c = NULL;
	if (cairn_init_kdf(path, PASS, CAIRN_KDF_INTERACTIVE) != 0 ||
	    cairn_open(path, PASS, &c) != 0)
		return NULL;
	client_set_env(c, &w->env);
	return c;
}

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	if (w == NULL || sodium_init() < 0)
		return -1;
	strcpy(w->root, "/tmp/cairn-logio-XXXXXX");
	if (mkdtemp(w->root) == NULL)
		return -1;
	for (int i = 0; i < 2; i++)
		if ((w->relay[i] = memrelay_new(NULL)) == NULL)
			return -1;
	memrelay_env_skipping(&w->env);
	if ((w->a = home(w, "a")) == NULL || (w->b = home(w, "b")) == NULL)
		return -1;
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	cairn_engine_stop(w->a);
	cairn_engine_stop(w->b);
	cairn_close(w->a);
	cairn_close(w->b);
	for (int i = 0; i < 2; i++)
		memrelay_free(w->relay[i]);
	nftw(w->root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(w);
	return 0;
}

/* A fresh log on relay R, listed by both homes' handlers. */
static size_t new_log(struct world *w, int r)
{
	struct group_log_ref l = {0};
	snprintf(l.relay, sizeof(l.relay), "%s", memrelay_address(w->relay[r]));
	randombytes_buf(l.log_id, sizeof(l.log_id));
	randombytes_buf(l.credential, sizeof(l.credential));
	assert_true(w->ta.nlogs < LOGS);
	w->ta.log[w->ta.nlogs++] = l;
	w->tb.log[w->tb.nlogs++] = l;
	return w->ta.nlogs - 1;
}

static void queue_create(struct world *w, size_t i)
{
	uint8_t secret[32];
	randombytes_buf(secret, sizeof(secret));
	assert_int_equal(cstate_begin(w->a->st), 0);
	assert_int_equal(group_out_create(w->a, &w->ta.log[i], secret), 0);
	assert_int_equal(cstate_commit(w->a->st), 0);
}

static void queue_append(struct world *w, size_t i, const char *text)
{
	uint8_t id[16];
	assert_int_equal(cstate_begin(w->a->st), 0);
	assert_int_equal(
	    group_out_append(w->a, &w->ta.log[i], (const uint8_t *)text, strlen(text), id), 0);
	assert_int_equal(cstate_commit(w->a->st), 0);
}

/* How many items C's group outbox holds. */
static unsigned queued(struct cairn *c)
{
	unsigned n = 0;
	assert_int_equal(group_out_count(c, &n), 0);
	return n;
}

static void sync_ok(struct cairn *c, struct th *t, struct logio_result *res)
{
	assert_int_equal(logio_sync(c, &handler, t, res), 0);
}

/* ---- the tests ------------------------------------------------------------------------ */

/* Queued in one home, read in order by another; the outbox empties once confirmed. */
static void test_sync_roundtrip(void **state)
{
	struct world *w = *state;
	size_t i = new_log(w, 0);
	assert_int_equal(cstate_begin(w->a->st), 0);
	uint8_t secret[32] = {9}, id[16];
	assert_int_equal(group_out_create(w->a, &w->ta.log[i], secret), 0);
	const char *text[] = {"one", "two", "three"};
	for (int k = 0; k < 3; k++)
		assert_int_equal(group_out_append(w->a, &w->ta.log[i], (const uint8_t *)text[k],
		                                  strlen(text[k]), id),
		                 0);
	assert_int_equal(cstate_commit(w->a->st), 0);
	assert_int_equal(queued(w->a), 4);

	struct logio_result res;
	sync_ok(w->a, &w->ta, &res);
	assert_int_equal(res.sent, 4);
	assert_int_equal(w->ta.appended, 3);
	assert_int_equal(queued(w->a), 0);
	assert_int_equal(res.relays_failed, 0);

	sync_ok(w->b, &w->tb, &res);
	assert_int_equal(res.entries, 3);
	assert_int_equal(w->tb.n, 3);
	assert_int_equal(w->tb.states, 1);
	for (int k = 0; k < 3; k++)
		assert_string_equal(w->tb.seen[k].text, text[k]);
	assert_true(w->tb.seen[0].seq < w->tb.seen[1].seq);
	assert_true(w->tb.seen[1].seq < w->tb.seen[2].seq);

	/* Read again from the cursor: nothing new, nothing twice. */
	sync_ok(w->b, &w->tb, &res);
	assert_int_equal(res.entries, 0);
	assert_int_equal(w->tb.n, 3);

	/* cairn_sync carries them too once the handler is set. */
	queue_append(w, i, "four");
	client_set_group_handler(w->a, &handler, &w->ta);
	client_set_group_handler(w->b, &handler, &w->tb);
	struct cairn_sync_result sr;
	assert_int_equal(cairn_sync(w->a, &sr, NULL, NULL), 0);
	assert_int_equal(queued(w->a), 0);
	assert_int_equal(cairn_sync(w->b, &sr, NULL, NULL), 0);
	assert_int_equal(w->tb.n, 4);
	assert_string_equal(w->tb.seen[3].text, "four");
}

/* Steps B's engine (the test's loop) until COND or too many steps. */
#define RUN_UNTIL(c, cond)                                                                         \
	do {                                                                                       \
		for (int step_ = 0; !(cond); step_++) {                                            \
			assert_true(step_ < 2000);                                                 \
			one_step(c, 50);                                                           \
		}                                                                                  \
	} while (0)

/* One wait (at most MAX_MS) and one step of C's engine. */
static void one_step(struct cairn *c, int max_ms)
{
	struct pollfd fds[16];
	size_t n = 0;
	int timeout = 0;
	assert_int_equal(cairn_engine_fds(c, fds, 16, &n, &timeout), 0);
	assert_true(poll(fds, n, timeout < 0 || timeout > max_ms ? max_ms : timeout) >= 0);
	assert_int_equal(cairn_engine_step(c, fds, n), 0);
}

/* The engine follows; a new entry arrives within one step; a drop resumes without loss or
 * duplicate. */
static void test_engine_follow(void **state)
{
	struct world *w = *state;
	size_t i = new_log(w, 0);
	queue_create(w, i);
	queue_append(w, i, "first");
	struct logio_result res;
	sync_ok(w->a, &w->ta, &res);
	assert_int_equal(res.sent, 2);

	client_set_group_handler(w->b, &handler, &w->tb);
	assert_int_equal(cairn_engine_start(w->b, NULL, NULL), 0);
	RUN_UNTIL(w->b, w->tb.n == 1);
	assert_string_equal(w->tb.seen[0].text, "first");

	queue_append(w, i, "second");
	sync_ok(w->a, &w->ta, &res);
	assert_int_equal(res.sent, 1);
	/* The entry is durable and sent to the follower: one wait and one step take it. */
	one_step(w->b, 2000);
	assert_int_equal(w->tb.n, 2);
	assert_string_equal(w->tb.seen[1].text, "second");

	/* The relay drops every connection, and comes back. */
	memrelay_set_down(w->relay[0], true);
	for (int k = 0; k < 5; k++)
		one_step(w->b, 10);
	memrelay_set_down(w->relay[0], false);
	queue_append(w, i, "third");
	sync_ok(w->a, &w->ta, &res);
	assert_int_equal(res.sent, 1);
	RUN_UNTIL(w->b, w->tb.n == 3);
	assert_string_equal(w->tb.seen[2].text, "third");
	for (int k = 0; k < 20; k++)
		one_step(w->b, 5);
	assert_int_equal(w->tb.n, 3); /* nothing twice (th_entry checks each seq too) */
	assert_true(w->tb.states >= 2);
	cairn_engine_stop(w->b);
}

/* Both homes run engines: A's sends what it queues once woken (client_engine_wake); B takes up
 * a log it lists only later (logio_logs_changed), from its start. */
static void test_engine_wake_and_relist(void **state)
{
	struct world *w = *state;
	size_t i = new_log(w, 0);
	size_t j = new_log(w, 1);
	w->tb.nlogs = 1; /* B does not know the second log yet */
	client_set_group_handler(w->a, &handler, &w->ta);
	client_set_group_handler(w->b, &handler, &w->tb);
	assert_int_equal(cairn_engine_start(w->a, NULL, NULL), 0);
	assert_int_equal(cairn_engine_start(w->b, NULL, NULL), 0);
	queue_create(w, i);
	queue_create(w, j);
	client_engine_wake(w->a);
	RUN_UNTIL(w->a, w->ta.states == 2); /* created, and followed */
	queue_append(w, i, "in one");
	queue_append(w, j, "in two");
	client_engine_wake(w->a);
	RUN_UNTIL(w->a, w->ta.appended == 2 && w->ta.n == 2);
	assert_int_equal(queued(w->a), 0);
	RUN_UNTIL(w->b, w->tb.n == 1);
	assert_string_equal(w->tb.seen[0].text, "in one");

	w->tb.nlogs = 2;
	logio_logs_changed(w->b);
	RUN_UNTIL(w->b, w->tb.n == 2);
	assert_int_equal(w->tb.seen[1].log, 1);
	assert_string_equal(w->tb.seen[1].text, "in two");
	cairn_engine_stop(w->a);
	cairn_engine_stop(w->b);
}

/* An append to a log that does not exist: gone, dropped, not retried. */
static void test_denied_append(void **state)
{
	struct world *w = *state;
	size_t i = new_log(w, 0);
	queue_append(w, i, "nowhere");
	struct logio_result res;
	sync_ok(w->a, &w->ta, &res);
	assert_int_equal(res.gone, 1);
	assert_int_equal(w->ta.gone, 1);
	assert_int_equal(queued(w->a), 0);
	assert_int_equal(w->ta.appended, 0);
	/* The reader of that log hears it is gone too, once per pass. */
	sync_ok(w->b, &w->tb, &res);
	assert_int_equal(w->tb.gone, 1);
}

/* Several logs on two relays: each log in its own order, whatever the interleaving. */
static void test_order_per_log(void **state)
{
	struct world *w = *state;
	size_t l[4];
	for (int k = 0; k < 4; k++) {
		l[k] = new_log(w, k % 2);
		queue_create(w, l[k]);
	}
	char text[16];
	for (int n = 0; n < 5; n++)
		for (int k = 0; k < 4; k++) {
			snprintf(text, sizeof(text), "%d-%d", k, n);
			queue_append(w, l[k], text);
		}
	struct logio_result res;
	sync_ok(w->a, &w->ta, &res);
	assert_int_equal(res.sent, 24);
	sync_ok(w->b, &w->tb, &res);
	assert_int_equal(w->tb.n, 20);
	int next[4] = {0};
	for (size_t s = 0; s < w->tb.n; s++) {
		size_t k = w->tb.seen[s].log;
		snprintf(text, sizeof(text), "%zu-%d", k, next[k]++);
		assert_string_equal(w->tb.seen[s].text, text);
	}
}

/* The handler fails on an entry (a crash before its record): offered again next time. */
static void test_failed_entry_offered_again(void **state)
{
	struct world *w = *state;
	size_t i = new_log(w, 1);
	queue_create(w, i);
	queue_append(w, i, "a");
	queue_append(w, i, "b");
	struct logio_result res;
	sync_ok(w->a, &w->ta, &res);
	w->tb.fail_next = 1;
	sync_ok(w->b, &w->tb, &res);
	assert_int_equal(res.failures, 1);
	assert_int_equal(w->tb.n, 0);
	sync_ok(w->b, &w->tb, &res);
	assert_int_equal(w->tb.n, 2);
	assert_string_equal(w->tb.seen[0].text, "a");
	assert_string_equal(w->tb.seen[1].text, "b");
}

/* A relay that is down: every item stays queued, sent unchanged once it is back. */
static void test_relay_down_keeps_queue(void **state)
{
	struct world *w = *state;
	size_t i = new_log(w, 0);
	queue_create(w, i);
	queue_append(w, i, "later");
	memrelay_set_down(w->relay[0], true);
	struct logio_result res;
	sync_ok(w->a, &w->ta, &res);
	assert_int_equal(res.relays_failed, 1);
	assert_int_equal(queued(w->a), 2);
	memrelay_set_down(w->relay[0], false);
	sync_ok(w->a, &w->ta, &res);
	assert_int_equal(res.sent, 2);
	sync_ok(w->b, &w->tb, &res);
	assert_int_equal(w->tb.n, 1);
	assert_string_equal(w->tb.seen[0].text, "later");
}

/* The APPENDED is lost (the relay's connections drop after the commit), then the state fails
 * to store one: each time the entry stays queued and goes again unchanged; the log holds it
 * twice (section 9 counts it once, by its message id), each seq offered once. */
static void test_lost_appended_resent(void **state)
{
	struct world *w = *state;
	size_t i = new_log(w, 0);
	queue_create(w, i);
	struct logio_result res;
	sync_ok(w->a, &w->ta, &res);
	assert_int_equal(res.sent, 1);

	queue_append(w, i, "dup");
	memrelay_cut_after_append(w->relay[0]);
	sync_ok(w->a, &w->ta, &res);
	assert_int_equal(res.relays_failed, 1);
	assert_int_equal(w->ta.appended, 0);
	assert_int_equal(queued(w->a), 1);

	w->ta.fail_appended = 1;
	sync_ok(w->a, &w->ta, &res);
	assert_int_equal(res.failures, 1);
	assert_int_equal(w->ta.appended, 0);
	assert_int_equal(queued(w->a), 1);

	sync_ok(w->a, &w->ta, &res);
	assert_int_equal(res.sent, 1);
	assert_int_equal(w->ta.appended, 1);
	assert_int_equal(queued(w->a), 0);

	sync_ok(w->b, &w->tb, &res);
	assert_int_equal(w->tb.n, 3);
	for (int k = 0; k < 3; k++)
		assert_string_equal(w->tb.seen[k].text, "dup");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_sync_roundtrip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_engine_follow, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_engine_wake_and_relist, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_denied_append, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_order_per_log, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failed_entry_offered_again, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_relay_down_keeps_queue, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lost_appended_resent, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
