/* SPDX-License-Identifier: MIT */
/*
 * An in-memory relay for in-process tests of libcairn: the relay's own command layer
 * (relay/commands.c and the modules it needs, against fuzz/memstorage.c) behind proto/channel
 * responders, serving one end of a socketpair per client connection on a thread of its own,
 * so that blocking libcairn calls (cairn_sync, cairn_send) run against it unchanged. No
 * process, no TCP, no disk.
 *
 * A client reaches it through memrelay_env: a client_env (client/env.h) whose connect finds the
 * relay by the fake HOST:PORT of its address (memrelay_address) in a registry of running
 * memrelays, makes a socketpair and hands the relay its end. A relay can be taken "down"
 * (connects fail with CAIRN_ECONNECT, open connections are dropped) and brought back, for
 * failover tests, and reports counters a test can assert on.
 *
 * Every piece of relay state lives on the relay's thread; the test's thread reaches it only
 * through the functions below, which take the relay's lock. Storage batches run after each
 * round of input (the storage thread's role, done inline), and AUTH's signature check runs
 * inline too: replies come in the order the real relay gives them, at once.
 */
#ifndef CAIRN_TEST_MEMRELAY_H
#define CAIRN_TEST_MEMRELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cairn/address.h"

struct client_env;
struct memrelay;

/* What the relay holds and has done, as of its last round of work. */
struct memrelay_stats {
	size_t mailboxes;          /* mailboxes that exist */
	size_t stored;             /* envelopes in the store (committed, not deleted) */
	uint64_t accepted;         /* SENDs accepted (envelopes_accepted) */
	uint64_t delivered;        /* ENVELOPE deliveries */
	uint64_t acknowledged;     /* envelopes acknowledged */
	uint64_t appended;         /* group log entries appended (LOG_APPEND accepted) */
	unsigned connections;      /* connections accepted since memrelay_new */
	unsigned open_connections; /* open now */
};

/*
 * Starts a relay with the X25519 key pair whose private half is PRIVATE_KEY (32 bytes,
 * copied), or a fresh one when NULL, and registers it under a fake host:port no other
 * memrelay of this process has. Returns owned (free with memrelay_free), or NULL.
 */
struct memrelay *memrelay_new(const uint8_t *private_key);

/* Stops R's thread, closes its connections, frees everything. Accepts NULL. */
void memrelay_free(struct memrelay *r);

/* R's address, "cairn://<key>@<fake host>:<port>" (borrowed, valid until memrelay_free). */
const char *memrelay_address(const struct memrelay *r);

/*
 * A client_env connect (env.h) that reaches the memrelay registered under HOST:PORT: *FD
 * receives the client's end of a new socketpair (non-blocking, close-on-exec), the relay
 * serves the other. Returns CAIRN_ECONNECT when no memrelay has that address or it is down,
 * CAIRN_ENOTFOUND for an ATTEMPT past the first (a memrelay has one address). CTX and NUMERIC
 * are not used. Thread-safe.
 */
int memrelay_connect(void *ctx, const char *host, uint16_t port, bool numeric, int attempt,
                     int *fd);

/* The real environment (env_default) with memrelay_connect in place of TCP. */
void memrelay_env(struct client_env *env);

/*
 * As memrelay_env, with a monotonic clock that jumps ahead (a second per reading)
 * whenever every memrelay is idle: its thread waits with nothing to do and no byte is in
 * flight on any of its connections, either way. Then nothing can arrive until the client
 * acts, so a wait that only a timeout ends (cairn_sync's quiet period, backoff) ends at once,
 * and the outcome is what the real clock would give, only sooner. The wall clock is real.
 * That holds for one client thread at a time: a second thread reading the clock while it
 * waits (a listener) makes it jump through the first one's deadlines while that one is still
 * computing, between two relay events. Give such a first thread memrelay_env.
 */
void memrelay_env_skipping(struct client_env *env);

/*
 * DOWN: connects to R fail from now on, and every open connection of R is closed before this
 * returns (its subscriptions end, as when a relay's network goes away). Not DOWN: R accepts
 * connections again, with everything it stored.
 */
void memrelay_set_down(struct memrelay *r, bool down);

/*
 * The next envelope R accepts is stored, but every connection of R is dropped before the OK
 * goes out: the sender cannot know that it arrived (a relay whose network failed, or that
 * crashed, just after its commit). For duplicate-delivery tests.
 */
void memrelay_cut_after_send(struct memrelay *r);

/* The same for the next group log entry R appends (LOG_APPEND, docs/PROTOCOL.md 5.9): it is
 * durable, and the APPENDED never goes out. */
void memrelay_cut_after_append(struct memrelay *r);

/* R's counters as of the end of its last round, which precedes every reply it wrote: once a
 * client saw a reply, the counters include what led to it. */
void memrelay_stats(struct memrelay *r, struct memrelay_stats *out);

#endif
