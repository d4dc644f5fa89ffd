/* SPDX-License-Identifier: MIT */
/*
 * The report: one table per scenario on stdout, or with --json one JSON object (cJSON) with
 * the same figures. Progress notes go to stderr, so stdout holds only the report.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "bench.h"
#include "handshakes.h"
#include "pgdurable.h"

#define MIB (1024.0 * 1024.0)

/* The cost of the relay's own AEAD work per 1 KiB envelope: one open and one seal. */
static double crypto_floor_ns(const struct limit_result *l)
{
	return 2 * l->aead_ns[2];
}

/* Prints ROOT on stdout and frees it. Returns 0, or -1 if it could not be printed. */
static int print_json(cJSON *root)
{
	char *text = cJSON_Print(root);
	cJSON_Delete(root);
	if (text == NULL)
		return -1;
	puts(text);
	free(text);
	return 0;
}

int report_print_json(cJSON *root)
{
	return print_json(root);
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
	if (l->aes_gcm_1k_ns > 0)
		printf("  AES-256-GCM seal 1 KiB            %10.0f ns (precomputed state), "
		       "%.0f ns (key per call, as the transport)\n",
		       l->aes_gcm_1k_ns, l->aes_gcm_1k_key_ns);
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
	if (r->stores != NULL)
		pgdurable_table(o, r->stores);
	if (r->have_idle)
		idle_table(o, r);
	if (r->have_limit)
		limit_table(r);
	printf("total %.0f s%s\n", r->total_s, o->quick ? " (--quick)" : "");
}

/* ---- JSON --------------------------------------------------------------------------- */

cJSON *report_run_json(const struct online_run *r)
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
		cJSON_AddItemToObject(j, "peak", report_run_json(&x->peak));
		cJSON_AddItemToObject(j, "load_50", report_run_json(&x->at50));
		cJSON_AddItemToObject(j, "load_90", report_run_json(&x->at90));
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
	cJSON_AddNumberToObject(j, "aes_gcm_1k_ns", l->aes_gcm_1k_ns);
	cJSON_AddNumberToObject(j, "aes_gcm_1k_key_ns", l->aes_gcm_1k_key_ns);
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
	if (r->stores != NULL)
		pgdurable_json(root, r->stores);
	if (r->have_idle)
		cJSON_AddItemToObject(root, "connections", idle_json(r));
	if (r->have_limit)
		cJSON_AddItemToObject(root, "limit", limit_json(r));
	cJSON_AddNumberToObject(root, "total_s", r->total_s);
	return print_json(root);
}

/* ---- compare ------------------------------------------------------------------------ */

/* One row: a label, cairn's and mosquitto's figure with DECIMALS decimals (HAVE says which
 * exist), and the ratio cairn / mosquitto when both do. */
static void cmp_row(const char *label, int decimals, double c, bool have_c, double m, bool have_m)
{
	char cv[32] = "-", mv[32] = "-", ratio[32] = "-";
	if (have_c)
		snprintf(cv, sizeof(cv), "%.*f", decimals, c);
	if (have_m)
		snprintf(mv, sizeof(mv), "%.*f", decimals, m);
	if (have_c && have_m && m > 0)
		snprintf(ratio, sizeof(ratio), "%.2f", c / m);
	printf("  %-54s %12s %12s %7s\n", label, cv, mv, ratio);
}

/* Microseconds of CPU per message: CORES busy while RATE messages/s went through. */
static double per_msg_us(double cores, double rate)
{
	return rate > 0 ? cores / rate * 1e6 : 0;
}

/* The machine's limits, measured in the same run as a comparison. */
static void cmp_limit(const struct limit_result *l)
{
	printf("limit: this machine, same run\n");
	printf("  %-54s %12.0f\n", "loopback TCP, 1 KiB writes/s", l->loopback_writes_per_s);
	printf("  %-54s %12.0f\n", "ChaCha20-Poly1305 seal of 1 KiB, ns", l->aead_ns[2]);
	if (l->aes_gcm_1k_ns > 0)
		printf("  %-54s %12.0f\n",
		       "AES-256-GCM seal of 1 KiB (transport's, key per call), ns",
		       l->aes_gcm_1k_key_ns);
}

/* ---- compare: five columns, cairn and every peer ------------------------------------ */

static const char *const cmp_heads[CMP_PEERS] = {"cairn", "mosquitto", "mosq+TLS", "NATS",
                                                 "NATS+TLS"};
/* JSON key prefixes; cairn's and mosquitto's keys are today's. */
static const char *const cmp_keys[CMP_PEERS] = {"cairn", "mosquitto", "mosquitto_tls", "nats",
                                                "nats_tls"};

/* Which way a row's figure is better, for the ratio against the best peer. */
enum better { BETTER_NONE, BETTER_HIGHER, BETTER_LOWER };

/* The peer (not cairn) with the best of V among those HAVE says exist, or -1. */
static int best_peer(enum better b, const double v[CMP_PEERS], const bool have[CMP_PEERS])
{
	int best = -1;
	for (int i = CMP_CAIRN + 1; b != BETTER_NONE && i < CMP_PEERS; i++)
		if (have[i] && (best < 0 || (b == BETTER_HIGHER ? v[i] > v[best] : v[i] < v[best])))
			best = i;
	return best;
}

/* cairn / the best peer, as "1.23 NATS", or "-". */
static void ratio_text(char *out, size_t cap, enum better b, const double v[CMP_PEERS],
                       const bool have[CMP_PEERS])
{
	int best = best_peer(b, v, have);
	if (best < 0 || !have[CMP_CAIRN] || v[best] <= 0)
		snprintf(out, cap, "-");
	else
		snprintf(out, cap, "%.2f %s", v[CMP_CAIRN] / v[best], cmp_heads[best]);
}

static void cmp_row5(const char *label, int decimals, enum better b, const double v[CMP_PEERS],
                     const bool have[CMP_PEERS])
{
	printf("  %-44s", label);
	for (int i = 0; i < CMP_PEERS; i++) {
		char cell[32] = "-";
		if (have[i])
			snprintf(cell, sizeof(cell), "%.*f", decimals, v[i]);
		printf(" %10s", cell);
	}
	char ratio[48];
	ratio_text(ratio, sizeof(ratio), b, v, have);
	printf("  %s\n", ratio);
}

/* A row of figures every side has: a double at OFF in struct compare_side, or with RATE_OFF
 * the microseconds of CPU per message (the cores at OFF over the rate at RATE_OFF). */
struct side_row {
	const char *label;
	int decimals;
	enum better better;
	size_t off, rate_off;
};
#define NO_RATE     SIZE_MAX
#define SIDE(field) offsetof(struct compare_side, field)

static double side_value(const struct compare_side *s, const struct side_row *row)
{
	double v = *(const double *)(const void *)((const char *)s + row->off);
	if (row->rate_off == NO_RATE)
		return v;
	return per_msg_us(v, *(const double *)(const void *)((const char *)s + row->rate_off));
}

/* Fills V and HAVE for ROW; USE_DURABLE picks have_durable over have_online. */
static void side_values(const struct compare_results *r, const struct side_row *row,
                        bool use_durable, double v[CMP_PEERS], bool have[CMP_PEERS])
{
	for (int i = 0; i < CMP_PEERS; i++) {
		const struct compare_side *s = &r->side[i];
		have[i] = use_durable ? s->have_durable : s->have_online;
		v[i] = have[i] ? side_value(s, row) : 0;
	}
}

static void side_rows(const struct compare_results *r, const struct side_row *rows, size_t n,
                      bool use_durable)
{
	for (size_t k = 0; k < n; k++) {
		double v[CMP_PEERS];
		bool have[CMP_PEERS];
		side_values(r, &rows[k], use_durable, v, have);
		cmp_row5(rows[k].label, rows[k].decimals, rows[k].better, v, have);
	}
}

static const struct side_row online_peak_rows[] = {
    {"delivered/s, as fast as the window allows", 0, BETTER_HIGHER, SIDE(peak.rate), NO_RATE},
    {"  p50 latency, us", 0, BETTER_LOWER, SIDE(peak.p50_us), NO_RATE},
    {"  p99 latency, us", 0, BETTER_LOWER, SIDE(peak.p99_us), NO_RATE},
    {"  server cpu, cores", 2, BETTER_NONE, SIDE(peak.relay_cpu), NO_RATE},
    {"  generator cpu, cores", 2, BETTER_NONE, SIDE(peak.gen_cpu), NO_RATE},
    {"  server cpu per message, us", 2, BETTER_LOWER, SIDE(peak.relay_cpu), SIDE(peak.rate)},
    {"  generator cpu per message, us", 2, BETTER_LOWER, SIDE(peak.gen_cpu), SIDE(peak.rate)},
};

static const struct side_row online_equal_rows[] = {
    {"  p50 latency, us", 0, BETTER_LOWER, SIDE(equal.p50_us), NO_RATE},
    {"  p99 latency, us", 0, BETTER_LOWER, SIDE(equal.p99_us), NO_RATE},
    {"  p99.9 latency, us", 0, BETTER_LOWER, SIDE(equal.p999_us), NO_RATE},
    {"  server cpu, cores", 2, BETTER_NONE, SIDE(equal.relay_cpu), NO_RATE},
    {"  server cpu per message, us", 2, BETTER_LOWER, SIDE(equal.relay_cpu), SIDE(equal.rate)},
};

/* The same rows at 50% (then 90%) of each side's own peak. */
static const struct side_row online_own_rows[2][5] = {
    {{"  delivered/s", 0, BETTER_NONE, SIDE(at50.rate), NO_RATE},
     {"  p50 latency, us", 0, BETTER_LOWER, SIDE(at50.p50_us), NO_RATE},
     {"  p99 latency, us", 0, BETTER_LOWER, SIDE(at50.p99_us), NO_RATE},
     {"  p99.9 latency, us", 0, BETTER_LOWER, SIDE(at50.p999_us), NO_RATE},
     {"  server cpu per message, us", 2, BETTER_LOWER, SIDE(at50.relay_cpu), SIDE(at50.rate)}},
    {{"  delivered/s", 0, BETTER_NONE, SIDE(at90.rate), NO_RATE},
     {"  p50 latency, us", 0, BETTER_LOWER, SIDE(at90.p50_us), NO_RATE},
     {"  p99 latency, us", 0, BETTER_LOWER, SIDE(at90.p99_us), NO_RATE},
     {"  p99.9 latency, us", 0, BETTER_LOWER, SIDE(at90.p999_us), NO_RATE},
     {"  server cpu per message, us", 2, BETTER_LOWER, SIDE(at90.relay_cpu), SIDE(at90.rate)}},
};

static const struct side_row durable_rows[] = {
    {"acknowledged/s", 0, BETTER_HIGHER, SIDE(durable.send_rate), NO_RATE},
    {"  server cpu, cores", 2, BETTER_NONE, SIDE(durable.send_relay_cpu), NO_RATE},
    {"  server cpu per message, us", 2, BETTER_LOWER, SIDE(durable.send_relay_cpu),
     SIDE(durable.send_rate)},
    {"drained/s (reconnect, receive, acknowledge)", 0, BETTER_HIGHER, SIDE(durable.drain_rate),
     NO_RATE},
    {"  server cpu, cores", 2, BETTER_NONE, SIDE(durable.drain_relay_cpu), NO_RATE},
    {"  server cpu per message, us", 2, BETTER_LOWER, SIDE(durable.drain_relay_cpu),
     SIDE(durable.drain_rate)},
};

#define ROWS(a) (sizeof(a) / sizeof((a)[0]))

/* A side's errors: every online run's, or the durable run's. */
static uint64_t side_errors(const struct compare_side *s, bool durable)
{
	if (durable)
		return s->durable.errors;
	return s->peak.errors + s->equal.errors + s->at50.errors + s->at90.errors;
}

static void errors_row(const char *label, const struct compare_results *r, bool durable)
{
	double v[CMP_PEERS];
	bool have[CMP_PEERS];
	for (int i = 0; i < CMP_PEERS; i++) {
		const struct compare_side *s = &r->side[i];
		have[i] = durable ? s->have_durable : s->have_online;
		v[i] = (double)side_errors(s, durable);
	}
	cmp_row5(label, 0, BETTER_NONE, v, have);
}

static void cmp_online(const struct bench_opts *o, const struct compare_results *r)
{
	printf("online: %u-byte messages, %u sender(s) -> %u subscriber(s), window %u per sender, "
	       "%.1f s measured\n",
	       (unsigned)r->online.size, (unsigned)r->online.senders, (unsigned)r->online.senders,
	       (unsigned)r->online.window, o->duration_s);
	side_rows(r, online_peak_rows, ROWS(online_peak_rows), false);
	char label[96];
	snprintf(label, sizeof(label), "delivered/s, all offered %.0f/s", r->equal_rate);
	static const struct side_row equal = {"", 0, BETTER_NONE, SIDE(equal.rate), NO_RATE};
	double v[CMP_PEERS];
	bool have[CMP_PEERS];
	side_values(r, &equal, false, v, have);
	cmp_row5(label, 0, BETTER_NONE, v, have);
	side_rows(r, online_equal_rows, ROWS(online_equal_rows), false);
	printf("  at 50%% of each side's own peak\n");
	side_rows(r, online_own_rows[0], ROWS(online_own_rows[0]), false);
	printf("  at 90%% of each side's own peak\n");
	side_rows(r, online_own_rows[1], ROWS(online_own_rows[1]), false);
	errors_row("errors: lost, duplicated or reordered", r, false);
}

static void cmp_durable(const struct compare_results *r)
{
	printf("durable: %llu messages of %u bytes, %u sender(s), window %u per sender; "
	       "subscribers offline,\nthen back to receive everything\n",
	       (unsigned long long)r->durable.count, (unsigned)r->durable.size,
	       (unsigned)r->durable.senders, (unsigned)r->durable.window);
	side_rows(r, durable_rows, ROWS(durable_rows), true);
	errors_row("errors: lost or reordered", r, true);
}

/* The largest step of an idle run, or NULL. */
static const struct idle_step *last_step(const struct compare_side *s)
{
	return s->have_idle ? &s->idle.steps[s->idle.steps_len - 1] : NULL;
}

static void cmp_idle(const struct compare_results *r)
{
	double v[CMP_PEERS];
	bool have[CMP_PEERS];
	const struct idle_step *any = NULL;
	for (int i = 0; i < CMP_PEERS; i++) {
		const struct idle_step *st = last_step(&r->side[i]);
		have[i] = st != NULL;
		v[i] = st != NULL ? st->rss_per_conn : 0;
		if (any == NULL)
			any = st;
	}
	printf("idle connections: connected and subscribed, then silent (cairn: handshake, mailbox "
	       "created,\nSUBSCRIBE; mosquitto: CONNECT with a clean session, SUBSCRIBE to a topic "
	       "of its own;\nnot measured over TLS nor against NATS)\n");
	char label[96];
	snprintf(label, sizeof(label), "server RSS per connection at %u, bytes",
	         any != NULL ? (unsigned)any->connections : 0u);
	cmp_row5(label, 0, BETTER_LOWER, v, have);
}

void report_compare_table(const struct bench_opts *o, const struct compare_results *r)
{
	printf("cairn-bench compare: cairn-relay, mosquitto and nats-server, plain and over TLS, "
	       "the same shapes\non this machine in one run%s\n\n",
	       o->quick ? " (--quick)" : "");
	printf("  %-44s", "");
	for (int i = 0; i < CMP_PEERS; i++)
		printf(" %10s", cmp_heads[i]);
	printf("  %s\n", "ratio, best peer");
	cmp_online(o, r);
	cmp_durable(r);
	cmp_idle(r);
	if (r->have_limit)
		cmp_limit(&r->limit);
	printf(
	    "\nratio = cairn / the best of the four peers in that row (highest rate, lowest\n"
	    "latency or cpu per message), named beside it; \"all offered\" is half the lowest\n"
	    "peak, the same for every side. What each side does per message:\n"
	    "- online: cairn carries every envelope in Noise-encrypted frames, and its owner\n"
	    "  acknowledges each (at least once); the window is SENDs the relay has not answered.\n"
	    "  mosquitto is QoS 0 and NATS core publish/subscribe (at most once, no\n"
	    "  acknowledgement), on plain TCP or TLS; their generators hold the window\n"
	    "  themselves: messages published and not yet received.\n"
	    "- durable: cairn answers a SEND after the fsync of its group commit. mosquitto\n"
	    "  answers a QoS 1 PUBLISH (PUBACK) with the message in memory only: it writes its\n"
	    "  whole database every autosave_interval (1800 s) and at exit, never per message.\n"
	    "  NATS is JetStream with file storage and interest retention: a publish is\n"
	    "  acknowledged once written to the stream's file, which nats-server 2.9 fsyncs every\n"
	    "  sync_interval (2 min), not per message; the drain fetches 1000 at a time and\n"
	    "  acknowledges each.\n"
	    "- generators: cairn's and mosquitto's run one thread and one libuv loop each;\n"
	    "  libmosquitto reads a packet in 3-4 read() calls and writes each packet with its\n"
	    "  own write(). The NATS generator is libnats: a reader and a flusher thread per\n"
	    "  connection, a delivery thread per subscription. Where the generator and the\n"
	    "  server share too few cores, the costlier generator holds its server back: read\n"
	    "  the cpu-per-message rows, which do not depend on the generator, beside the "
	    "rates.\n\n");
	printf("total %.0f s%s\n", r->total_s, o->quick ? " (--quick)" : "");
}

static void add_num(cJSON *j, const char *key, double v, bool have)
{
	if (have)
		cJSON_AddNumberToObject(j, key, v);
	else
		cJSON_AddNullToObject(j, key);
}

/* "ratio": cairn / mosquitto, or null. */
static void add_ratio(cJSON *j, double c, bool have_c, double m, bool have_m)
{
	add_num(j, "ratio", have_c && have_m && m > 0 ? c / m : 0, have_c && have_m && m > 0);
}

/* "<peer>_<suffix>" for every side in FROM .. CMP_PEERS - 1, from ROW. */
static void add_sides(cJSON *j, const struct compare_results *r, int from, const char *suffix,
                      const struct side_row *row, bool use_durable)
{
	double v[CMP_PEERS];
	bool have[CMP_PEERS];
	side_values(r, row, use_durable, v, have);
	for (int i = from; i < CMP_PEERS; i++) {
		char key[128];
		snprintf(key, sizeof(key), "%s_%s", cmp_keys[i], suffix);
		add_num(j, key, v[i], have[i]);
	}
}

/* "best_peer" and "ratio_best": cairn / the best peer of ROW, or nulls. */
static void add_best(cJSON *j, const struct compare_results *r, const struct side_row *row,
                     bool use_durable)
{
	double v[CMP_PEERS];
	bool have[CMP_PEERS];
	side_values(r, row, use_durable, v, have);
	int best = best_peer(row->better, v, have);
	bool ok = best >= 0 && have[CMP_CAIRN] && v[best] > 0;
	if (ok)
		cJSON_AddStringToObject(j, "best_peer", cmp_keys[best]);
	else
		cJSON_AddNullToObject(j, "best_peer");
	add_num(j, "ratio_best", ok ? v[CMP_CAIRN] / v[best] : 0, ok);
}

static void add_errors(cJSON *j, const struct compare_results *r, int from, bool durable)
{
	for (int i = from; i < CMP_PEERS; i++) {
		const struct compare_side *s = &r->side[i];
		char key[64];
		snprintf(key, sizeof(key), "%s_errors", cmp_keys[i]);
		add_num(j, key, (double)side_errors(s, durable),
		        durable ? s->have_durable : s->have_online);
	}
}

int report_compare_json(const struct bench_opts *o, const struct compare_results *r)
{
	const struct compare_side *c = &r->side[CMP_CAIRN], *m = &r->side[CMP_MOSQUITTO];
	cJSON *root = cJSON_CreateObject();
	/* The peers after mosquitto: new keys beside today's. */
	const int newer = CMP_MOSQUITTO_TLS;

	/* "online_1k" for the default shape; another --size names its own ("online_16k"). */
	char key[32];
	if (r->online.size % 1024 == 0)
		snprintf(key, sizeof(key), "online_%uk", (unsigned)(r->online.size / 1024));
	else
		snprintf(key, sizeof(key), "online_%u", (unsigned)r->online.size);
	cJSON *on = cJSON_AddObjectToObject(root, key);
	bool hc = c->have_online, hm = m->have_online;
	add_num(on, "cairn_msgs_per_s", c->peak.rate, hc);
	add_num(on, "mosquitto_msgs_per_s", m->peak.rate, hm);
	add_ratio(on, c->peak.rate, hc, m->peak.rate, hm);
	add_num(on, "p99_us", c->peak.p99_us, hc); /* cairn's, in the same run as its rate */
	add_num(on, "mosquitto_p99_us", m->peak.p99_us, hm);
	add_num(on, "equal_load_msgs_per_s", r->equal_rate, hc && hm);
	add_num(on, "cairn_p99_us_at_equal_load", c->equal.p99_us, hc);
	add_num(on, "mosquitto_p99_us_at_equal_load", m->equal.p99_us, hm);
	add_errors(on, r, CMP_CAIRN, false);
	add_sides(on, r, newer, "msgs_per_s", &online_peak_rows[0], false);
	add_best(on, r, &online_peak_rows[0], false);
	add_sides(on, r, newer, "p99_us", &online_peak_rows[2], false);
	add_sides(on, r, newer, "p99_us_at_equal_load", &online_equal_rows[1], false);
	add_sides(on, r, CMP_CAIRN, "server_cpu_us_per_msg", &online_peak_rows[5], false);
	add_sides(on, r, CMP_CAIRN, "server_cpu_us_per_msg_at_equal_load", &online_equal_rows[4],
	          false);
	/* At 50% and 90% of each side's own peak: "<side>_p99_us_at_50", ... */
	static const char *const own_keys[5] = {"msgs_per_s", "p50_us", "p99_us", "p999_us",
	                                        "server_cpu_us_per_msg"};
	for (int k = 0; k < 2; k++)
		for (int row = 0; row < 5; row++) {
			char suffix[64];
			snprintf(suffix, sizeof(suffix), "%s_at_%d", own_keys[row],
			         k == 0 ? 50 : 90);
			add_sides(on, r, CMP_CAIRN, suffix, &online_own_rows[k][row], false);
		}
	cJSON_AddNumberToObject(on, "message_bytes", r->online.size);
	cJSON_AddNumberToObject(on, "senders", r->online.senders);
	cJSON_AddNumberToObject(on, "window", r->online.window);

	cJSON *du = cJSON_AddObjectToObject(root, "durable_1k");
	hc = c->have_durable;
	hm = m->have_durable;
	add_num(du, "cairn_msgs_per_s", c->durable.send_rate, hc);
	add_num(du, "mosquitto_msgs_per_s", m->durable.send_rate, hm);
	add_ratio(du, c->durable.send_rate, hc, m->durable.send_rate, hm);
	add_num(du, "cairn_drain_msgs_per_s", c->durable.drain_rate, hc);
	add_num(du, "mosquitto_drain_msgs_per_s", m->durable.drain_rate, hm);
	add_errors(du, r, CMP_CAIRN, true);
	add_sides(du, r, newer, "msgs_per_s", &durable_rows[0], true);
	add_best(du, r, &durable_rows[0], true);
	add_sides(du, r, newer, "drain_msgs_per_s", &durable_rows[3], true);
	add_sides(du, r, CMP_CAIRN, "server_cpu_us_per_msg", &durable_rows[2], true);
	add_sides(du, r, CMP_CAIRN, "drain_server_cpu_us_per_msg", &durable_rows[5], true);
	cJSON_AddNumberToObject(du, "messages", (double)r->durable.count);
	cJSON_AddNumberToObject(du, "senders", r->durable.senders);
	cJSON_AddNumberToObject(du, "window", r->durable.window);

	cJSON *id = cJSON_AddObjectToObject(root, "idle_connections");
	const struct idle_step *ci = last_step(c), *mi = last_step(m);
	add_num(id, "connections", ci != NULL ? ci->connections : 0, ci != NULL);
	add_num(id, "relay_rss_bytes_per_conn", ci != NULL ? ci->rss_per_conn : 0, ci != NULL);
	add_num(id, "mosquitto_rss_bytes_per_conn", mi != NULL ? mi->rss_per_conn : 0, mi != NULL);

	cJSON *li = cJSON_AddObjectToObject(root, "limit");
	add_num(li, "loopback_1k_writes_per_s", r->limit.loopback_writes_per_s, r->have_limit);
	add_num(li, "aead_1k_ns", r->limit.aead_ns[2], r->have_limit);

	return print_json(root);
}

/* ---- group -------------------------------------------------------------------------- */

static void group_step_table(const struct bench_opts *o, const struct group_step *st)
{
	const struct online_run *c = &st->side[CMP_CAIRN], *m = &st->side[CMP_MOSQUITTO];
	bool hc = st->have[CMP_CAIRN], hm = st->have[CMP_MOSQUITTO];
	printf("group: 1 sender -> %u members, %u-byte messages, window %u, %.1f s measured\n",
	       (unsigned)st->shape.members, (unsigned)st->shape.size, (unsigned)st->shape.window,
	       o->duration_s);
	cmp_row("deliveries/s (messages x members)", 0, c->rate, hc, m->rate, hm);
	cmp_row("  messages/s sent", 0, c->msgs_per_s, hc, m->msgs_per_s, hm);
	cmp_row("  p50 latency, send -> delivery, us", 0, c->p50_us, hc, m->p50_us, hm);
	cmp_row("  p99 latency, us", 0, c->p99_us, hc, m->p99_us, hm);
	cmp_row("sender upload per message, bytes on the wire", 0, c->upload_per_msg, hc,
	        m->upload_per_msg, hm);
	cmp_row("server cpu, cores", 2, c->relay_cpu, hc, m->relay_cpu, hm);
	cmp_row("  server cpu per delivery, us", 2, per_msg_us(c->relay_cpu, c->rate), hc,
	        per_msg_us(m->relay_cpu, m->rate), hm);
	cmp_row("generator cpu, cores", 2, c->gen_cpu, hc, m->gen_cpu, hm);
	cmp_row("  generator cpu per delivery, us", 2, per_msg_us(c->gen_cpu, c->rate), hc,
	        per_msg_us(m->gen_cpu, m->rate), hm);
	cmp_row("errors: lost, duplicated or reordered", 0, (double)c->errors, hc,
	        (double)m->errors, hm);
}

void report_group_table(const struct bench_opts *o, const struct group_results *r)
{
	printf("cairn-bench group: one sender to N online members, cairn-relay and mosquitto on "
	       "this machine\nin one run, a fresh server of each per member count\n\n");
	printf("  %-54s %12s %12s %7s\n", "", "cairn", "mosquitto", "ratio");
	for (size_t i = 0; i < r->steps_len; i++)
		group_step_table(o, &r->steps[i]);
	if (r->have_limit)
		cmp_limit(&r->limit);
	printf("\nratio = cairn / mosquitto. What each side does per message:\n"
	       "- cairn: the sender appends the entry to one group log (LOG_APPEND, in a Noise\n"
	       "  frame); the relay stores it, fsyncs its group commit, answers APPENDED and then\n"
	       "  seals one frame per member holding a follow read (LOG_READ follow 1), each on\n"
	       "  its own connection. Durable before visible: latency includes the fsync.\n"
	       "- mosquitto: one PUBLISH at QoS 0 on plain TCP to a topic all members subscribe\n"
	       "  to; the broker writes it to each, in memory only, at most once.\n"
	       "- window: messages sent and not yet received by every member, held by the\n"
	       "  generator on both sides; upload counts the sender's TCP payload bytes the\n"
	       "  server acknowledged (TCP_INFO), over the whole run, per message sent.\n\n");
	printf("total %.0f s\n", r->total_s);
}

int report_group_json(const struct bench_opts *o, const struct group_results *r)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *steps = cJSON_AddArrayToObject(root, "group");
	for (size_t i = 0; i < r->steps_len; i++) {
		const struct group_step *st = &r->steps[i];
		const struct online_run *c = &st->side[CMP_CAIRN], *m = &st->side[CMP_MOSQUITTO];
		bool hc = st->have[CMP_CAIRN], hm = st->have[CMP_MOSQUITTO];
		cJSON *j = cJSON_CreateObject();
		cJSON_AddNumberToObject(j, "members", st->shape.members);
		cJSON_AddNumberToObject(j, "message_bytes", st->shape.size);
		cJSON_AddNumberToObject(j, "window", st->shape.window);
		add_num(j, "cairn_deliveries_per_s", c->rate, hc);
		add_num(j, "mosquitto_deliveries_per_s", m->rate, hm);
		add_ratio(j, c->rate, hc, m->rate, hm);
		add_num(j, "cairn_upload_bytes_per_msg", c->upload_per_msg, hc);
		add_num(j, "mosquitto_upload_bytes_per_msg", m->upload_per_msg, hm);
		add_num(j, "cairn_relay_cpu_us_per_delivery", per_msg_us(c->relay_cpu, c->rate),
		        hc);
		add_num(j, "mosquitto_cpu_us_per_delivery", per_msg_us(m->relay_cpu, m->rate), hm);
		add_num(j, "cairn_p50_us", c->p50_us, hc);
		add_num(j, "cairn_p99_us", c->p99_us, hc);
		add_num(j, "mosquitto_p50_us", m->p50_us, hm);
		add_num(j, "mosquitto_p99_us", m->p99_us, hm);
		add_num(j, "cairn_errors", (double)c->errors, hc);
		add_num(j, "mosquitto_errors", (double)m->errors, hm);
		cJSON_AddItemToArray(steps, j);
	}
	cJSON_AddNumberToObject(root, "duration_s", o->duration_s);
	cJSON_AddNumberToObject(root, "total_s", r->total_s);
	return print_json(root);
}
