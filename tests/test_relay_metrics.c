/* SPDX-License-Identifier: MIT */
/*
 * The relay's metrics (relay/metrics.c): the Prometheus text of a snapshot is valid exposition
 * format line by line, counters never go back as the relay's figures grow, histograms are
 * cumulative and end in +Inf equal to _count, the largest figures fit the fixed buffer,
 * refusals and the relay's own failures are counted apart; the
 * listener's address is loopback or a Unix socket, never anything else; and the status
 * printout reads the same text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cairn/error.h"
#include "config.h"
#include "metrics.h"
#include "metrics_addr.h"
#include "metrics_expo.h"
#include "status.h"

/* A snapshot with every figure set from SEED, histograms spread over their buckets. */
static void fill(struct metrics_snapshot *s, uint64_t seed)
{
	memset(s, 0, sizeof(*s));
	s->started = 1700000000;
	s->now = s->started + (int64_t)seed;
	s->connections = (uint32_t)(3 * seed);
	s->connections_https = (uint32_t)seed;
	s->mailboxes = seed;
	s->envelopes_stored = 1234 * seed;
	s->envelope_bytes = 5872025 * seed;
	s->storage_queue = seed;
	s->disk_free = UINT64_C(1) << 35;
	uint64_t *counters[] = {&s->stats.handshakes_failed,
	                        &s->stats.envelopes_accepted,
	                        &s->stats.envelopes_delivered,
	                        &s->stats.envelopes_acknowledged,
	                        &s->stats.envelopes_expired,
	                        &s->stats.mailboxes_expired,
	                        &s->stats.writes_cancelled,
	                        &s->stats.log_entries_appended,
	                        &s->stats.log_entries_sent,
	                        &s->stats.logs_expired,
	                        &s->stats.handshakes_accepted,
	                        &s->storage.batches,
	                        &s->storage.writes};
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
		*counters[i] = seed * (i + 1);
	for (size_t i = 0; i < RELAY_WIRE_CODES; i++)
		s->stats.refused[i] = seed * i;
	for (size_t i = 0; i <= STORAGE_LATENCY_BUCKETS; i++) {
		s->storage.latency[i] = seed * (i % 3);
		s->storage.latency_sum_us += s->storage.latency[i] * 700;
	}
	for (size_t i = 0; i <= STORAGE_BATCH_BUCKETS; i++) {
		s->storage.batch[i] = seed * (i % 2);
		s->storage.batch_sum += s->storage.batch[i] * 3;
	}
}

static void render(const struct metrics_snapshot *s, char *buf, struct expo *e)
{
	int n = metrics_render(s, buf, METRICS_TEXT_MAX);
	assert_true(n > 0);
	assert_int_equal(strlen(buf), (size_t)n);
	expo_parse(buf, e);
}

/* What `cairn-relay status` prints for the rendered TEXT, into OUT (CAP bytes, NUL-ended). */
static void status_text(const char *text, char *out, size_t cap)
{
	memset(out, 0, cap);
	FILE *f = fmemopen(out, cap - 1, "w");
	assert_non_null(f);
	relay_status_print(text, f);
	fclose(f);
}

static void test_valid_exposition(void **state)
{
	(void)state;
	static char buf[METRICS_TEXT_MAX];
	static struct expo e;
	struct metrics_snapshot s;
	fill(&s, 7);
	render(&s, buf, &e);
	assert_true(expo_get(&e, "cairn_relay_connections", "transport=\"direct\"") == 14);
	assert_true(expo_get(&e, "cairn_relay_connections", "transport=\"https\"") == 7);
	assert_true(expo_get(&e, "cairn_relay_envelopes_stored", "") == 1234 * 7);
	assert_true(expo_get(&e, "cairn_relay_requests_refused_total", "cause=\"quota\"") == 28);
	assert_true(expo_get(&e, "cairn_relay_requests_refused_total", "cause=\"expired\"") == 84);
	assert_true(expo_get(&e, "cairn_relay_uptime_seconds", "") == 7);
	/* +Inf is the buckets' sum: 13 buckets of 0, 7, 14, 0, 7, 14, ... 0 make 84. */
	assert_true(expo_get(&e, "cairn_relay_commit_duration_seconds_count", "") == 84);
	assert_true(expo_get(&e, "cairn_relay_commit_batch_size_bucket", "le=\"1\"") == 0);
	assert_true(expo_get(&e, "cairn_relay_commit_batch_size_bucket", "le=\"2\"") == 7);
	bool build = false;
	for (size_t i = 0; i < e.n; i++)
		build =
		    build || (strcmp(e.s[i].name, "cairn_relay_build_info") == 0 &&
		              strncmp(e.s[i].labels, "version=\"", 9) == 0 && e.s[i].value == 1);
	assert_true(build);
	/* Every wire cause is there, in one family or the other, so that a rate over a cause
	 * that was 0 is defined. */
	for (size_t i = 1; i < RELAY_WIRE_CODES; i++) {
		if (metrics_cause_names[i] == NULL)
			continue;
		char label[64];
		snprintf(label, sizeof(label), "cause=\"%s\"", metrics_cause_names[i]);
		double refused = expo_get(&e, "cairn_relay_requests_refused_total", label);
		double failed = expo_get(&e, "cairn_relay_requests_failed_total", label);
		assert_true((refused >= 0) != (failed >= 0));
	}
}

/*
 * requests_refused_total counts refusals by cause, as OPERATING.md says: the request, its
 * mailbox's or the relay's limits said no. An ERROR that is the relay's own failure (storage,
 * shutdown, unreachable) is no refusal: it is counted in requests_failed_total, and `status`
 * prints it on a line of its own.
 */
static void test_refusals_by_cause(void **state)
{
	(void)state;
	static char buf[METRICS_TEXT_MAX];
	static struct expo e;
	struct metrics_snapshot s;
	fill(&s, 0);
	s.stats.refused[-CAIRN_EQUOTA] = 3;
	s.stats.refused[-CAIRN_ECAPACITY] = 4;
	s.stats.refused[-CAIRN_ESTORAGE] = 5;
	s.stats.refused[-CAIRN_ESHUTDOWN] = 6;
	s.stats.refused[-CAIRN_EUNREACHABLE] = 2;
	render(&s, buf, &e);
	const char *const refused = "cairn_relay_requests_refused_total";
	const char *const failed = "cairn_relay_requests_failed_total";
	assert_true(expo_get(&e, refused, "cause=\"quota\"") == 3);
	assert_true(expo_get(&e, refused, "cause=\"full\"") == 4);
	assert_true(expo_get(&e, refused, "cause=\"denied\"") == 0);
	assert_true(expo_get(&e, refused, "cause=\"storage\"") < 0);
	assert_true(expo_get(&e, refused, "cause=\"shutdown\"") < 0);
	assert_true(expo_get(&e, refused, "cause=\"unreachable\"") < 0);
	assert_true(expo_get(&e, failed, "cause=\"storage\"") == 5);
	assert_true(expo_get(&e, failed, "cause=\"shutdown\"") == 6);
	assert_true(expo_get(&e, failed, "cause=\"unreachable\"") == 2);
	assert_true(expo_get(&e, failed, "cause=\"quota\"") < 0);
	double sum = 0;
	for (size_t i = 0; i < e.n; i++)
		if (strcmp(e.s[i].name, refused) == 0)
			sum += e.s[i].value;
	assert_true(sum == 7); /* quota and full, nothing else */

	char out[4096];
	status_text(buf, out, sizeof(out));
	assert_non_null(strstr(out, "refused            quota 3, full 4\n"));
	assert_non_null(strstr(out, "failed             storage 5, shutdown 6, unreachable 2\n"));
}

/* As the relay's figures grow, no counter's sample goes down between two renders. */
static void test_counters_monotonic(void **state)
{
	(void)state;
	static char buf[METRICS_TEXT_MAX];
	static struct expo before, after;
	struct metrics_snapshot s;
	fill(&s, 3);
	render(&s, buf, &before);
	fill(&s, 4);
	render(&s, buf, &after);
	size_t counters = 0;
	for (size_t i = 0; i < before.n; i++) {
		const struct expo_sample *b = &before.s[i];
		const struct expo_family *f = expo_family(&before, b->name);
		bool counter = f != NULL && strcmp(f->type, "counter") == 0;
		bool hist = f == NULL; /* a histogram's _bucket, _sum or _count */
		if (!counter && !hist)
			continue;
		counters++;
		double a = expo_get(&after, b->name, b->labels);
		if (a < b->value)
			fail_msg("%s{%s} went from %g to %g", b->name, b->labels, b->value, a);
	}
	assert_true(counters > 40);
}

/* The largest figures still fit the listener's fixed buffer; a small one is refused whole. */
static void test_bounds(void **state)
{
	(void)state;
	static char buf[METRICS_TEXT_MAX];
	static struct expo e;
	struct metrics_snapshot s;
	memset(&s, 0xff, sizeof(s));
	s.started = 0;
	s.now = INT64_MAX;
	s.disk_low = true;
	s.connections_https = 0;
	/* Sums a real relay cannot reach, but the buckets' total wraps: keep it out of it. */
	memset(s.storage.latency, 0, sizeof(s.storage.latency));
	memset(s.storage.batch, 0, sizeof(s.storage.batch));
	s.storage.latency[0] = s.storage.batch[0] = UINT64_MAX;
	render(&s, buf, &e);
	char small[512];
	assert_int_equal(metrics_render(&s, small, sizeof(small)), CAIRN_ENOBUFS);
}

static void test_listen_addresses(void **state)
{
	(void)state;
	struct metrics_addr a;
	char err[300];
	assert_int_equal(metrics_addr_parse("127.0.0.1:9464", &a, err, sizeof(err)), 0);
	assert_false(a.unix_socket);
	assert_string_equal(a.host, "127.0.0.1");
	assert_int_equal(a.port, 9464);
	assert_int_equal(metrics_addr_parse("127.3.4.5:1", &a, err, sizeof(err)), 0);
	assert_int_equal(metrics_addr_parse("[::1]:9464", &a, err, sizeof(err)), 0);
	assert_string_equal(a.host, "::1");
	assert_int_equal(metrics_addr_parse("localhost:9464", &a, err, sizeof(err)), 0);
	assert_int_equal(metrics_addr_parse("unix:/run/cairn/metrics.sock", &a, err, sizeof(err)),
	                 0);
	assert_true(a.unix_socket);
	assert_string_equal(a.path, "/run/cairn/metrics.sock");
	static const char *const refused[] = {
	    "0.0.0.0:9464",    "192.168.1.10:9464",
	    "[::]:9464",       "[2001:db8::1]:9464",
	    "example.org:1",   "128.0.0.1:9464",
	    "127.0.0.1",       "127.0.0.1:0",
	    "127.0.0.1:65536", ":9464",
	    "unix:relative",   "[::ffff:127.0.0.1]:1",
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (metrics_addr_parse(refused[i], &a, err, sizeof(err)) != CAIRN_EINVAL)
			fail_msg("accepted %s", refused[i]);
	assert_int_equal(metrics_addr_parse("10.0.0.1:9464", &a, err, sizeof(err)), CAIRN_EINVAL);
	assert_non_null(strstr(err, "not a loopback address"));
}

/* The listener's decoder: complete at the empty line, GET and HEAD of / or /metrics only. */
static void test_route(void **state)
{
	(void)state;
	static const struct {
		const char *head;
		enum metrics_route want;
	} cases[] = {
	    {"GET /metrics HTTP/1.0\r\n\r\n", METRICS_ROUTE_GET},
	    {"GET / HTTP/1.1\nHost: x\n\n", METRICS_ROUTE_GET},
	    {"HEAD /metrics HTTP/1.0\r\n\r\n", METRICS_ROUTE_HEAD},
	    {"GET /metrics HTTP/1.0\r\n", METRICS_ROUTE_INCOMPLETE},
	    {"GET /metrics HTTP/1.0\r\nHost: x\r\n\r", METRICS_ROUTE_INCOMPLETE},
	    {"GET /metricsx HTTP/1.0\r\n\r\n", METRICS_ROUTE_NOT_FOUND},
	    {"GET /metrics/../x HTTP/1.0\r\n\r\n", METRICS_ROUTE_NOT_FOUND},
	    {"POST /metrics HTTP/1.0\r\n\r\n", METRICS_ROUTE_BAD_METHOD},
	    {"\r\n\r\n", METRICS_ROUTE_BAD_METHOD},
	    {"get /metrics HTTP/1.0\n\n", METRICS_ROUTE_BAD_METHOD},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (metrics_route(cases[i].head, strlen(cases[i].head)) != cases[i].want)
			fail_msg("case %zu: %s", i, cases[i].head);
}

/* The config file refuses a non-loopback listener, naming the key and the line. */
static void test_config_refuses(void **state)
{
	(void)state;
	char path[] = "/tmp/cairn-test-metrics-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	static const char text[] = "[metrics]\nlisten = 0.0.0.0:9464\n";
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	close(fd);
	struct relay_config cfg;
	relay_config_defaults(&cfg);
	assert_string_equal(cfg.metrics_listen, ""); /* off by default */
	char err[512];
	assert_int_equal(relay_config_load(&cfg, path, err, sizeof(err)), CAIRN_EINVAL);
	assert_non_null(strstr(err, ":2:"));
	assert_non_null(strstr(err, "[metrics] listen"));
	assert_non_null(strstr(err, "loopback"));
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("[metrics]\nlisten = unix:/tmp/m.sock\n", f);
	fclose(f);
	assert_int_equal(relay_config_load(&cfg, path, err, sizeof(err)), 0);
	assert_string_equal(cfg.metrics_listen, "unix:/tmp/m.sock");
	unlink(path);
}

/* `cairn-relay status` prints the rendered figures for a person. */
static void test_status_print(void **state)
{
	(void)state;
	static char buf[METRICS_TEXT_MAX];
	struct metrics_snapshot s;
	fill(&s, 1);
	s.stats.refused[4] = 1234567;
	assert_true(metrics_render(&s, buf, sizeof(buf)) > 0);
	char out[4096];
	status_text(buf, out, sizeof(out));
	assert_non_null(strstr(out, "envelopes stored   1,234 (5.6 MiB)\n"));
	assert_non_null(strstr(out, "quota 1,234,567"));
	assert_non_null(strstr(out, "connections        3 (direct 2, https 1)\n"));
	assert_non_null(strstr(out, "32.0 GiB free"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid_exposition),
	    cmocka_unit_test(test_refusals_by_cause),
	    cmocka_unit_test(test_counters_monotonic),
	    cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_listen_addresses),
	    cmocka_unit_test(test_route),
	    cmocka_unit_test(test_config_refuses),
	    cmocka_unit_test(test_status_print),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
