/* SPDX-License-Identifier: MIT */
/*
 * `cairn-bench loaded`: many connections under load (issue 18: p99 under 5 ms). One relay
 * holds --receivers subscribed connections (default 10,000, quick 2,000; handshake, CREATE,
 * SUBSCRIBE from --workers generator processes, idle.c). First 4 senders -> 4 owners (1 KiB,
 * the online window) run as fast as the window allows beside the silent receivers: the peak.
 * Then the same senders push at 50% of that peak while each worker also sends 1 KiB envelopes
 * round-robin to its receivers, --receiver-rate per receiver per second (default 1), and the
 * receivers ACK them. Both sides' delivery latency (send to receipt, one clock) p50, p99,
 * p99.9 over the measured interval, their delivered rates and the relay's CPU.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fleet.h"
#include "handshakes.h"
#include "idle.h"
#include "loaded.h"
#include "pgdurable.h"
#include "relayctl.h"

#define LOADED_SENDERS 4
#define LOADED_SIZE    1024

struct loaded_results {
	uint32_t receivers;
	double receiver_rate; /* per receiver, envelopes/s */
	struct online_run peak, senders;
	struct online_run receivers_run; /* latency, rate and errors of the low-rate side */
	uint64_t receivers_sent;
};

static int measure(const struct bench_opts *o, struct loaded_results *r)
{
	struct relayctl relay;
	memset(&relay, 0, sizeof(relay));
	const char *limits[CAIRN_BENCH_LIMITS_MAX];
	size_t nlimits = cairn_bench_limits(o, limits);
	if (relayctl_start(&relay, o->relay_bin, limits, nlimits) != 0) {
		bench_note("could not start %s", o->relay_bin);
		return -1;
	}
	struct idle_pool *pool =
	    idle_pool_open(&relay.addr, relay.pub, relay.pid, o->conn_workers, r->receivers);
	struct fleet *f = NULL;
	struct idle_step step;
	struct idle_load load = {0};
	int rc = pool != NULL ? 0 : -1;
	bench_note("loaded: %u subscribed receivers", (unsigned)r->receivers);
	if (rc == 0)
		rc = idle_pool_grow(pool, r->receivers, &step);
	if (rc == 0 && step.failed > 0)
		rc = -1;
	if (rc == 0) {
		f = fleet_open(&relay.addr, relay.pub, relay.pid, LOADED_SENDERS, LOADED_SIZE,
		               o->send_window, true);
		rc = f != NULL ? 0 : -1;
	}
	bench_note("loaded: %d senders at their peak", LOADED_SENDERS);
	if (rc == 0)
		rc = fleet_run(f, 0, o->warmup_s, o->duration_s, &r->peak);
	if (rc == 0 && r->peak.rate <= 0)
		rc = -1;
	bench_note("loaded: senders at 50%% of it, receivers at %.2f/s each", r->receiver_rate);
	if (rc == 0)
		rc = idle_pool_load_begin(pool, r->receiver_rate * r->receivers, o->warmup_s,
		                          o->duration_s);
	if (rc == 0)
		rc = fleet_run(f, 0.5 * r->peak.rate, o->warmup_s, o->duration_s, &r->senders);
	if (rc == 0)
		rc = idle_pool_load_end(pool, &load);
	if (rc == 0) {
		struct online_run *x = &r->receivers_run;
		lat_fill(&load.lat, x);
		x->delivered = load.lat.len;
		x->rate = (double)load.lat.len / o->duration_s;
		x->target_rate = r->receiver_rate * r->receivers;
		x->relay_cpu = r->senders.relay_cpu; /* the same interval */
		x->gen_cpu = load.gen_cpu;
		x->errors =
		    load.errors + (load.received < load.sent ? load.sent - load.received : 0);
		r->receivers_sent = load.sent;
	}
	lat_free(&load.lat);
	if (f != NULL)
		fleet_close(f);
	idle_pool_close(pool);
	relayctl_stop(&relay);
	if (rc != 0)
		bench_note("loaded: the run failed");
	return rc;
}

static void row(const char *who, const struct online_run *x)
{
	printf("%-32s %10.0f %10.0f %8.0f %8.0f %8.0f %8.0f %7llu\n", who, x->target_rate, x->rate,
	       x->p50_us, x->p99_us, x->p999_us, x->max_us, (unsigned long long)x->errors);
}

static void table(const struct bench_opts *o, const struct loaded_results *r)
{
	printf("loaded: %u subscribed receivers from %u generator process(es), %d senders -> %d "
	       "owners, %d-byte envelopes, window %u, %.1f s measured\n",
	       (unsigned)r->receivers, (unsigned)o->conn_workers, LOADED_SENDERS, LOADED_SENDERS,
	       LOADED_SIZE, (unsigned)o->send_window, o->duration_s);
	printf("%-32s %10s %10s %8s %8s %8s %8s %7s\n", "", "offered/s", "delivered/s", "p50 us",
	       "p99 us", "p99.9 us", "max us", "errors");
	row("senders' owners, peak", &r->peak);
	row("senders' owners, at 50% of it", &r->senders);
	row("low-rate receivers, meanwhile", &r->receivers_run);
	printf("relay cpu, cores: %.2f at the peak, %.2f under load; generator cpu, cores: the "
	       "senders' %.2f, the receivers' workers %.2f; p99 goal < 5000 us\n",
	       r->peak.relay_cpu, r->senders.relay_cpu, r->senders.gen_cpu,
	       r->receivers_run.gen_cpu);
}

static int json(const struct loaded_results *r)
{
	cJSON *root = cJSON_CreateObject();
	cJSON_AddNumberToObject(root, "receivers", r->receivers);
	cJSON_AddNumberToObject(root, "receiver_rate", r->receiver_rate);
	cJSON_AddItemToObject(root, "peak", report_run_json(&r->peak));
	cJSON_AddItemToObject(root, "senders_at_50", report_run_json(&r->senders));
	cJSON_AddItemToObject(root, "receivers_at_50", report_run_json(&r->receivers_run));
	return report_print_json(root);
}

int loaded_run(const struct bench_opts *o)
{
	struct loaded_results r = {.receivers = o->receivers, .receiver_rate = o->receiver_rate};
	if (measure(o, &r) != 0)
		return 1;
	return (o->json ? json(&r) : (table(o, &r), 0)) == 0 ? 0 : 1;
}
