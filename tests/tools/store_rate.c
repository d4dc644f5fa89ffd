/* SPDX-License-Identifier: MIT */
/*
 * store-rate: the durable commit rate of one storage engine on its own (store.h), for the
 * figures in docs and notes: BATCHES batches of BATCH envelope inserts (1 KiB bodies, spread
 * over MAILBOXES mailboxes, 1,000 unless given), then the same envelopes deleted in batches of the
 * same size, each batch one commit as the relay's storage thread makes them. Not a test. Beside the
 * rates, the CPU per envelope of this process (what the relay's storage thread would spend) and,
 * for PostgreSQL on this machine, of the engine's backend (its /proc/PID/schedstat), with the
 * backend's minor page faults per envelope (/proc/PID/stat).
 *
 *   store-rate sqlite DIR BATCH BATCHES [MAILBOXES]
 *   store-rate postgresql CONNINFO BATCH BATCHES [MAILBOXES]
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/resource.h>

#include "pg_engine.h"
#include "store.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* This process's CPU time in seconds. */
static double self_cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* The CPU time in seconds of PostgreSQL store STORE's backend, or -1 when it cannot be read
 * (SQLite, or a server on another machine). */
static double backend_cpu_s(bool pg, void *store)
{
	const struct store_pg *st = store;
	if (!pg || st->conn == NULL)
		return -1;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/schedstat", PQbackendPID(st->conn));
	FILE *f = fopen(path, "r");
	unsigned long long ns;
	bool ok = f != NULL && fscanf(f, "%llu", &ns) == 1;
	if (f != NULL)
		fclose(f);
	return ok ? (double)ns / 1e9 : -1;
}

/* The minor page faults of PostgreSQL store STORE's backend so far (/proc/PID/stat's tenth
 * field), or -1 when they cannot be read. */
static double backend_faults(bool pg, void *store)
{
	const struct store_pg *st = store;
	if (!pg || st->conn == NULL)
		return -1;
	char path[64], stat[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", PQbackendPID(st->conn));
	FILE *f = fopen(path, "r");
	size_t got = f != NULL ? fread(stat, 1, sizeof(stat) - 1, f) : 0;
	if (f != NULL)
		fclose(f);
	stat[got] = '\0';
	/* After the command's closing parenthesis: state, ppid, pgrp, session, tty_nr, tpgid,
	 * flags, then minflt. */
	const char *at = strrchr(stat, ')');
	unsigned long long minflt;
	if (at == NULL || sscanf(at + 1, " %*c %*d %*d %*d %*d %*d %*u %llu", &minflt) != 1)
		return -1;
	return (double)minflt;
}

int main(int argc, char **argv)
{
	if (argc != 5 && argc != 6) {
		fprintf(stderr, "usage: store-rate sqlite|postgresql DIR|CONNINFO BATCH BATCHES "
		                "[MAILBOXES]\n");
		return 2;
	}
	bool pg = strcmp(argv[1], "postgresql") == 0;
	const struct store_engine *e = pg ? &store_pg : &store_sqlite;
	size_t batch = strtoul(argv[3], NULL, 10), batches = strtoul(argv[4], NULL, 10);
	size_t mailboxes = argc == 6 ? strtoul(argv[5], NULL, 10) : 1000;
	if (batch == 0 || batches == 0 || mailboxes == 0)
		return 2;
	char why[256] = "";
	struct store_params params = {
	    .dir = argv[2], .connection = argv[2], .error = why, .error_cap = sizeof(why)};
	void *store;
	int rc = e->open(&params, &store);
	if (rc != 0) {
		fprintf(stderr, "open: %d %s\n", rc, why);
		return 1;
	}
	static uint8_t body[1024];
	memset(body, 0x5a, sizeof(body));
	struct store_op *ops = calloc(batch, sizeof(*ops));
	if (ops == NULL)
		return 1;
	/* Above anything a previous run left. */
	uint64_t first = (uint64_t)time(NULL) << 20;
	double t0 = now_s(), c0 = self_cpu_s(), b0 = backend_cpu_s(pg, store);
	double f0 = backend_faults(pg, store);
	for (size_t b = 0; b < batches; b++) {
		for (size_t i = 0; i < batch; i++) {
			uint64_t id = first + b * batch + i;
			ops[i] = (struct store_op){.kind = STORE_ENVELOPE_PUT,
			                           .envelope_id = id,
			                           .mailbox_id = 1 + id % mailboxes,
			                           .body = body,
			                           .len = sizeof(body),
			                           .stored_at = 1700000000};
		}
		if ((rc = e->commit(store, ops, batch)) != 0) {
			fprintf(stderr, "commit: %d\n", rc);
			return 1;
		}
	}
	double t1 = now_s(), c1 = self_cpu_s(), b1 = backend_cpu_s(pg, store);
	double f1 = backend_faults(pg, store);
	for (size_t b = 0; b < batches; b++) {
		for (size_t i = 0; i < batch; i++)
			ops[i] =
			    (struct store_op){.kind = STORE_ENVELOPE_DELETE,
			                      .envelope_id = first + b * batch + i,
			                      .mailbox_id = 1 + (first + b * batch + i) % mailboxes};
		if ((rc = e->commit(store, ops, batch)) != 0) {
			fprintf(stderr, "commit: %d\n", rc);
			return 1;
		}
	}
	double t2 = now_s();
	double n = (double)(batch * batches);
	printf("%s batch %zu: insert %.0f envelopes/s (%.2f ms/commit), delete %.0f/s (%.2f "
	       "ms/commit)\n",
	       e->name, batch, n / (t1 - t0), 1e3 * (t1 - t0) / (double)batches, n / (t2 - t1),
	       1e3 * (t2 - t1) / (double)batches);
	printf("insert CPU per envelope: this process %.2f us", 1e6 * (c1 - c0) / n);
	if (b0 >= 0 && b1 >= 0)
		printf(", the backend %.2f us", 1e6 * (b1 - b0) / n);
	if (f0 >= 0 && f1 >= 0)
		printf(" and %.2f page faults", (f1 - f0) / n);
	printf("\n");
	e->close(store);
	free(ops);
	return 0;
}
