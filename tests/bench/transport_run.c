/* SPDX-License-Identifier: MIT */
/*
 * `cairn-bench transport`: starts one relay, measures each transport to it (transport.c) in
 * the same run, and prints the figures side by side with the ratio to direct: a table, or
 * one JSON object with --json.
 */
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "relayctl.h"
#include "transport.h"

#define TARGETS_MAX 2

static void transport_table(const struct transport_result *r, size_t n)
{
	printf("transport: handshakes (TCP, transport setup, Noise NK, close), one at a time\n");
	printf("%-8s %10s %14s %14s %14s\n", "", "per s", "client ms/hs", "relay ms/hs",
	       "front ms/hs");
	for (size_t i = 0; i < n; i++)
		printf("%-8s %10.0f %14.3f %14.3f %14.3f\n", r[i].name, r[i].hs_per_s,
		       r[i].hs_client_ms, r[i].hs_relay_ms, r[i].hs_front_ms);
	for (size_t s = 0; s < TRANSPORT_SIZES; s++) {
		printf("\ntransport: %u-byte envelopes, sender to a subscribed owner, window 64\n",
		       r[0].rate[s].size);
		printf("%-8s %10s %8s %8s %12s %12s %12s\n", "", "env/s", "MB/s", "ratio",
		       "client cores", "relay cores", "front cores");
		for (size_t i = 0; i < n; i++) {
			const struct transport_rate *t = &r[i].rate[s];
			printf("%-8s %10.0f %8.1f %8.2f %12.2f %12.2f %12.2f\n", r[i].name,
			       t->env_per_s, t->mb_per_s,
			       r[0].rate[s].env_per_s > 0 ? t->env_per_s / r[0].rate[s].env_per_s
			                                  : 0,
			       t->client_cores, t->relay_cores, t->front_cores);
		}
	}
}

static void transport_json(const struct transport_result *r, size_t n)
{
	printf("{\"transport\":[");
	for (size_t i = 0; i < n; i++) {
		printf(
		    "%s{\"name\":\"%s\",\"handshakes_per_s\":%.1f,\"handshake_client_cpu_ms\":%.4f,"
		    "\"handshake_relay_cpu_ms\":%.4f,\"handshake_front_cpu_ms\":%.4f,\"rates\":[",
		    i ? "," : "", r[i].name, r[i].hs_per_s, r[i].hs_client_ms, r[i].hs_relay_ms,
		    r[i].hs_front_ms);
		for (size_t s = 0; s < TRANSPORT_SIZES; s++) {
			const struct transport_rate *t = &r[i].rate[s];
			printf(
			    "%s{\"size\":%u,\"envelopes_per_s\":%.1f,\"mb_per_s\":%.2f,"
			    "\"ratio_to_direct\":%.3f,\"client_cores\":%.3f,\"relay_cores\":%.3f,"
			    "\"front_cores\":%.3f}",
			    s ? "," : "", t->size, t->env_per_s, t->mb_per_s,
			    r[0].rate[s].env_per_s > 0 ? t->env_per_s / r[0].rate[s].env_per_s : 0,
			    t->client_cores, t->relay_cores, t->front_cores);
		}
		printf("]}");
	}
	printf("]}\n");
}

int transport_run(const struct bench_opts *o)
{
	static const char *const limits[] = {"mailbox_max_envelopes = 1000000",
	                                     "mailbox_max_bytes = 2147483648"};
	struct relayctl relay;
	if (relayctl_start(&relay, o->relay_bin, limits, 2) != 0) {
		bench_note("transport: cannot start the relay");
		return 1;
	}
	struct transport_target t[TARGETS_MAX];
	size_t n = 0;
	t[n] = (struct transport_target){.name = "direct",
	                                 .addr = {.host_type = CAIRN_HOST_IPV4, .port = relay.port},
	                                 .relay_pid = relay.pid};
	memcpy(t[n].addr.key, relay.pub, sizeof(relay.pub));
	strcpy(t[n].addr.host, "127.0.0.1");
	n++;
	struct transport_result r[TARGETS_MAX];
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = transport_measure(o, &t[i], &r[i]);
	relayctl_stop(&relay);
	if (rc != 0)
		return 1;
	if (o->json)
		transport_json(r, n);
	else
		transport_table(r, n);
	return 0;
}
