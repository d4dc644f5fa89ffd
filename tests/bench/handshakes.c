/* SPDX-License-Identifier: MIT */
/*
 * `cairn-bench handshakes`: handshakes per second and the relay's CPU per handshake beside
 * its floor, three X25519 scalar multiplications (crypto_scalarmult) timed on this machine in
 * the same run, in this thread's CPU time as the relay's is in its (issue 18: within 15% of the
 * floor). The idle generator (idle.c) opens the
 * connections from --workers processes in three rounds: first
 * the bare Noise NK handshake alone (message 1 computed before the clock starts), then CREATE
 * and SUBSCRIBE on each new connection, timed apart. The relay's CPU comes from /proc over
 * each phase, so it does not depend on the generator. The floor is timed before and after
 * the rounds and averaged. The rounds grow to --connections' largest count (default 19,000,
 * quick 5,000), a third of it each.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "handshakes.h"

#define HS_ROUNDS 3

struct hs_round {
	struct idle_step step;
	uint32_t added;
	double hs_cpu_us;   /* relay CPU per bare handshake */
	double full_cpu_us; /* relay CPU per handshake + CREATE + SUBSCRIBE */
	double full_per_s;  /* connections set up per second, both phases */
};

struct hs_results {
	double x25519_ns[2]; /* before and after the rounds */
	struct hs_round round[HS_ROUNDS];
	size_t len;
};

static double floor_us(const struct hs_results *r)
{
	return 3 * (r->x25519_ns[0] + r->x25519_ns[1]) / 2 / 1e3;
}

/* The median of the rounds' FIELD (doubles at OFFSET in struct hs_round). */
static double median(const struct hs_results *r, size_t offset)
{
	double v[HS_ROUNDS];
	for (size_t i = 0; i < r->len; i++)
		v[i] = *(const double *)((const char *)&r->round[i] + offset);
	for (size_t i = 1; i < r->len; i++)
		for (size_t j = i; j > 0 && v[j] < v[j - 1]; j--) {
			double t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return r->len == 0 ? 0 : v[r->len / 2];
}

static void round_derive(struct hs_round *x, uint32_t added)
{
	const struct idle_step *s = &x->step;
	x->added = added;
	if (s->handshakes_per_s <= 0 || s->subscribes_per_s <= 0)
		return;
	double hs_s = added / s->handshakes_per_s, sub_s = added / s->subscribes_per_s;
	x->hs_cpu_us = s->handshake_relay_cpu / s->handshakes_per_s * 1e6;
	x->full_cpu_us = x->hs_cpu_us + s->subscribe_relay_cpu / s->subscribes_per_s * 1e6;
	x->full_per_s = added / (hs_s + sub_s);
}

static int measure(const struct bench_opts *o, struct hs_results *r)
{
	uint32_t per_round = o->conn_counts[o->conn_counts_len - 1] / HS_ROUNDS;
	if (per_round == 0)
		return -1;
	r->x25519_ns[0] = limit_x25519_ns(true);
	struct bench_server *s = NULL;
	struct idle_session *is = NULL;
	const struct bench_peer *p = &bench_peer_cairn;
	if (p->start(o, &s) != 0)
		return -1;
	int rc = p->idle_open(s, o->conn_workers, &is);
	for (size_t i = 0; rc == 0 && i < HS_ROUNDS; i++) {
		struct hs_round *x = &r->round[i];
		bench_note("handshakes: round %zu, %u connections", i + 1, (unsigned)per_round);
		rc = p->idle_grow(is, per_round * (uint32_t)(i + 1), &x->step);
		if (rc == 0 && x->step.failed > 0)
			rc = -1;
		if (rc == 0) {
			round_derive(x, per_round);
			r->len++;
		}
	}
	if (is != NULL)
		p->idle_close(is);
	p->stop(s);
	r->x25519_ns[1] = limit_x25519_ns(true);
	if (rc != 0)
		bench_note("handshakes: the run failed");
	return rc;
}

static void table(const struct bench_opts *o, const struct hs_results *r)
{
	printf("handshakes: %u connections a round from %u generator process(es), %d rounds; "
	       "floor = 3 X25519 (%.1f us of CPU each, timed in this run)\n",
	       (unsigned)r->round[0].added, (unsigned)o->conn_workers, HS_ROUNDS,
	       (r->x25519_ns[0] + r->x25519_ns[1]) / 2e3);
	printf("round  handshakes/s  relay cores  relay us/hs  floor us  ratio  "
	       "with CREATE+SUBSCRIBE: conns/s  relay us/conn\n");
	double fl = floor_us(r);
	for (size_t i = 0; i < r->len; i++) {
		const struct hs_round *x = &r->round[i];
		printf("%5zu  %12.0f  %11.2f  %11.1f  %8.1f  %5.2f  %30.0f  %13.1f\n", i + 1,
		       x->step.handshakes_per_s, x->step.handshake_relay_cpu, x->hs_cpu_us, fl,
		       x->hs_cpu_us / fl, x->full_per_s, x->full_cpu_us);
	}
	double hs = median(r, offsetof(struct hs_round, hs_cpu_us));
	printf(
	    "median relay CPU per handshake %.1f us = %.2f x the floor (%.1f us; goal <= 1.15)\n",
	    hs, hs / fl, fl);
}

static int json(const struct hs_results *r)
{
	cJSON *root = cJSON_CreateObject(), *rounds = cJSON_AddArrayToObject(root, "rounds");
	double fl = floor_us(r), hs = median(r, offsetof(struct hs_round, hs_cpu_us));
	cJSON_AddNumberToObject(root, "x25519_ns", (r->x25519_ns[0] + r->x25519_ns[1]) / 2);
	cJSON_AddNumberToObject(root, "floor_us", fl);
	cJSON_AddNumberToObject(root, "handshakes_per_s",
	                        median(r, offsetof(struct hs_round, step.handshakes_per_s)));
	cJSON_AddNumberToObject(root, "relay_cpu_us_per_handshake", hs);
	cJSON_AddNumberToObject(root, "ratio_to_floor", fl > 0 ? hs / fl : 0);
	cJSON_AddNumberToObject(root, "with_subscribe_per_s",
	                        median(r, offsetof(struct hs_round, full_per_s)));
	cJSON_AddNumberToObject(root, "with_subscribe_relay_cpu_us",
	                        median(r, offsetof(struct hs_round, full_cpu_us)));
	for (size_t i = 0; i < r->len; i++) {
		const struct hs_round *x = &r->round[i];
		cJSON *e = cJSON_CreateObject();
		cJSON_AddNumberToObject(e, "connections", x->added);
		cJSON_AddNumberToObject(e, "handshakes_per_s", x->step.handshakes_per_s);
		cJSON_AddNumberToObject(e, "relay_cpu_us_per_handshake", x->hs_cpu_us);
		cJSON_AddNumberToObject(e, "with_subscribe_per_s", x->full_per_s);
		cJSON_AddNumberToObject(e, "with_subscribe_relay_cpu_us", x->full_cpu_us);
		cJSON_AddItemToArray(rounds, e);
	}
	return report_print_json(root);
}

int handshakes_run(const struct bench_opts *o)
{
	struct hs_results r = {0};
	int rc = measure(o, &r);
	if (r.len == 0)
		return 1;
	if (o->json)
		rc |= json(&r);
	else
		table(o, &r);
	return rc == 0 ? 0 : 1;
}
