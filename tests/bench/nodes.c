/* SPDX-License-Identifier: MIT */
/*
 * `cairn-bench nodes`: two relay nodes sharing the relay key and a fresh PostgreSQL database
 * (`[store] node = 1` and `2`, docs/SCALING.md section 4). Online senders on node 1; their
 * owners subscribed on node 2 (cross-node: each envelope reaches its owner through the change
 * feed) and, in the same run, on node 1 (same-node), at the peak cross-node rate, at 50% of
 * it and at a low fixed rate. Prints the delivery latency (send to receipt, one clock)
 * p50/p99/p99.9, delivered/s, and the CPU per envelope of each node and of the database (all
 * its processes, pgsample.c), over each whole run (warm-up included) divided by the envelopes
 * delivered in it (delivered/s times the run's length).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "fleet.h"
#include "nodes.h"
#include "pgdurable.h"
#include "procscan.h"
#include "pgsample.h"
#include "relayctl.h"

#define NODES_SENDERS 4
#define NODES_SIZE    1024
#define NODES_LOW     200.0 /* the low rate, envelopes/s over all senders */
#define NODES_RUNS    5

struct nodes_line {
	const char *rate; /* "peak", "50%", "low" */
	int owner_node;   /* 1 or 2 */
	struct online_run run;
	double cpu_us[3]; /* node 1, node 2, database: per envelope */
};

struct nodes_results {
	struct nodes_line line[NODES_RUNS];
	size_t len;
	char pg_version[64];
	uint32_t window;
};

struct nodes_world {
	struct pgproc pg;
	struct relayctl node[2];
	struct fleet *cross, *same;
};

/* One run of F at TARGET (0: as fast as it goes) into a new line of R. */
static int one_run(const struct bench_opts *o, struct nodes_world *w, struct fleet *f,
                   const char *rate, int owner_node, double target, struct nodes_results *r)
{
	struct nodes_line *l = &r->line[r->len];
	l->rate = rate;
	l->owner_node = owner_node;
	bench_note("nodes: owners on node %d, %s (%.0f/s offered)", owner_node, rate, target);
	double cpu0[3] = {proc_cpu_s(w->node[0].pid), proc_cpu_s(w->node[1].pid),
	                  pgsample_cpu_s(w->pg.pid)};
	if (fleet_run(f, target, o->warmup_s, o->duration_s, &l->run) != 0)
		return -1;
	double cpu1[3] = {proc_cpu_s(w->node[0].pid), proc_cpu_s(w->node[1].pid),
	                  pgsample_cpu_s(w->pg.pid)};
	double envelopes = l->run.rate * (o->warmup_s + o->duration_s);
	for (int i = 0; i < 3; i++)
		l->cpu_us[i] = envelopes > 0 ? (cpu1[i] - cpu0[i]) / envelopes * 1e6 : 0;
	r->len++;
	return 0;
}

static int runs(const struct bench_opts *o, struct nodes_world *w, struct nodes_results *r)
{
	const char *limits[CAIRN_BENCH_LIMITS_MAX];
	size_t n = cairn_bench_limits(o, limits);
	char store[512], key[320];
	for (int k = 0; k < 2; k++) {
		snprintf(store, sizeof(store), "engine = postgresql\nconnection = %s\nnode = %d",
		         w->pg.conninfo, k + 1);
		snprintf(key, sizeof(key), "%s/relay.key", w->node[0].data);
		if (relayctl_start_node(&w->node[k], o->relay_bin, limits, n, store,
		                        k == 0 ? NULL : key) != 0) {
			bench_note("could not start node %d of %s (has it [store] node?)", k + 1,
			           o->relay_bin);
			return -1;
		}
	}
	/* Senders on node 1; owners on node 2, and on node 1 for the same-node lines. */
	w->cross = fleet_open_split(&w->node[0].addr, &w->node[1].addr, w->node[0].pub,
	                            w->node[0].pid, NODES_SENDERS, NODES_SIZE, r->window, true);
	w->same = fleet_open(&w->node[0].addr, w->node[0].pub, w->node[0].pid, NODES_SENDERS,
	                     NODES_SIZE, r->window, true);
	if (w->cross == NULL || w->same == NULL)
		return -1;
	/* The mailboxes made on node 2 reach node 1 through the feed (the fallback poll is 1 s)
	 * before its senders use them. */
	nanosleep(&(struct timespec){1, 100 * 1000 * 1000}, NULL);
	if (one_run(o, w, w->cross, "peak", 2, 0, r) != 0)
		return -1;
	double half = r->line[0].run.rate / 2;
	if (half < 1)
		return -1;
	if (one_run(o, w, w->cross, "50%", 2, half, r) != 0 ||
	    one_run(o, w, w->same, "50%", 1, half, r) != 0 ||
	    one_run(o, w, w->cross, "low", 2, NODES_LOW, r) != 0 ||
	    one_run(o, w, w->same, "low", 1, NODES_LOW, r) != 0)
		return -1;
	return 0;
}

static void table(const struct nodes_results *r)
{
	printf("nodes: two relay nodes on one PostgreSQL %s (a fresh cluster on this disk), %d "
	       "senders on node 1,\n%d-byte envelopes, window %u per sender; owners subscribed on "
	       "node 2 (cross-node) or node 1 (same\nnode); latency = send to receipt; cpu in "
	       "microseconds per envelope over the whole run\n",
	       r->pg_version, NODES_SENDERS, NODES_SIZE, (unsigned)r->window);
	printf(
	    "rate  owner   offered/s delivered/s   p50 ms   p99 ms p99.9 ms  node 1  node 2      "
	    "db errors\n");
	for (size_t i = 0; i < r->len; i++) {
		const struct nodes_line *l = &r->line[i];
		printf("%-5s node %d %10.0f %11.0f %8.2f %8.2f %8.2f %7.1f %7.1f %7.2f %6llu\n",
		       l->rate, l->owner_node, l->run.target_rate, l->run.rate,
		       l->run.p50_us / 1000, l->run.p99_us / 1000, l->run.p999_us / 1000,
		       l->cpu_us[0], l->cpu_us[1], l->cpu_us[2], (unsigned long long)l->run.errors);
	}
}

static void json(const struct nodes_results *r)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *j = cJSON_AddObjectToObject(root, "nodes");
	cJSON_AddStringToObject(j, "postgresql_version", r->pg_version);
	cJSON_AddNumberToObject(j, "senders", NODES_SENDERS);
	cJSON_AddNumberToObject(j, "envelope_bytes", NODES_SIZE);
	cJSON_AddNumberToObject(j, "window", r->window);
	cJSON *a = cJSON_AddArrayToObject(j, "runs");
	for (size_t i = 0; i < r->len; i++) {
		const struct nodes_line *l = &r->line[i];
		cJSON *e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "rate", l->rate);
		cJSON_AddNumberToObject(e, "owner_node", l->owner_node);
		cJSON_AddNumberToObject(e, "offered_msgs_per_s", l->run.target_rate);
		cJSON_AddNumberToObject(e, "delivered_msgs_per_s", l->run.rate);
		cJSON_AddNumberToObject(e, "p50_us", l->run.p50_us);
		cJSON_AddNumberToObject(e, "p99_us", l->run.p99_us);
		cJSON_AddNumberToObject(e, "p999_us", l->run.p999_us);
		cJSON_AddNumberToObject(e, "node1_cpu_us_per_msg", l->cpu_us[0]);
		cJSON_AddNumberToObject(e, "node2_cpu_us_per_msg", l->cpu_us[1]);
		cJSON_AddNumberToObject(e, "db_cpu_us_per_msg", l->cpu_us[2]);
		cJSON_AddNumberToObject(e, "errors", (double)l->run.errors);
		cJSON_AddItemToArray(a, e);
	}
	char *text = cJSON_Print(root);
	if (text != NULL)
		printf("%s\n", text);
	free(text);
	cJSON_Delete(root);
}

int nodes_run(const struct bench_opts *o)
{
	struct nodes_results *r = calloc(1, sizeof(*r));
	struct nodes_world *w = calloc(1, sizeof(*w));
	if (r == NULL || w == NULL) {
		free(r);
		free(w);
		return 1;
	}
	r->window = o->send_window;
	/* Under $TMPDIR when set (a test gives each run its own), else /tmp. */
	const char *tmp = getenv("TMPDIR");
	char dir[160], pgdir[200];
	snprintf(dir, sizeof(dir), "%s/cairn-bench-nodes-XXXXXX",
	         tmp != NULL && tmp[0] != '\0' && strlen(tmp) < 100 ? tmp : "/tmp");
	int rc = -1;
	if (mkdtemp(dir) != NULL) {
		snprintf(pgdir, sizeof(pgdir), "%s/pg", dir);
		bench_note("nodes: starting PostgreSQL in %s", pgdir);
		if (pgproc_init(&w->pg, pgdir, loopback_free_port()) == 0) {
			char *v = r->pg_version;
			if (pgproc_sql(&w->pg, "SHOW server_version", v, sizeof(r->pg_version)) !=
			    0)
				v[0] = '\0';
			v[strcspn(v, " ")] = '\0';
			rc = runs(o, w, r);
		} else {
			bench_note("nodes: PostgreSQL could not be started");
		}
		if (w->cross != NULL)
			fleet_close(w->cross);
		if (w->same != NULL)
			fleet_close(w->same);
		for (int k = 0; k < 2; k++)
			if (w->node[k].dir[0] != '\0')
				relayctl_stop(&w->node[k]);
		pgproc_destroy(&w->pg);
		relayctl_remove_dir(dir);
	}
	if (rc != 0)
		bench_note("nodes: the run failed");
	else if (o->json)
		json(r);
	else
		table(r);
	free(r);
	free(w);
	return rc == 0 ? 0 : 1;
}
