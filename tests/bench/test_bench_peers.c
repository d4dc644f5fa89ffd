/* SPDX-License-Identifier: MIT */
/*
 * The peers `cairn-bench compare` measures beside cairn (issue 18): NATS and NATS+TLS
 * (nats-server and libnats) and mosquitto+TLS, each against its real server started in a
 * scratch directory, through the same bench_peer functions compare calls. Each runs a short
 * online run (as fast as the window allows, then paced) and a small durable run, and every
 * message must arrive, in order, with the server's CPU read from /proc. The TLS servers must
 * refuse a plain-TCP generator, so the "+TLS" columns are TLS. Then the compare report's JSON:
 * today's keys, the new peers beside them, and the ratio against the best peer.
 *
 * It checks behaviour, never speed: the figures only have to exist.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <signal.h>
#include <sodium.h>

#include "bench.h"
#include "mqfleet.h"
#include "natsfleet.h"

static const struct online_shape online = {.senders = 2, .size = 1024, .window = 16};
static const struct durable_shape durable = {
    .senders = 2, .size = 1024, .count = 4000, .window = 100};

/* The server a check runs, stopped by the teardown even when an assertion fails. */
static const struct bench_peer *running_peer;
static struct bench_server *running;

static struct bench_server *start(const struct bench_peer *p, const struct bench_opts *o)
{
	assert_null(running);
	assert_int_equal(p->start(o, &running), 0);
	running_peer = p;
	return running;
}

static void stop(void)
{
	if (running != NULL)
		running_peer->stop(running);
	running = NULL;
}

static int teardown(void **state)
{
	(void)state;
	stop();
	return 0;
}

static void check_online(const struct bench_peer *p)
{
	struct bench_opts o = {0};
	struct online_session *os = NULL;
	struct bench_server *s = start(p, &o);
	assert_int_equal(p->online_open(s, &online, &os), 0);

	struct online_run peak;
	assert_int_equal(p->online_run(os, 0, 0.2, 0.5, &peak), 0);
	assert_true(peak.delivered > 0);
	assert_true(peak.rate > 0);
	assert_true(peak.p50_us > 0 && peak.p99_us >= peak.p50_us);
	assert_true(peak.relay_cpu > 0); /* the server's /proc, while it carried the messages */
	assert_int_equal(peak.errors, 0);

	/* Paced at 1000/s: about 500 in the half second measured, far below the peak's count
	 * (the bounds leave room for a loaded machine). */
	struct online_run paced;
	assert_int_equal(p->online_run(os, 1000, 0.2, 0.5, &paced), 0);
	assert_true(paced.delivered >= 200 && paced.delivered <= 800);
	assert_int_equal(paced.errors, 0);

	p->online_close(os);
	stop();
}

static void check_durable(const struct bench_peer *p)
{
	/* mosquitto queues this many (and a margin) per offline subscriber. */
	struct bench_opts o = {.durable_count = durable.count};
	struct bench_server *s = start(p, &o);
	struct durable_result d;
	memset(&d, 0, sizeof(d));
	assert_int_equal(p->durable_run(s, &durable, &d), 0);
	assert_true(d.send_rate > 0 && d.send_s > 0);
	assert_true(d.drain_rate > 0 && d.drain_s > 0);
	assert_true(d.send_relay_cpu > 0);
	assert_int_equal(d.errors, 0);
	stop();
}

static void test_nats(void **state)
{
	(void)state;
	check_online(&bench_peer_nats);
	check_durable(&bench_peer_nats);
}

static void test_nats_tls(void **state)
{
	(void)state;
	check_online(&bench_peer_nats_tls);
	check_durable(&bench_peer_nats_tls);
}

static void test_mosquitto_tls(void **state)
{
	(void)state;
	check_online(&bench_peer_mosquitto_tls);
	check_durable(&bench_peer_mosquitto_tls);
}

/* A generator without the certificate (plain TCP) gets nowhere with a TLS peer's server, and
 * one with it does. */
static void test_tls_peers_refuse_plain(void **state)
{
	(void)state;
	struct bench_opts o = {0};
	struct bench_server *s = start(&bench_peer_nats_tls, &o);
	pid_t pid = bench_peer_nats_tls.pid(s);
	assert_null(natsfleet_open(peer_nats_port(s), pid, NULL, 1, 64, 4, false));
	stop();

	s = start(&bench_peer_mosquitto_tls, &o);
	pid = bench_peer_mosquitto_tls.pid(s);
	assert_null(mqfleet_open(peer_mosquitto_port(s), pid, NULL, 1, 64, 4, false));
	stop();

	/* And the plain server speaks plain TCP to the same generator. */
	s = start(&bench_peer_nats, &o);
	struct natsfleet *f =
	    natsfleet_open(peer_nats_port(s), bench_peer_nats.pid(s), NULL, 1, 64, 4, false);
	assert_non_null(f);
	natsfleet_close(f);
	stop();
}

/* report_compare_json's output for R, parsed. */
static cJSON *compare_json(const struct compare_results *r)
{
	char path[] = "/tmp/cairn-test-bench-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	fflush(stdout);
	int saved = dup(STDOUT_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fd, STDOUT_FILENO) >= 0);
	struct bench_opts o = {0};
	int rc = report_compare_json(&o, r);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	assert_int_equal(rc, 0);
	static char text[1 << 16];
	ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
	close(fd);
	unlink(path);
	assert_true(n > 0);
	text[n] = '\0';
	cJSON *root = cJSON_Parse(text);
	assert_non_null(root);
	return root;
}

static double num(const cJSON *obj, const char *key)
{
	const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
	assert_non_null(j);
	assert_true(cJSON_IsNumber(j));
	return j->valuedouble;
}

static void test_compare_json(void **state)
{
	(void)state;
	struct compare_results *r = calloc(1, sizeof(*r));
	assert_non_null(r);
	r->online = online;
	r->durable = durable;
	/* Online rates: NATS the best peer; durable: NATS+TLS; mosquitto+TLS did not run. */
	static const double rate[CMP_PEERS] = {200000, 50000, 40000, 300000, 150000};
	static const double acked[CMP_PEERS] = {100000, 40000, 30000, 60000, 80000};
	for (int i = 0; i < CMP_PEERS; i++) {
		struct compare_side *s = &r->side[i];
		s->have_online = s->have_durable = i != CMP_MOSQUITTO_TLS;
		s->peak.rate = rate[i];
		s->peak.relay_cpu = 0.5;
		s->peak.p99_us = 100 + i;
		s->at50.p99_us = 200 + i;
		s->at90.p999_us = 300 + i;
		s->at90.errors = 1;
		s->durable.send_rate = acked[i];
		s->durable.send_relay_cpu = 0.25;
		s->durable.drain_rate = acked[i] / 2;
		s->durable.errors = (uint64_t)i;
	}
	cJSON *root = compare_json(r);

	const cJSON *on = cJSON_GetObjectItemCaseSensitive(root, "online_1k");
	assert_non_null(on);
	/* Today's keys keep their meaning. */
	assert_true(num(on, "cairn_msgs_per_s") == 200000);
	assert_true(num(on, "mosquitto_msgs_per_s") == 50000);
	assert_true(num(on, "ratio") == 4.0);
	assert_true(num(on, "p99_us") == 100);
	assert_true(num(on, "mosquitto_p99_us") == 101);
	/* The new peers beside them; one that did not run is null. */
	assert_true(num(on, "nats_msgs_per_s") == 300000);
	assert_true(num(on, "nats_tls_msgs_per_s") == 150000);
	assert_true(num(on, "nats_p99_us") == 103);
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(on, "mosquitto_tls_msgs_per_s")));
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(on, "best_peer")->valuestring, "nats");
	assert_true(num(on, "ratio_best") == 200000.0 / 300000.0);
	/* Each side at 50% and 90% of its own peak; their errors count with the others. */
	assert_true(num(on, "nats_p99_us_at_50") == 203);
	assert_true(num(on, "cairn_p999_us_at_90") == 300);
	assert_true(num(on, "nats_errors") == 1);
	/* Server CPU per message, every side: 0.5 cores over the rate, in microseconds. */
	assert_true(num(on, "cairn_server_cpu_us_per_msg") == 0.5 / 200000 * 1e6);
	assert_true(num(on, "nats_server_cpu_us_per_msg") == 0.5 / 300000 * 1e6);

	const cJSON *du = cJSON_GetObjectItemCaseSensitive(root, "durable_1k");
	assert_non_null(du);
	assert_true(num(du, "cairn_msgs_per_s") == 100000);
	assert_true(num(du, "ratio") == 2.5);
	assert_true(num(du, "nats_tls_msgs_per_s") == 80000);
	assert_true(num(du, "nats_drain_msgs_per_s") == 30000);
	assert_true(num(du, "nats_errors") == CMP_NATS);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(du, "best_peer")->valuestring,
	                    "nats_tls");
	assert_true(num(du, "ratio_best") == 100000.0 / 80000.0);
	assert_true(num(du, "nats_tls_server_cpu_us_per_msg") == 0.25 / 80000 * 1e6);
	assert_true(num(du, "mosquitto_drain_server_cpu_us_per_msg") == 0);

	cJSON_Delete(root);
	free(r);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN); /* as cairn-bench: a server gone mid-write is a failed check */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_compare_json),
	    cmocka_unit_test_teardown(test_tls_peers_refuse_plain, teardown),
	    cmocka_unit_test_teardown(test_nats, teardown),
	    cmocka_unit_test_teardown(test_nats_tls, teardown),
	    cmocka_unit_test_teardown(test_mosquitto_tls, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
