/* SPDX-License-Identifier: MIT */
/*
 * The SQLite storage engine on its own, opened on a fresh directory for each test: the
 * fixture of test_relay_store.c and test_relay_store_log.c (cmocka setup and teardown).
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

struct fixture {
	char dir[64];
	void *store;
};

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
	if (store_sqlite.open(f->dir, &f->store) != 0) {
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
		store_sqlite.close(f->store);
	remove_store_files(f->dir);
	rmdir(f->dir);
	free(f);
	return 0;
}

static inline void reopen(struct fixture *f)
{
	store_sqlite.close(f->store);
	f->store = NULL;
	assert_int_equal(store_sqlite.open(f->dir, &f->store), 0);
}

#endif
