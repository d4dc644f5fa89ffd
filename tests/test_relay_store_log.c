/* SPDX-License-Identifier: MIT */
/*
 * Group logs (PROTOCOL.md 5.9) in a storage engine (SQLite, or PostgreSQL as
 * test_relay_store_log_pg), on a fresh store per test:
 * logs and entries are loaded back in store.h's order with every field, a log delete removes
 * exactly its entries, expiry by id covers envelopes and entries alike, a log's next_seq
 * survives the expiry of all its entries and a restart, an append costs one insert (VM
 * steps, deterministic), a failing batch applies nothing, and a store made before the log
 * tables existed opens and keeps working.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#ifndef CAIRN_TEST_PG
#include <sqlite3.h>
#endif

#include "cairn/error.h"
#include "store.h"
#include "store_fixture.h"

#define MAX_SEEN 256

/* What load() reported, and in which order the kinds came. */
struct seen {
	struct store_log logs[MAX_SEEN];
	size_t nlogs;
	struct store_log_entry_info entries[MAX_SEEN];
	size_t nentries;
	uint64_t envelopes[MAX_SEEN];
	size_t nenvelopes;
	char order[4 * MAX_SEEN]; /* 'e'nvelope, 'l'og, 'n' entry, 'm'ark */
	size_t norder;
};

static void note(struct seen *seen, char kind)
{
	assert_true(seen->norder < sizeof(seen->order) - 1);
	seen->order[seen->norder++] = kind;
}

static void seen_envelope(void *ctx, const struct store_envelope_info *info)
{
	struct seen *seen = ctx;
	assert_true(seen->nenvelopes < MAX_SEEN);
	seen->envelopes[seen->nenvelopes++] = info->id;
	note(seen, 'e');
}

static void seen_log(void *ctx, const struct store_log *log)
{
	struct seen *seen = ctx;
	assert_true(seen->nlogs < MAX_SEEN);
	seen->logs[seen->nlogs++] = *log;
	note(seen, 'l');
}

static void seen_entry(void *ctx, const struct store_log_entry_info *info)
{
	struct seen *seen = ctx;
	assert_true(seen->nentries < MAX_SEEN);
	seen->entries[seen->nentries++] = *info;
	note(seen, 'n');
}

static void seen_mark(void *ctx, uint64_t mark)
{
	(void)mark;
	note(ctx, 'm');
}

static const struct store_load_cb seen_cb = {
    .envelope = seen_envelope, .log = seen_log, .log_entry = seen_entry, .id_mark = seen_mark};

static void load(struct fixture *f, struct seen *seen)
{
	memset(seen, 0, sizeof(*seen));
	assert_int_equal(ENGINE.load(f->store, &seen_cb, seen), 0);
}

static void commit_ok(struct fixture *f, const struct store_op *ops, size_t n)
{
	assert_int_equal(ENGINE.commit(f->store, ops, n), 0);
}

/* A log whose byte fields are derived from KEY, so a mix-up between logs shows. */
static void make_log(struct store_log *log, uint64_t key, int64_t touched)
{
	memset(log, 0, sizeof(*log));
	log->id = key;
	memset(log->log_id, (int)(0x10 + key), sizeof(log->log_id));
	memset(log->credential_digest, (int)(0x50 + key), sizeof(log->credential_digest));
	memset(log->delete_digest, (int)(0x90 + key), sizeof(log->delete_digest));
	log->next_seq = 1;
	log->touched = touched;
}

static void put_log(struct fixture *f, const struct store_log *log)
{
	struct store_op op = {.kind = STORE_LOG_PUT, .log = log};
	commit_ok(f, &op, 1);
}

/* Logs 1 (touched 10) and 2 (touched 20), stored. */
static void put_two_logs(struct fixture *f, struct store_log *a, struct store_log *b)
{
	make_log(a, 1, 10);
	make_log(b, 2, 20);
	put_log(f, a);
	put_log(f, b);
}

/* Entry ID of log KEY with SEQ, whose body is LEN bytes of the low byte of ID + SEQ. */
static uint8_t bodies[MAX_SEEN][64];

static struct store_op entry_put(uint64_t id, uint64_t key, uint64_t seq, uint32_t len)
{
	assert_true(len <= sizeof(bodies[0]));
	memset(bodies[id % MAX_SEEN], (int)((id + seq) & 0xff), len);
	return (struct store_op){.kind = STORE_LOG_ENTRY_PUT,
	                         .envelope_id = id,
	                         .log_key = key,
	                         .seq = seq,
	                         .body = bodies[id % MAX_SEEN],
	                         .len = len,
	                         .stored_at = 1700000000 + (int64_t)id};
}

static struct store_op envelope_put(uint64_t id)
{
	static const uint8_t body[8];
	return (struct store_op){.kind = STORE_ENVELOPE_PUT,
	                         .envelope_id = id,
	                         .mailbox_id = 1,
	                         .body = body,
	                         .len = sizeof(body),
	                         .stored_at = 1700000000};
}

static void expire_below(struct fixture *f, uint64_t bound)
{
	struct store_op op = {.kind = STORE_EXPIRE, .envelope_id = bound};
	commit_ok(f, &op, 1);
}

static const struct store_log *find_log(const struct seen *seen, uint64_t key)
{
	for (size_t i = 0; i < seen->nlogs; i++)
		if (seen->logs[i].id == key)
			return &seen->logs[i];
	fail_msg("log %llu not loaded", (unsigned long long)key);
	return NULL;
}

/* ---- Tests -------------------------------------------------------------------------------- */

/* Logs come back with every field, in increasing touched order (then key), and a touch
 * moves a log in that order, across a reopen. */
static void test_logs_put_touch_load(void **state)
{
	struct fixture *f = *state;
	struct store_log a, b, c;
	make_log(&a, 7, 300);
	make_log(&b, 3, 100);
	make_log(&c, 5, 300);
	c.next_seq = 42;
	struct store_op puts[] = {{.kind = STORE_LOG_PUT, .log = &a},
	                          {.kind = STORE_LOG_PUT, .log = &b},
	                          {.kind = STORE_LOG_PUT, .log = &c}};
	commit_ok(f, puts, 3);
	reopen(f);
	struct seen seen;
	load(f, &seen);
	assert_int_equal(seen.nlogs, 3);
	assert_int_equal(seen.logs[0].id, 3);
	assert_int_equal(seen.logs[1].id, 5); /* same touched as 7: key order */
	assert_int_equal(seen.logs[2].id, 7);
	assert_memory_equal(&seen.logs[0], &b, sizeof(b));
	assert_memory_equal(&seen.logs[1], &c, sizeof(c));
	assert_memory_equal(&seen.logs[2], &a, sizeof(a));

	struct store_op touch = {.kind = STORE_LOG_TOUCH, .log_key = 3, .stored_at = 500};
	struct store_op absent = {.kind = STORE_LOG_TOUCH, .log_key = 99, .stored_at = 1};
	struct store_op both[] = {touch, absent};
	commit_ok(f, both, 2); /* touching an absent log is not an error */
	reopen(f);
	load(f, &seen);
	assert_int_equal(seen.nlogs, 3);
	assert_int_equal(seen.logs[2].id, 3);
	assert_int_equal(seen.logs[2].touched, 500);
	/* A duplicate key fails its batch. */
	assert_int_equal(ENGINE.commit(f->store, &puts[0], 1), CAIRN_ESTORAGE);
}

/*
 * Entries share the envelope id space: load reports envelopes, then logs, then entries in id
 * order with their log, seq, length and time, then the mark; bodies read back by id, and an
 * envelope id is no entry (nor the reverse).
 */
static void test_entries_load_and_read(void **state)
{
	struct fixture *f = *state;
	struct store_log a, b;
	put_two_logs(f, &a, &b);
	struct store_op ops[] = {
	    envelope_put(1),
	    entry_put(2, 1, 1, 10),
	    entry_put(3, 2, 1, 0),
	    entry_put(4, 1, 2, 64),
	    envelope_put(5),
	    entry_put(6, 2, 2, 33),
	    {.kind = STORE_ID_MARK, .envelope_id = 1000},
	};
	commit_ok(f, ops, sizeof(ops) / sizeof(ops[0]));
	reopen(f);
	struct seen seen;
	load(f, &seen);
	assert_string_equal(seen.order, "eellnnnnm");
	static const struct {
		uint64_t id, log, seq;
		uint32_t len;
	} want[] = {{2, 1, 1, 10}, {3, 2, 1, 0}, {4, 1, 2, 64}, {6, 2, 2, 33}};
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(seen.entries[i].id, want[i].id);
		assert_int_equal(seen.entries[i].log, want[i].log);
		assert_int_equal(seen.entries[i].seq, want[i].seq);
		assert_int_equal(seen.entries[i].len, want[i].len);
		assert_int_equal(seen.entries[i].stored_at, 1700000000 + (int64_t)want[i].id);

		uint8_t out[64], expect[64];
		size_t len = 99;
		assert_int_equal(
		    ENGINE.read_log_entry(f->store, want[i].id, out, sizeof(out), &len), 0);
		assert_int_equal(len, want[i].len);
		memset(expect, (int)((want[i].id + want[i].seq) & 0xff), sizeof(expect));
		assert_memory_equal(out, expect, len);
		assert_int_equal(
		    ENGINE.read_envelope(f->store, want[i].log, want[i].id, out, sizeof(out), &len),
		    CAIRN_EDENIED);
	}
	/* Both logs' next_seq: one above their highest stored seq. */
	assert_int_equal(find_log(&seen, 1)->next_seq, 3);
	assert_int_equal(find_log(&seen, 2)->next_seq, 3);

	uint8_t out[64];
	size_t len = 99;
	assert_int_equal(ENGINE.read_log_entry(f->store, 1, out, sizeof(out), &len),
	                 CAIRN_EDENIED); /* an envelope */
	assert_int_equal(len, 0);
	assert_int_equal(ENGINE.read_log_entry(f->store, 77, out, sizeof(out), &len),
	                 CAIRN_EDENIED);
	assert_int_equal(ENGINE.read_log_entry(f->store, UINT64_MAX, out, sizeof(out), &len),
	                 CAIRN_EDENIED);
	assert_int_equal(ENGINE.read_log_entry(f->store, 4, out, 63, &len), CAIRN_ENOBUFS);

	/* NULL callbacks skip the logs and their entries. */
	memset(&seen, 0, sizeof(seen));
	struct store_load_cb only_envelopes = {.envelope = seen_envelope};
	assert_int_equal(ENGINE.load(f->store, &only_envelopes, &seen), 0);
	assert_string_equal(seen.order, "ee");
}

/* A log delete removes the log and the entries it names, checked against the log: an id of
 * another log's entry named by mistake stays. */
static void test_log_delete(void **state)
{
	struct fixture *f = *state;
	struct store_log a, b;
	put_two_logs(f, &a, &b);
	struct store_op ops[] = {entry_put(10, 1, 1, 8), entry_put(11, 2, 1, 8),
	                         entry_put(12, 1, 2, 8), entry_put(13, 2, 2, 8)};
	commit_ok(f, ops, 4);
	static const uint64_t named[] = {10, 12, 13, 999};
	struct store_op del = {
	    .kind = STORE_LOG_DELETE, .log_key = 1, .envelope_ids = named, .n_envelope_ids = 4};
	commit_ok(f, &del, 1);
	reopen(f);
	struct seen seen;
	load(f, &seen);
	assert_int_equal(seen.nlogs, 1);
	assert_int_equal(seen.logs[0].id, 2);
	assert_int_equal(seen.nentries, 2);
	assert_int_equal(seen.entries[0].id, 11);
	assert_int_equal(seen.entries[1].id, 13);
	assert_int_equal(seen.logs[0].next_seq, 3);
	/* Deleting an absent log is not an error; a list without its array is. */
	commit_ok(f, &del, 1);
	struct store_op bad = {.kind = STORE_LOG_DELETE, .log_key = 2, .n_envelope_ids = 1};
	assert_int_equal(ENGINE.commit(f->store, &bad, 1), CAIRN_ESTORAGE);
}

/* Expiry is one bound for the whole id space: envelopes and entries below it go, the rest
 * stay, whichever table they are in. */
static void test_expiry_covers_envelopes_and_entries(void **state)
{
	struct fixture *f = *state;
	struct store_log a;
	make_log(&a, 1, 10);
	put_log(f, &a);
	struct store_op ops[8];
	for (uint64_t id = 1; id <= 8; id++)
		ops[id - 1] = id % 2 ? envelope_put(id) : entry_put(id, 1, id / 2, 4);
	commit_ok(f, ops, 8);
	expire_below(f, 5);
	struct seen seen;
	load(f, &seen);
	assert_string_equal(seen.order, "eelnn");
	assert_int_equal(seen.envelopes[0], 5);
	assert_int_equal(seen.envelopes[1], 7);
	assert_int_equal(seen.entries[0].id, 6);
	assert_int_equal(seen.entries[1].id, 8);
	expire_below(f, 0); /* nothing below 0 */
	expire_below(f, UINT64_MAX);
	load(f, &seen);
	assert_string_equal(seen.order, "l");
}

/*
 * 5.9: a seq is never given twice. After every entry of a log has expired, and after a
 * restart, the log's next_seq is still one above the highest seq it ever gave; a log whose
 * entries expire in several steps keeps the highest; a log untouched by an expiry keeps its
 * own value.
 */
static void test_next_seq_survives_expiry_and_restart(void **state)
{
	struct fixture *f = *state;
	struct store_log a, b, c;
	make_log(&a, 1, 10);
	make_log(&b, 2, 10);
	make_log(&c, 3, 10);
	c.next_seq = 1000; /* as the relay would store it: a lower bound kept as is */
	put_log(f, &a);
	put_log(f, &b);
	put_log(f, &c);
	struct store_op ops[10];
	for (uint64_t i = 0; i < 5; i++) {
		ops[i] = entry_put(10 + i, 1, 1 + i, 4);     /* log 1: seqs 1..5 */
		ops[5 + i] = entry_put(20 + i, 2, 7 + i, 4); /* log 2: seqs 7..11 */
	}
	commit_ok(f, ops, 10);
	struct seen seen;
	load(f, &seen);
	assert_int_equal(find_log(&seen, 1)->next_seq, 6);
	assert_int_equal(find_log(&seen, 2)->next_seq, 12);

	expire_below(f, 13); /* log 1 loses seqs 1..3: its highest stays stored */
	reopen(f);
	load(f, &seen);
	assert_int_equal(seen.nentries, 7);
	assert_int_equal(find_log(&seen, 1)->next_seq, 6);

	expire_below(f, 100); /* every entry */
	reopen(f);
	load(f, &seen);
	assert_int_equal(seen.nentries, 0);
	assert_int_equal(find_log(&seen, 1)->next_seq, 6);
	assert_int_equal(find_log(&seen, 2)->next_seq, 12);
	assert_int_equal(find_log(&seen, 3)->next_seq, 1000);

	/* Appends continue from there and the same holds again. */
	struct store_op more[] = {entry_put(101, 1, 6, 4), entry_put(102, 1, 7, 4)};
	commit_ok(f, more, 2);
	expire_below(f, 200);
	reopen(f);
	load(f, &seen);
	assert_int_equal(find_log(&seen, 1)->next_seq, 8);

	/* A seq the stored next_seq could not hold is refused with its batch. */
	struct store_op huge = entry_put(300, 1, (uint64_t)INT64_MAX, 4);
	assert_int_equal(ENGINE.commit(f->store, &huge, 1), CAIRN_ESTORAGE);
}

#ifndef CAIRN_TEST_PG /* SQLite only */
/*
 * An append costs what an envelope costs: one insert, no write of the log's row (VM steps,
 * deterministic). Expiry costs what it deletes, not what the store holds.
 */
static void test_append_and_expiry_costs(void **state)
{
	struct fixture *f = *state;
	enum { LOGS = 200, ENTRIES = 2000 };
	static struct store_log logs[LOGS];
	static struct store_op ops[ENTRIES];
	static const uint8_t body[32];
	for (uint64_t i = 0; i < LOGS; i++) {
		make_log(&logs[i], 1 + i, 10);
		ops[i] = (struct store_op){.kind = STORE_LOG_PUT, .log = &logs[i]};
	}
	commit_ok(f, ops, LOGS);
	for (uint64_t i = 0; i < ENTRIES; i++)
		ops[i] = (struct store_op){.kind = STORE_LOG_ENTRY_PUT,
		                           .envelope_id = 1000 + i,
		                           .log_key = 1 + i % LOGS,
		                           .seq = 1 + i / LOGS,
		                           .body = body,
		                           .len = sizeof(body),
		                           .stored_at = 1};
	uint64_t before = store_sqlite_vm_steps(f->store);
	commit_ok(f, ops, ENTRIES);
	uint64_t entry_steps = store_sqlite_vm_steps(f->store) - before;
	static struct store_op envs[ENTRIES];
	for (uint64_t i = 0; i < ENTRIES; i++) {
		envs[i] = envelope_put(10000 + i);
		envs[i].body = body;
		envs[i].len = sizeof(body);
	}
	before = store_sqlite_vm_steps(f->store);
	commit_ok(f, envs, ENTRIES);
	uint64_t envelope_steps = store_sqlite_vm_steps(f->store) - before;
	/* 20 steps an append against 18 an envelope (one column more); an UPDATE of the log's
	 * row per append would add a dozen more to each. */
	if (entry_steps > envelope_steps + envelope_steps / 4)
		fail_msg("%d appends took %llu VM steps, %d envelopes %llu", ENTRIES,
		         (unsigned long long)entry_steps, ENTRIES,
		         (unsigned long long)envelope_steps);

	/* An expiry below every entry seeks and stops: nothing like a scan of 2,000 rows. */
	before = store_sqlite_vm_steps(f->store);
	expire_below(f, 1000);
	uint64_t steps = store_sqlite_vm_steps(f->store) - before;
	if (steps > 100)
		fail_msg("an expiry that deletes nothing took %llu VM steps",
		         (unsigned long long)steps);
	/* Expiring 10 entries costs about 640 steps (grouping their seqs, raising their logs'
	 * next_seq, deleting them), however many stay; a scan of the 1,990 that stay would cost
	 * over 10,000. */
	before = store_sqlite_vm_steps(f->store);
	expire_below(f, 1010);
	steps = store_sqlite_vm_steps(f->store) - before;
	if (steps > 2000)
		fail_msg("expiring 10 entries took %llu VM steps", (unsigned long long)steps);
}
#endif

/* A failing batch applies none of its log ops: a duplicate entry id after a log and entries
 * rolls back all of them; a log op without its log fails. */
static void test_failing_batch_applies_nothing(void **state)
{
	struct fixture *f = *state;
	struct store_log a;
	make_log(&a, 1, 10);
	struct store_op ops[] = {{.kind = STORE_LOG_PUT, .log = &a},
	                         entry_put(1, 1, 1, 4),
	                         entry_put(2, 1, 2, 4),
	                         entry_put(1, 1, 3, 4)};
	assert_int_equal(ENGINE.commit(f->store, ops, 4), CAIRN_ESTORAGE);
	/* An entry id already used by an envelope is not refused by the engine (other table),
	 * but the relay never does that; a NULL log is refused. */
	struct store_op null_log = {.kind = STORE_LOG_PUT};
	assert_int_equal(ENGINE.commit(f->store, &null_log, 1), CAIRN_ESTORAGE);
	struct seen seen;
	load(f, &seen);
	assert_int_equal(seen.norder, 0);
	commit_ok(f, ops, 3);
	load(f, &seen);
	assert_string_equal(seen.order, "lnn");
}

/* Rows that do not have the sizes the relay wrote are a storage error, not a crash. */
static void test_damaged_rows_refused(void **state)
{
	struct fixture *f = *state;
	struct store_log a;
	make_log(&a, 1, 10);
	put_log(f, &a);
#ifdef CAIRN_TEST_PG
	close_and_exec(f, "UPDATE logs SET log_id = '\\x0102'");
#else
	close_and_exec(f, "UPDATE logs SET log_id = x'0102'");
#endif
	assert_int_equal(fixture_open(f), 0);
	struct seen seen;
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(ENGINE.load(f->store, &seen_cb, &seen), CAIRN_ESTORAGE);
}

#ifndef CAIRN_TEST_PG /* SQLite only */
/*
 * A store made before group logs (no log tables; the current schema, 4, otherwise) opens,
 * loads what it had, and gains the tables; its schema version stays (the tables need none:
 * an older relay ignores them), and the new tables add no index.
 */
static void test_store_without_log_tables_opens(void **state)
{
	struct fixture *f = *state;
	struct store_op env = envelope_put(4);
	commit_ok(f, &env, 1);
	ENGINE.close(f->store);
	f->store = NULL;
	char path[128];
	snprintf(path, sizeof(path), "%s/relay.db", f->dir);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(db, "DROP TABLE logs; DROP TABLE log_entries;", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);

	assert_int_equal(fixture_open(f), 0);
	struct seen seen;
	load(f, &seen);
	assert_string_equal(seen.order, "e");
	struct store_log a;
	make_log(&a, 1, 10);
	struct store_op ops[] = {{.kind = STORE_LOG_PUT, .log = &a}, entry_put(5, 1, 1, 4)};
	commit_ok(f, ops, 2);
	reopen(f);
	load(f, &seen);
	assert_string_equal(seen.order, "eln");

	ENGINE.close(f->store);
	f->store = NULL;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db,
	                                    "SELECT (SELECT user_version FROM pragma_user_version),"
	                                    " (SELECT count(*) FROM sqlite_schema"
	                                    "  WHERE type = 'index')",
	                                    -1, &st, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 4);
	assert_int_equal(sqlite3_column_int(st, 1), 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	assert_int_equal(fixture_open(f), 0);
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_logs_put_touch_load, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_entries_load_and_read, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_log_delete, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_expiry_covers_envelopes_and_entries, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_next_seq_survives_expiry_and_restart, setup,
	                                    teardown),
#ifndef CAIRN_TEST_PG
	    cmocka_unit_test_setup_teardown(test_append_and_expiry_costs, setup, teardown),
#endif
	    cmocka_unit_test_setup_teardown(test_failing_batch_applies_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_damaged_rows_refused, setup, teardown),
#ifndef CAIRN_TEST_PG
	    cmocka_unit_test_setup_teardown(test_store_without_log_tables_opens, setup, teardown),
#endif
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
