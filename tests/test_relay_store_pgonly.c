/* SPDX-License-Identifier: MIT */
/*
 * What only the PostgreSQL engine has to prove (the shared behaviour is test_relay_store_pg):
 * a database that cannot be reached is refused at open with the reason; a server killed
 * between two batches fails the next one with ESTORAGE, and once it is back the engine
 * reconnects by itself with every acknowledged row there; the envelopes' table is partitioned
 * by hash of the mailbox with no index but its key, and a read or delete of one envelope
 * probes one partition, not all of them; the relay's own session commits with
 * synchronous_commit on, whatever the database's default.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define CAIRN_TEST_PG
#include "cairn/error.h"
#include "pg_engine.h"
#include "store.h"
#include "store_fixture.h"

static struct store_op envelope_put(uint64_t id, uint64_t mailbox)
{
	static const uint8_t body[32] = {7};
	return (struct store_op){.kind = STORE_ENVELOPE_PUT,
	                         .envelope_id = id,
	                         .mailbox_id = mailbox,
	                         .body = body,
	                         .len = sizeof(body),
	                         .stored_at = 1700000000};
}

static void count_envelope(void *ctx, const struct store_envelope_info *info)
{
	uint64_t *ids = ctx;
	ids[++ids[0]] = info->id;
}

/* The envelope ids load() reports, in order, into IDS[1..], their count in IDS[0]. */
static void load_ids(struct fixture *f, uint64_t *ids)
{
	ids[0] = 0;
	struct store_load_cb cb = {.envelope = count_envelope};
	assert_int_equal(store_pg.load(f->store, &cb, ids), 0);
}

static void test_unreachable_refused(void **state)
{
	(void)state;
	char conninfo[128], why[256] = "";
	/* Port 1, where nothing listens (a port that was free a moment ago may be taken by a
	 * test running beside this one): refused at once, with libpq's reason. */
	snprintf(conninfo, sizeof(conninfo), "host=127.0.0.1 port=1 dbname=x connect_timeout=2");
	struct store_params params = {
	    .connection = conninfo, .error = why, .error_cap = sizeof(why)};
	void *store = (void *)1;
	assert_int_equal(store_pg.open(&params, &store), CAIRN_ESTORAGE);
	assert_null(store);
	assert_non_null(strstr(why, "refused"));
	/* No connection string at all. */
	params.connection = "";
	assert_int_equal(store_pg.open(&params, &store), CAIRN_EINVAL);
	params.connection = NULL;
	assert_int_equal(store_pg.open(&params, &store), CAIRN_EINVAL);
}

/*
 * The server dies between two batches, like a machine that lost power: the next batch fails
 * (nothing of it is durable, so nothing may be answered OK), the one after the restart goes
 * through on a new connection the engine made by itself, and every batch acknowledged before
 * the death is there.
 */
static void test_server_killed_between_batches(void **state)
{
	struct fixture *f = *state;
	struct store_op first[] = {envelope_put(1, 5), envelope_put(2, 6)};
	assert_int_equal(store_pg.commit(f->store, first, 2), 0);
	struct pgproc *pg = pg_cluster_get();
	assert_non_null(pg);
	pgproc_kill(pg);
	struct store_op second = envelope_put(3, 5);
	assert_int_equal(store_pg.commit(f->store, &second, 1), CAIRN_ESTORAGE);
	/* Still down: the engine tries again and fails again, within its bounds. */
	assert_int_equal(store_pg.commit(f->store, &second, 1), CAIRN_ESTORAGE);
	assert_int_equal(pg_cluster_restart(), 0);
	struct store_op third = envelope_put(4, 7);
	assert_int_equal(store_pg.commit(f->store, &third, 1), 0);
	uint64_t ids[8];
	load_ids(f, ids);
	assert_int_equal(ids[0], 3);
	assert_int_equal(ids[1], 1);
	assert_int_equal(ids[2], 2);
	assert_int_equal(ids[3], 4);
	/* Reads reconnect too. */
	pgproc_kill(pg);
	uint8_t out[64];
	size_t len;
	assert_int_equal(store_pg.read_envelope(f->store, 5, 1, out, sizeof(out), &len),
	                 CAIRN_ESTORAGE);
	assert_int_equal(pg_cluster_restart(), 0);
	assert_int_equal(store_pg.read_envelope(f->store, 5, 1, out, sizeof(out), &len), 0);
	assert_int_equal(len, 32);
}

/* Runs SQL on F's database and checks its first value. */
static void assert_sql(struct fixture *f, const char *sql, const char *want)
{
	char out[64];
	assert_int_equal(pg_exec(f->conninfo, sql, out, sizeof(out)), 0);
	assert_string_equal(out, want);
}

static void test_envelopes_partitioned_by_mailbox(void **state)
{
	struct fixture *f = *state;
	assert_sql(f,
	           "SELECT partstrat::text || ':' || partnatts::text FROM pg_partitioned_table"
	           " WHERE partrelid = 'envelopes'::regclass",
	           "h:1");
	assert_sql(f,
	           "SELECT a.attname FROM pg_partitioned_table AS p JOIN pg_attribute"
	           " AS a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]"
	           " WHERE p.partrelid = 'envelopes'::regclass",
	           "mailbox");
	assert_sql(f,
	           "SELECT count(*) FROM pg_inherits"
	           " WHERE inhparent = 'envelopes'::regclass",
	           "16");
	/* One index per partition (the key), and none on the hot path besides. */
	assert_sql(f,
	           "SELECT count(*) FROM pg_index AS i JOIN pg_inherits AS h"
	           " ON h.inhrelid = i.indrelid"
	           " WHERE h.inhparent = 'envelopes'::regclass",
	           "16");
	/* A mailbox's envelopes land in one partition. */
	struct store_op puts[] = {envelope_put(1, 42), envelope_put(2, 42), envelope_put(3, 42)};
	assert_int_equal(store_pg.commit(f->store, puts, 3), 0);
	assert_sql(f, "SELECT count(DISTINCT tableoid) FROM envelopes WHERE mailbox = 42", "1");
}

/*
 * How many of the envelopes' partitions the engine's statement STMT probes when run with
 * ARGS (SQL literals): EXPLAIN ANALYZE's scans of a partition that ran, inside a transaction
 * that is rolled back; with GENERIC, under the plan PostgreSQL keeps for a prepared statement
 * run many times (its parameters unknown when planned). -1 if the statement could not run
 * with ARGS.
 */
static int partitions_probed(struct fixture *f, int stmt, const char *args, bool generic)
{
	PGconn *c = PQconnectdb(f->conninfo);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	if (generic)
		PQclear(PQexec(c, "SET plan_cache_mode = force_generic_plan"));
	char sql[1024];
	snprintf(sql, sizeof(sql), "PREPARE q AS %s", pg_stmt_sql[stmt]);
	PQclear(PQexec(c, sql));
	PQclear(PQexec(c, "BEGIN"));
	snprintf(sql, sizeof(sql),
	         "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE q(%s)", args);
	PGresult *r = PQexec(c, sql);
	int probed = -1;
	if (PQresultStatus(r) == PGRES_TUPLES_OK) {
		probed = 0;
		for (int i = 0; i < PQntuples(r); i++) {
			const char *line = PQgetvalue(r, i, 0);
			if (strstr(line, "Scan") != NULL &&
			    strstr(line, " on envelopes_p") != NULL &&
			    strstr(line, "never executed") == NULL)
				probed++;
		}
	}
	PQclear(r);
	PQclear(PQexec(c, "ROLLBACK"));
	PQfinish(c);
	return probed;
}

/* Reads and deletes of one envelope name its mailbox, so PostgreSQL probes one partition's
 * key (by id alone it probed all 16: docs/SCALING.md section 3). */
static void test_one_envelope_one_partition(void **state)
{
	struct fixture *f = *state;
	struct store_op puts[] = {envelope_put(1, 42), envelope_put(2, 43), envelope_put(3, 42),
	                          envelope_put(4, 44)};
	assert_int_equal(store_pg.commit(f->store, puts, 4), 0);
	/* Rows and statistics enough that the planner probes keys rather than scanning a tiny
	 * table's every partition whole, as it would with a store in use. */
	assert_int_equal(pg_exec(f->conninfo,
	                         "INSERT INTO envelopes SELECT g, 1000 + g % 1000, 0, '\\x00'"
	                         " FROM generate_series(100, 50099) AS g; ANALYZE envelopes",
	                         NULL, 0),
	                 0);
	assert_int_equal(partitions_probed(f, PG_READ_ENVELOPE, "42, 3", false), 1);
	assert_int_equal(partitions_probed(f, PG_ENVELOPE_DELETE, "43, 2", false), 1);
	/* A run of deletes: one partition per mailbox it names. */
	char want[16];
	assert_int_equal(pg_exec(f->conninfo,
	                         "SELECT count(DISTINCT tableoid) FROM envelopes"
	                         " WHERE mailbox IN (42, 44)",
	                         want, sizeof(want)),
	                 0);
	assert_int_equal(partitions_probed(f, PG_ENVELOPE_DELETES, "'{42, 44}', '{1, 4}'", false),
	                 atoi(want));
	/* A window of one mailbox's envelopes: its one partition, planned for these values or
	 * (after a few reads on one session) generically, pruned when it runs. */
	assert_int_equal(partitions_probed(f, PG_READ_ENVELOPES, "42, '{1, 3}'", false), 1);
	assert_int_equal(partitions_probed(f, PG_READ_ENVELOPES, "42, '{1, 3}'", true), 1);
	assert_int_equal(
	    pg_exec(f->conninfo, "DELETE FROM envelopes WHERE mailbox >= 1000", NULL, 0), 0);
	/* Through the engine: the run and the single delete take what they name, and the read
	 * finds the envelope in its mailbox only. */
	struct store_op dels[] = {
	    {.kind = STORE_ENVELOPE_DELETE, .mailbox_id = 42, .envelope_id = 1},
	    {.kind = STORE_ENVELOPE_DELETE, .mailbox_id = 44, .envelope_id = 4}};
	assert_int_equal(store_pg.commit(f->store, dels, 2), 0);
	assert_int_equal(store_pg.commit(f->store,
	                                 &(struct store_op){.kind = STORE_ENVELOPE_DELETE,
	                                                    .mailbox_id = 43,
	                                                    .envelope_id = 2},
	                                 1),
	                 0);
	uint64_t ids[8];
	load_ids(f, ids);
	assert_int_equal(ids[0], 1);
	assert_int_equal(ids[1], 3);
	uint8_t out[64];
	size_t len;
	assert_int_equal(store_pg.read_envelope(f->store, 42, 3, out, sizeof(out), &len), 0);
	assert_int_equal(len, 32);
	assert_int_equal(store_pg.read_envelope(f->store, 43, 3, out, sizeof(out), &len),
	                 CAIRN_EDENIED);
}

/* The database's default says off; the relay's session says on. */
static void test_synchronous_commit_on(void **state)
{
	struct fixture *f = *state;
	char sql[128], db[32];
	const char *name = strrchr(f->conninfo, '=');
	assert_non_null(name);
	snprintf(db, sizeof(db), "%s", name + 1);
	snprintf(sql, sizeof(sql), "ALTER DATABASE %s SET synchronous_commit = off", db);
	assert_int_equal(pg_exec(f->conninfo, sql, NULL, 0), 0);
	assert_sql(f, "SHOW synchronous_commit", "off");
	reopen(f);
	struct store_pg *st = f->store;
	PGresult *r = pg_run(st, 0, "SHOW synchronous_commit", NULL);
	assert_non_null(r);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_string_equal(PQgetvalue(r, 0, 0), "on");
	PQclear(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unreachable_refused),
	    cmocka_unit_test_setup_teardown(test_server_killed_between_batches, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_envelopes_partitioned_by_mailbox, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_one_envelope_one_partition, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_synchronous_commit_on, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
