/* SPDX-License-Identifier: MIT */
/*
 * A log's seqs numbered by PostgreSQL on a relay of several nodes (store.h's assigned_seq,
 * relay/store_pg.c, docs/SCALING.md 4), on a real server (pg_fixture.h): two stores open as
 * nodes 1 and 2 append to one log at once, each from its own thread, in batches that mix
 * entries with other ops; the seqs handed back are 1..N, none twice, each the one stored, and
 * each node's feed rows carry them to the other. A failed batch gives no seq (no gap), and a
 * log whose entries a relay alone wrote goes on above them.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cairn/error.h"
#include "feed_codec.h"
#include "pg_fixture.h"
#include "store.h"

#define LOG_KEY 77
#define BATCHES 60 /* per node */
#define PER_MAX 3  /* entries per batch: 1..3 */
#define ENTRIES (2 * BATCHES * PER_MAX)
#define MAILBOX 4242
#define BASE_ID 1000000 /* a node's ids: node * BASE_ID + n */

struct node_run {
	void *store;
	uint8_t node;
	int failed; /* commits that did not return 0 */
	size_t n;   /* entries appended */
	uint64_t ids[BATCHES * PER_MAX], seqs[BATCHES * PER_MAX];
};

struct fixture {
	char conninfo[512];
	struct node_run run[3]; /* by node */
};

static const uint8_t body[32] = {7};

static int open_node(struct fixture *t, uint8_t node)
{
	struct store_params params = {.connection = t->conninfo, .node = node};
	struct store_load_cb cb = {0};
	t->run[node].node = node;
	if (store_pg.open(&params, &t->run[node].store) != 0)
		return -1;
	return store_pg.load(t->run[node].store, &cb, NULL);
}

static int setup(void **state)
{
	struct fixture *t = calloc(1, sizeof(*t));
	if (t == NULL || pg_fresh_database(t->conninfo, sizeof(t->conninfo)) != 0 ||
	    open_node(t, 1) != 0 || open_node(t, 2) != 0) {
		free(t);
		return -1;
	}
	*state = t;
	struct store_mailbox mb = {.id = MAILBOX, .touched = 1700000000};
	struct store_log log = {.id = LOG_KEY, .next_seq = 1, .touched = 1700000000};
	struct store_op ops[] = {{.kind = STORE_MAILBOX_PUT, .mailbox = &mb},
	                         {.kind = STORE_LOG_PUT, .log = &log}};
	return store_pg.commit(t->run[1].store, ops, 2) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *t = *state;
	for (int i = 1; i <= 2; i++)
		if (t->run[i].store != NULL)
			store_pg.close(t->run[i].store);
	free(t);
	return 0;
}

static struct store_op entry(uint64_t id, uint64_t *assigned)
{
	return (struct store_op){.kind = STORE_LOG_ENTRY_PUT,
	                         .envelope_id = id,
	                         .log_key = LOG_KEY,
	                         .seq = 1, /* the relay's guess: ignored */
	                         .body = body,
	                         .len = sizeof(body),
	                         .stored_at = 1700000000,
	                         .assigned_seq = assigned};
}

/* BATCHES batches of a node: an envelope, 1..3 entries, a touch of the log and, in every
 * fourth, an expiry of nothing (three statements: the walk over the results must skip
 * them). */
static void *appender(void *arg)
{
	struct node_run *r = arg;
	uint64_t next = (uint64_t)r->node * BASE_ID;
	for (int b = 0; b < BATCHES; b++) {
		struct store_op ops[PER_MAX + 3];
		uint64_t seqs[PER_MAX] = {0}, ids[PER_MAX];
		size_t n = 0, k = 1 + (size_t)(b + r->node) % PER_MAX;
		if (b % 4 == 0)
			ops[n++] = (struct store_op){.kind = STORE_EXPIRE, .envelope_id = 2};
		ops[n++] = (struct store_op){.kind = STORE_ENVELOPE_PUT,
		                             .envelope_id = ++next,
		                             .mailbox_id = MAILBOX,
		                             .body = body,
		                             .len = sizeof(body),
		                             .stored_at = 1700000000};
		for (size_t i = 0; i < k; i++)
			ops[n++] = entry(ids[i] = ++next, &seqs[i]);
		ops[n++] = (struct store_op){
		    .kind = STORE_LOG_TOUCH, .log_key = LOG_KEY, .stored_at = 1700000000 + b};
		if (store_pg.commit(r->store, ops, n) != 0) {
			r->failed++;
			continue;
		}
		for (size_t i = 0; i < k; i++) {
			r->ids[r->n] = ids[i];
			r->seqs[r->n++] = seqs[i];
		}
	}
	return NULL;
}

/* "id:seq,..." of the stored entries in id order, into OUT. */
static void stored_entries(struct fixture *t, char *out, size_t cap)
{
	assert_int_equal(
	    pg_exec(t->conninfo,
	            "SELECT coalesce(string_agg(id || ':' || seq, ',' ORDER BY id), '')"
	            " FROM log_entries",
	            out, cap),
	    0);
}

static int by_id(const void *a, const void *b)
{
	uint64_t x = ((const uint64_t *)a)[0], y = ((const uint64_t *)b)[0];
	return x < y ? -1 : x > y;
}

/* The seq T's feed rows of NODE's commits give entry ID (0 when none). */
struct feed_seqs {
	uint64_t ids[ENTRIES], seqs[ENTRIES];
	size_t n;
};

static int keep_entry(void *ctx, const struct store_op *op)
{
	struct feed_seqs *f = ctx;
	if (op->kind == STORE_LOG_ENTRY_PUT) {
		assert_true(f->n < ENTRIES);
		f->ids[f->n] = op->envelope_id;
		f->seqs[f->n++] = op->seq;
	}
	return 0;
}

/* The entries of the rows STORE's feed_read gives now, in order, into F. */
static void feed_entries(void *store, struct feed_seqs *f)
{
	struct store_feed feed;
	do {
		assert_int_equal(store_pg.feed_read(store, &feed), 0);
		for (size_t i = 0; i < feed.n; i++)
			assert_int_equal(
			    feed_decode(feed.rows[i].ops, feed.rows[i].len, keep_entry, f), 0);
		store_feed_free(&feed);
	} while (feed.more);
}

static void test_two_nodes_one_log(void **state)
{
	struct fixture *t = *state;
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, appender, &t->run[i + 1]), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);

	/* Every commit succeeded (none lost a race for a seq), and the seqs are 1..N once. */
	size_t n = 0;
	uint64_t pairs[ENTRIES][2];
	for (int node = 1; node <= 2; node++) {
		struct node_run *r = &t->run[node];
		assert_int_equal(r->failed, 0);
		for (size_t i = 0; i < r->n; i++) {
			pairs[n][0] = r->ids[i];
			pairs[n++][1] = r->seqs[i];
		}
	}
	assert_true(n > 2 * BATCHES);
	bool *seen = calloc(n + 1, sizeof(*seen));
	assert_non_null(seen);
	for (size_t i = 0; i < n; i++) {
		assert_true(pairs[i][1] >= 1 && pairs[i][1] <= n);
		assert_false(seen[pairs[i][1]]);
		seen[pairs[i][1]] = true;
	}
	free(seen);
	/* Both nodes' appends interleave in the log (it is not one node's run then the other's). */
	int switches = 0;
	for (size_t s = 1; s < n; s++) {
		int a = 0, b = 0;
		for (size_t i = 0; i < n; i++) {
			if (pairs[i][1] == s)
				a = (int)(pairs[i][0] / BASE_ID);
			if (pairs[i][1] == s + 1)
				b = (int)(pairs[i][0] / BASE_ID);
		}
		switches += a != b;
	}
	assert_true(switches > 0);

	/* Each returned seq is the stored one. */
	qsort(pairs, n, sizeof(pairs[0]), by_id);
	size_t cap = n * 24 + 1, off = 0;
	char *want = malloc(cap), *got = malloc(cap);
	assert_non_null(want);
	assert_non_null(got);
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(want + off, cap - off, "%s%llu:%llu", i ? "," : "",
		                        (unsigned long long)pairs[i][0],
		                        (unsigned long long)pairs[i][1]);
	stored_entries(t, got, cap);
	assert_string_equal(got, want);
	free(want);
	free(got);
	char next[32];
	snprintf(want = next, sizeof(next), "%zu", n + 1);
	char stored[32];
	assert_int_equal(pg_exec(t->conninfo, "SELECT next_seq FROM logs", stored, sizeof(stored)),
	                 0);
	assert_string_equal(stored, next);

	/* Each node's feed rows carry the database's seqs to the other. */
	for (int node = 1; node <= 2; node++) {
		struct feed_seqs f = {0};
		feed_entries(t->run[3 - node].store, &f);
		struct node_run *r = &t->run[node];
		assert_int_equal(f.n, r->n);
		for (size_t i = 0; i < r->n; i++) {
			assert_int_equal(f.ids[i], r->ids[i]);
			assert_int_equal(f.seqs[i], r->seqs[i]);
		}
	}
}

/* A batch that fails (a repeated envelope id) gives no seq: the next one is contiguous. */
static void test_failed_batch_no_gap(void **state)
{
	struct fixture *t = *state;
	uint64_t s1 = 0, s2 = 0, s3 = 0;
	struct store_op first = entry(10, &s1);
	assert_int_equal(store_pg.commit(t->run[1].store, &first, 1), 0);
	assert_int_equal(s1, 1);
	struct store_op bad[] = {entry(11, &s2), entry(10, &s2)};
	assert_int_not_equal(store_pg.commit(t->run[2].store, bad, 2), 0);
	struct store_op next = entry(12, &s3);
	assert_int_equal(store_pg.commit(t->run[2].store, &next, 1), 0);
	assert_int_equal(s3, 2);
	char got[64];
	stored_entries(t, got, sizeof(got));
	assert_string_equal(got, "10:1,12:2");
}

/* Entries a relay alone wrote (which do not move the log's next_seq) are numbered above. */
static void test_above_entries_of_a_relay_alone(void **state)
{
	struct fixture *t = *state;
	assert_int_equal(pg_exec(t->conninfo,
	                         "INSERT INTO log_entries (id, log, seq, stored_at, body)"
	                         " VALUES (5, 77, 1, 0, '\\x01'), (6, 77, 2, 0, '\\x01'),"
	                         " (7, 77, 4, 0, '\\x01')",
	                         NULL, 0),
	                 0);
	uint64_t seq = 0;
	struct store_op op = entry(20, &seq);
	assert_int_equal(store_pg.commit(t->run[1].store, &op, 1), 0);
	assert_int_equal(seq, 5);
	/* The log deleted meanwhile: nothing stored, seq 0 back, and the batch still commits. */
	struct store_op del = {.kind = STORE_LOG_DELETE, .log_key = LOG_KEY};
	assert_int_equal(store_pg.commit(t->run[2].store, &del, 1), 0);
	struct store_op env = {.kind = STORE_ENVELOPE_PUT,
	                       .envelope_id = 30,
	                       .mailbox_id = MAILBOX,
	                       .body = body,
	                       .len = sizeof(body),
	                       .stored_at = 1700000000};
	struct store_op late[] = {entry(21, &seq), env};
	seq = 99;
	assert_int_equal(store_pg.commit(t->run[1].store, late, 2), 0);
	assert_int_equal(seq, 0);
	char got[64];
	assert_int_equal(
	    pg_exec(t->conninfo, "SELECT count(*) FROM envelopes WHERE id = 30", got, sizeof(got)),
	    0);
	assert_string_equal(got, "1");
	struct feed_seqs f = {0};
	feed_entries(t->run[2].store, &f);
	assert_int_equal(f.n, 2);
	assert_int_equal(f.seqs[0], 5);
	assert_int_equal(f.seqs[1], 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_two_nodes_one_log, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failed_batch_no_gap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_above_entries_of_a_relay_alone, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
