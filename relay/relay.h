/* SPDX-License-Identifier: MIT */
/*
 * The relay's shared context, owned by the loop thread: configuration, keys, the storage
 * thread, the mailbox index, the connections and the aggregate counters. Every module of the
 * server takes a struct relay *; there are no globals, so tests can run several relays.
 */
#ifndef CAIRN_RELAY_RELAY_H
#define CAIRN_RELAY_RELAY_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <uv.h>

#include "cairn/limits.h"
#include "chanpool.h"
#include "config.h"
#include "grouplog.h"
#include "mailbox.h"
#include "spares.h"
#include "storage.h"
#include "bundleseen.h"
#include "worktable.h"

struct conn;
struct conn_handler;
struct conn_port;
struct conn_task;
struct metrics_server;
struct peer;
struct replay_cache;

/* Wire error codes (include/cairn/error.h, 1..15), plus the unused index 0. */
#define RELAY_WIRE_CODES 16

/* Aggregate counters only: nothing here identifies a user or a mailbox. */
struct relay_stats {
	uint64_t handshakes_failed;
	uint64_t envelopes_accepted;
	uint64_t envelopes_delivered;
	uint64_t envelopes_acknowledged;
	uint64_t envelopes_expired;
	uint64_t mailboxes_expired; /* idle for the TTL */
	uint64_t writes_cancelled;  /* envelopes acknowledged before they reached the disk */
	uint64_t refused_full;      /* CREATEs and SENDs refused because the relay is full */
	uint64_t log_entries_appended;
	uint64_t log_entries_sent;
	uint64_t logs_expired; /* idle for the TTL */
	/* [metrics] (metrics.h) */
	uint64_t handshakes_accepted;
	uint64_t refused[RELAY_WIRE_CODES]; /* ERROR replies by wire code (index 1..15) */
	/* Handshakes refused because the store could not claim them, or too many
	 * claims were waiting (conn.c); counted in handshakes_failed too */
	uint64_t handshake_claims_failed;
};

/* One (time, first envelope id at that time) mark per minute, for TTL expiry by id range. */
struct time_mark {
	int64_t time;
	uint64_t next_id;
};

/*
 * The relay's clock. NOW is the wall clock, in seconds since the epoch: expiry marks, touched
 * times and the handshake's timestamp window read it. NOW_MS is a monotonic reading in
 * milliseconds, for what needs finer steps than a second and must not jump with the wall
 * clock: each connection's CREATE/SECURE budget. NULL means the real clock (time(2); the
 * loop's cached time, uv_now). Tests and the fuzzer set their own, so TTL expiry and budget
 * refills are tested without waiting or link-time tricks.
 */
struct relay_clock {
	int64_t (*now)(void *ctx);
	int64_t (*now_ms)(void *ctx);
	void *ctx;
};

/* Scratch for rebuilding the index at start: mailboxes by store id, for their envelopes. */
struct relay_load {
	struct mailbox **by_id; /* sorted by store id once envelopes start */
	size_t len, cap;
	bool sorted;
};

struct ptserver;
struct relay_policy;

/*
 * Storage requests (struct request, command_layer.h) that connections' commands have finished
 * with, kept for the next ones (relay->requests, proto/spares.h). A CREATE's request (a
 * 608-byte malloc chunk) lives until its write is durable, meanwhile later connections'
 * mailboxes (240-byte chunks) are allocated; given back to malloc, two of those were cut from
 * its hole, stranding 128 bytes too small for anything a connection keeps (docs/PERFORMANCE.md,
 * idle memory).
 */
#define REQUEST_CACHE_SLOTS 1024 /* at most 1,024 x 608 bytes */

struct relay {
	uv_loop_t *loop;
	struct ptserver *obfs4; /* [obfs4]: the managed obfs4proxy (ptserver.h), or NULL */
	struct relay_policy *policy; /* [policy] (relaypolicy.h), or NULL: no policy */
	const struct relay_config *cfg;
	const uint8_t *private_key; /* borrowed, sodium_malloc'd by main */
	struct relay_clock clock;
	uint8_t public_key[CAIRN_KEY_LEN];

	struct storage *storage;
	struct mailbox_index mailboxes;
	struct log_registry logs; /* group logs (grouplog.h, logcmd.c); zeroed = empty */
	struct replay_cache *replay;
	uint64_t next_envelope_id;
	/* Ids below id_limit are covered by a durable mark: handing them out is safe even if the
	 * relay crashes before they reach the disk. Renewed a block ahead (commands.c). */
	uint64_t id_limit;
	bool id_reserving;
	bool ids_short; /* the last mark failed for want of disk space (ids.c) */
	bool ready; /* the first mark is durable: connections are accepted */
	void (*on_ids_ready)(struct relay *relay);
	bool accept_pending; /* a connection arrived before that */
	bool accept_pending_https; /* ...on the HTTPS listener */

	/* Intake mailboxes (docs/PROTOCOL.md 5.10): when this process started by the wall clock
	 * (work with an earlier time is stale, so a restart needs no record of used work), and
	 * the table of used work. */
	int64_t started;
	struct worktable work;

	struct time_mark *marks; /* oldest first */
	size_t marks_len, marks_cap;
	/* The latest wall-clock time read for dating what the relay stores (relay_stamp): a
	 * clock stepped back does not take it back. */
	int64_t stamp_high;

	uv_tcp_t listener;
	uv_tcp_t https_listener; /* [https] listen (PROTOCOL.md 7.2), when set */
	uv_timer_t tick; /* once a second: timeouts, expiry, statistics */
	uv_signal_t sigterm, sigint, sighup;
	uv_check_t flusher; /* after each loop iteration: seal and write pending output */
	uv_timer_t shutdown_timer;

	/* The seam between connections and the command layer (port.h): conn.c calls HANDLER
	 * (commands_handler), the command layer calls PORT (conn_socket_port, or a test's). */
	const struct conn_handler *handler;
	const struct conn_port *port;
	struct peer *peers; /* the command layer's state of every open connection */

	struct conn *conns;                         /* every open connection (doubly linked) */
	struct conn *unopened_head, *unopened_tail; /* no handshake completed yet, oldest first */
	struct conn *flush_head;                    /* connections with output to send */
	uint32_t conn_count;
	uint32_t conn_count_https;      /* of them, on the HTTPS listener (metrics) */
	struct metrics_server *metrics; /* [metrics] listen (metrics.h), or NULL */
	bool stopping;
	int64_t last_stats;

	uint8_t read_buf[65536]; /* the one read buffer: alloc_cb hands it out */
	bool read_buf_busy;

	/* Admission (admission.c): the data directory's free space, sampled once a second off
	 * the loop (which also makes the reserve file, storage.h), and the disk's state. */
	uint64_t disk_free;
	bool disk_low;   /* below min_free_disk */
	bool disk_short; /* a write found no room, or the reserve is missing */
	bool disk_full;  /* disk_low || disk_short: CREATE and SEND are refused (logged once) */
	bool disk_sampling;
	bool disk_failed_while_sampling; /* the sample in flight predates a write's failure */
	uv_work_t disk_work;
	struct disk_sample {
		bool ok;      /* statvfs worked */
		bool reserve; /* the reserve file is whole (made now if it was missing) */
		uint64_t free;
		uint64_t inside; /* given: the room inside the store (storage_free_bytes) */
	} disk_sample;           /* the pool thread's result, read once the work is done */
	int64_t full_warned_ms; /* relay_now_ms of the last "relay is full" warning */
	bool store_failing;     /* the last write failed, not for want of room (logged once) */

	/* Work deferred off the loop thread for a connection (conn_defer), oldest first, and
	 * how much of it is on libuv's thread pool now. */
	struct conn_task *tasks_head, *tasks_tail;
	unsigned tasks_running;

	struct relay_stats stats;
	struct relay_load load;

	/* drain (delivery.c): bytes of the bodies of envelopes made to be read back from the
	 * store (env->read_back), counted from the read's request until the envelope is freed;
	 * [limits] read_ahead_bytes bounds what delivery reads beyond two windows ahead. */
	uint64_t read_back_bytes;

	/* Private routing (docs/PROTOCOL.md 5.11; forwarded.c): what carries a FORWARD to
	 * another relay (NULL: none, every remote FORWARD is `unreachable`), and the FORWARDs
	 * of every connection waiting for their destination. */
	const struct forward_carrier *carrier;
	uint32_t forwards;

	/* Bundles (docs/PROTOCOL.md 5.12; bundled.c): the seen set of items' E, and the
	 * expiry of its stored rows (one job at a time, now and then). */
	struct bundleseen bundles;
	struct storage_job bundle_expire_job;
	bool bundle_expiring;
	int64_t bundle_expired_at;

	/* Several nodes on one store ([store] node != 0) claim each handshake in the
	 * store before they answer it (conn.c): the claims waiting for the storage thread, at
	 * most CONN_CLAIMS_MAX, and whether the last one failed for the store (logged once). */
	uint32_t claims_pending;
	bool claims_failing;
	/* Several nodes on one store (feed.c; docs/SCALING.md 4): this relay's [store] node
	 * (0: alone), and the change feed's reading. FEED_WAKE is woken from any thread by the
	 * engine (store_params feed_wake), FEED_TIMER reads once a second in case a wake was
	 * lost; one read (FEED_JOB) is out at a time, FEED_AGAIN asks for the next one. */
	uint8_t node;
	uv_async_t feed_wake;
	uv_timer_t feed_timer;
	bool feed_handles; /* both initialised (server.c) */
	struct storage_job feed_job;
	bool feed_reading;
	bool feed_again;
	bool feed_failing; /* the last read failed (logged once until one succeeds) */
	/* A CAIRN_E code: this node can no longer follow the feed (feed.c); FEED_LOST (server.c;
	 * NULL in tests) stops the relay, which exits with an error and starts again. */
	int exit_code;
	void (*feed_lost)(struct relay *relay);

	/* Connections' idle buffers (conn.c, proto/chanpool.h): at most CHANNEL_POOL_SLOTS
	 * sets, all freed on a tick that took none and when the last connection closes. */
	struct channel_pool bufpool;
	/* Handshake states of connections that opened, for the next ones (proto/channel.h). */
	struct channel_hs_cache hs_cache;
	/* Connections' storage requests that finished, wiped, for the next ones (peer.c). */
	struct spares requests;
};

/* Seconds since the epoch by RELAY's clock (the loop's cached time is monotonic, not
 * wall-clock). */
static inline int64_t relay_now(const struct relay *relay)
{
	return relay->clock.now != NULL ? relay->clock.now(relay->clock.ctx) : (int64_t)time(NULL);
}

/*
 * The time RELAY dates what it stores by (time marks, the stored_at of envelopes and log
 * entries, touched times): the wall clock, but never earlier than a time already read for
 * that, by the once-a-second expiry pass (commands_expire) or at start from the store. A
 * clock stepped back would otherwise date new envelopes and touches before older ones, and
 * they would expire early (by the step) once the clock is put right. A step forward is kept:
 * what is stored after it is put right expires late by that step, never early. Checks of
 * what a peer says against the clock (the handshake window, work and bundle times) read
 * relay_now instead: a client whose clock matches the relay's must pass them.
 */
static inline int64_t relay_stamp(struct relay *relay)
{
	int64_t now = relay_now(relay);
	if (now > relay->stamp_high)
		relay->stamp_high = now;
	return relay->stamp_high;
}

/* Milliseconds on RELAY's monotonic clock: comparable only with each other. */
static inline int64_t relay_now_ms(const struct relay *relay)
{
	return relay->clock.now_ms != NULL ? relay->clock.now_ms(relay->clock.ctx)
	                                   : (int64_t)uv_now(relay->loop);
}

/* The expiry grain: about a thousand of them span the TTL, whatever it is. */
static inline int64_t expiry_grain(const struct relay *relay)
{
	return (int64_t)relay->cfg->ttl_s / 1000 + 1;
}

/*
 * What the store keeps of a time: T rounded up to the expiry grain. Expiry needs no more, a
 * seized disk shows no more, and rounding up makes expiry late, never early.
 */
static inline int64_t coarse_time(const struct relay *relay, int64_t t)
{
	int64_t g = expiry_grain(relay);
	return t <= 0 ? 0 : (t + g - 1) / g * g;
}

#endif
