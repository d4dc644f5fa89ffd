/* SPDX-License-Identifier: MIT */
/*
 * `cairn-bench durable --store postgresql`: the durable scenario's shapes with the relay on
 * SQLite (its default, the figures of `durable` as always) and on PostgreSQL (the [store]
 * engine, a cluster the bench makes from scratch and removes), one shape after the other on
 * both, so both meet the same machine. Beside each: the relay's CPU and, for PostgreSQL, the
 * database's CPU (every server process) and WAL bytes per envelope, and the ratio PG/SQLite.
 *
 * Each engine runs each shape twice on one relay: a first round on a fresh relay (PostgreSQL:
 * a fresh database and a fresh session), then a steady round on the same relay once the first
 * round's envelopes are drained (PostgreSQL: then VACUUM and CHECKPOINT, what autovacuum and
 * the checkpointer do on a server that has run a while). A fresh session's backend faults on
 * the first touch of each shared buffer, which a relay's session does only once in its life;
 * on this VM those faults were most of the database's CPU per envelope (docs/SCALING.md 3).
 */
#ifndef CAIRN_BENCH_PGDURABLE_H
#define CAIRN_BENCH_PGDURABLE_H

#include <stdbool.h>
#include <stddef.h>

#include "bench.h"

enum { STORE_SQLITE, STORE_PG, STORE_ENGINES };
enum { ROUND_FIRST, ROUND_STEADY, STORE_ROUNDS };

struct store_side {
	struct durable_result d;
	double send_db_cpu, drain_db_cpu; /* PostgreSQL's processes, cores (0 for SQLite) */
	double send_wal, drain_wal;       /* WAL bytes per envelope (0 for SQLite) */
	bool have;
};

struct store_results {
	struct store_side side[BENCH_MAX_SHAPES][STORE_ROUNDS][STORE_ENGINES];
	size_t len;
	char pg_version[64];
};

/* Runs both engines (filling R->durable with SQLite's runs as `durable` does, and R->stores).
 * Returns 0, or -1 if a run failed or PostgreSQL could not be started. */
int pgdurable_scenario(const struct bench_opts *o, struct bench_results *r);
void pgdurable_table(const struct bench_opts *o, const struct store_results *s);
struct cJSON;
/* Adds "durable_stores" to ROOT. */
void pgdurable_json(struct cJSON *root, const struct store_results *s);

/* The relay's [limits] lines for a benchmark (peer_cairn.c) into OUT, which holds
 * CAIRN_BENCH_LIMITS_MAX; returns how many. */
#define CAIRN_BENCH_LIMITS_MAX 32
size_t cairn_bench_limits(const struct bench_opts *o, const char **out);

#endif
