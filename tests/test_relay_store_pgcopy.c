/* SPDX-License-Identifier: MIT */
/*
 * The PostgreSQL engine's runs of envelope puts sent as COPY (store_pg_copy.c), in pieces of at
 * most PG_COPY_ROWS rows inside the batch's one transaction: every row and body stored as given,
 * whatever comes before or after the run in the batch, and the heap took them several to a page
 * (the WAL's multi-insert records, pg_walinspect); and a batch that fails anywhere (a row refused
 * in the middle of the COPY, a statement before or after it, the server killed while the COPY is
 * under way) leaves nothing of itself stored, while the engine goes on with the next batch.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#define CAIRN_TEST_PG
#include "cairn/error.h"
#include "pg_engine.h"
#include "store.h"
#include "store_fixture.h"

/* Bodies of eight sizes by id, byte I of envelope ID's being (7 * ID + I) & 0xff: one is larger
 * than COPY's chunk (store_pg_copy.c) and than a row PostgreSQL keeps inline. Each op's body
 * is its own, from a pool that each test empties first (and again once a batch is done). */
#define BIG_BODY (150 * 1024)
static const uint32_t body_lens[8] = {0, 1, 32, 1024, 4000, 16384, 70000, BIG_BODY};
static uint8_t pool[48 * 1024 * 1024];
static size_t pool_used;

static void fill_body(uint64_t id, uint8_t *b, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		b[i] = (uint8_t)(7 * id + i);
}

static struct store_op envelope_put(uint64_t id, uint64_t mailbox)
{
	uint32_t len = body_lens[id % 8];
	assert_true(pool_used + len <= sizeof(pool));
	uint8_t *b = pool + pool_used;
	pool_used += len;
	fill_body(id, b, len);
	return (struct store_op){.kind = STORE_ENVELOPE_PUT,
	                         .envelope_id = id,
	                         .mailbox_id = mailbox,
	                         .body = b,
	                         .len = len,
	                         .stored_at = 1700000000 + (int64_t)id};
}

static int pool_setup(void **state)
{
	pool_used = 0;
	return setup(state);
}

static struct store_op mailbox_put(struct store_mailbox *m, uint64_t id)
{
	memset(m, 0, sizeof(*m));
	m->id = id;
	return (struct store_op){.kind = STORE_MAILBOX_PUT, .mailbox = m};
}

struct loaded {
	uint64_t ids[512];
	uint64_t mailboxes[512];
	int64_t stored_at[512];
	size_t n, n_mailboxes;
};

static void on_envelope(void *ctx, const struct store_envelope_info *info)
{
	struct loaded *l = ctx;
	if (l->n < 512) {
		l->ids[l->n] = info->id;
		l->mailboxes[l->n] = info->mailbox_id;
		l->stored_at[l->n] = info->stored_at;
	}
	l->n++;
}

static void on_mailbox(void *ctx, const struct store_mailbox *m)
{
	(void)m;
	((struct loaded *)ctx)->n_mailboxes++;
}

static void load(struct fixture *f, struct loaded *l)
{
	memset(l, 0, sizeof(*l));
	struct store_load_cb cb = {.envelope = on_envelope, .mailbox = on_mailbox};
	assert_int_equal(store_pg.load(f->store, &cb, l), 0);
}

/* Every envelope ID in [FIRST, FIRST + N) of mailbox 1 + ID % 5 is stored with its body. */
static void assert_run_stored(struct fixture *f, uint64_t first, size_t n)
{
	static uint8_t out[BIG_BODY], want[BIG_BODY];
	for (uint64_t id = first; id < first + n; id++) {
		size_t len = 0;
		assert_int_equal(
		    store_pg.read_envelope(f->store, 1 + id % 5, id, out, sizeof(out), &len), 0);
		assert_int_equal(len, body_lens[id % 8]);
		fill_body(id, want, body_lens[id % 8]);
		assert_memory_equal(out, want, len > 0 ? len : 1);
	}
}

/* The WAL's records of each kind since LSN (text), by pg_walinspect (PostgreSQL 15). */
static long wal_records(struct fixture *f, const char *lsn, const char *kind)
{
	char sql[256], out[32] = "";
	snprintf(sql, sizeof(sql),
	         "SELECT coalesce(sum(count), 0) FROM pg_get_wal_stats('%s', pg_current_wal_lsn(),"
	         " true) WHERE \"resource_manager/record_type\" = '%s'",
	         lsn, kind);
	assert_int_equal(pg_exec(f->conninfo, sql, out, sizeof(out)), 0);
	return atol(out);
}

/* A batch with a run between other statements: the run is stored exactly, in the batch's
 * order (a delete after the run takes one of its envelopes), and the heap took its rows as
 * multi-inserts, not one insert each. */
static void test_run_stored_exactly(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(pg_exec(f->conninfo, "CREATE EXTENSION pg_walinspect", NULL, 0), 0);
	char lsn[32];
	assert_int_equal(pg_exec(f->conninfo, "SELECT pg_current_wal_lsn()", lsn, sizeof(lsn)), 0);
	enum { RUN = PG_COPY_MIN + 44 };
	static struct store_op ops[RUN + 4];
	struct store_mailbox m;
	size_t n = 0;
	ops[n++] = mailbox_put(&m, 77);
	for (uint64_t id = 1000; id < 1000 + RUN; id++)
		ops[n++] = envelope_put(id, 1 + id % 5);
	ops[n++] = (struct store_op){
	    .kind = STORE_ENVELOPE_DELETE, .mailbox_id = 1 + 1003 % 5, .envelope_id = 1003};
	/* A second run after it, ending the batch. */
	ops[n++] = envelope_put(5000, 1);
	ops[n++] = envelope_put(5001, 2);
	assert_int_equal(store_pg.commit(f->store, ops, n), 0);
	struct loaded l;
	load(f, &l);
	assert_int_equal(l.n_mailboxes, 1);
	assert_int_equal(l.n, RUN - 1 + 2);
	for (size_t i = 0; i < l.n; i++) {
		uint64_t id = l.ids[i];
		assert_true((id >= 1000 && id < 1000 + RUN && id != 1003) || id == 5000 ||
		            id == 5001);
		assert_int_equal(l.mailboxes[i], id >= 5000 ? 1 + id % 5000 : 1 + id % 5);
		assert_int_equal(l.stored_at[i], 1700000000 + (int64_t)id);
	}
	assert_run_stored(f, 1000, 3);
	assert_run_stored(f, 1004, RUN - 4);
	/* Multi-insert records (several rows of a page in one), which an INSERT never writes.
	 * (Counting single inserts would say little: TOAST stores the large bodies' chunks one
	 * insert each, whichever way the rows came.) */
	assert_true(wal_records(f, lsn, "Heap2/MULTI_INSERT") +
	                wal_records(f, lsn, "Heap2/MULTI_INSERT+INIT") >
	            0);
	/* A batch that is one run (its BEGIN goes with the COPY), a run too short for COPY, and
	 * one put alone. */
	for (uint64_t i = 0; i < PG_COPY_MIN; i++)
		ops[i] = envelope_put(6000 + i, 1 + (6000 + i) % 5);
	assert_int_equal(store_pg.commit(f->store, ops, PG_COPY_MIN), 0);
	for (uint64_t i = 0; i < PG_COPY_MIN - 1; i++)
		ops[i] = envelope_put(7000 + i, 1 + (7000 + i) % 5);
	assert_int_equal(store_pg.commit(f->store, ops, PG_COPY_MIN - 1), 0);
	ops[0] = envelope_put(8000, 1 + 8000 % 5);
	assert_int_equal(store_pg.commit(f->store, ops, 1), 0);
	assert_run_stored(f, 6000, PG_COPY_MIN);
	assert_run_stored(f, 7000, PG_COPY_MIN - 1);
	assert_run_stored(f, 8000, 1);
	load(f, &l);
	assert_int_equal(l.n, RUN + 1 + 2 * PG_COPY_MIN);
}

/* The rows each COPY statement of the batches so far brought, in order ("128,128"); a
 * statement trigger with a transition table sees each COPY's rows once (test_run_in_pieces). */
static void copy_sizes(struct fixture *f, char *out, size_t cap)
{
	assert_int_equal(pg_exec(f->conninfo,
	                         "SELECT coalesce(string_agg(n::text, ',' ORDER BY k), '')"
	                         " FROM copies",
	                         out, cap),
	                 0);
}

/* A run goes as COPYs of at most PG_COPY_ROWS rows, their sizes within one of each other,
 * all in the batch's one transaction: every row stored, whether the batch starts with the
 * run (its BEGIN goes with the first piece) or not. */
static void test_run_in_pieces(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(pg_exec(f->conninfo,
	                         "CREATE TABLE copies (k serial, n int8);"
	                         "CREATE FUNCTION count_copy() RETURNS trigger LANGUAGE plpgsql AS"
	                         " $$BEGIN INSERT INTO copies (n) SELECT count(*) FROM new_rows;"
	                         " RETURN NULL; END$$;"
	                         "CREATE TRIGGER count_copy AFTER INSERT ON envelopes"
	                         " REFERENCING NEW TABLE AS new_rows"
	                         " FOR EACH STATEMENT EXECUTE FUNCTION count_copy()",
	                         NULL, 0),
	                 0);
	enum { RUN = 2 * PG_COPY_ROWS + 1 };
	_Static_assert(RUN >= PG_COPY_MIN, "the run goes as COPY");
	static struct store_op ops[3 * PG_COPY_ROWS + 1];
	struct store_mailbox m;
	size_t n = 0;
	ops[n++] = mailbox_put(&m, 77);
	for (uint64_t id = 1000; id < 1000 + RUN; id++)
		ops[n++] = envelope_put(id, 1 + id % 5);
	assert_int_equal(store_pg.commit(f->store, ops, n), 0);
	char sizes[64];
	copy_sizes(f, sizes, sizeof(sizes));
	_Static_assert(PG_COPY_ROWS == 128, "the sizes below are for pieces of 128");
	assert_string_equal(sizes, "86,86,85");
	/* A batch that is one run of exactly three pieces' rows. */
	pool_used = 0;
	for (uint64_t i = 0; i < 3 * PG_COPY_ROWS; i++)
		ops[i] = envelope_put(3000 + i, 1 + (3000 + i) % 5);
	assert_int_equal(store_pg.commit(f->store, ops, 3 * PG_COPY_ROWS), 0);
	copy_sizes(f, sizes, sizeof(sizes));
	assert_string_equal(sizes, "86,86,85,128,128,128");
	assert_run_stored(f, 1000, RUN);
	assert_run_stored(f, 3000, 3 * PG_COPY_ROWS);
	struct loaded l;
	load(f, &l);
	assert_int_equal(l.n, RUN + 3 * PG_COPY_ROWS);
}

/* A run long enough for COPY with an id or a mailbox past 2^63, or a body missing, cannot be
 * stored: the batch fails before anything is sent. */
static void test_run_refuses_what_it_cannot_hold(void **state)
{
	struct fixture *f = *state;
	enum { RUN = PG_COPY_MIN + 8 };
	struct store_op ops[RUN];
	for (uint64_t i = 0; i < RUN; i++)
		ops[i] = envelope_put(i + 1, 1);
	const struct store_op good = ops[RUN / 2];
	ops[RUN / 2].envelope_id = (uint64_t)INT64_MAX + 1;
	assert_int_equal(store_pg.commit(f->store, ops, RUN), CAIRN_ESTORAGE);
	ops[RUN / 2] = good;
	ops[RUN / 2].mailbox_id = (uint64_t)INT64_MAX + 1;
	assert_int_equal(store_pg.commit(f->store, ops, RUN), CAIRN_ESTORAGE);
	ops[RUN / 2] = good;
	ops[RUN / 2].body = NULL;
	ops[RUN / 2].len = 5;
	assert_int_equal(store_pg.commit(f->store, ops, RUN), CAIRN_ESTORAGE);
	struct loaded l;
	load(f, &l);
	assert_int_equal(l.n, 0);
	/* The same run whole commits. */
	ops[RUN / 2] = good;
	assert_int_equal(store_pg.commit(f->store, ops, RUN), 0);
	load(f, &l);
	assert_int_equal(l.n, RUN);
}

/* Commits OPS (N), which must fail, and proves that nothing of the batch was kept beside the
 * KEPT envelopes stored before, and that the engine goes on: the next batch commits. */
static void assert_batch_leaves_nothing(struct fixture *f, struct store_op *ops, size_t n,
                                        size_t kept, size_t kept_mailboxes)
{
	assert_int_equal(store_pg.commit(f->store, ops, n), CAIRN_ESTORAGE);
	struct loaded l;
	load(f, &l);
	assert_int_equal(l.n, kept);
	assert_int_equal(l.n_mailboxes, kept_mailboxes);
	struct store_op after[] = {envelope_put(9000, 1), envelope_put(9001, 2)};
	assert_int_equal(store_pg.commit(f->store, after, 2), 0);
	load(f, &l);
	assert_int_equal(l.n, kept + 2);
	assert_run_stored(f, 9000, 2);
	struct store_op undo[] = {
	    {.kind = STORE_ENVELOPE_DELETE, .mailbox_id = 1, .envelope_id = 9000},
	    {.kind = STORE_ENVELOPE_DELETE, .mailbox_id = 2, .envelope_id = 9001}};
	assert_int_equal(store_pg.commit(f->store, undo, 2), 0);
}

/* The envelopes of the failing batches: ids 200.. in mailboxes 1 + id % 5, a run for COPY. */
#define RUN_FIRST 200
#define RUN_LEN   (PG_COPY_MIN + 44)

/* Fills OPS with a batch: mailbox BEFORE's put (none when 0), the run, mailbox AFTER's put
 * (none when 0); M holds the mailbox. Returns the batch's length. Empties the bodies' pool. */
static size_t run_batch(struct store_op *ops, struct store_mailbox *m, uint64_t before,
                        uint64_t after)
{
	size_t n = 0;
	pool_used = 0;
	if (before != 0)
		ops[n++] = mailbox_put(m, before);
	for (uint64_t id = RUN_FIRST; id < RUN_FIRST + RUN_LEN; id++)
		ops[n++] = envelope_put(id, 1 + id % 5);
	if (after != 0)
		ops[n++] = mailbox_put(m, after);
	return n;
}

/* A row refused in the middle of the COPY (its key is stored already; then a trigger's
 * error), a statement that fails before the run, and one after it: each batch fails whole. */
static void test_failed_batch_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	struct store_mailbox m0;
	struct store_op first[] = {mailbox_put(&m0, 50), envelope_put(100, 1 + 100 % 5),
	                           envelope_put(101, 1 + 101 % 5)};
	assert_int_equal(store_pg.commit(f->store, first, 3), 0);
	static struct store_op ops[RUN_LEN + 2];
	struct store_mailbox m;

	/* Mid-COPY: envelope 100 again, half-way through the run. */
	size_t n = run_batch(ops, &m, 51, 0);
	ops[1 + RUN_LEN / 2] = envelope_put(100, 1 + 100 % 5);
	assert_batch_leaves_nothing(f, ops, n, 2, 1);

	/* Mid-COPY again, a row the database's own rule refuses (a trigger's error). */
	assert_int_equal(pg_exec(f->conninfo,
	                         "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
	                         " $$BEGIN IF NEW.id = 250 THEN RAISE 'refused'; END IF;"
	                         " RETURN NEW; END$$;"
	                         "CREATE TRIGGER refuse BEFORE INSERT ON envelopes"
	                         " FOR EACH ROW EXECUTE FUNCTION refuse()",
	                         NULL, 0),
	                 0);
	assert_batch_leaves_nothing(f, ops, run_batch(ops, &m, 51, 0), 2, 1);
	assert_int_equal(pg_exec(f->conninfo, "DROP TRIGGER refuse ON envelopes", NULL, 0), 0);

	/* Before the run: mailbox 50 is stored already. */
	assert_batch_leaves_nothing(f, ops, run_batch(ops, &m, 50, 0), 2, 1);
	/* After the run, at the end of the batch. */
	assert_batch_leaves_nothing(f, ops, run_batch(ops, &m, 0, 50), 2, 1);

	/* The same batch without its faults commits. */
	assert_int_equal(store_pg.commit(f->store, ops, run_batch(ops, &m, 51, 0)), 0);
	struct loaded l;
	load(f, &l);
	assert_int_equal(l.n, 2 + RUN_LEN);
	assert_int_equal(l.n_mailboxes, 2);
	assert_run_stored(f, RUN_FIRST, RUN_LEN);
}

/* Waits until a backend sleeps in the trigger (the COPY is under way), then kills the server. */
static void *kill_when_sleeping(void *arg)
{
	struct fixture *f = arg;
	char out[16] = "";
	for (int i = 0; i < 200 && strcmp(out, "1") != 0; i++) {
		struct timespec pause = {.tv_nsec = 50 * 1000 * 1000};
		nanosleep(&pause, NULL);
		(void)pg_exec(f->conninfo,
		              "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'",
		              out, sizeof(out));
	}
	pgproc_kill(pg_cluster_get());
	return NULL;
}

/* The server killed while the COPY is under way (a trigger holds it half-way through the
 * run): the batch fails, and once the server is back nothing of it is there. */
static void test_server_killed_mid_copy(void **state)
{
	struct fixture *f = *state;
	struct store_op first[] = {envelope_put(100, 1), envelope_put(101, 2)};
	assert_int_equal(store_pg.commit(f->store, first, 2), 0);
	assert_int_equal(pg_exec(f->conninfo,
	                         "CREATE FUNCTION hold() RETURNS trigger LANGUAGE plpgsql AS"
	                         " $$BEGIN IF NEW.id = 250 THEN PERFORM pg_sleep(30); END IF;"
	                         " RETURN NEW; END$$;"
	                         "CREATE TRIGGER hold BEFORE INSERT ON envelopes"
	                         " FOR EACH ROW EXECUTE FUNCTION hold()",
	                         NULL, 0),
	                 0);
	static struct store_op ops[RUN_LEN];
	struct store_mailbox m;
	size_t n = run_batch(ops, &m, 0, 0);
	pthread_t killer;
	assert_int_equal(pthread_create(&killer, NULL, kill_when_sleeping, f), 0);
	assert_int_equal(store_pg.commit(f->store, ops, n), CAIRN_ESTORAGE);
	assert_int_equal(pthread_join(killer, NULL), 0);
	assert_int_equal(pg_cluster_restart(), 0);
	assert_int_equal(pg_exec(f->conninfo, "DROP TRIGGER hold ON envelopes", NULL, 0), 0);
	struct loaded l;
	load(f, &l);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.ids[0], 100);
	assert_int_equal(l.ids[1], 101);
	/* The engine connected again by itself: the same run now commits. */
	assert_int_equal(store_pg.commit(f->store, ops, n), 0);
	load(f, &l);
	assert_int_equal(l.n, 2 + RUN_LEN);
	assert_run_stored(f, RUN_FIRST, RUN_LEN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_run_stored_exactly, pool_setup, teardown),
	    cmocka_unit_test_setup_teardown(test_run_in_pieces, pool_setup, teardown),
	    cmocka_unit_test_setup_teardown(test_run_refuses_what_it_cannot_hold, pool_setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_failed_batch_leaves_nothing, pool_setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_killed_mid_copy, pool_setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
