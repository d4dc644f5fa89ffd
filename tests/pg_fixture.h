/* SPDX-License-Identifier: MIT */
/*
 * One PostgreSQL cluster per test process (support/pgproc.h), started on first use and
 * stopped at exit, and a fresh database in it for each test: what the store and storage
 * fixtures use when they are built for the PostgreSQL engine (CAIRN_TEST_PG), and what the
 * engine's own tests use.
 */
#ifndef CAIRN_TESTS_PG_FIXTURE_H
#define CAIRN_TESTS_PG_FIXTURE_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "pgproc.h"

static struct {
	struct pgproc pg;
	char dir[64];
	int started;
	int databases;
	pid_t owner; /* the process that started it: a forked child's exit leaves it alone */
} pg_cluster;

static inline void pg_cluster_stop(void)
{
	if (getpid() != pg_cluster.owner)
		return;
	pgproc_destroy(&pg_cluster.pg);
	rmdir(pg_cluster.dir);
}

/* The cluster, started on first use (stopped at exit). NULL if it cannot start. */
static inline struct pgproc *pg_cluster_get(void)
{
	if (pg_cluster.started)
		return &pg_cluster.pg;
	char dir[96];
	strcpy(pg_cluster.dir, "/tmp/cairn-pgtest-XXXXXX");
	if (mkdtemp(pg_cluster.dir) == NULL)
		return NULL;
	snprintf(dir, sizeof(dir), "%s/pg", pg_cluster.dir);
	if (pgproc_init(&pg_cluster.pg, dir, loopback_free_port()) != 0) {
		rmdir(pg_cluster.dir);
		return NULL;
	}
	pg_cluster.started = 1;
	pg_cluster.owner = getpid();
	atexit(pg_cluster_stop);
	return &pg_cluster.pg;
}

/* Starts the cluster again after pgproc_kill. Right after a SIGKILL its dying processes may
 * still hold the shared memory a new postmaster checks for, so it is tried a few times.
 * Returns 0 or -1. */
static inline int pg_cluster_restart(void)
{
	for (int i = 0; i < 20; i++) {
		if (pgproc_start(&pg_cluster.pg) == 0)
			return 0;
		struct timespec pause = {.tv_nsec = 250 * 1000 * 1000};
		nanosleep(&pause, NULL);
	}
	return -1;
}

/* Makes a new, empty database and writes its libpq connection string into OUT. Returns 0 or
 * -1. */
static inline int pg_fresh_database(char *out, size_t cap)
{
	struct pgproc *pg = pg_cluster_get();
	if (pg == NULL)
		return -1;
	char sql[64];
	int n = ++pg_cluster.databases;
	snprintf(sql, sizeof(sql), "CREATE DATABASE t%d", n);
	if (pgproc_sql(pg, sql, NULL, 0) != 0)
		return -1;
	/* A later keyword wins over the cluster's dbname=cairn. */
	int len = snprintf(out, cap, "%s dbname=t%d", pg->conninfo, n);
	return len > 0 && (size_t)len < cap ? 0 : -1;
}

/* Runs SQL on the database CONNINFO names, and copies the first row's first column (text)
 * into OUT (may be NULL). Returns 0, or -1 if it failed. */
static inline int pg_exec(const char *conninfo, const char *sql, char *out, size_t cap)
{
	PGconn *c = PQconnectdb(conninfo);
	int rc = -1;
	if (PQstatus(c) == CONNECTION_OK) {
		PGresult *r = PQexec(c, sql);
		ExecStatusType s = PQresultStatus(r);
		if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
			rc = 0;
			if (out != NULL && cap > 0)
				snprintf(out, cap, "%s",
				         PQntuples(r) > 0 && PQnfields(r) > 0 ? PQgetvalue(r, 0, 0)
				                                              : "");
		}
		PQclear(r);
	}
	PQfinish(c);
	return rc;
}

#endif
