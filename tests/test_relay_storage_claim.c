/* SPDX-License-Identifier: MIT */
/*
 * The storage thread's claims (storage.h STORAGE_CLAIM) on the PostgreSQL engine: the claims
 * that wait while the thread is busy are taken together, in one engine call, and each job
 * gets its own answer (a key twice: the first only; a key claimed before: not fresh); an
 * engine that cannot claim (SQLite) fails every claim, so the relay stays silent.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#define CAIRN_TEST_PG
#include "cairn/error.h"
#include "storage_fixture.h"

/* An engine that counts claim_once calls and holds the first one until the test lets go. */
static struct store_engine held_engine;
static atomic_int claim_calls, hold_first;
static atomic_size_t last_n;

static int held_claim(void *store, const uint8_t (*keys)[32], size_t n, int64_t until, bool *fresh)
{
	if (atomic_fetch_add(&claim_calls, 1) == 0) {
		while (atomic_load(&hold_first)) {
			struct timespec ts = {0, 1000000};
			nanosleep(&ts, NULL);
		}
	}
	atomic_store(&last_n, n);
	return store_pg.claim_once(store, keys, n, until, fresh);
}

struct cjob {
	struct storage_job job;
	int calls;
};

static void cjob_done(struct storage_job *job)
{
	((struct cjob *)job->data)->calls++;
}

static void cjob_claim(struct cjob *c, uint8_t tag)
{
	memset(c, 0, sizeof(*c));
	c->job.kind = STORAGE_CLAIM;
	memset(c->job.claim_key, tag, sizeof(c->job.claim_key));
	c->job.claim_until = (int64_t)time(NULL) + 240;
	c->job.done = cjob_done;
	c->job.data = c;
}

static int setup(void **state)
{
	struct fixture *f = fixture_open();
	*state = f;
	return f != NULL ? 0 : -1;
}

static void test_waiting_claims_taken_together(void **state)
{
	struct fixture *f = *state;
	held_engine = store_pg;
	held_engine.claim_once = held_claim;
	atomic_store(&claim_calls, 0);
	atomic_store(&hold_first, 1);
	struct storage *s;
	assert_int_equal(
	    storage_open(&f->loop, &held_engine, storage_params(f->dir), NULL, NULL, &s), 0);
	/* The first claim holds the thread; four more wait meanwhile, one of them a key twice
	 * and one the first's. */
	static const uint8_t tags[] = {1, 2, 3, 2, 1};
	struct cjob c[5];
	cjob_claim(&c[0], tags[0]);
	storage_submit(s, &c[0].job);
	while (atomic_load(&claim_calls) == 0) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	for (size_t i = 1; i < 5; i++) {
		cjob_claim(&c[i], tags[i]);
		storage_submit(s, &c[i].job);
	}
	atomic_store(&hold_first, 0);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(atomic_load(&claim_calls), 2);
	assert_int_equal(atomic_load(&last_n), 4);
	static const bool want[] = {true, true, true, false, false};
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(c[i].calls, 1);
		assert_int_equal(c[i].job.status, 0);
		assert_int_equal(c[i].job.claim_fresh, want[i]);
	}
	close_storage(f, s);
}

static void test_engine_without_claims_fails_them(void **state)
{
	struct fixture *f = *state;
	struct storage *s;
	assert_int_equal(
	    storage_open(&f->loop, &store_sqlite, storage_params(f->dir), NULL, NULL, &s), 0);
	struct cjob c;
	cjob_claim(&c, 9);
	storage_submit(s, &c.job);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(c.calls, 1);
	assert_int_not_equal(c.job.status, 0);
	assert_false(c.job.claim_fresh);
	close_storage(f, s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_waiting_claims_taken_together, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_engine_without_claims_fails_them, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
