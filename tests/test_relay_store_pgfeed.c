/* SPDX-License-Identifier: MIT */
/*
 * The PostgreSQL engine's change feed (store.h's node; relay/store_pg_feed.c,
 * store_pg_listen.c, the locks in store_pg_session.c), on a real server (pg_fixture.h), with
 * several stores open on one database as the nodes of several relays: what node 1 commits
 * comes back from node 2's feed_read, decoded equal, in order, bounded; a node never reads
 * its own rows; a failed batch leaves no row and no gap; node 2's feed_wake is called within
 * a second of node 1's commit, and again after its listener reconnects to a restarted
 * server; the locks refuse a second relay where it would share what it must not; rows pruned
 * before a node read them give CAIRN_ESTATE; a node-0 store writes no feed; a store of the
 * previous schema version migrates; SQLite refuses a node.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cairn/error.h"
#include "feed_codec.h"
#include "pg_engine.h"
#include "pg_fixture.h"
#include "store.h"

struct nodes {
	char conninfo[512];
	void *store[4]; /* by node; [0] a node-0 store when a test opens one */
	atomic_int wakes[4];
};

static void count_wake(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
}

/* Opens N's store on the test's database; WHY gets open's message. */
static int open_node(struct nodes *t, uint8_t node, void **out, char *why, size_t cap)
{
	struct store_params params = {.connection = t->conninfo,
	                              .node = node,
	                              .feed_wake = count_wake,
	                              .feed_wake_arg = &t->wakes[node],
	                              .error = why,
	                              .error_cap = cap};
	if (why != NULL && cap > 0)
		why[0] = '\0';
	return store_pg.open(&params, out);
}

static int no_cb_load(void *store)
{
	struct store_load_cb cb = {0};
	return store_pg.load(store, &cb, NULL);
}

static int setup(void **state)
{
	struct nodes *t = calloc(1, sizeof(*t));
	if (t == NULL || pg_fresh_database(t->conninfo, sizeof(t->conninfo)) != 0) {
		free(t);
		return -1;
	}
	*state = t;
	return 0;
}

/* Opens nodes 1 and 2 and loads them (their cursors). */
static int setup_two(void **state)
{
	if (setup(state) != 0)
		return -1;
	struct nodes *t = *state;
	for (uint8_t n = 1; n <= 2; n++)
		if (open_node(t, n, &t->store[n], NULL, 0) != 0 || no_cb_load(t->store[n]) != 0)
			return -1;
	return 0;
}

static int teardown(void **state)
{
	struct nodes *t = *state;
	for (int i = 0; i < 4; i++)
		if (t->store[i] != NULL)
			store_pg.close(t->store[i]);
	free(t);
	return 0;
}

static void sql_is(struct nodes *t, const char *sql, const char *want)
{
	char out[64];
	assert_int_equal(pg_exec(t->conninfo, sql, out, sizeof(out)), 0);
	assert_string_equal(out, want);
}

static const uint8_t body[48] = {9};
static struct store_mailbox mb = {.id = 4242, .recipient_id = {1}, .touched = 1700000000};

static struct store_op put(uint64_t id, uint64_t mailbox)
{
	return (struct store_op){.kind = STORE_ENVELOPE_PUT,
	                         .envelope_id = id,
	                         .mailbox_id = mailbox,
	                         .body = body,
	                         .len = sizeof(body),
	                         .stored_at = 1700000000 + (int64_t)id};
}

/* The ops decoded from rows, flattened. */
struct decoded {
	struct store_op ops[64];
	struct store_mailbox mailboxes[8];
	size_t n, n_mailboxes;
};

static int keep_op(void *ctx, const struct store_op *op)
{
	struct decoded *d = ctx;
	assert_true(d->n < 64);
	d->ops[d->n] = *op;
	if (op->mailbox != NULL) {
		assert_true(d->n_mailboxes < 8);
		d->mailboxes[d->n_mailboxes] = *op->mailbox;
		d->ops[d->n].mailbox = &d->mailboxes[d->n_mailboxes++];
	}
	d->ops[d->n].envelope_ids = NULL; /* lived only during the call */
	d->n++;
	return 0;
}

static void decode_rows(const struct store_feed *feed, struct decoded *d)
{
	memset(d, 0, sizeof(*d));
	for (size_t i = 0; i < feed->n; i++)
		assert_int_equal(feed_decode(feed->rows[i].ops, feed->rows[i].len, keep_op, d), 0);
}

/* Node 1's batches come back on node 2, decoded equal and in order; node 2's own rows never
 * come back to it, and node 1 reads them. */
static void test_rows_between_nodes(void **state)
{
	struct nodes *t = *state;
	struct store_op a[] = {{.kind = STORE_MAILBOX_PUT, .mailbox = &mb, .mailbox_id = mb.id},
	                       put(10, mb.id),
	                       put(11, mb.id)};
	struct store_op b[] = {
	    {.kind = STORE_ENVELOPE_DELETE, .envelope_id = 10, .mailbox_id = mb.id}};
	assert_int_equal(store_pg.commit(t->store[1], a, 3), 0);
	assert_int_equal(store_pg.commit(t->store[1], b, 1), 0);
	struct store_op own = put(20, mb.id);
	assert_int_equal(store_pg.commit(t->store[2], &own, 1), 0);

	struct store_feed feed;
	assert_int_equal(store_pg.feed_read(t->store[2], &feed), 0);
	assert_int_equal(feed.n, 2);
	assert_false(feed.more);
	assert_int_equal(feed.rows[0].node, 1);
	assert_int_equal(feed.rows[0].seq, 1);
	assert_int_equal(feed.rows[1].node, 1);
	assert_int_equal(feed.rows[1].seq, 2);
	struct decoded d;
	decode_rows(&feed, &d);
	assert_int_equal(d.n, 4);
	assert_int_equal(d.ops[0].kind, STORE_MAILBOX_PUT);
	assert_memory_equal(d.ops[0].mailbox, &mb, sizeof(mb));
	for (int i = 1; i <= 2; i++) {
		assert_int_equal(d.ops[i].kind, STORE_ENVELOPE_PUT);
		assert_int_equal(d.ops[i].envelope_id, a[i].envelope_id);
		assert_int_equal(d.ops[i].mailbox_id, mb.id);
		assert_int_equal(d.ops[i].len, sizeof(body));
		assert_int_equal(d.ops[i].stored_at, a[i].stored_at);
		assert_null(d.ops[i].body);
	}
	assert_int_equal(d.ops[3].kind, STORE_ENVELOPE_DELETE);
	assert_int_equal(d.ops[3].envelope_id, 10);
	store_feed_free(&feed);
	assert_null(feed.rows);
	/* Read: nothing more. */
	assert_int_equal(store_pg.feed_read(t->store[2], &feed), 0);
	assert_int_equal(feed.n, 0);
	store_feed_free(&feed);
	/* Node 1 reads node 2's one row, not its own. */
	assert_int_equal(store_pg.feed_read(t->store[1], &feed), 0);
	assert_int_equal(feed.n, 1);
	assert_int_equal(feed.rows[0].node, 2);
	assert_int_equal(feed.rows[0].seq, 1);
	decode_rows(&feed, &d);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.ops[0].envelope_id, 20);
	store_feed_free(&feed);
	/* The store holds the envelopes themselves as ever. */
	sql_is(t, "SELECT string_agg(id::text, ',' ORDER BY id) FROM envelopes", "11,20");
}

/* Past STORE_FEED_ROWS_MAX rows a read stops with MORE set; each node's rows come in seq
 * order, the nodes' rows taken in turn; a node opened later starts from load's snapshot. */
static void test_bounded_in_order(void **state)
{
	struct nodes *t = *state;
	assert_int_equal(open_node(t, 3, &t->store[3], NULL, 0), 0);
	assert_int_equal(no_cb_load(t->store[3]), 0);
	int total = STORE_FEED_ROWS_MAX + 50;
	for (int i = 0; i < total; i++) {
		struct store_op op = put(100 + (uint64_t)i, 7);
		assert_int_equal(store_pg.commit(t->store[1 + (i % 5 == 0) * 2], &op, 1), 0);
	}
	uint64_t last[4] = {0};
	int got = 0, reads = 0;
	bool more = true;
	while (more) {
		struct store_feed feed;
		assert_int_equal(store_pg.feed_read(t->store[2], &feed), 0);
		assert_true(feed.n <= STORE_FEED_ROWS_MAX);
		reads++;
		if (reads == 1) {
			assert_int_equal(feed.n, STORE_FEED_ROWS_MAX);
			assert_true(feed.more);
			/* Node 3's rows are not all held back behind node 1's. */
			size_t threes = 0;
			for (size_t i = 0; i < feed.n; i++)
				threes += feed.rows[i].node == 3;
			assert_int_equal(threes, (size_t)(total + 4) / 5);
		}
		for (size_t i = 0; i < feed.n; i++) {
			uint8_t node = feed.rows[i].node;
			assert_true(node == 1 || node == 3);
			assert_int_equal(feed.rows[i].seq, last[node] + 1);
			last[node] = feed.rows[i].seq;
			got++;
		}
		more = feed.more;
		store_feed_free(&feed);
	}
	assert_int_equal(reads, 2);
	assert_int_equal(got, total);
	/* A node that loads now starts past everything already there. */
	store_pg.close(t->store[2]);
	assert_int_equal(open_node(t, 2, &t->store[2], NULL, 0), 0);
	assert_int_equal(no_cb_load(t->store[2]), 0);
	struct store_op op = put(9999, 7);
	assert_int_equal(store_pg.commit(t->store[1], &op, 1), 0);
	struct store_feed feed;
	assert_int_equal(store_pg.feed_read(t->store[2], &feed), 0);
	assert_int_equal(feed.n, 1);
	assert_int_equal(feed.rows[0].seq, last[1] + 1);
	store_feed_free(&feed);
}

/* A batch that fails leaves no feed row and no gap: by a constraint, and by the server
 * killed under it (the row the next batch writes follows the last committed one). */
static void test_failed_batch_no_row(void **state)
{
	struct nodes *t = *state;
	struct store_op ok = put(1, 5);
	assert_int_equal(store_pg.commit(t->store[1], &ok, 1), 0);
	/* An envelope stored already: the key refuses the batch. */
	struct store_op bad[] = {
	    put(3, 5), {.kind = STORE_MAILBOX_DELETE, .mailbox_id = 5}, put(1, 5)};
	assert_int_equal(store_pg.commit(t->store[1], bad, 3), CAIRN_ESTORAGE);
	sql_is(t, "SELECT count(*) FROM feed", "1");
	struct store_op ok2 = put(2, 5);
	assert_int_equal(store_pg.commit(t->store[1], &ok2, 1), 0);
	sql_is(t, "SELECT string_agg(seq::text, ',' ORDER BY seq) FROM feed", "1,2");
	pgproc_kill(pg_cluster_get());
	struct store_op lost = put(4, 5);
	assert_int_equal(store_pg.commit(t->store[1], &lost, 1), CAIRN_ESTORAGE);
	assert_int_equal(pg_cluster_restart(), 0);
	struct store_op next = put(5, 5);
	assert_int_equal(store_pg.commit(t->store[1], &next, 1), 0);
	sql_is(t, "SELECT string_agg(seq::text, ',' ORDER BY seq) FROM feed WHERE node = 1",
	       "1,2,3");
	/* Node 2's connection died with the server: its first call fails, the next one
	 * connects again (as every engine call, test_relay_store_pgonly). */
	struct store_feed feed;
	if (store_pg.feed_read(t->store[2], &feed) != 0)
		assert_int_equal(store_pg.feed_read(t->store[2], &feed), 0);
	assert_int_equal(feed.n, 3);
	struct decoded d;
	decode_rows(&feed, &d);
	assert_int_equal(d.n, 3);
	assert_int_equal(d.ops[0].envelope_id, 1);
	assert_int_equal(d.ops[1].envelope_id, 2);
	assert_int_equal(d.ops[2].envelope_id, 5);
	store_feed_free(&feed);
}

/* Two nodes appending to one log at the same moment, each numbering from what it has seen:
 * the store keeps one entry of a seq, and the second node's batch fails (its append gets
 * `storage`), never two entries with one seq (PROTOCOL.md 5.9). */
static void test_one_seq_per_log(void **state)
{
	struct nodes *t = *state;
	static const struct store_log lg = {.id = 77, .log_id = {7}, .next_seq = 1, .touched = 1};
	struct store_op create = {.kind = STORE_LOG_PUT, .log = &lg, .log_key = lg.id};
	assert_int_equal(store_pg.commit(t->store[1], &create, 1), 0);
	struct store_op entry = {.kind = STORE_LOG_ENTRY_PUT,
	                         .envelope_id = 0x101,
	                         .log_key = lg.id,
	                         .seq = 1,
	                         .body = body,
	                         .len = sizeof(body),
	                         .stored_at = 1700000000};
	assert_int_equal(store_pg.commit(t->store[1], &entry, 1), 0);
	entry.envelope_id = 0x102;
	assert_int_equal(store_pg.commit(t->store[2], &entry, 1), CAIRN_ESTORAGE);
	entry.seq = 2;
	assert_int_equal(store_pg.commit(t->store[2], &entry, 1), 0);
	sql_is(t, "SELECT string_agg(seq || ':' || id, ',' ORDER BY seq) FROM log_entries",
	       "1:257,2:258");
}

static void sleep_ms(long ms)
{
	nanosleep(&(struct timespec){.tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000}, NULL);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits up to MS for COUNTER to pass FROM; returns the ms it took, or -1. */
static int64_t wait_wake(atomic_int *counter, int from, int64_t ms)
{
	int64_t start = mono_ms();
	while (mono_ms() - start < ms) {
		if (atomic_load(counter) > from)
			return mono_ms() - start;
		sleep_ms(5);
	}
	return -1;
}

static void test_feed_wake(void **state)
{
	struct nodes *t = *state;
	/* The listener's first connect wakes once (rows may have come before it). */
	assert_true(wait_wake(&t->wakes[2], 0, 5000) >= 0);
	sleep_ms(200);
	int before = atomic_load(&t->wakes[2]);
	struct store_op op = put(1, 5);
	assert_int_equal(store_pg.commit(t->store[1], &op, 1), 0);
	int64_t took = wait_wake(&t->wakes[2], before, 1000);
	assert_true(took >= 0);
	/* Node 2's own commit is nothing for it to read: no wake. */
	sleep_ms(200);
	before = atomic_load(&t->wakes[2]);
	struct store_op own = put(9, 5);
	assert_int_equal(store_pg.commit(t->store[2], &own, 1), 0);
	sleep_ms(300);
	assert_int_equal(atomic_load(&t->wakes[2]), before);
	assert_true(atomic_load(&t->wakes[1]) > 0);
	/* A failed batch notifies no one. */
	sleep_ms(200);
	before = atomic_load(&t->wakes[2]);
	struct store_op bad[] = {put(2, 5), put(2, 5)};
	assert_int_equal(store_pg.commit(t->store[1], bad, 2), CAIRN_ESTORAGE);
	sleep_ms(300);
	assert_int_equal(atomic_load(&t->wakes[2]), before);
	/* The server restarts: the listener connects again and wakes. */
	pgproc_kill(pg_cluster_get());
	assert_int_equal(pg_cluster_restart(), 0);
	assert_true(wait_wake(&t->wakes[2], before, 15000) >= 0);
	/* And it listens again: a commit wakes within a second. */
	sleep_ms(200);
	before = atomic_load(&t->wakes[2]);
	struct store_op again = put(3, 5);
	/* Node 1's first call after the restart finds its connection dead. */
	if (store_pg.commit(t->store[1], &again, 1) != 0)
		assert_int_equal(store_pg.commit(t->store[1], &again, 1), 0);
	assert_true(wait_wake(&t->wakes[2], before, 1000) >= 0);
}

/* The locks, refused at open with the reason: 0+0, 0+N, N+0, N+N; N+M is fine. */
static void test_locks(void **state)
{
	struct nodes *t = *state;
	char why[256];
	void *s = NULL;
	assert_int_equal(open_node(t, 0, &t->store[0], why, sizeof(why)), 0);
	assert_int_equal(open_node(t, 0, &s, why, sizeof(why)), CAIRN_EEXIST);
	assert_null(s);
	assert_non_null(strstr(why, "another relay holds this store"));
	assert_int_equal(open_node(t, 1, &s, why, sizeof(why)), CAIRN_EEXIST);
	assert_non_null(strstr(why, "with no [store] node holds this store alone"));
	store_pg.close(t->store[0]);
	t->store[0] = NULL;
	assert_int_equal(open_node(t, 1, &t->store[1], why, sizeof(why)), 0);
	assert_int_equal(open_node(t, 2, &t->store[2], why, sizeof(why)), 0);
	assert_int_equal(open_node(t, 0, &s, why, sizeof(why)), CAIRN_EEXIST);
	assert_non_null(strstr(why, "another relay holds this store"));
	assert_int_equal(open_node(t, 2, &s, why, sizeof(why)), CAIRN_EEXIST);
	assert_non_null(strstr(why, "another relay holds [store] node 2 of this store"));
	assert_null(s);
	/* Closed, a node is free again at once. */
	store_pg.close(t->store[2]);
	t->store[2] = NULL;
	assert_int_equal(open_node(t, 2, &t->store[2], why, sizeof(why)), 0);
}

/* Node 1 prunes its rows older than ten minutes (never its newest), at most once a minute;
 * node 2, which had not read them, gets CAIRN_ESTATE. */
static void test_pruned_gives_estate(void **state)
{
	struct nodes *t = *state;
	struct store_pg *one = t->store[1];
	for (uint64_t i = 1; i <= 3; i++) {
		struct store_op op = put(i, 5);
		assert_int_equal(store_pg.commit(one, &op, 1), 0);
	}
	/* The first batch pruned (nothing was old); the next prune waits a minute. */
	assert_int_equal(
	    pg_exec(t->conninfo, "UPDATE feed SET at = now() - interval '11 minutes'", NULL, 0), 0);
	struct store_op op = put(4, 5);
	assert_int_equal(store_pg.commit(one, &op, 1), 0);
	sql_is(t, "SELECT count(*) FROM feed", "4");
	/* A minute later (its clock moved back), the old rows go, the newest old one too, but
	 * not the one the batch writes. */
	one->feed_pruned_ms -= PG_FEED_PRUNE_MS;
	op = put(5, 5);
	assert_int_equal(store_pg.commit(one, &op, 1), 0);
	sql_is(t, "SELECT string_agg(seq::text, ',' ORDER BY seq) FROM feed", "4,5");
	struct store_feed feed;
	assert_int_equal(store_pg.feed_read(t->store[2], &feed), CAIRN_ESTATE);
	assert_int_equal(feed.n, 0);
	assert_null(feed.rows);
	/* The newest row of an idle node stays, so its seq goes on after a restart. */
	assert_int_equal(
	    pg_exec(t->conninfo, "UPDATE feed SET at = now() - interval '11 minutes'", NULL, 0), 0);
	one->feed_pruned_ms -= PG_FEED_PRUNE_MS;
	op = put(6, 5);
	assert_int_equal(store_pg.commit(one, &op, 1), 0);
	sql_is(t, "SELECT string_agg(seq::text, ',' ORDER BY seq) FROM feed", "6");
	store_pg.close(t->store[1]);
	assert_int_equal(open_node(t, 1, &t->store[1], NULL, 0), 0);
	op = put(7, 5);
	assert_int_equal(store_pg.commit(t->store[1], &op, 1), 0);
	sql_is(t, "SELECT max(seq) FROM feed", "7");
}

/* The prune walks node 1's key: with 20,000 rows of it (half of them old), its plan scans
 * the key (no sequential scan of the table) and reads from the subquery's index scan no more
 * rows than the old ones and the first young one. */
static void test_prune_is_a_key_range(void **state)
{
	struct nodes *t = *state;
	assert_int_equal(pg_exec(t->conninfo,
	                         "INSERT INTO feed (node, seq, at, ops) SELECT 1, g, now() -"
	                         " CASE WHEN g <= 10000 THEN interval '1 hour' ELSE interval '0'"
	                         " END, '\\x01' FROM generate_series(1, 20000) AS g;"
	                         " INSERT INTO feed (node, seq, ops) SELECT 2, g, '\\x01'"
	                         " FROM generate_series(1, 20000) AS g; ANALYZE feed",
	                         NULL, 0),
	                 0);
	PGconn *c = PQconnectdb(t->conninfo);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	char sql[512];
	snprintf(sql, sizeof(sql), "PREPARE q AS %s", pg_stmt_sql[PG_FEED_PRUNE]);
	PQclear(PQexec(c, sql));
	PQclear(PQexec(c, "BEGIN"));
	PGresult *r =
	    PQexec(c, "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE q(1)");
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	bool index = false, seq_scan = false;
	int deleted = -1;
	for (int i = 0; i < PQntuples(r); i++) {
		const char *line = PQgetvalue(r, i, 0);
		index = index || strstr(line, "Index") != NULL;
		seq_scan = seq_scan || strstr(line, "Seq Scan") != NULL;
	}
	PQclear(r);
	r = PQexec(c, "SELECT count(*) FROM feed WHERE node = 1");
	deleted = 20000 - atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	PQclear(PQexec(c, "ROLLBACK"));
	PQfinish(c);
	assert_true(index);
	assert_false(seq_scan);
	assert_int_equal(deleted, 10000);
}

/* Opens a node-0 store and commits a mailbox and one envelope of it. */
static void open_alone_with_one(struct nodes *t)
{
	assert_int_equal(open_node(t, 0, &t->store[0], NULL, 0), 0);
	struct store_op ops[] = {{.kind = STORE_MAILBOX_PUT, .mailbox = &mb, .mailbox_id = mb.id},
	                         put(1, mb.id)};
	assert_int_equal(store_pg.commit(t->store[0], ops, 2), 0);
}

/* A batch of node 1 whose COMMIT outcome node 1 lost with its connection, and which did
 * commit (made here by writing its row as the batch would have): after the reconnect node
 * 1's own feed_read hands that row back once, so that its memory gets what the store got;
 * its own rows otherwise never come back to it. */
static void test_lost_commit_comes_back(void **state)
{
	struct nodes *t = *state;
	struct store_op first[] = {{.kind = STORE_MAILBOX_PUT, .mailbox = &mb, .mailbox_id = mb.id},
	                           put(10, mb.id)};
	assert_int_equal(store_pg.commit(t->store[1], first, 2), 0);
	struct store_feed feed;
	assert_int_equal(store_pg.feed_read(t->store[1], &feed), 0);
	assert_int_equal(feed.n, 0);

	struct store_op lost = put(11, mb.id);
	uint8_t blob[128];
	size_t len = feed_encode(&lost, 1, blob, sizeof(blob));
	assert_true(len > 0 && len <= sizeof(blob));
	char sql[512], *w = sql;
	w += sprintf(w, "INSERT INTO feed (node, seq, ops) VALUES (1, 2, '\\x");
	for (size_t i = 0; i < len; i++)
		w += sprintf(w, "%02x", blob[i]);
	sprintf(w, "')");
	char out[64];
	assert_int_equal(pg_exec(t->conninfo, sql, out, sizeof(out)), 0);
	assert_int_equal(pg_exec(t->conninfo,
	                         "SELECT count(pg_terminate_backend(pid)) > 0 FROM pg_stat_activity"
	                         " WHERE application_name = 'cairn-relay'",
	                         out, sizeof(out)),
	                 0);
	/* The first read may meet the closed connection; the next connects again. */
	if (store_pg.feed_read(t->store[1], &feed) != 0)
		assert_int_equal(store_pg.feed_read(t->store[1], &feed), 0);
	assert_int_equal(feed.n, 1);
	assert_int_equal(feed.rows[0].node, 1);
	assert_int_equal(feed.rows[0].seq, 2);
	struct decoded d;
	decode_rows(&feed, &d);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.ops[0].envelope_id, 11);
	store_feed_free(&feed);
	/* Once: the next batch is numbered after it, and nothing of node 1's comes back. */
	struct store_op next = put(12, mb.id);
	assert_int_equal(store_pg.commit(t->store[1], &next, 1), 0);
	sql_is(t, "SELECT max(seq) FROM feed WHERE node = 1", "3");
	assert_int_equal(store_pg.feed_read(t->store[1], &feed), 0);
	assert_int_equal(feed.n, 0);
	store_feed_free(&feed);
	/* Node 2 reads all three as ever. */
	if (store_pg.feed_read(t->store[2], &feed) != 0)
		assert_int_equal(store_pg.feed_read(t->store[2], &feed), 0);
	assert_int_equal(feed.n, 3);
	store_feed_free(&feed);
}

/* A relay alone (node 0) writes no feed row and has none to read: its read only checks that
 * the store is reachable and still its own. */
static void test_node0_writes_no_feed(void **state)
{
	struct nodes *t = *state;
	open_alone_with_one(t);
	sql_is(t, "SELECT count(*) FROM envelopes", "1");
	sql_is(t, "SELECT count(*) FROM feed", "0");
	struct store_feed feed;
	assert_int_equal(store_pg.feed_read(t->store[0], &feed), 0);
	assert_int_equal(feed.n, 0);
}

static void count_env(void *ctx, const struct store_envelope_info *info)
{
	(void)info;
	(*(int *)ctx)++;
}

/* A store of schema version 1 (no feed table, no hs_seen) is brought to the current version
 * (3) with its rows, and then carries a feed. */
static void test_version1_migrates(void **state)
{
	struct nodes *t = *state;
	open_alone_with_one(t);
	store_pg.close(t->store[0]);
	t->store[0] = NULL;
	/* What version 1 left: its tables, no feed. */
	assert_int_equal(
	    pg_exec(t->conninfo,
	            "DROP TABLE feed; DROP TABLE hs_seen; UPDATE cairn_schema SET version = 1",
	            NULL, 0),
	    0);
	sql_is(t, "SELECT count(*) FROM pg_tables WHERE tablename IN ('feed', 'hs_seen')", "0");
	assert_int_equal(open_node(t, 1, &t->store[1], NULL, 0), 0);
	sql_is(t, "SELECT max(version) FROM cairn_schema", "3");
	sql_is(t, "SELECT count(*) FROM cairn_schema", "1");
	sql_is(t, "SELECT count(*) FROM pg_tables WHERE tablename IN ('feed', 'hs_seen')", "2");
	int envelopes = 0;
	struct store_load_cb cb = {.envelope = count_env};
	assert_int_equal(store_pg.load(t->store[1], &cb, &envelopes), 0);
	assert_int_equal(envelopes, 1);
	struct store_op op = put(2, mb.id);
	assert_int_equal(store_pg.commit(t->store[1], &op, 1), 0);
	sql_is(t, "SELECT count(*) FROM feed WHERE node = 1", "1");
	/* A newer version than this relay knows is still refused. */
	store_pg.close(t->store[1]);
	t->store[1] = NULL;
	assert_int_equal(pg_exec(t->conninfo, "UPDATE cairn_schema SET version = 4", NULL, 0), 0);
	assert_int_equal(open_node(t, 1, &t->store[1], NULL, 0), CAIRN_ESTATE);
}

/* SQLite cannot be shared: a node is refused at open, and it has no feed_read. */
static void test_sqlite_refuses_node(void **state)
{
	(void)state;
	char dir[] = "/tmp/cairn-feed-XXXXXX", why[256] = "";
	assert_non_null(mkdtemp(dir));
	struct store_params params = {
	    .dir = dir, .node = 1, .error = why, .error_cap = sizeof(why)};
	void *s = (void *)1;
	assert_int_equal(store_sqlite.open(&params, &s), CAIRN_EINVAL);
	assert_null(s);
	assert_non_null(strstr(why, "[store] node needs the postgresql engine"));
	assert_null(store_sqlite.feed_read);
	assert_int_equal(rmdir(dir), 0); /* nothing was created */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_rows_between_nodes, setup_two, teardown),
	    cmocka_unit_test_setup_teardown(test_bounded_in_order, setup_two, teardown),
	    cmocka_unit_test_setup_teardown(test_failed_batch_no_row, setup_two, teardown),
	    cmocka_unit_test_setup_teardown(test_feed_wake, setup_two, teardown),
	    cmocka_unit_test_setup_teardown(test_locks, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pruned_gives_estate, setup_two, teardown),
	    cmocka_unit_test_setup_teardown(test_prune_is_a_key_range, setup_two, teardown),
	    cmocka_unit_test_setup_teardown(test_lost_commit_comes_back, setup_two, teardown),
	    cmocka_unit_test_setup_teardown(test_node0_writes_no_feed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_version1_migrates, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_one_seq_per_log, setup_two, teardown),
	    cmocka_unit_test(test_sqlite_refuses_node),
	};
	if (getenv("CAIRN_IT_ONLY") != NULL)
		cmocka_set_test_filter(getenv("CAIRN_IT_ONLY"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
