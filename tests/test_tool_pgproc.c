/* SPDX-License-Identifier: MIT */
/*
 * The PostgreSQL harness (support/pgproc.h) does what the store engine's tests rely on: a
 * cluster from scratch as an unprivileged user, a synchronous standby that holds every
 * committed row, the primary killed like a dead machine and the standby promoted in its place,
 * and a restart after a kill that loses nothing committed.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pgproc.h"

struct world {
	char dir[64];
	struct pgproc primary, standby;
};

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -1;
	strcpy(w->dir, "/tmp/cairn-pgproc-XXXXXX");
	if (mkdtemp(w->dir) == NULL)
		return -1;
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	pgproc_destroy(&w->standby);
	pgproc_destroy(&w->primary);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", w->dir);
	int rc = system(cmd);
	free(w);
	return rc == 0 ? 0 : -1;
}

static void test_primary_standby_failover(void **state)
{
	struct world *w = *state;
	char dir[128], out[64];
	snprintf(dir, sizeof(dir), "%s/primary", w->dir);
	int rc = pgproc_init(&w->primary, dir, loopback_free_port());
	if (rc == 1)
		skip();
	assert_int_equal(rc, 0);
	assert_int_equal(pgproc_sql(&w->primary, "SHOW fsync", out, sizeof(out)), 0);
	assert_string_equal(out, "on");
	assert_int_equal(pgproc_sql(&w->primary, "SELECT current_user", out, sizeof(out)), 0);
	assert_string_equal(out, "cairn");

	snprintf(dir, sizeof(dir), "%s/standby", w->dir);
	assert_int_equal(pgproc_standby(&w->standby, &w->primary, dir, loopback_free_port()), 0);
	assert_int_equal(pgproc_sql(&w->primary,
	                            "CREATE TABLE t (v int); INSERT INTO t SELECT generate_series(1, "
	                            "1000)",
	                            NULL, 0),
	                 0);
	/* Synchronous: the commit returned, so the standby has it (remote_apply is not asked
	 * for, so read until the replay catches up, briefly). */
	for (int i = 0; i < 100; i++) {
		if (pgproc_sql(&w->standby, "SELECT count(*) FROM t", out, sizeof(out)) == 0 &&
		    strcmp(out, "1000") == 0)
			break;
		usleep(50000);
	}
	assert_string_equal(out, "1000");
	/* A standby refuses writes until promoted. */
	assert_int_not_equal(pgproc_sql(&w->standby, "INSERT INTO t VALUES (0)", NULL, 0), 0);

	pgproc_kill(&w->primary);
	assert_int_not_equal(pgproc_sql(&w->primary, "SELECT 1", NULL, 0), 0);
	assert_int_equal(pgproc_promote(&w->standby), 0);
	assert_int_equal(pgproc_sql(&w->standby, "INSERT INTO t VALUES (1001)", NULL, 0), 0);
	assert_int_equal(pgproc_sql(&w->standby, "SELECT count(*) FROM t", out, sizeof(out)), 0);
	assert_string_equal(out, "1001");
}

static void test_restart_after_kill(void **state)
{
	struct world *w = *state;
	char dir[128], out[64];
	snprintf(dir, sizeof(dir), "%s/one", w->dir);
	int rc = pgproc_init(&w->primary, dir, loopback_free_port());
	if (rc == 1)
		skip();
	assert_int_equal(rc, 0);
	assert_int_equal(pgproc_sql(&w->primary, "CREATE TABLE t (v int); INSERT INTO t VALUES (7)",
	                            NULL, 0),
	                 0);
	pgproc_kill(&w->primary);
	assert_int_equal(w->primary.pid, 0);
	assert_int_equal(pgproc_start(&w->primary), 0);
	assert_int_equal(pgproc_sql(&w->primary, "SELECT sum(v) FROM t", out, sizeof(out)), 0);
	assert_string_equal(out, "7");
	pgproc_stop(&w->primary);
	assert_int_equal(w->primary.pid, 0);
	assert_int_not_equal(pgproc_sql(&w->primary, "SELECT 1", NULL, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_primary_standby_failover, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_restart_after_kill, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
