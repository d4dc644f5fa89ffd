/* SPDX-License-Identifier: MIT */
/* `cairn-bench durable --store postgresql` (see pgdurable.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fleet.h"
#include "pgdurable.h"
#include "pgsample.h"
#include "relayctl.h"

/* The database's readings at fleet_durable's three phases. */
struct probe {
	const struct pgproc *pg; /* NULL for SQLite: nothing to read */
	double cpu[3];
	uint64_t wal[3];
	bool failed;
};

static void on_phase(void *ctx, int phase)
{
	struct probe *p = ctx;
	if (p->pg == NULL || phase < 0 || phase > 2)
		return;
	/* The WAL first: psql's own backend then counts in this phase's CPU, not the next. */
	if (pgsample_wal(p->pg, &p->wal[phase]) != 0)
		p->failed = true;
	p->cpu[phase] = pgsample_cpu_s(p->pg->pid);
	if (p->cpu[phase] < 0)
		p->failed = true;
}

/* One durable round of SHAPE on RELAY (a fleet of fresh mailboxes) into OUT. */
static int run_round(const struct durable_shape *shape, const struct relayctl *relay,
                     const struct pgproc *pg, struct store_side *out)
{
	struct probe probe = {.pg = pg};
	struct fleet *f = fleet_open(&relay->addr, relay->pub, relay->pid, shape->senders,
	                             shape->size, shape->window, false);
	if (f == NULL)
		return -1;
	fleet_on_durable_phase(f, on_phase, &probe);
	out->d.shape = *shape;
	int rc = fleet_durable(f, shape->count, &out->d);
	fleet_close(f);
	if (rc != 0 || probe.failed)
		return -1;
	if (pg != NULL) {
		double sent = out->d.send_rate * out->d.send_s;
		out->send_db_cpu = (probe.cpu[1] - probe.cpu[0]) / out->d.send_s;
		out->drain_db_cpu = (probe.cpu[2] - probe.cpu[1]) / out->d.drain_s;
		out->send_wal = (double)(probe.wal[1] - probe.wal[0]) / sent;
		out->drain_wal = (double)(probe.wal[2] - probe.wal[1]) / sent;
	}
	out->have = true;
	return 0;
}

/* Both rounds of SHAPE on a fresh relay (pgdurable.h): on SQLite when PG is NULL, else on PG's
 * database DBNAME (fresh too). OUT holds the rounds, in order. */
static int run_one(const struct bench_opts *o, const struct durable_shape *shape,
                   const struct pgproc *pg, const char *dbname,
                   struct store_side *out[STORE_ROUNDS])
{
	const char *limits[CAIRN_BENCH_LIMITS_MAX];
	size_t n = cairn_bench_limits(o, limits);
	char store[512];
	if (pg != NULL)
		snprintf(store, sizeof(store), "engine = postgresql\nconnection = %s dbname=%s",
		         pg->conninfo, dbname);
	struct relayctl relay;
	if (relayctl_start_store(&relay, o->relay_bin, limits, n, pg != NULL ? store : NULL) != 0) {
		bench_note("could not start %s%s", o->relay_bin,
		           pg != NULL ? " on PostgreSQL (does it have the postgresql engine?)"
		                      : "");
		return -1;
	}
	int rc = run_round(shape, &relay, pg, out[ROUND_FIRST]);
	/* The first round's dead rows made free for the next inserts, and a checkpoint, so the
	 * steady round pays its own full-page writes as the first did. */
	if (rc == 0 && pg != NULL &&
	    (pgproc_sql_in(pg, dbname, "VACUUM", NULL, 0) != 0 ||
	     pgproc_sql(pg, "CHECKPOINT", NULL, 0) != 0))
		rc = -1;
	if (rc == 0)
		rc = run_round(shape, &relay, pg, out[ROUND_STEADY]);
	relayctl_stop(&relay);
	return rc;
}

/* Both engines for every shape of `durable`, SQLite first. */
static int run_shapes(const struct bench_opts *o, struct pgproc *pg, struct bench_results *r)
{
	static const uint32_t senders[] = {1, 4};
	struct store_results *s = r->stores;
	for (size_t i = 0; i < sizeof(senders) / sizeof(senders[0]); i++) {
		struct durable_shape shape = {.senders = senders[i],
		                              .size = 1024,
		                              .count = o->durable_count,
		                              .window = o->durable_window};
		struct store_side(*side)[STORE_ENGINES] = s->side[s->len];
		bench_note("durable: %u sender(s), %llu envelopes of %u bytes, on SQLite, twice",
		           (unsigned)shape.senders, (unsigned long long)shape.count,
		           (unsigned)shape.size);
		if (run_one(o, &shape, NULL, NULL,
		            (struct store_side *[]){&side[ROUND_FIRST][STORE_SQLITE],
		                                    &side[ROUND_STEADY][STORE_SQLITE]}) != 0)
			return -1;
		/* `durable`'s figures are a fresh relay's, as without --store. */
		r->durable[r->durable_len++] = side[ROUND_FIRST][STORE_SQLITE].d;
		char db[32], sql[64];
		snprintf(db, sizeof(db), "bench_%zu", s->len);
		snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
		/* A checkpoint first, so each run starts from the same state and pays its own
		 * full-page writes. */
		if (pgproc_sql(pg, sql, NULL, 0) != 0 || pgproc_sql(pg, "CHECKPOINT", NULL, 0) != 0)
			return -1;
		bench_note("durable: the same on PostgreSQL");
		s->len++;
		if (run_one(o, &shape, pg, db,
		            (struct store_side *[]){&side[ROUND_FIRST][STORE_PG],
		                                    &side[ROUND_STEADY][STORE_PG]}) != 0)
			return -1;
	}
	return 0;
}

int pgdurable_scenario(const struct bench_opts *o, struct bench_results *r)
{
	r->stores = calloc(1, sizeof(*r->stores));
	if (r->stores == NULL)
		return -1;
	/* Under $TMPDIR when set (a test gives each run its own), else /tmp. */
	const char *tmp = getenv("TMPDIR");
	char dir[160], pgdir[200];
	snprintf(dir, sizeof(dir), "%s/cairn-bench-pg-XXXXXX",
	         tmp != NULL && tmp[0] != '\0' && strlen(tmp) < 100 ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(pgdir, sizeof(pgdir), "%s/pg", dir);
	struct pgproc pg;
	bench_note("durable: starting PostgreSQL in %s", pgdir);
	int rc = pgproc_init(&pg, pgdir, loopback_free_port());
	if (rc == 0) {
		char *v = r->stores->pg_version;
		if (pgproc_sql(&pg, "SHOW server_version", v, sizeof(r->stores->pg_version)) != 0)
			v[0] = '\0';
		v[strcspn(v, " ")] = '\0'; /* "15.18 (Debian ...)": the version alone */
		rc = run_shapes(o, &pg, r);
	} else {
		bench_note("durable: PostgreSQL could not be started");
		rc = -1;
	}
	pgproc_destroy(&pg);
	relayctl_remove_dir(dir);
	if (rc != 0)
		bench_note("durable --store postgresql: the run failed");
	return rc;
}

/* Microseconds of CPU per envelope from CORES used at RATE envelopes/s. */
static double us_per(double cores, double rate)
{
	return rate > 0 ? cores / rate * 1e6 : 0;
}

/* A figure of PostgreSQL's side, or "-" for SQLite's (the relay's CPU holds its store). */
static void db_cell(const char *engine, int width, int prec, double v)
{
	if (strcmp(engine, "sqlite") == 0)
		printf(" %*s", width, "-");
	else
		printf(" %*.*f", width, prec, v);
}

static const char *const round_names[STORE_ROUNDS] = {"first", "steady"};

static void side_row(const char *engine, int round, const struct store_side *x)
{
	const struct durable_result *d = &x->d;
	printf("%7u %-10s %-6s %9.0f %7.1f", (unsigned)d->shape.senders, engine, round_names[round],
	       d->send_rate, us_per(d->send_relay_cpu, d->send_rate));
	db_cell(engine, 7, 1, us_per(x->send_db_cpu, d->send_rate));
	db_cell(engine, 10, 0, x->send_wal);
	printf(" %11.0f %7.1f", d->drain_rate, us_per(d->drain_relay_cpu, d->drain_rate));
	db_cell(engine, 7, 1, us_per(x->drain_db_cpu, d->drain_rate));
	db_cell(engine, 10, 0, x->drain_wal);
	printf(" %6llu\n", (unsigned long long)d->errors);
}

/* PostgreSQL's rate over SQLite's in one round (SIDE: that round's engines). */
static double ratio(const struct store_side *side, bool drain)
{
	const struct durable_result *q = &side[STORE_SQLITE].d, *p = &side[STORE_PG].d;
	double a = drain ? p->drain_rate : p->send_rate, b = drain ? q->drain_rate : q->send_rate;
	return b > 0 ? a / b : 0;
}

void pgdurable_table(const struct bench_opts *o, const struct store_results *s)
{
	printf("durable by store engine: the relay on SQLite (embedded: its storage thread's work "
	       "is in the relay's\nCPU) and on PostgreSQL %s (a fresh cluster on this disk, fsync "
	       "and synchronous_commit on; db cpu =\nevery PostgreSQL process; WAL = "
	       "pg_current_wal_lsn's advance), window %u per sender; cpu in\nmicroseconds per "
	       "envelope. Two rounds on each relay: first on a fresh relay (PostgreSQL: a fresh\n"
	       "database and session), then steady, the same again once the first round is "
	       "drained\n(PostgreSQL: then VACUUM and CHECKPOINT, as on a server that has run a "
	       "while)\n",
	       s->pg_version, (unsigned)o->durable_window);
	printf("senders engine     round    acked/s   relay      db  WAL B/env   drained/s   relay "
	       "     db  WAL B/env errors\n");
	for (size_t i = 0; i < s->len; i++) {
		for (int e = 0; e < STORE_ENGINES; e++)
			for (int k = 0; k < STORE_ROUNDS; k++)
				if (s->side[i][k][e].have)
					side_row(e == STORE_PG ? "postgresql" : "sqlite", k,
					         &s->side[i][k][e]);
		for (int k = 0; k < STORE_ROUNDS; k++)
			if (s->side[i][k][STORE_PG].have)
				printf("%7s %-10s %-6s %9.2f %36.2f%s\n", "", "pg/sqlite",
				       round_names[k], ratio(s->side[i][k], false),
				       ratio(s->side[i][k], true),
				       k == ROUND_STEADY ? "   (goal: 0.50 or more)" : "");
	}
	printf("\n");
}

static cJSON *side_json(const struct store_side *x)
{
	const struct durable_result *d = &x->d;
	cJSON *j = cJSON_CreateObject();
	cJSON_AddNumberToObject(j, "acked_msgs_per_s", d->send_rate);
	cJSON_AddNumberToObject(j, "send_relay_cpu_us_per_msg",
	                        us_per(d->send_relay_cpu, d->send_rate));
	cJSON_AddNumberToObject(j, "send_db_cpu_us_per_msg", us_per(x->send_db_cpu, d->send_rate));
	cJSON_AddNumberToObject(j, "send_wal_bytes_per_msg", x->send_wal);
	cJSON_AddNumberToObject(j, "drain_msgs_per_s", d->drain_rate);
	cJSON_AddNumberToObject(j, "drain_relay_cpu_us_per_msg",
	                        us_per(d->drain_relay_cpu, d->drain_rate));
	cJSON_AddNumberToObject(j, "drain_db_cpu_us_per_msg",
	                        us_per(x->drain_db_cpu, d->drain_rate));
	cJSON_AddNumberToObject(j, "drain_wal_bytes_per_msg", x->drain_wal);
	cJSON_AddNumberToObject(j, "errors", (double)d->errors);
	return j;
}

/* Under E, one round's engines SIDE as "sqlite" and "postgresql" with the ratios, each name
 * followed by SUFFIX. */
static void round_json(cJSON *e, const struct store_side *side, const char *suffix)
{
	char key[64];
	snprintf(key, sizeof(key), "sqlite%s", suffix);
	cJSON_AddItemToObject(e, key, side_json(&side[STORE_SQLITE]));
	if (!side[STORE_PG].have)
		return;
	snprintf(key, sizeof(key), "postgresql%s", suffix);
	cJSON_AddItemToObject(e, key, side_json(&side[STORE_PG]));
	snprintf(key, sizeof(key), "pg_over_sqlite_acked%s", suffix);
	cJSON_AddNumberToObject(e, key, ratio(side, false));
	snprintf(key, sizeof(key), "pg_over_sqlite_drained%s", suffix);
	cJSON_AddNumberToObject(e, key, ratio(side, true));
}

void pgdurable_json(struct cJSON *root, const struct store_results *s)
{
	cJSON *j = cJSON_AddObjectToObject(root, "durable_stores");
	cJSON_AddStringToObject(j, "postgresql_version", s->pg_version);
	cJSON *a = cJSON_AddArrayToObject(j, "runs");
	for (size_t i = 0; i < s->len; i++) {
		const struct store_side *lite = &s->side[i][ROUND_STEADY][STORE_SQLITE];
		cJSON *e = cJSON_CreateObject();
		cJSON_AddNumberToObject(e, "senders", lite->d.shape.senders);
		cJSON_AddNumberToObject(e, "envelope_bytes", lite->d.shape.size);
		cJSON_AddNumberToObject(e, "envelopes", (double)lite->d.shape.count);
		/* The steady round under the plain names (the goal's), the first round after. */
		round_json(e, s->side[i][ROUND_STEADY], "");
		round_json(e, s->side[i][ROUND_FIRST], "_first");
		cJSON_AddItemToArray(a, e);
	}
}
