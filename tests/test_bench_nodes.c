/* SPDX-License-Identifier: MIT */
/*
 * `cairn-bench nodes --quick --json` end to end: two relay nodes on a fresh PostgreSQL, five
 * runs (the cross-node peak, then cross-node and same-node at 50% of it and at 200/s), each
 * with deliveries, latencies and CPU figures above zero and no error, and the scratch cluster
 * gone afterwards. It checks no rate: a benchmark never passes or fails on timing. Without
 * the change feed the cross-node owners receive nothing and the bench fails.
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "bench_cmd.h"

static void test_nodes_report(void **state)
{
	(void)state;
	if (access(CAIRN_PG_BINDIR "/postgres", X_OK) != 0)
		skip();
	assert_non_null(mkdtemp(tmpdir));
	assert_int_equal(chmod(tmpdir, 0711), 0); /* PostgreSQL runs as nobody under root */
	char *text = run_bench("nodes --quick --duration 1");
	assert_non_null(text);
	cJSON *root = cJSON_Parse(text);
	free(text);
	assert_non_null(root);
	const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(root, "nodes");
	assert_non_null(nodes);
	const cJSON *version = cJSON_GetObjectItemCaseSensitive(nodes, "postgresql_version");
	assert_true(cJSON_IsString(version) && strncmp(version->valuestring, "15", 2) == 0);
	assert_true(num(nodes, "senders") > 0);
	const cJSON *runs = cJSON_GetObjectItemCaseSensitive(nodes, "runs");
	assert_true(cJSON_IsArray(runs));
	assert_int_equal(cJSON_GetArraySize(runs), 5);
	static const struct {
		const char *rate;
		double owner;
	} want[5] = {{"peak", 2}, {"50%", 2}, {"50%", 1}, {"low", 2}, {"low", 1}};
	double peak = 0;
	for (int i = 0; i < 5; i++) {
		const cJSON *run = cJSON_GetArrayItem(runs, i);
		const cJSON *rate = cJSON_GetObjectItemCaseSensitive(run, "rate");
		assert_true(cJSON_IsString(rate));
		assert_string_equal(rate->valuestring, want[i].rate);
		assert_true(num(run, "owner_node") == want[i].owner);
		assert_true(num(run, "delivered_msgs_per_s") > 0);
		assert_true(num(run, "p50_us") > 0);
		assert_true(num(run, "p99_us") >= num(run, "p50_us"));
		assert_true(num(run, "p999_us") >= num(run, "p99_us"));
		assert_true(num(run, "node1_cpu_us_per_msg") > 0); /* the senders' node */
		/* Cross-node, node 2 serves the owners and every envelope goes through the
		 * database; same-node, an envelope acknowledged within its batch may never be
		 * written (its put and delete meet in one commit). */
		if (want[i].owner == 2) {
			assert_true(num(run, "node2_cpu_us_per_msg") > 0);
			assert_true(num(run, "db_cpu_us_per_msg") > 0);
		}
		assert_true(num(run, "errors") == 0);
		if (i == 0)
			peak = num(run, "delivered_msgs_per_s");
		else if (i < 3) /* offered at half the peak */
			assert_true(num(run, "offered_msgs_per_s") == peak / 2);
		else
			assert_true(num(run, "offered_msgs_per_s") == 200);
	}
	cJSON_Delete(root);
	assert_int_equal(scratch_dirs("cairn-bench-nodes-"), 0);
	assert_int_equal(rmdir(tmpdir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_nodes_report),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
