/* SPDX-License-Identifier: MIT */
/*
 * `cairn-bench compare`: the same shapes against cairn-relay, mosquitto and nats-server (each
 * broker also over TLS), on this machine in one run. Online runs every server side by side
 * (the idle ones cost nothing), each first as fast as its window allows, then all at one
 * offered rate, half the lowest peak, so their latencies compare at equal load. Durable and
 * idle connections get a fresh server each (idle: cairn and plain mosquitto only).
 */
#include "bench.h"

#define COMPARE_SENDERS 4

static const struct bench_peer *const peers[CMP_PEERS] = {&bench_peer_cairn, &bench_peer_mosquitto,
                                                          &bench_peer_mosquitto_tls,
                                                          &bench_peer_nats, &bench_peer_nats_tls};

static void stop_all(struct bench_server *s[CMP_PEERS], struct online_session *os[CMP_PEERS])
{
	for (int i = 0; i < CMP_PEERS; i++) {
		if (os[i] != NULL)
			peers[i]->online_close(os[i]);
		if (s[i] != NULL)
			peers[i]->stop(s[i]);
	}
}

/* A side that cannot start or fails a run is left out; the other still runs. */
static int compare_online(const struct bench_opts *o, struct compare_results *r)
{
	struct bench_server *s[CMP_PEERS] = {NULL};
	struct online_session *os[CMP_PEERS] = {NULL};
	const struct online_shape *shape = &r->online;
	bool up[CMP_PEERS];
	int rc = 0;
	for (int i = 0; i < CMP_PEERS; i++) {
		up[i] = peers[i]->start(o, &s[i]) == 0 &&
		        peers[i]->online_open(s[i], shape, &os[i]) == 0;
		if (!up[i])
			rc = -1;
	}
	double lower = 0;
	for (int i = 0; i < CMP_PEERS; i++) {
		if (!up[i])
			continue;
		bench_note("online (%s): %u -> %u, %u-byte messages, as fast as the window allows",
		           peers[i]->name, (unsigned)shape->senders, (unsigned)shape->senders,
		           (unsigned)shape->size);
		struct online_run *peak = &r->side[i].peak;
		up[i] = peers[i]->online_run(os[i], 0, o->warmup_s, o->duration_s, peak) == 0 &&
		        peak->rate > 0;
		if (!up[i])
			rc = -1;
		else if (lower == 0 || peak->rate < lower)
			lower = peak->rate;
	}
	r->equal_rate = 0.5 * lower;
	for (int i = 0; i < CMP_PEERS; i++) {
		if (!up[i])
			continue;
		bench_note("online (%s): at %.0f messages/s", peers[i]->name, r->equal_rate);
		r->side[i].have_online =
		    peers[i]->online_run(os[i], r->equal_rate, o->warmup_s, o->duration_s,
		                         &r->side[i].equal) == 0;
		if (!r->side[i].have_online)
			rc = -1;
	}
	/* Each at 50% and 90% of its own peak: latency where it is not saturated. */
	for (int i = 0; i < CMP_PEERS; i++) {
		struct compare_side *side = &r->side[i];
		for (int k = 0; side->have_online && k < 2; k++) {
			double rate = (k == 0 ? 0.5 : 0.9) * side->peak.rate;
			bench_note("online (%s): at %.0f messages/s, %d%% of its peak",
			           peers[i]->name, rate, k == 0 ? 50 : 90);
			side->have_online =
			    peers[i]->online_run(os[i], rate, o->warmup_s, o->duration_s,
			                         k == 0 ? &side->at50 : &side->at90) == 0;
		}
		if (up[i] && !side->have_online)
			rc = -1;
	}
	stop_all(s, os);
	return rc;
}

static int compare_durable(const struct bench_opts *o, struct compare_results *r)
{
	int rc = 0;
	for (int i = 0; i < CMP_PEERS; i++) {
		struct bench_server *s = NULL;
		struct compare_side *side = &r->side[i];
		bench_note("durable (%s): %u sender(s), %llu messages of %u bytes", peers[i]->name,
		           (unsigned)r->durable.senders, (unsigned long long)r->durable.count,
		           (unsigned)r->durable.size);
		side->durable.shape = r->durable;
		if (peers[i]->start(o, &s) != 0) {
			rc = -1;
			continue;
		}
		int one = peers[i]->durable_run(s, &r->durable, &side->durable);
		peers[i]->stop(s);
		side->have_durable = one == 0;
		if (one != 0) {
			bench_note("durable (%s): the run failed", peers[i]->name);
			rc = -1;
		}
	}
	return rc;
}

int compare_run(const struct bench_opts *o, struct compare_results *r)
{
	int rc = 0;
	r->online = (struct online_shape){.senders = o->online_senders > 0 ? o->online_senders
	                                                                   : COMPARE_SENDERS,
	                                  .size = o->online_size > 0 ? o->online_size : 1024,
	                                  .window = o->send_window};
	r->durable = (struct durable_shape){.senders = COMPARE_SENDERS,
	                                    .size = 1024,
	                                    .count = o->durable_count,
	                                    .window = o->durable_window};
	r->have_limit = limit_measure(o, &r->limit) == 0;
	if (!r->have_limit)
		rc = -1;
	if (compare_online(o, r) != 0) {
		bench_note("online: the comparison failed");
		rc = -1;
	}
	if (compare_durable(o, r) != 0)
		rc = -1;
	for (int i = 0; i < CMP_PEERS; i++) {
		if (peers[i]->idle_open == NULL)
			continue; /* online and durable only */
		r->side[i].have_idle = scenario_idle_into(peers[i], o, &r->side[i].idle) == 0 &&
		                       r->side[i].idle.steps_len > 0;
		if (!r->side[i].have_idle)
			rc = -1;
	}
	return rc;
}
