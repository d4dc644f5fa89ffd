/* SPDX-License-Identifier: MIT */
/*
 * The report: one table per scenario on stdout, or with --json one JSON object (cJSON) with
 * the same figures. Progress notes go to stderr, so stdout holds only the report.
 */
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "bench.h"

#define MIB (1024.0 * 1024.0)

/* The cost of the relay's own AEAD work per 1 KiB envelope: one open and one seal. */
static double crypto_floor_ns(const struct limit_result *l)
{
	return 2 * l->aead_ns[2];
}

/* ---- tables ------------------------------------------------------------------------- */

static void online_row(const struct online_result *o, const char *load, const struct online_run *r)
{
	char offered[32] = "max";
	if (r->target_rate > 0)
		snprintf(offered, sizeof(offered), "%.0f", r->target_rate);
	printf("%7u %6u  %-4s %10s %11.0f %8.0f %8.0f %9.0f %8.0f %6.2f %6.2f %6llu\n",
	       (unsigned)o->shape.senders, (unsigned)o->shape.size, load, offered, r->rate,
	       r->p50_us, r->p99_us, r->p999_us, r->max_us, r->relay_cpu, r->gen_cpu,
	       (unsigned long long)r->errors);
}

static void online_table(const struct bench_opts *o, const struct bench_results *r)
{
	printf("online: S senders -> S subscribed owners, every envelope acknowledged "
	       "(window %u SENDs per sender;\nlatency = owner's receipt - sender's encode, "
	       "microseconds; cpu in cores over the measured %.1f s)\n",
	       (unsigned)o->send_window, o->duration_s);
	printf("senders   size  load    offered   delivered/s     p50     p99    p99.9      max "
	       " relay    gen errors\n");
	for (size_t i = 0; i < r->online_len; i++) {
		const struct online_result *x = &r->online[i];
		online_row(x, "peak", &x->peak);
		online_row(x, "50%", &x->at50);
		online_row(x, "90%", &x->at90);
	}
	printf("\n");
}

static void durable_table(const struct bench_opts *o, const struct bench_results *r)
{
	printf("durable: owners offline, every SEND answered after fsync (window %u per "
	       "sender); then the owners\nreconnect, authenticate, subscribe and acknowledge "
	       "everything (deleted durably)\n",
	       (unsigned)o->durable_window);
	printf("senders   size  envelopes   acked/s  relay cpu   drained/s  relay cpu errors\n");
	for (size_t i = 0; i < r->durable_len; i++) {
		const struct durable_result *d = &r->durable[i];
		printf("%7u %6u %10llu %9.0f %10.2f %11.0f %10.2f %6llu\n",
		       (unsigned)d->shape.senders, (unsigned)d->shape.size,
		       (unsigned long long)d->shape.count, d->send_rate, d->send_relay_cpu,
		       d->drain_rate, d->drain_relay_cpu, (unsigned long long)d->errors);
	}
	printf("\n");
}

static void idle_table(const struct bench_opts *o, const struct bench_results *r)
{
	const struct idle_result *x = &r->idle;
	printf("connections: idle connections that completed the handshake, created a mailbox "
	       "and subscribed\n(%u generator processes; RSS/conn = (RSS - baseline) / "
	       "connections)\n",
	       (unsigned)o->conn_workers);
	printf("connections  relay RSS MiB  RSS/conn B  handshakes/s (relay cpu)  subscribes/s  "
	       "failed\n");
	printf("%11s %14.1f\n", "baseline", (double)x->base_rss / MIB);
	for (size_t i = 0; i < x->steps_len; i++) {
		const struct idle_step *s = &x->steps[i];
		printf("%11u %14.1f %11.0f %13.0f (%5.2f) %16.0f %7u\n", (unsigned)s->connections,
		       (double)s->rss_bytes / MIB, s->rss_per_conn, s->handshakes_per_s,
		       s->handshake_relay_cpu, s->subscribes_per_s, (unsigned)s->failed);
	}
	printf("%11s %14.1f   (all closed again: what stays is not per connection)\n\n",
	       "after close", (double)x->rss_after_close / MIB);
}

static void limit_table(const struct bench_results *r)
{
	const struct limit_result *l = &r->limit;
	printf("limit: this machine, same run\n");
	printf("  loopback TCP, 1 KiB writes        %10.0f writes/s (%.0f MiB/s)\n",
	       l->loopback_writes_per_s, l->loopback_mib_per_s);
	printf("  ChaCha20-Poly1305 seal 64 B       %10.0f ns\n", l->aead_ns[0]);
	printf("  ChaCha20-Poly1305 seal 256 B      %10.0f ns\n", l->aead_ns[1]);
	printf("  ChaCha20-Poly1305 seal 1 KiB      %10.0f ns\n", l->aead_ns[2]);
	printf("  ChaCha20-Poly1305 seal 16 KiB     %10.0f ns\n", l->aead_ns[3]);
	printf("  X25519 scalar mult                %10.0f ns (relay: 3 per handshake)\n",
	       l->x25519_ns);
	printf("  Ed25519 verify                    %10.0f ns\n", l->ed25519_verify_ns);
	printf("  relay AEAD per 1 KiB envelope     %10.0f ns (one open + one seal, unbatched): "
	       "%.0f envelopes/s per core\n\n",
	       crypto_floor_ns(l), 1e9 / crypto_floor_ns(l));
}

void report_tables(const struct bench_opts *o, const struct bench_results *r)
{
	if (r->online_len > 0)
		online_table(o, r);
	if (r->durable_len > 0)
		durable_table(o, r);
	if (r->have_idle)
		idle_table(o, r);
	if (r->have_limit)
		limit_table(r);
	printf("total %.0f s%s\n", r->total_s, o->quick ? " (--quick)" : "");
}

/* ---- JSON --------------------------------------------------------------------------- */

static cJSON *run_json(const struct online_run *r)
{
	cJSON *j = cJSON_CreateObject();
	cJSON_AddNumberToObject(j, "offered_msgs_per_s", r->target_rate);
	cJSON_AddNumberToObject(j, "msgs_per_s", r->rate);
	cJSON_AddNumberToObject(j, "p50_us", r->p50_us);
	cJSON_AddNumberToObject(j, "p99_us", r->p99_us);
	cJSON_AddNumberToObject(j, "p999_us", r->p999_us);
	cJSON_AddNumberToObject(j, "max_us", r->max_us);
	cJSON_AddNumberToObject(j, "relay_cpu_cores", r->relay_cpu);
	cJSON_AddNumberToObject(j, "generator_cpu_cores", r->gen_cpu);
	cJSON_AddNumberToObject(j, "errors", (double)r->errors);
	return j;
}

static cJSON *online_json(const struct bench_results *r, uint32_t window)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; i < r->online_len; i++) {
		const struct online_result *x = &r->online[i];
		cJSON *j = cJSON_CreateObject();
		cJSON_AddNumberToObject(j, "senders", x->shape.senders);
		cJSON_AddNumberToObject(j, "envelope_bytes", x->shape.size);
		cJSON_AddNumberToObject(j, "send_window", window);
		cJSON_AddItemToObject(j, "peak", run_json(&x->peak));
		cJSON_AddItemToObject(j, "load_50", run_json(&x->at50));
		cJSON_AddItemToObject(j, "load_90", run_json(&x->at90));
		cJSON_AddItemToArray(a, j);
	}
	return a;
}

static cJSON *durable_json(const struct bench_results *r)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; i < r->durable_len; i++) {
		const struct durable_result *d = &r->durable[i];
		cJSON *j = cJSON_CreateObject();
		cJSON_AddNumberToObject(j, "senders", d->shape.senders);
		cJSON_AddNumberToObject(j, "envelope_bytes", d->shape.size);
		cJSON_AddNumberToObject(j, "envelopes", (double)d->shape.count);
		cJSON_AddNumberToObject(j, "send_window", d->shape.window);
		cJSON_AddNumberToObject(j, "acked_msgs_per_s", d->send_rate);
		cJSON_AddNumberToObject(j, "send_relay_cpu_cores", d->send_relay_cpu);
		cJSON_AddNumberToObject(j, "drain_msgs_per_s", d->drain_rate);
		cJSON_AddNumberToObject(j, "drain_relay_cpu_cores", d->drain_relay_cpu);
		cJSON_AddNumberToObject(j, "errors", (double)d->errors);
		cJSON_AddItemToArray(a, j);
	}
	return a;
}

static cJSON *idle_json(const struct bench_results *r)
{
	const struct idle_result *x = &r->idle;
	cJSON *j = cJSON_CreateObject();
	cJSON_AddNumberToObject(j, "baseline_rss_bytes", (double)x->base_rss);
	cJSON *steps = cJSON_AddArrayToObject(j, "steps");
	for (size_t i = 0; i < x->steps_len; i++) {
		const struct idle_step *s = &x->steps[i];
		cJSON *e = cJSON_CreateObject();
		cJSON_AddNumberToObject(e, "connections", s->connections);
		cJSON_AddNumberToObject(e, "relay_rss_bytes", (double)s->rss_bytes);
		cJSON_AddNumberToObject(e, "relay_rss_bytes_per_conn", s->rss_per_conn);
		cJSON_AddNumberToObject(e, "handshakes_per_s", s->handshakes_per_s);
		cJSON_AddNumberToObject(e, "handshake_relay_cpu_cores", s->handshake_relay_cpu);
		cJSON_AddNumberToObject(e, "subscribes_per_s", s->subscribes_per_s);
		cJSON_AddNumberToObject(e, "failed", s->failed);
		cJSON_AddItemToArray(steps, e);
	}
	cJSON_AddNumberToObject(j, "rss_after_close_bytes", (double)x->rss_after_close);
	return j;
}

static cJSON *limit_json(const struct bench_results *r)
{
	const struct limit_result *l = &r->limit;
	cJSON *j = cJSON_CreateObject();
	cJSON_AddNumberToObject(j, "loopback_1k_writes_per_s", l->loopback_writes_per_s);
	cJSON_AddNumberToObject(j, "loopback_1k_mib_per_s", l->loopback_mib_per_s);
	cJSON_AddNumberToObject(j, "aead_64_ns", l->aead_ns[0]);
	cJSON_AddNumberToObject(j, "aead_256_ns", l->aead_ns[1]);
	cJSON_AddNumberToObject(j, "aead_1k_ns", l->aead_ns[2]);
	cJSON_AddNumberToObject(j, "aead_16k_ns", l->aead_ns[3]);
	cJSON_AddNumberToObject(j, "x25519_ns", l->x25519_ns);
	cJSON_AddNumberToObject(j, "ed25519_verify_ns", l->ed25519_verify_ns);
	cJSON_AddNumberToObject(j, "relay_aead_1k_envelope_ns", crypto_floor_ns(l));
	return j;
}

int report_json(const struct bench_opts *o, const struct bench_results *r)
{
	cJSON *root = cJSON_CreateObject();
	cJSON_AddBoolToObject(root, "quick", o->quick);
	if (r->online_len > 0)
		cJSON_AddItemToObject(root, "online", online_json(r, o->send_window));
	if (r->durable_len > 0)
		cJSON_AddItemToObject(root, "durable", durable_json(r));
	if (r->have_idle)
		cJSON_AddItemToObject(root, "connections", idle_json(r));
	if (r->have_limit)
		cJSON_AddItemToObject(root, "limit", limit_json(r));
	cJSON_AddNumberToObject(root, "total_s", r->total_s);
	char *text = cJSON_Print(root);
	cJSON_Delete(root);
	if (text == NULL)
		return -1;
	puts(text);
	free(text);
	return 0;
}
