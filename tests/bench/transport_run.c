/* SPDX-License-Identifier: MIT */
/*
 * `cairn-bench transport`: starts one relay with its HTTPS listener behind real nginx
 * (tests/support/nginxproc: docs/OPERATING.md's site, a self-signed certificate, the address
 * pinned to it), measures each transport to it (transport.c) in the same run, and prints the
 * figures side by side with the ratio to direct: a table, or one JSON object with --json.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "nginxproc.h"
#include "procscan.h"
#include "relayctl.h"
#include "relayproc.h"
#include "transport.h"

#define HTTPS_PATH "b3nch5ecret"

/* nginxproc.c is the tests' harness; this is all it needs of relayproc.c, whose test
 * framework the benchmark does not link. */
void test_rm_tree(const char *dir)
{
	relayctl_remove_dir(dir);
}

/* nginx's processes: its master MASTER and the workers it forked. */
static void nginx_pids(pid_t master, struct transport_target *t)
{
	t->front[t->front_len++] = master;
	t->front_len +=
	    proc_children(master, t->front + t->front_len, TRANSPORT_FRONT_MAX - t->front_len);
}

/* The cairn+https address `cairn-relay address` prints for RELAY (its second line). */
static int https_address(const struct bench_opts *o, const struct relayctl *relay,
                         struct cairn_address *a)
{
	char cmd[1200], out[1024];
	snprintf(cmd, sizeof(cmd), "%s address --data %s --config %s", o->relay_bin, relay->data,
	         relay->conf);
	FILE *p = popen(cmd, "r");
	if (p == NULL)
		return -1;
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	char *second = strchr(out, '\n');
	if (pclose(p) != 0 || second == NULL)
		return -1;
	second[1 + strcspn(second + 1, "\n")] = '\0';
	return cairn_address_parse(second + 1, a) == 0 && a->transport == CAIRN_TRANSPORT_HTTPS
	           ? 0
	           : -1;
}

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
		printf("\ntransport: %u-byte envelopes, sender to a subscribed owner, window %d\n",
		       r[0].rate[s].size, TRANSPORT_WINDOW);
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
	uint16_t listen = loopback_free_port();
	char at[32];
	snprintf(at, sizeof(at), "127.0.0.1:%u", listen);
	struct nginxproc ng;
	memset(&ng, 0, sizeof(ng));
	if (listen == 0 || nginxproc_start(&ng, HTTPS_PATH, at) != 0) {
		bench_note("transport: nginx did not start");
		nginxproc_stop(&ng);
		return 1;
	}
	/* relayctl writes these lines after [limits]: the [https] header starts its section. */
	char l_listen[64], l_public[64], l_pin[400];
	snprintf(l_listen, sizeof(l_listen), "listen = %s", at);
	snprintf(l_public, sizeof(l_public), "public = 127.0.0.1:%u", ng.port);
	snprintf(l_pin, sizeof(l_pin), "pin_cert = %s", ng.cert);
	const char *const lines[] = {"mailbox_max_envelopes = 1000000",
	                             "mailbox_max_bytes = 2147483648",
	                             "[https]",
	                             l_listen,
	                             "path = " HTTPS_PATH,
	                             l_public,
	                             l_pin};
	struct relayctl relay;
	if (relayctl_start(&relay, o->relay_bin, lines, sizeof(lines) / sizeof(lines[0])) != 0) {
		bench_note("transport: cannot start the relay");
		nginxproc_stop(&ng);
		return 1;
	}
	struct transport_target t[TARGETS_MAX];
	t[0] = (struct transport_target){.name = "direct",
	                                 .addr = {.host_type = CAIRN_HOST_IPV4, .port = relay.port},
	                                 .relay_pid = relay.pid};
	memcpy(t[0].addr.key, relay.pub, sizeof(relay.pub));
	strcpy(t[0].addr.host, "127.0.0.1");
	t[1] = (struct transport_target){.name = "https", .relay_pid = relay.pid};
	nginx_pids(ng.pid, &t[1]);
	int rc = https_address(o, &relay, &t[1].addr);
	if (rc != 0)
		bench_note("transport: no cairn+https address from `cairn-relay address`");
	struct transport_result r[TARGETS_MAX];
	for (size_t i = 0; i < TARGETS_MAX && rc == 0; i++)
		rc = transport_measure(o, &t[i], &r[i]);
	relayctl_stop(&relay);
	nginxproc_stop(&ng);
	if (rc != 0)
		return 1;
	if (o->json)
		transport_json(r, TARGETS_MAX);
	else
		transport_table(r, TARGETS_MAX);
	return 0;
}
