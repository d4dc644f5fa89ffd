/* SPDX-License-Identifier: MIT */
/*
 * A storage engine's read_log_entries (relay/store.h; SQLite, or PostgreSQL as
 * test_relay_store_logread_pg): a batch of log entry reads in one read transaction. It returns what
 * read_log_entry returns one id at a time, concatenated in the order asked; fails whole (EDENIED,
 * ENOBUFS) with *total 0; always ends its transaction, so the next commit is not refused and no
 * snapshot stays open; and the storage thread's STORAGE_READ_ENTRIES uses it (an engine without
 * read_log_entry still serves reads), or falls back to one read_log_entry per id (an engine without
 * it).
 */
#include <stdint.h>

#include <uv.h>

#include "cairn/error.h"
#include "store_fixture.h"
#include "storage.h"
#ifdef CAIRN_TEST_PG
#include "pg_engine.h"
#else
#include "sqlite_engine.h"
#endif

enum { N = 64, LEN = 300 };
static uint8_t bodies[N][LEN];
static const struct store_log the_log = {.id = 9, .next_seq = 1, .touched = 1};

/* Entries 1000..1000+N of the_log, entry i LEN - i bytes that depend on i. */
static void put_entries(void *store)
{
	struct store_op ops[1 + N];
	ops[0] = (struct store_op){.kind = STORE_LOG_PUT, .log = &the_log};
	for (size_t i = 0; i < N; i++) {
		for (size_t j = 0; j < LEN; j++)
			bodies[i][j] = (uint8_t)(i * 31 + j);
		ops[1 + i] = (struct store_op){.kind = STORE_LOG_ENTRY_PUT,
		                               .envelope_id = 1000 + i,
		                               .log_key = the_log.id,
		                               .seq = 1 + i,
		                               .body = bodies[i],
		                               .len = (uint32_t)(LEN - i),
		                               .stored_at = 1700000000};
	}
	assert_int_equal(ENGINE.commit(store, ops, 1 + N), 0);
}

/* The transaction is over: a write commits and the connection is back in autocommit. */
static void assert_no_transaction(void *store)
{
#ifdef CAIRN_TEST_PG
	struct store_pg *st = store;
	assert_int_equal(PQtransactionStatus(st->conn), PQTRANS_IDLE);
#else
	struct store_sqlite *st = store;
	assert_int_not_equal(sqlite3_get_autocommit(st->db), 0);
#endif
	struct store_op touch = {.kind = STORE_LOG_TOUCH, .log_key = the_log.id, .stored_at = 2};
	assert_int_equal(ENGINE.commit(store, &touch, 1), 0);
}

/* Every entry, in a scrambled order: the same bytes as N single reads, end to end. */
static void test_batch_equals_single_reads(void **state)
{
	struct fixture *f = *state;
	put_entries(f->store);
	uint64_t ids[N];
	for (size_t i = 0; i < N; i++)
		ids[i] = 1000 + (i * 17) % N; /* 17 is prime to 64: a permutation */
	static uint8_t batch[N * LEN], single[N * LEN];
	size_t total = 0, sum = 0;
	assert_non_null(ENGINE.read_log_entries);
	assert_int_equal(ENGINE.read_log_entries(f->store, ids, N, batch, sizeof(batch), &total),
	                 0);
	for (size_t i = 0; i < N; i++) {
		size_t len = 0;
		assert_int_equal(ENGINE.read_log_entry(f->store, ids[i], single + sum,
		                                       sizeof(single) - sum, &len),
		                 0);
		assert_int_equal(len, LEN - (ids[i] - 1000));
		sum += len;
	}
	assert_int_equal(total, sum);
	assert_memory_equal(batch, single, sum);
	assert_no_transaction(f->store);

	/* No id: nothing read, no transaction. */
	total = 99;
	assert_int_equal(ENGINE.read_log_entries(f->store, ids, 0, batch, 0, &total), 0);
	assert_int_equal(total, 0);
	assert_no_transaction(f->store);
}

/* An absent id anywhere, a buffer too small by one byte, an envelope's id: the whole batch
 * fails, *total is 0, and the transaction is ended every time. */
static void test_batch_fails_whole(void **state)
{
	struct fixture *f = *state;
	put_entries(f->store);
	static uint8_t out[N * LEN];
	uint64_t ids[3] = {1000, 1001, 1002};
	size_t total = 99;
	size_t need = (LEN) + (LEN - 1) + (LEN - 2);
	assert_int_equal(ENGINE.read_log_entries(f->store, ids, 3, out, need, &total), 0);
	assert_int_equal(total, need);
	assert_int_equal(ENGINE.read_log_entries(f->store, ids, 3, out, need - 1, &total),
	                 CAIRN_ENOBUFS);
	assert_int_equal(total, 0);
	assert_no_transaction(f->store);

	for (size_t at = 0; at < 3; at++) {
		uint64_t bad[3] = {1000, 1001, 1002};
		bad[at] = 5000;
		total = 99;
		assert_int_equal(
		    ENGINE.read_log_entries(f->store, bad, 3, out, sizeof(out), &total),
		    CAIRN_EDENIED);
		assert_int_equal(total, 0);
		assert_no_transaction(f->store);
	}

	static const uint8_t env[4] = "env!";
	struct store_op put = {.kind = STORE_ENVELOPE_PUT,
	                       .envelope_id = 7,
	                       .mailbox_id = 1,
	                       .body = env,
	                       .len = sizeof(env),
	                       .stored_at = 1};
	assert_int_equal(ENGINE.commit(f->store, &put, 1), 0);
	uint64_t envelope_id = 7;
	assert_int_equal(
	    ENGINE.read_log_entries(f->store, &envelope_id, 1, out, sizeof(out), &total),
	    CAIRN_EDENIED);
	assert_int_equal(ENGINE.read_log_entries(f->store, NULL, 1, out, sizeof(out), &total),
	                 CAIRN_EINVAL);
	assert_no_transaction(f->store);
}

/* ---- Through the storage thread --------------------------------------------------------- */

static void on_closed(void *arg)
{
	*(int *)arg = 1;
}

static void job_done(struct storage_job *job)
{
	(void)job;
}

/* STORAGE_READ_ENTRIES of 64 ids on ENGINE (SQLite with one of its two read members taken
 * away): the bodies of the 64 entries, in order. */
static void read_through_storage(struct fixture *f, const struct store_engine *engine)
{
	put_entries(f->store);
	ENGINE.close(f->store);
	f->store = NULL;
	uv_loop_t loop;
	assert_int_equal(uv_loop_init(&loop), 0);
	struct store_params params = fixture_params(f);
	struct storage *s;
	assert_int_equal(storage_open(&loop, engine, &params, NULL, NULL, &s), 0);
	uint64_t ids[N];
	for (size_t i = 0; i < N; i++)
		ids[i] = 1000 + (N - 1 - i);
	struct storage_job job = {
	    .kind = STORAGE_READ_ENTRIES, .read_ids = ids, .n_read = N, .done = job_done};
	storage_submit(s, &job);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(job.status, 0);
	size_t at = 0;
	for (size_t i = 0; i < N; i++) {
		size_t k = N - 1 - i, len = LEN - k;
		assert_true(at + len <= job.read_len);
		assert_memory_equal(job.read_body + at, bodies[k], len);
		at += len;
	}
	assert_int_equal(at, job.read_len);
	free(job.read_body);
	int closed = 0;
	storage_close(s, on_closed, &closed);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(closed, 1);
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_storage_uses_batch_read(void **state)
{
	struct store_engine batch_only = ENGINE;
	batch_only.read_log_entry = NULL;
	read_through_storage(*state, &batch_only);
}

static void test_storage_falls_back_to_single_reads(void **state)
{
	struct store_engine single_only = ENGINE;
	single_only.read_log_entries = NULL;
	read_through_storage(*state, &single_only);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_batch_equals_single_reads, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_batch_fails_whole, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_uses_batch_read, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_falls_back_to_single_reads, setup,
	                                    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
