/* SPDX-License-Identifier: MIT */
/*
 * What the relay shows its operator: one snapshot of its aggregate figures (counters, gauges
 * and the storage thread's commit histograms), which both the periodic `stats:` log line and
 * the Prometheus text (exposition format 0.0.4) are made from, so the two cannot disagree.
 * Nothing in it is per mailbox, per address or per user; every label comes from a fixed set.
 *
 * The listener (metrics_http.c) serves that text on loopback or a Unix socket only, on the
 * relay's loop, with small bounds: it is for this machine's Prometheus or `cairn-relay status`.
 */
#ifndef CAIRN_RELAY_METRICS_H
#define CAIRN_RELAY_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "relay.h"
#include "storage.h"

struct metrics_snapshot {
	int64_t now, started; /* wall clock, seconds */
	uint32_t connections, connections_https;
	uint64_t mailboxes, envelopes_stored, envelope_bytes;
	uint64_t logs, log_entries_stored, log_bytes;
	uint64_t disk_free;
	bool disk_low;
	uint64_t storage_queue; /* jobs submitted and not yet done */
	struct relay_stats stats;
	struct storage_metrics storage;
};

/* The wire error codes' names, as the `cause` label (NULL for index 0 and unnamed codes). */
extern const char *const metrics_cause_names[RELAY_WIRE_CODES];

/*
 * Whether an ERROR of wire code CODE is a failure of the relay's own (`storage`, `shutdown`,
 * `unreachable`: it would have served the request, and a client tries again later or
 * elsewhere), counted as requests_failed_total; every other cause is a refusal (the request,
 * its mailbox's or the relay's limits said no), counted as requests_refused_total.
 */
bool metrics_cause_failed(size_t code);

/* Reads RELAY's figures into OUT (loop thread). */
void metrics_snapshot(const struct relay *relay, struct metrics_snapshot *out);

/*
 * Writes S as Prometheus text (exposition format 0.0.4) into BUF of CAP bytes, NUL-terminated.
 * Returns the length, or CAIRN_ENOBUFS if CAP is too small (METRICS_TEXT_MAX always suffices).
 */
#define METRICS_TEXT_MAX 16384
int metrics_render(const struct metrics_snapshot *s, char *buf, size_t cap);

/* Logs S as the one `stats:` line at info level. */
void metrics_log_line(const struct metrics_snapshot *s);

/*
 * Starts serving GET /metrics on cfg->metrics_listen (if set) on RELAY's loop: binds before
 * privileges are dropped, a Unix socket mode 0600 (an existing socket there is replaced).
 * Returns 0 (also when off) or CAIRN_EIO with the reason logged.
 */
int metrics_server_start(struct relay *relay);
/* Closes the listener and every metrics connection, and removes the Unix socket. The memory
 * goes with the handles' close callbacks; call metrics_server_free after the loop has run. */
void metrics_server_stop(struct relay *relay);
void metrics_server_free(struct relay *relay);

#endif
