/* SPDX-License-Identifier: MIT */
/*
 * The PostgreSQL engine's handshake claims (store.h claim_once), with two stores open on one
 * database as two relay nodes would have them: a key claimed through one is refused through
 * the other, fresh keys pass, a batch with a key twice claims it once, an expired claim is
 * pruned (and may be claimed again), a failing database fails every key of the call, and the
 * claim's asynchronous commit does not leak into the session the envelopes commit on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <sodium.h>

#define CAIRN_TEST_PG
#define FIXTURE_NODE 1 /* beside the second stores below: nodes share a store, node 0 not */
#include "cairn/error.h"
#include "pg_engine.h"
#include "store.h"
#include "store_fixture.h"

/* A second store on the fixture's database: node 2 beside the fixture's node 1. */
static void *open_second(struct fixture *f, uint8_t node)
{
	struct store_params params = fixture_params(f);
	params.node = node;
	void *store = NULL;
	assert_int_equal(store_pg.open(&params, &store), 0);
	return store;
}

static void key_of(uint8_t key[32], uint8_t tag)
{
	memset(key, 0, 32);
	key[0] = tag;
	key[31] = 0xa5;
}

static int64_t in_minutes(int minutes)
{
	return (int64_t)time(NULL) + minutes * 60;
}

/* Claims the keys tagged TAGS[0..N) through STORE; FRESH as claim_once sets it. */
static int claim(void *store, const uint8_t *tags, size_t n, int64_t until, bool *fresh)
{
	uint8_t keys[8][32];
	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++)
		key_of(keys[i], tags[i]);
	return store_pg.claim_once(store, (const uint8_t(*)[32])keys, n, until, fresh);
}

static void assert_fresh(const bool *fresh, const char *want)
{
	for (size_t i = 0; want[i] != '\0'; i++)
		assert_int_equal(fresh[i], want[i] == '1');
}

static void test_claimed_on_one_refused_on_other(void **state)
{
	struct fixture *f = *state;
	void *other = open_second(f, 2);
	bool fresh[8];
	assert_int_equal(claim(f->store, (const uint8_t[]){1}, 1, in_minutes(4), fresh), 0);
	assert_fresh(fresh, "1");
	/* Node 2 finds it claimed; its own fresh keys pass. */
	assert_int_equal(claim(other, (const uint8_t[]){1, 2, 3}, 3, in_minutes(4), fresh), 0);
	assert_fresh(fresh, "011");
	/* And node 1 now finds node 2's claims, as well as its own. */
	assert_int_equal(claim(f->store, (const uint8_t[]){3, 4, 1}, 3, in_minutes(4), fresh), 0);
	assert_fresh(fresh, "010");
	store_pg.close(other);
}

static void test_duplicate_inside_batch(void **state)
{
	struct fixture *f = *state;
	bool fresh[8];
	assert_int_equal(claim(f->store, (const uint8_t[]){7, 8, 7, 9, 7}, 5, in_minutes(4), fresh),
	                 0);
	assert_fresh(fresh, "11010");
	char rows[16];
	assert_int_equal(pg_exec(f->conninfo, "SELECT count(*) FROM hs_seen", rows, sizeof(rows)),
	                 0);
	assert_string_equal(rows, "3");
}

/* The first claim of a store prunes what expired; a claim not yet expired stays. */
static void test_expired_pruned(void **state)
{
	struct fixture *f = *state;
	bool fresh[8];
	assert_int_equal(claim(f->store, (const uint8_t[]){5}, 1, in_minutes(-1), fresh), 0);
	assert_fresh(fresh, "1");
	assert_int_equal(claim(f->store, (const uint8_t[]){6}, 1, in_minutes(4), fresh), 0);
	/* This store pruned at its first claim (before 5 was there) and not since. */
	assert_int_equal(claim(f->store, (const uint8_t[]){5}, 1, in_minutes(4), fresh), 0);
	assert_fresh(fresh, "0");
	char rows[16];
	assert_int_equal(pg_exec(f->conninfo, "SELECT count(*) FROM hs_seen", rows, sizeof(rows)),
	                 0);
	assert_string_equal(rows, "2");
	/* A node started now prunes first: 5's row goes, 6's stays. */
	void *other = open_second(f, 2);
	assert_int_equal(claim(other, (const uint8_t[]){5, 6}, 2, in_minutes(4), fresh), 0);
	assert_fresh(fresh, "10");
	store_pg.close(other);
}

/* A database that fails the claim: every key is refused (fail closed), and the engine goes
 * on once the table is back. */
static void test_failure_refuses_all(void **state)
{
	struct fixture *f = *state;
	bool fresh[8];
	assert_int_equal(pg_exec(f->conninfo, "ALTER TABLE hs_seen RENAME TO hs_gone", NULL, 0), 0);
	memset(fresh, 1, sizeof(fresh));
	assert_int_equal(claim(f->store, (const uint8_t[]){1, 2}, 2, in_minutes(4), fresh),
	                 CAIRN_ESTORAGE);
	assert_fresh(fresh, "00");
	assert_int_equal(pg_exec(f->conninfo, "ALTER TABLE hs_gone RENAME TO hs_seen", NULL, 0), 0);
	assert_int_equal(claim(f->store, (const uint8_t[]){1, 2}, 2, in_minutes(4), fresh), 0);
	assert_fresh(fresh, "11");
	/* More than the bound is refused whole, before anything is sent. */
	static uint8_t many[STORE_CLAIM_MAX + 1][32];
	static bool many_fresh[STORE_CLAIM_MAX + 1];
	assert_int_equal(store_pg.claim_once(f->store, (const uint8_t(*)[32])many,
	                                     STORE_CLAIM_MAX + 1, in_minutes(4), many_fresh),
	                 CAIRN_ESTORAGE);
}

/* The claim commits asynchronously (SET LOCAL): the envelopes' commits on the same session
 * stay synchronous. */
static void test_session_stays_synchronous(void **state)
{
	struct fixture *f = *state;
	bool fresh[8];
	assert_int_equal(claim(f->store, (const uint8_t[]){1}, 1, in_minutes(4), fresh), 0);
	PGresult *r = pg_run(f->store, 0, "SHOW synchronous_commit", NULL);
	assert_non_null(r);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_string_equal(PQgetvalue(r, 0, 0), "on");
	PQclear(r);
}

/* A measurement, not a check (CAIRN_HSSEEN_BENCH=N): N claims of one key, one after the
 * other, and N/64 claims of 64 keys: microseconds per call. */
static void test_claim_latency(void **state)
{
	struct fixture *f = *state;
	const char *env = getenv("CAIRN_HSSEEN_BENCH");
	if (env == NULL)
		skip();
	int n = atoi(env) > 0 ? atoi(env) : 2000;
	static uint8_t keys[64][32];
	bool fresh[64];
	for (int size = 1; size <= 64; size *= 64) {
		struct timespec a, b;
		int calls = size == 1 ? n : n / 64;
		clock_gettime(CLOCK_MONOTONIC, &a);
		for (int i = 0; i < calls; i++) {
			for (int k = 0; k < size; k++)
				randombytes_buf(keys[k], 32);
			assert_int_equal(store_pg.claim_once(f->store, (const uint8_t(*)[32])keys,
			                                     (size_t)size, in_minutes(4), fresh),
			                 0);
		}
		clock_gettime(CLOCK_MONOTONIC, &b);
		double us =
		    ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / 1e3 /
		    calls;
		printf("bench: claim_once of %d key(s): %.0f us per call (%d calls)\n", size, us,
		       calls);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_claimed_on_one_refused_on_other, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_duplicate_inside_batch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_expired_pruned, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failure_refuses_all, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_session_stays_synchronous, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_claim_latency, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
