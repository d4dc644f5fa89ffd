/* SPDX-License-Identifier: MIT */
/*
 * The relay's aggregate figures as one snapshot, rendered as Prometheus text and as the
 * `stats:` log line (metrics.h). Rendering is a few dozen snprintf calls into a fixed buffer:
 * a scrape costs the loop microseconds and touches nothing on the hot path.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cairn/error.h"
#include "log.h"
#include "metrics.h"

#ifndef CAIRN_VERSION
#define CAIRN_VERSION "unknown"
#endif

const char *const metrics_cause_names[RELAY_WIRE_CODES] = {
    [1] = "bad_request", [2] = "unknown_command", [3] = "denied",       [4] = "quota",
    [5] = "too_big",     [6] = "limit",           [7] = "storage",      [8] = "shutdown",
    [9] = "full",        [10] = "work",           [11] = "unreachable", [12] = "expired",
};

bool metrics_cause_failed(size_t code)
{
	return code == (size_t)-CAIRN_ESTORAGE || code == (size_t)-CAIRN_ESHUTDOWN ||
	       code == (size_t)-CAIRN_EUNREACHABLE;
}

void metrics_snapshot(const struct relay *relay, struct metrics_snapshot *out)
{
	memset(out, 0, sizeof(*out));
	out->now = relay_now(relay);
	out->started = relay->started;
	out->connections = relay->conn_count;
	out->connections_https = relay->conn_count_https;
	out->mailboxes = relay->mailboxes.count;
	out->envelopes_stored = relay->mailboxes.envelopes;
	out->envelope_bytes = relay->mailboxes.bytes;
	out->logs = relay->logs.count;
	out->log_entries_stored = relay->logs.entries;
	out->log_bytes = relay->logs.bytes;
	out->disk_free = relay->disk_free;
	out->disk_low = relay->disk_low;
	out->stats = relay->stats;
	if (relay->storage != NULL) {
		out->storage_queue = storage_pending(relay->storage);
		storage_metrics(relay->storage, &out->storage);
	}
}

struct text {
	char *buf;
	size_t len, cap;
	bool overflow;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct text *t, const char *fmt, ...)
{
	if (t->overflow)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= t->cap - t->len)
		t->overflow = true;
	else
		t->len += (size_t)n;
}

static void head(struct text *t, const char *name, const char *type, const char *help)
{
	put(t, "# HELP cairn_relay_%s %s\n# TYPE cairn_relay_%s %s\n", name, help, name, type);
}

static void one(struct text *t, const char *name, const char *type, const char *help, uint64_t v)
{
	head(t, name, type, help);
	put(t, "cairn_relay_%s %" PRIu64 "\n", name, v);
}

/* A histogram from per-bucket counts COUNTS[0..N] (N bounds, then above them); bounds are
 * printed as BOUNDS[i] / SCALE. _count is the buckets' sum, so +Inf equals it exactly. */
static void histogram(struct text *t, const char *name, const char *help, const uint64_t *bounds,
                      size_t n, double scale, const uint64_t *counts, double sum)
{
	head(t, name, "histogram", help);
	uint64_t cum = 0;
	for (size_t i = 0; i < n; i++) {
		cum += counts[i];
		put(t, "cairn_relay_%s_bucket{le=\"%g\"} %" PRIu64 "\n", name,
		    (double)bounds[i] / scale, cum);
	}
	cum += counts[n];
	put(t, "cairn_relay_%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, cum);
	put(t, "cairn_relay_%s_sum %.6f\n", name, sum);
	put(t, "cairn_relay_%s_count %" PRIu64 "\n", name, cum);
}

/* One sample per named wire cause that is a failure (FAILED) or a refusal (!FAILED), each
 * always there, so that a rate over a cause that was 0 is defined. */
static void causes(struct text *t, const char *name, const char *help, bool failed,
                   const struct relay_stats *st)
{
	head(t, name, "counter", help);
	for (size_t i = 1; i < RELAY_WIRE_CODES; i++)
		if (metrics_cause_names[i] != NULL && metrics_cause_failed(i) == failed)
			put(t, "cairn_relay_%s{cause=\"%s\"} %" PRIu64 "\n", name,
			    metrics_cause_names[i], st->refused[i]);
}

int metrics_render(const struct metrics_snapshot *s, char *buf, size_t cap)
{
	struct text t = {buf, 0, cap, cap == 0};
	const struct relay_stats *st = &s->stats;
	head(&t, "build_info", "gauge", "The relay's version (always 1).");
	put(&t, "cairn_relay_build_info{version=\"%s\"} 1\n", CAIRN_VERSION);
	one(&t, "start_time_seconds", "gauge", "When the relay started, seconds since the epoch.",
	    (uint64_t)(s->started > 0 ? s->started : 0));
	one(&t, "uptime_seconds", "gauge", "Seconds since the relay started.",
	    (uint64_t)(s->now > s->started ? s->now - s->started : 0));
	head(&t, "connections", "gauge", "Open client connections, by transport.");
	put(&t, "cairn_relay_connections{transport=\"direct\"} %" PRIu32 "\n",
	    s->connections - s->connections_https);
	put(&t, "cairn_relay_connections{transport=\"https\"} %" PRIu32 "\n", s->connections_https);
	one(&t, "handshakes_accepted_total", "counter", "Handshakes completed.",
	    st->handshakes_accepted);
	one(&t, "handshakes_failed_total", "counter", "Handshakes refused (bad, replayed, stale).",
	    st->handshakes_failed);
	one(&t, "handshake_claims_failed_total", "counter",
	    "Handshakes refused because the store could not claim them (several nodes).",
	    st->handshake_claims_failed);
	one(&t, "envelopes_accepted_total", "counter", "Envelopes accepted from senders.",
	    st->envelopes_accepted);
	one(&t, "envelopes_delivered_total", "counter", "Envelopes delivered to subscribers.",
	    st->envelopes_delivered);
	one(&t, "envelopes_acknowledged_total", "counter", "Envelopes acknowledged by owners.",
	    st->envelopes_acknowledged);
	one(&t, "envelopes_expired_total", "counter",
	    "Envelopes deleted unacknowledged at the TTL.", st->envelopes_expired);
	one(&t, "writes_cancelled_total", "counter",
	    "Envelopes acknowledged before they reached the disk.", st->writes_cancelled);
	causes(&t, "requests_refused_total",
	       "Requests refused (the request or a limit said no), by the ERROR's wire code.",
	       false, st);
	causes(&t, "requests_failed_total",
	       "Requests the relay could not serve (storage, shutdown, unreachable), by wire code.",
	       true, st);
	one(&t, "mailboxes", "gauge", "Mailboxes on the relay.", s->mailboxes);
	one(&t, "mailboxes_expired_total", "counter", "Mailboxes deleted, idle for the TTL.",
	    st->mailboxes_expired);
	one(&t, "envelopes_stored", "gauge", "Envelopes held, not yet acknowledged.",
	    s->envelopes_stored);
	one(&t, "envelope_bytes_stored", "gauge", "Bytes of the envelopes held.",
	    s->envelope_bytes);
	one(&t, "logs", "gauge", "Group logs on the relay.", s->logs);
	one(&t, "log_entries_stored", "gauge", "Group log entries held.", s->log_entries_stored);
	one(&t, "log_bytes_stored", "gauge", "Bytes of the group log entries held.", s->log_bytes);
	one(&t, "log_entries_appended_total", "counter", "Group log entries appended.",
	    st->log_entries_appended);
	one(&t, "log_entries_sent_total", "counter", "Group log entries sent to readers.",
	    st->log_entries_sent);
	one(&t, "logs_expired_total", "counter", "Group logs deleted, idle for the TTL.",
	    st->logs_expired);
	one(&t, "store_bytes", "gauge", "Size of the store on disk.", s->storage.disk_bytes);
	one(&t, "storage_queue_depth", "gauge", "Storage jobs submitted and not yet done.",
	    s->storage_queue);
	one(&t, "commits_total", "counter", "Store transactions committed.", s->storage.batches);
	one(&t, "writes_committed_total", "counter", "Writes committed.", s->storage.writes);
	histogram(&t, "commit_duration_seconds", "Time of one commit (transaction and fsync).",
	          storage_latency_bounds_us, STORAGE_LATENCY_BUCKETS, 1e6, s->storage.latency,
	          (double)s->storage.latency_sum_us / 1e6);
	histogram(&t, "commit_batch_size", "Writes per commit (group commit).",
	          storage_batch_bounds, STORAGE_BATCH_BUCKETS, 1.0, s->storage.batch,
	          (double)s->storage.batch_sum);
	one(&t, "disk_free_bytes", "gauge", "Free space on the data directory's disk.",
	    s->disk_free);
	one(&t, "disk_low", "gauge", "1 while free space is below min_free_disk (SEND refused).",
	    s->disk_low ? 1 : 0);
	if (t.overflow)
		return CAIRN_ENOBUFS;
	return (int)t.len;
}

void metrics_log_line(const struct metrics_snapshot *s)
{
	const struct relay_stats *st = &s->stats;
	log_info("stats: connections=%u mailboxes=%" PRIu64 " envelopes_stored=%" PRIu64
	         " accepted=%" PRIu64 " delivered=%" PRIu64 " acknowledged=%" PRIu64
	         " expired=%" PRIu64 " mailboxes_expired=%" PRIu64 " never_written=%" PRIu64
	         " handshakes_failed=%" PRIu64 " refused_full=%" PRIu64 " commits=%" PRIu64
	         " disk_bytes=%" PRIu64 " logs=%" PRIu64 " log_entries_stored=%" PRIu64
	         " log_appended=%" PRIu64 " log_sent=%" PRIu64 " logs_expired=%" PRIu64,
	         s->connections, s->mailboxes, s->envelopes_stored, st->envelopes_accepted,
	         st->envelopes_delivered, st->envelopes_acknowledged, st->envelopes_expired,
	         st->mailboxes_expired, st->writes_cancelled, st->handshakes_failed,
	         st->refused_full, s->storage.batches, s->storage.disk_bytes, s->logs,
	         s->log_entries_stored, st->log_entries_appended, st->log_entries_sent,
	         st->logs_expired);
}
