/* SPDX-License-Identifier: MIT */
/*
 * A storage engine on its own, opened on a fresh store for each test: the fixture of
 * test_relay_store.c and test_relay_store_log.c (cmocka setup and teardown). Built plain, the
 * engine is SQLite in a fresh directory; built with CAIRN_TEST_PG (the *_pg tests), it is
 * PostgreSQL in a fresh database of this process's cluster (pg_fixture.h). ENGINE names it.
 */
#ifndef CAIRN_TESTS_STORE_FIXTURE_H
#define CAIRN_TESTS_STORE_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store.h"
#include "store_files.h"

#ifdef CAIRN_TEST_PG
#include "pg_fixture.h"
#define ENGINE store_pg
#else
#include <sqlite3.h>
#define ENGINE store_sqlite
#endif

struct fixture {
	char dir[64];
	char conninfo[512]; /* PostgreSQL: the test's own database */
	void *store;
};

/* The node the fixture's store opens as (store.h store_params.node): 0, the only relay on
 * the store, unless a test of several nodes defines it before including this file. */
#ifndef FIXTURE_NODE
#define FIXTURE_NODE 0
#endif

static inline struct store_params fixture_params(struct fixture *f)
{
	return (struct store_params){
	    .dir = f->dir, .connection = f->conninfo, .node = FIXTURE_NODE};
}

static inline int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -1;
	strcpy(f->dir, "/tmp/cairn-store-XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
#ifdef CAIRN_TEST_PG
	if (pg_fresh_database(f->conninfo, sizeof(f->conninfo)) != 0) {
		rmdir(f->dir);
		free(f);
		return -1;
	}
#endif
	struct store_params params = fixture_params(f);
	char why[256] = "";
	params.error = why;
	params.error_cap = sizeof(why);
	int rc = ENGINE.open(&params, &f->store);
	if (rc != 0) {
		fprintf(stderr, "cannot open the %s store: %d %s\n", ENGINE.name, rc, why);
		rmdir(f->dir);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static inline int teardown(void **state)
{
	struct fixture *f = *state;
	if (f->store != NULL)
		ENGINE.close(f->store);
	remove_store_files(f->dir);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Opens F's store again (F's store is closed). */
static inline int fixture_open(struct fixture *f)
{
	struct store_params params = fixture_params(f);
	return ENGINE.open(&params, &f->store);
}

static inline void reopen(struct fixture *f)
{
	ENGINE.close(f->store);
	f->store = NULL;
	assert_int_equal(fixture_open(f), 0);
}

/* Closes F's store and runs SQL on it directly (SQLite: its file; PostgreSQL: its database),
 * as a store from another version, or a damaged one, would have it; the test then opens the
 * store again. */
static inline void close_and_exec(struct fixture *f, const char *sql)
{
	ENGINE.close(f->store);
	f->store = NULL;
#ifdef CAIRN_TEST_PG
	assert_int_equal(pg_exec(f->conninfo, sql, NULL, 0), 0);
#else
	char path[128];
	snprintf(path, sizeof(path), "%s/relay.db", f->dir);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
#endif
}

#endif
