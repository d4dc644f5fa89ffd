/* SPDX-License-Identifier: MIT */
/*
 * `cairn-bench durable --store postgresql --json` end to end, on a few thousand envelopes: both
 * engines run every durable shape without an error, the PostgreSQL side is really the relay
 * writing to PostgreSQL (each 1 KiB envelope puts at least its size into the WAL, and the
 * server's processes use CPU), in both rounds (the first on a fresh relay, then the steady one),
 * the ratio is there, and the scratch cluster is gone afterwards.
 * It checks no rate: a benchmark never passes or fails on timing.
 */
#define _GNU_SOURCE
#include <glob.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "bench_cmd.h"

/* RUN's round whose names end in SUFFIX ("" or "_first"). */
static void check_round(const cJSON *run, const char *suffix)
{
	char key[64];
	snprintf(key, sizeof(key), "sqlite%s", suffix);
	const cJSON *lite = cJSON_GetObjectItemCaseSensitive(run, key);
	snprintf(key, sizeof(key), "postgresql%s", suffix);
	const cJSON *pg = cJSON_GetObjectItemCaseSensitive(run, key);
	assert_non_null(lite);
	assert_non_null(pg);
	assert_true(num(lite, "errors") == 0);
	assert_true(num(pg, "errors") == 0);
	assert_true(num(lite, "acked_msgs_per_s") > 0 && num(pg, "acked_msgs_per_s") > 0);
	assert_true(num(lite, "drain_msgs_per_s") > 0 && num(pg, "drain_msgs_per_s") > 0);
	/* The envelopes went to PostgreSQL: at least their 1 KiB each into its WAL, and its
	 * processes worked; SQLite's side has no database process. */
	assert_true(num(pg, "send_wal_bytes_per_msg") >= 1024);
	assert_true(num(pg, "drain_wal_bytes_per_msg") > 0);
	assert_true(num(pg, "send_db_cpu_us_per_msg") > 0);
	assert_true(num(lite, "send_wal_bytes_per_msg") == 0);
	snprintf(key, sizeof(key), "pg_over_sqlite_acked%s", suffix);
	double ratio = num(run, key);
	assert_true(ratio > 0);
	/* PG's over SQLite's (as printed in JSON: to within a rounding) */
	double want = num(pg, "acked_msgs_per_s") / num(lite, "acked_msgs_per_s");
	assert_true(ratio - want < 1e-9 * want && want - ratio < 1e-9 * want);
	snprintf(key, sizeof(key), "pg_over_sqlite_drained%s", suffix);
	assert_true(num(run, key) > 0);
}

static void test_both_engines_side_by_side(void **state)
{
	(void)state;
	if (access(CAIRN_PG_BINDIR "/postgres", X_OK) != 0)
		skip(); /* as support/pgproc does where PostgreSQL is not installed */
	/* PostgreSQL runs as nobody when we are root: it must reach its directory in ours. */
	assert_non_null(mkdtemp(tmpdir));
	assert_int_equal(chmod(tmpdir, 0711), 0);
	assert_int_equal(scratch_dirs("cairn-bench-pg-"), 0);
	char *text = run_bench("durable --store postgresql --durable-count 2000");
	assert_non_null(text);
	cJSON *root = cJSON_Parse(text);
	free(text);
	assert_non_null(root);
	/* Today's keys stay: SQLite's runs are `durable` as without --store. */
	const cJSON *durable = cJSON_GetObjectItemCaseSensitive(root, "durable");
	assert_true(cJSON_IsArray(durable));
	assert_int_equal(cJSON_GetArraySize(durable), 2);

	const cJSON *stores = cJSON_GetObjectItemCaseSensitive(root, "durable_stores");
	assert_non_null(stores);
	const cJSON *version = cJSON_GetObjectItemCaseSensitive(stores, "postgresql_version");
	assert_true(cJSON_IsString(version) && strncmp(version->valuestring, "15", 2) == 0);
	const cJSON *runs = cJSON_GetObjectItemCaseSensitive(stores, "runs");
	assert_true(cJSON_IsArray(runs));
	assert_int_equal(cJSON_GetArraySize(runs), 2);
	const double senders[] = {1, 4};
	for (int i = 0; i < 2; i++) {
		const cJSON *run = cJSON_GetArrayItem(runs, i);
		assert_true(num(run, "senders") == senders[i]);
		assert_true(num(run, "envelopes") == 2000);
		/* Both rounds: the steady one under the plain names, the first one after it. */
		check_round(run, "");
		check_round(run, "_first");
	}
	cJSON_Delete(root);
	/* The cluster was made in a scratch directory and removed. */
	assert_int_equal(scratch_dirs("cairn-bench-pg-"), 0);
	assert_int_equal(rmdir(tmpdir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_both_engines_side_by_side),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
