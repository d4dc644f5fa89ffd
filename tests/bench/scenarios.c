/* SPDX-License-Identifier: MIT */
/*
 * The scenario drivers: which shapes run, in which order, and what is derived from the
 * measurements (50% and 90% of the measured peak; memory per connection). They call only the
 * peer's functions, so `cairn-bench compare` can run the same shapes against another server.
 */
#include <string.h>
#include <time.h>

#include "bench.h"

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* ---- online --------------------------------------------------------------------------- */

static int online_shape_run(const struct bench_peer *p, const struct bench_opts *o,
                            const struct online_shape *shape, struct online_result *res)
{
	struct bench_server *s = NULL;
	struct online_session *os = NULL;
	res->shape = *shape;
	if (p->start(o, &s) != 0)
		return -1;
	int rc = p->online_open(s, shape, &os);
	if (rc == 0 && o->online_rate > 0) { /* --online-rate: that rate alone, as 50% */
		rc = p->online_run(os, o->online_rate, o->warmup_s, o->duration_s, &res->at50);
		p->online_close(os);
		p->stop(s);
		return rc;
	}
	if (rc == 0)
		rc = p->online_run(os, 0, o->warmup_s, o->duration_s, &res->peak);
	if (rc == 0 && res->peak.rate <= 0)
		rc = -1;
	if (rc == 0)
		rc =
		    p->online_run(os, 0.5 * res->peak.rate, o->warmup_s, o->duration_s, &res->at50);
	if (rc == 0)
		rc =
		    p->online_run(os, 0.9 * res->peak.rate, o->warmup_s, o->duration_s, &res->at90);
	if (os != NULL)
		p->online_close(os);
	p->stop(s);
	return rc;
}

int scenario_online(const struct bench_peer *p, const struct bench_opts *o, struct bench_results *r)
{
	static const struct {
		uint32_t senders, size;
	} all[] = {{1, 1024}, {4, 1024}, {1, 256}, {1, 16384}};
	bool only = o->online_senders > 0; /* --senders / --size pick one shape */
	size_t count = only ? 1 : sizeof(all) / sizeof(all[0]);
	for (size_t i = 0; i < count; i++) {
		uint32_t senders = only ? o->online_senders : all[i].senders;
		uint32_t size = only ? o->online_size : all[i].size;
		struct online_shape shape = {
		    .senders = senders, .size = size, .window = o->send_window};
		bench_note("online: %u sender(s) -> %u owner(s), %u-byte envelopes",
		           (unsigned)shape.senders, (unsigned)shape.senders, (unsigned)shape.size);
		if (online_shape_run(p, o, &shape, &r->online[r->online_len]) != 0) {
			bench_note("online: the run failed");
			return -1;
		}
		r->online_len++;
	}
	return 0;
}

/* ---- durable -------------------------------------------------------------------------- */

int scenario_durable(const struct bench_peer *p, const struct bench_opts *o,
                     struct bench_results *r)
{
	static const uint32_t senders[] = {1, 4};
	for (size_t i = 0; i < sizeof(senders) / sizeof(senders[0]); i++) {
		struct durable_shape shape = {.senders = senders[i],
		                              .size = 1024,
		                              .count = o->durable_count,
		                              .window = o->durable_window};
		struct durable_result *res = &r->durable[r->durable_len];
		res->shape = shape;
		bench_note("durable: %u sender(s), %llu envelopes of %u bytes",
		           (unsigned)shape.senders, (unsigned long long)shape.count,
		           (unsigned)shape.size);
		struct bench_server *s = NULL;
		if (p->start(o, &s) != 0)
			return -1;
		int rc = p->durable_run(s, &shape, res);
		p->stop(s);
		if (rc != 0) {
			bench_note("durable: the run failed");
			return -1;
		}
		r->durable_len++;
	}
	return 0;
}

/* ---- connections ---------------------------------------------------------------------- */

/* RSS once the server has settled: commits and closes still under way finish first. */
static uint64_t settled_rss(const struct bench_peer *p, struct bench_server *s, long ms)
{
	sleep_ms(ms);
	return bench_proc_rss(p->pid(s));
}

int scenario_idle_into(const struct bench_peer *p, const struct bench_opts *o,
                       struct idle_result *res)
{
	struct bench_server *s = NULL;
	struct idle_session *is = NULL;
	memset(res, 0, sizeof(*res));
	if (p->start(o, &s) != 0)
		return -1;
	res->base_rss = settled_rss(p, s, 200);
	int rc = p->idle_open(s, o->conn_workers, &is);
	for (size_t i = 0; rc == 0 && i < o->conn_counts_len; i++) {
		struct idle_step *step = &res->steps[res->steps_len];
		bench_note("connections (%s): growing to %u", p->name, (unsigned)o->conn_counts[i]);
		rc = p->idle_grow(is, o->conn_counts[i], step);
		if (rc != 0)
			break;
		step->rss_bytes = settled_rss(p, s, 500);
		step->rss_per_conn =
		    ((double)step->rss_bytes - (double)res->base_rss) / step->connections;
		res->steps_len++;
	}
	if (is != NULL)
		p->idle_close(is);
	if (rc == 0)
		res->rss_after_close = settled_rss(p, s, 2000);
	else
		bench_note("connections: the run failed");
	p->stop(s);
	return rc;
}

int scenario_idle(const struct bench_peer *p, const struct bench_opts *o, struct bench_results *r)
{
	int rc = scenario_idle_into(p, o, &r->idle);
	r->have_idle = rc == 0;
	return rc;
}
