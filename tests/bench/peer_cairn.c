/* SPDX-License-Identifier: MIT */
/*
 * The cairn peer: each scenario step of bench.h against a real cairn-relay process. The relay
 * runs with its defaults except the limits a benchmark would hit by design (a mailbox's quota,
 * the connection cap, the idle timeout), plus whatever --relay-set adds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet.h"
#include "gfleet.h"
#include "idle.h"
#include "pgdurable.h"
#include "relayctl.h"

struct bench_server {
	struct relayctl relay;
};

struct online_session {
	struct fleet *fleet;
};

struct idle_session {
	struct idle_pool *pool;
};

static const char *const base_limits[] = {
    "mailbox_max_envelopes = 10000000", /* a durable run fills one mailbox per sender */
    "mailbox_max_bytes = 64G",
    "max_connections = 19900",    /* the file limit is 20,000: what the machine allows */
    "idle_timeout = 3600",        /* idle connections must outlive the scenario */
    "log_max_entries = 10000000", /* a group run appends to one log as fast as it can */
    "log_max_bytes = 64G",
};
#define BASE_LIMITS (sizeof(base_limits) / sizeof(base_limits[0]))
_Static_assert(BASE_LIMITS + BENCH_MAX_SETS <= CAIRN_BENCH_LIMITS_MAX, "room for every limit");

static bool same_key(const char *a, const char *b)
{
	size_t la = strcspn(a, " ="), lb = strcspn(b, " =");
	return la == lb && strncmp(a, b, la) == 0;
}

size_t cairn_bench_limits(const struct bench_opts *o, const char **out)
{
	size_t n = 0;
	for (size_t i = 0; i < BASE_LIMITS; i++) {
		out[n] = base_limits[i];
		for (size_t j = 0; j < o->relay_sets_len; j++)
			if (same_key(base_limits[i], o->relay_sets[j]))
				out[n] = o->relay_sets[j];
		n++;
	}
	for (size_t j = 0; j < o->relay_sets_len; j++) {
		bool replaced = false;
		for (size_t i = 0; i < BASE_LIMITS; i++)
			replaced |= same_key(base_limits[i], o->relay_sets[j]);
		if (!replaced)
			out[n++] = o->relay_sets[j];
	}
	return n;
}

static int cairn_start(const struct bench_opts *o, struct bench_server **out)
{
	struct bench_server *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -1;
	const char *limits[CAIRN_BENCH_LIMITS_MAX];
	size_t n = cairn_bench_limits(o, limits);
	if (relayctl_start(&s->relay, o->relay_bin, limits, n) != 0) {
		bench_note("could not start %s", o->relay_bin);
		free(s);
		return -1;
	}
	*out = s;
	return 0;
}

static void cairn_stop(struct bench_server *s)
{
	if (s == NULL)
		return;
	relayctl_stop(&s->relay);
	free(s);
}

static pid_t cairn_pid(const struct bench_server *s)
{
	return s->relay.pid;
}

static int cairn_online_open(struct bench_server *s, const struct online_shape *shape,
                             struct online_session **out)
{
	struct online_session *os = calloc(1, sizeof(*os));
	if (os == NULL)
		return -1;
	os->fleet = fleet_open(&s->relay.addr, s->relay.pub, s->relay.pid, shape->senders,
	                       shape->size, shape->window, true);
	if (os->fleet == NULL) {
		free(os);
		return -1;
	}
	*out = os;
	return 0;
}

static int cairn_online_run(struct online_session *os, double target_rate, double warmup_s,
                            double duration_s, struct online_run *out)
{
	return fleet_run(os->fleet, target_rate, warmup_s, duration_s, out);
}

static void cairn_online_close(struct online_session *os)
{
	if (os == NULL)
		return;
	fleet_close(os->fleet);
	free(os);
}

static int cairn_durable_run(struct bench_server *s, const struct durable_shape *shape,
                             struct durable_result *out)
{
	struct fleet *f = fleet_open(&s->relay.addr, s->relay.pub, s->relay.pid, shape->senders,
	                             shape->size, shape->window, false);
	if (f == NULL)
		return -1;
	int rc = fleet_durable(f, shape->count, out);
	fleet_close(f);
	return rc;
}

static int cairn_idle_open(struct bench_server *s, uint32_t workers, struct idle_session **out)
{
	struct idle_session *is = calloc(1, sizeof(*is));
	if (is == NULL)
		return -1;
	is->pool = idle_pool_open(&s->relay.addr, s->relay.pub, s->relay.pid, workers, 20000);
	if (is->pool == NULL) {
		free(is);
		return -1;
	}
	*out = is;
	return 0;
}

static int cairn_idle_grow(struct idle_session *is, uint32_t total, struct idle_step *step)
{
	return idle_pool_grow(is->pool, total, step);
}

static void cairn_idle_close(struct idle_session *is)
{
	if (is == NULL)
		return;
	idle_pool_close(is->pool);
	free(is);
}

static int cairn_group_run(struct bench_server *s, const struct group_shape *shape, double warmup_s,
                           double duration_s, struct online_run *out)
{
	struct gfleet *f = gfleet_open(&s->relay.addr, s->relay.pub, s->relay.pid, shape);
	if (f == NULL)
		return -1;
	int rc = gfleet_run(f, warmup_s, duration_s, out);
	gfleet_close(f);
	return rc;
}

const struct bench_peer bench_peer_cairn = {
    .name = "cairn",
    .start = cairn_start,
    .stop = cairn_stop,
    .pid = cairn_pid,
    .online_open = cairn_online_open,
    .online_run = cairn_online_run,
    .online_close = cairn_online_close,
    .durable_run = cairn_durable_run,
    .idle_open = cairn_idle_open,
    .idle_grow = cairn_idle_grow,
    .idle_close = cairn_idle_close,
    .group_run = cairn_group_run,
};
