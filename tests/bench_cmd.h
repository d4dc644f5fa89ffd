/* SPDX-License-Identifier: MIT */
/*
 * What the tests that run cairn-bench end to end share (test_bench_durable_store,
 * test_bench_nodes, test_bench_goals): a TMPDIR of the run's own, the bench's scratch directories
 * in it, the bench run with --json, and numbers read from its report.
 */
#ifndef CAIRN_TEST_BENCH_CMD_H
#define CAIRN_TEST_BENCH_CMD_H

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cjson/cJSON.h>

/* The bench's TMPDIR: this run's own, so another run beside it (make test runs two builds
 * side by side) cannot make or take a scratch directory of the bench's in it. */
static char tmpdir[] = "/tmp/cairn-benchtest-XXXXXX";

/* How many scratch directories of the bench named PREFIX* exist in TMPDIR now. */
static inline size_t scratch_dirs(const char *prefix)
{
	char pattern[96];
	snprintf(pattern, sizeof(pattern), "%s/%s*", tmpdir, prefix);
	glob_t g;
	size_t n = glob(pattern, GLOB_ONLYDIR, NULL, &g) == 0 ? g.gl_pathc : 0;
	globfree(&g);
	return n;
}

/* Runs the bench with ARGS (and --json) in TMPDIR and returns its stdout (malloc'd), or NULL
 * if it failed. */
static inline char *run_bench(const char *args)
{
	char cmd[384];
	snprintf(cmd, sizeof(cmd), "TMPDIR=%s " CAIRN_BENCH_BIN " %s --json 2>/dev/null", tmpdir,
	         args);
	FILE *p = popen(cmd, "r");
	if (p == NULL)
		return NULL;
	size_t cap = 1 << 16, len = 0;
	char *out = malloc(cap);
	size_t n;
	while (out != NULL && (n = fread(out + len, 1, cap - 1 - len, p)) > 0)
		len += n;
	int status = pclose(p);
	if (out == NULL || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		free(out);
		return NULL;
	}
	out[len] = '\0';
	return out;
}

/* The number KEY of O (the test fails if it is missing or not a number). */
static inline double num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	assert_non_null(v);
	assert_true(cJSON_IsNumber(v));
	return v->valuedouble;
}

#endif
