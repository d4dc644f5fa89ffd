/* SPDX-License-Identifier: MIT */
/*
 * `cairn-relay status` (status.h): reads back the exposition text, picks the figures by name,
 * and prints aligned lines with thousands separators and binary units.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/error.h"
#include "metrics.h"
#include "metrics_client.h"
#include "status.h"

#define STATUS_TIMEOUT_MS 5000

/* The value of the sample NAME (with its labels, exactly as rendered) in TEXT, or 0. */
static double sample(const char *text, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = text; p != NULL && *p != '\0';) {
		if (strncmp(p, name, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return 0;
}

static uint64_t count(const char *text, const char *name)
{
	char full[128];
	snprintf(full, sizeof(full), "cairn_relay_%s", name);
	double v = sample(text, full);
	return v > 0 ? (uint64_t)v : 0;
}

/* V with thousands separators: 1234567 -> "1,234,567". */
static const char *thousands(uint64_t v, char out[32])
{
	char digits[24];
	int n = snprintf(digits, sizeof(digits), "%" PRIu64, v);
	size_t o = 0;
	for (int i = 0; i < n; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			out[o++] = ',';
		out[o++] = digits[i];
	}
	out[o] = '\0';
	return out;
}

/* V bytes in binary units: "5.6 MiB". */
static const char *bytes(uint64_t v, char out[32])
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	double x = (double)v;
	size_t u = 0;
	while (x >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		x /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, 32, "%" PRIu64 " B", v);
	else
		snprintf(out, 32, "%.1f %s", x, units[u]);
	return out;
}

static const char *duration(uint64_t s, char out[32])
{
	if (s >= 86400)
		snprintf(out, 32, "%" PRIu64 "d %" PRIu64 "h", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(out, 32, "%" PRIu64 "h %" PRIu64 "m", s / 3600, s % 3600 / 60);
	else
		snprintf(out, 32, "%" PRIu64 "m %" PRIu64 "s", s / 60, s % 60);
	return out;
}

/* The line of requests WHAT ("refused" or "failed", FAILED as metrics_cause_failed) with
 * each cause that is not 0: "refused            quota 1, denied 2", or " none". */
static void print_causes(const char *text, FILE *out, const char *what, bool failed)
{
	char a[32];
	fprintf(out, "%-18s", what);
	bool any = false;
	for (size_t i = 1; i < RELAY_WIRE_CODES; i++) {
		if (metrics_cause_names[i] == NULL || metrics_cause_failed(i) != failed)
			continue;
		char name[96];
		snprintf(name, sizeof(name), "requests_%s_total{cause=\"%s\"}", what,
		         metrics_cause_names[i]);
		uint64_t v = count(text, name);
		if (v > 0)
			fprintf(out, "%s %s %s", any ? "," : "", metrics_cause_names[i],
			        thousands(v, a));
		any = any || v > 0;
	}
	fprintf(out, "%s\n", any ? "" : " none");
}

void relay_status_print(const char *text, FILE *out)
{
	char a[32], b[32], c[32], d[32];
	const char *version = strstr(text, "cairn_relay_build_info{version=\"");
	char ver[32] = "?";
	if (version != NULL) {
		version += strlen("cairn_relay_build_info{version=\"");
		size_t n = strcspn(version, "\"\n");
		snprintf(ver, sizeof(ver), "%.*s", (int)(n < 31 ? n : 31), version);
		for (char *p = ver; *p != '\0'; p++)
			if (*p < 0x20 || *p > 0x7e)
				*p = '?';
	}
	fprintf(out, "%-18s %s, up %s\n", "relay", ver, duration(count(text, "uptime_seconds"), a));
	uint64_t direct = count(text, "connections{transport=\"direct\"}");
	uint64_t https = count(text, "connections{transport=\"https\"}");
	fprintf(out, "%-18s %s (direct %s, https %s)\n", "connections",
	        thousands(direct + https, a), thousands(direct, b), thousands(https, c));
	fprintf(out, "%-18s %s accepted, %s failed\n", "handshakes",
	        thousands(count(text, "handshakes_accepted_total"), a),
	        thousands(count(text, "handshakes_failed_total"), b));
	fprintf(out, "%-18s %s\n", "mailboxes", thousands(count(text, "mailboxes"), a));
	fprintf(out, "%-18s %s (%s)\n", "envelopes stored",
	        thousands(count(text, "envelopes_stored"), a),
	        bytes(count(text, "envelope_bytes_stored"), b));
	fprintf(out, "%-18s %s accepted, %s delivered, %s acknowledged, %s expired\n", "envelopes",
	        thousands(count(text, "envelopes_accepted_total"), a),
	        thousands(count(text, "envelopes_delivered_total"), b),
	        thousands(count(text, "envelopes_acknowledged_total"), c),
	        thousands(count(text, "envelopes_expired_total"), d));
	print_causes(text, out, "refused", false);
	print_causes(text, out, "failed", true);
	fprintf(out, "%-18s %s (%s entries, %s)\n", "group logs", thousands(count(text, "logs"), a),
	        thousands(count(text, "log_entries_stored"), b),
	        bytes(count(text, "log_bytes_stored"), c));
	uint64_t commits = count(text, "commit_duration_seconds_count");
	double lat = sample(text, "cairn_relay_commit_duration_seconds_sum");
	double writes = sample(text, "cairn_relay_commit_batch_size_sum");
	fprintf(out, "%-18s %s, %.1f ms and %.1f writes each on average\n", "commits",
	        thousands(commits, a), commits > 0 ? lat * 1000 / (double)commits : 0.0,
	        commits > 0 ? writes / (double)commits : 0.0);
	fprintf(out, "%-18s %s jobs\n", "storage queue",
	        thousands(count(text, "storage_queue_depth"), a));
	fprintf(out, "%-18s store %s, %s free%s\n", "disk", bytes(count(text, "store_bytes"), a),
	        bytes(count(text, "disk_free_bytes"), b),
	        count(text, "disk_low") > 0 ? " (LOW: new envelopes are refused)" : "");
}

int relay_status(const struct relay_config *cfg, FILE *out, char *err, size_t errcap)
{
	if (cfg->metrics_listen[0] == '\0') {
		snprintf(err, errcap,
		         "metrics are off: set [metrics] listen (e.g. 127.0.0.1:9464) in the "
		         "config and restart the relay");
		return CAIRN_EINVAL;
	}
	struct metrics_addr a;
	char why[300];
	if (metrics_addr_parse(cfg->metrics_listen, &a, why, sizeof(why)) != 0) {
		snprintf(err, errcap, "[metrics] listen: %s", why);
		return CAIRN_EINVAL;
	}
	char *body = NULL;
	int rc = metrics_fetch(&a, STATUS_TIMEOUT_MS, &body, why, sizeof(why));
	if (rc != 0) {
		if (rc == CAIRN_ECONNECT)
			snprintf(err, errcap,
			         "no relay answers at %s (%s): is it running, with this config?",
			         cfg->metrics_listen, why);
		else
			snprintf(err, errcap, "cannot read the metrics at %s: %s",
			         cfg->metrics_listen, why);
		return rc;
	}
	relay_status_print(body, out);
	free(body);
	return 0;
}
