/* SPDX-License-Identifier: MIT */
/*
 * What cairn-bench durable --store postgresql reads from a PostgreSQL server (bench/pgsample.h)
 * against a real server: the CPU of a backend counts while it runs and stays counted once it
 * has exited (through the postmaster's reaped children), and the WAL position advances by at
 * least the bytes a transaction wrote.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "pgproc.h"
#include "pgsample.h"

struct world {
	char dir[64];
	struct pgproc pg;
};

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -1;
	strcpy(w->dir, "/tmp/cairn-pgsample-XXXXXX");
	if (mkdtemp(w->dir) == NULL)
		return -1;
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	pgproc_destroy(&w->pg);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", w->dir);
	int rc = system(cmd);
	free(w);
	return rc == 0 ? 0 : -1;
}

/* Starts the server in W's directory; skips the test where PostgreSQL is not installed. */
static void start(struct world *w)
{
	char dir[128];
	snprintf(dir, sizeof(dir), "%s/pg", w->dir);
	int rc = pgproc_init(&w->pg, dir, loopback_free_port());
	if (rc == 1)
		skip();
	assert_int_equal(rc, 0);
}

/* A backend busy for 4 s of wall time, from a child process (its psql waits for it). */
static pid_t busy_backend(const struct pgproc *p)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(
		    pgproc_sql(p,
		               "DO $$ BEGIN WHILE clock_timestamp() < now() + interval '4 s' LOOP "
		               "END LOOP; END $$",
		               NULL, 0) == 0
		        ? 0
		        : 1);
	return pid;
}

static void test_cpu_of_live_and_exited_backends(void **state)
{
	struct world *w = *state;
	start(w);
	double before = pgsample_cpu_s(w->pg.pid);
	assert_true(before >= 0);
	pid_t child = busy_backend(&w->pg);
	sleep(3);
	/* The backend is still running: only the live process can account for this. */
	double during = pgsample_cpu_s(w->pg.pid);
	assert_true(during - before >= 0.3);
	int status;
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* Gone and reaped by the postmaster: its time stays counted, and more of it. */
	usleep(200000);
	double after = pgsample_cpu_s(w->pg.pid);
	assert_true(after >= during);
	assert_true(after - before >= 0.5);
	/* Not a postmaster's: nothing to read. */
	assert_true(pgsample_cpu_s(0) < 0);
}

static void test_wal_advances_by_what_is_written(void **state)
{
	struct world *w = *state;
	start(w);
	uint64_t before = 0, after = 0;
	assert_int_equal(pgsample_wal(&w->pg, &before), 0);
	assert_true(before > 0);
	/* 4 MB of rows that do not compress (toast compresses repeats). */
	assert_int_equal(
	    pgproc_sql(&w->pg,
	               "CREATE TABLE t (v text); INSERT INTO t SELECT "
	               "string_agg(md5(i::text || '.' || j::text), '') FROM "
	               "generate_series(1, 4000) i, generate_series(1, 32) j GROUP BY i",
	               NULL, 0),
	    0);
	assert_int_equal(pgsample_wal(&w->pg, &after), 0);
	assert_true(after - before >= 4000u * 1024u);
	assert_true(after - before < 64u * 1024u * 1024u);
	pgproc_stop(&w->pg);
	assert_int_not_equal(pgsample_wal(&w->pg, &after), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_cpu_of_live_and_exited_backends, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wal_advances_by_what_is_written, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
