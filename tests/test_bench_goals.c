/* SPDX-License-Identifier: MIT */
/*
 * `cairn-bench handshakes` and `cairn-bench loaded` (issue 18's handshake and many-connections
 * goals) end to end with --json and tiny counts: the report's shape, every figure above zero,
 * the ratio to the floor computed from the printed figures, the senders paced at half their
 * measured peak, the low-rate receivers offered what was asked, and no error. It checks no
 * rate against a goal: a benchmark never passes or fails on timing.
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

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "bench_cmd.h"

static cJSON *bench_json(const char *args)
{
	char *text = run_bench(args);
	assert_non_null(text);
	cJSON *root = cJSON_Parse(text);
	free(text);
	assert_non_null(root);
	return root;
}

static void test_handshakes_report(void **state)
{
	(void)state;
	/* Three rounds of 200: enough CPU per round for /proc's 10 ms ticks to see. */
	cJSON *root = bench_json("handshakes --quick --connections 600");
	double x = num(root, "x25519_ns"), fl = num(root, "floor_us");
	assert_true(x > 0);
	assert_true(fl > 3 * x / 1e3 - 0.01 && fl < 3 * x / 1e3 + 0.01);
	double hs = num(root, "relay_cpu_us_per_handshake");
	assert_true(hs > 0);
	assert_true(num(root, "handshakes_per_s") > 0);
	double ratio = num(root, "ratio_to_floor");
	assert_true(ratio > hs / fl - 0.001 && ratio < hs / fl + 0.001);
	assert_true(num(root, "with_subscribe_per_s") > 0);
	assert_true(num(root, "with_subscribe_relay_cpu_us") >= hs);
	const cJSON *rounds = cJSON_GetObjectItemCaseSensitive(root, "rounds");
	assert_int_equal(cJSON_GetArraySize(rounds), 3);
	for (int i = 0; i < 3; i++) {
		const cJSON *r = cJSON_GetArrayItem(rounds, i);
		assert_true(num(r, "connections") == 200);
		assert_true(num(r, "handshakes_per_s") > 0);
		assert_true(num(r, "with_subscribe_per_s") > 0);
	}
	cJSON_Delete(root);
}

static void test_loaded_report(void **state)
{
	(void)state;
	cJSON *root = bench_json("loaded --quick --receivers 200 --receiver-rate 2 --duration 1");
	assert_true(num(root, "receivers") == 200);
	const cJSON *peak = cJSON_GetObjectItemCaseSensitive(root, "peak");
	const cJSON *senders = cJSON_GetObjectItemCaseSensitive(root, "senders_at_50");
	const cJSON *receivers = cJSON_GetObjectItemCaseSensitive(root, "receivers_at_50");
	double top = num(peak, "msgs_per_s");
	assert_true(top > 0);
	assert_true(num(senders, "offered_msgs_per_s") == top / 2);
	assert_true(num(receivers, "offered_msgs_per_s") == 400);
	const cJSON *both[] = {senders, receivers};
	for (int i = 0; i < 2; i++) {
		assert_true(num(both[i], "msgs_per_s") > 0);
		assert_true(num(both[i], "p50_us") > 0);
		assert_true(num(both[i], "p99_us") >= num(both[i], "p50_us"));
		assert_true(num(both[i], "p999_us") >= num(both[i], "p99_us"));
		assert_true(num(both[i], "errors") == 0);
	}
	cJSON_Delete(root);
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	return rmdir(tmpdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_handshakes_report),
	    cmocka_unit_test(test_loaded_report),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
