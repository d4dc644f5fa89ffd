/* SPDX-License-Identifier: MIT */
/*
 * feed-cost: what the change feed adds to a commit on PostgreSQL (store.h's node): the same
 * batches committed by a node-0 store and by a node-1 store (which also writes the feed row
 * and the NOTIFY), each in a database of its own on one scratch cluster (tests/support/
 * pgproc.h), in alternating rounds so that the machine's noise falls on both alike. Prints
 * each side's median and 99th percentile commit latency. Not a test.
 *
 *   feed-cost BATCH BATCHES ROUNDS
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pgproc.h"
#include "store.h"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Commits BATCHES batches of BATCH envelope puts (1 KiB) from id FIRST; latencies into LAT. */
static int run(void *store, size_t batch, size_t batches, uint64_t first, double *lat)
{
	static uint8_t body[1024];
	struct store_op *ops = calloc(batch, sizeof(*ops));
	if (ops == NULL)
		return -1;
	for (size_t b = 0; b < batches; b++) {
		for (size_t i = 0; i < batch; i++) {
			uint64_t id = first + b * batch + i;
			ops[i] = (struct store_op){.kind = STORE_ENVELOPE_PUT,
			                           .envelope_id = id,
			                           .mailbox_id = 1 + id % 1000,
			                           .body = body,
			                           .len = sizeof(body),
			                           .stored_at = 1700000000};
		}
		double t = now_ms();
		if (store_pg.commit(store, ops, batch) != 0) {
			free(ops);
			return -1;
		}
		lat[b] = now_ms() - t;
	}
	free(ops);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 4)
		return fprintf(stderr, "usage: feed-cost BATCH BATCHES ROUNDS\n"), 2;
	size_t batch = strtoul(argv[1], NULL, 10), batches = strtoul(argv[2], NULL, 10);
	size_t rounds = strtoul(argv[3], NULL, 10);
	if (batch == 0 || batches == 0 || rounds == 0)
		return 2;
	char dir[] = "/tmp/cairn-feedcost-XXXXXX", pgdir[64];
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(pgdir, sizeof(pgdir), "%s/pg", dir);
	struct pgproc pg;
	if (pgproc_init(&pg, pgdir, loopback_free_port()) != 0) {
		rmdir(dir);
		return 1;
	}
	int rc = 1;
	void *store[2] = {NULL, NULL};
	double *lat[2] = {calloc(batches * rounds, sizeof(double)),
	                  calloc(batches * rounds, sizeof(double))};
	for (int node = 0; node < 2; node++) {
		char sql[64], conninfo[400];
		snprintf(sql, sizeof(sql), "CREATE DATABASE n%d", node);
		snprintf(conninfo, sizeof(conninfo), "%s dbname=n%d", pg.conninfo, node);
		struct store_params params = {.connection = conninfo, .node = (uint8_t)node};
		if (pgproc_sql(&pg, sql, NULL, 0) != 0 || store_pg.open(&params, &store[node]) != 0)
			goto out;
	}
	for (size_t r = 0; r < rounds; r++)
		for (int node = 0; node < 2; node++)
			if (run(store[node], batch, batches, 1 + r * batch * batches,
			        lat[node] + r * batches) != 0)
				goto out;
	for (int node = 0; node < 2; node++) {
		size_t n = batches * rounds;
		qsort(lat[node], n, sizeof(double), cmp);
		printf("node %d, batch %zu, %zu commits: median %.3f ms, p99 %.3f ms\n", node,
		       batch, n, lat[node][n / 2], lat[node][n * 99 / 100]);
	}
	rc = 0;
out:
	for (int node = 0; node < 2; node++)
		if (store[node] != NULL)
			store_pg.close(store[node]);
	free(lat[0]);
	free(lat[1]);
	pgproc_destroy(&pg);
	rmdir(dir);
	return rc;
}
