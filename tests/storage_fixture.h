/* SPDX-License-Identifier: MIT */
/*
 * The storage thread on a real uv loop, with the SQLite engine in a fresh directory for each
 * test: the fixture of test_relay_storage.c and test_relay_storage_log.c.
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
