/* SPDX-License-Identifier: MIT */
/*
 * The storage thread on a real uv loop, with the SQLite engine in a fresh directory for each
 * test: the fixture of test_relay_storage.c and test_relay_storage_log.c. Built with
 * CAIRN_TEST_PG (the *_pg tests), the engine is PostgreSQL in a fresh database of this
 * process's cluster (pg_fixture.h). ENGINE names it; storage_params(DIR) is where it is.
 */
#ifndef CAIRN_TESTS_STORAGE_FIXTURE_H
#define CAIRN_TESTS_STORAGE_FIXTURE_H

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "storage.h"
#include "store_files.h"

#ifdef CAIRN_TEST_PG
#include "pg_fixture.h"
#define ENGINE store_pg
#else
#define ENGINE store_sqlite
#endif

/* The current test's database (PostgreSQL; one test at a time per process). */
static char storage_conninfo[512];

/* The store of the test whose directory is DIR (the SQLite engine's; PostgreSQL's database is
 * the test's own). Valid until the next call. */
static inline const struct store_params *storage_params(const char *dir)
{
	static struct store_params params;
	params = (struct store_params){.dir = dir, .connection = storage_conninfo};
	return &params;
}

struct fixture {
	char dir[64];
	uv_loop_t loop;
	pthread_t loop_thread;
};

/* A fixture with its directory made and its loop initialised, or NULL. */
static inline struct fixture *fixture_open(void)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return NULL;
	strcpy(f->dir, "/tmp/cairn-storage-XXXXXX");
	if (mkdtemp(f->dir) == NULL || uv_loop_init(&f->loop) != 0) {
		free(f);
		return NULL;
	}
#ifdef CAIRN_TEST_PG
	if (pg_fresh_database(storage_conninfo, sizeof(storage_conninfo)) != 0) {
		uv_loop_close(&f->loop);
		rmdir(f->dir);
		free(f);
		return NULL;
	}
#endif
	f->loop_thread = pthread_self();
	return f;
}

static inline int teardown(void **state)
{
	struct fixture *f = *state;
	/* Every test closes its storage; a leaked handle fails here. */
	int rc = uv_loop_close(&f->loop);
	remove_store_files(f->dir);
	rmdir(f->dir);
	free(f);
	return rc == 0 ? 0 : -1;
}

static inline void on_closed(void *arg)
{
	*(int *)arg += 1;
}

/* Closes S, runs the loop until the close completes, and proves no handle is left. */
static inline void close_storage(struct fixture *f, struct storage *s)
{
	int closed = 0;
	storage_close(s, on_closed, &closed);
	assert_int_equal(closed, 0); /* only from the handle's close callback */
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(closed, 1);
}

#endif
