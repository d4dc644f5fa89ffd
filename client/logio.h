/* SPDX-License-Identifier: MIT */
/*
 * The transport of group logs (docs/PROTOCOL.md 5.9 and 9.9): the group outbox's transport
 * side (group_out.c: listing what waits, marking it done) and carrying it over relay
 * connections (logio.c), reading the logs a logio_handler (group_io.h) lists and handing it
 * every entry in log order. Not part of the public API.
 */
#ifndef CAIRN_CLIENT_LOGIO_H
#define CAIRN_CLIENT_LOGIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "group_io.h"
#include "records.h"

/* ---- the group outbox, the transport's side (group_out.c) ---- */

/* The two digests of LOG_CREATE (PROTOCOL.md 5.9) for LOG and DELETE_SECRET. */
void group_log_digests(const struct group_log_ref *log,
                       const uint8_t delete_secret[CAIRN_CREDENTIAL_LEN],
                       uint8_t credential_digest[CAIRN_CREDENTIAL_LEN],
                       uint8_t delete_digest[CAIRN_CREDENTIAL_LEN]);

/* Calls CB with every queued item (borrowed for the call) in queue order, only those for
 * RELAY unless it is NULL. CB returns 0 to go on, anything else to stop (returned). */
typedef int (*group_out_cb)(void *ctx, const struct group_out_item *g);
CAIRN_WARN_UNUSED int group_out_list(struct cairn *c, const char *relay, group_out_cb cb,
                                     void *ctx);

/* How many items wait (*N). Returns 0 or a store error. */
CAIRN_WARN_UNUSED int group_out_count(struct cairn *c, unsigned *n);

/* The relay confirmed item OUT_ID: it leaves the queue (absent is not an error). Inside the
 * caller's transaction, if any. */
CAIRN_WARN_UNUSED int group_out_done(struct cairn *c, const uint8_t out_id[16]);

/* Drops every queued item of log LOG_ID (the log is gone: none of them can land). */
CAIRN_WARN_UNUSED int group_out_drop_log(struct cairn *c, const uint8_t log_id[CAIRN_LOG_ID_LEN]);

/* ---- carrying the logs over relay connections (logio.c) ---- */

struct pollfd;
struct logio;

/* What a pass did, for the caller and the tests. */
struct logio_result {
	unsigned sent;     /* outbox items the relays confirmed */
	unsigned refused;  /* appends refused for now (`quota`, `full`, other codes): queued */
	unsigned gone;     /* logs reported gone */
	unsigned entries;  /* entries handed to the handler */
	unsigned failures; /* handler calls that failed (offered again later) */
	unsigned relays_failed;
};

/*
 * A transport for C's group logs with handler H (CTX its context), not yet connected.
 * FOLLOW: reads stay open (the engine); else each read ends at END and the transport is done
 * once everything is answered (a sync pass). Returns 0, CAIRN_EINVAL or CAIRN_ENOMEM; *OUT is
 * owned (logio_free).
 */
CAIRN_WARN_UNUSED int logio_new(struct cairn *c, const struct logio_handler *h, void *ctx,
                                bool follow, struct logio **out);

/* Closes every connection and frees L. Accepts NULL. */
void logio_free(struct logio *l);

/*
 * One step, without waiting: lists the logs and the outbox when due, connects, sends, and
 * handles what the relays sent (on the descriptors FDS says are ready; a descriptor not listed
 * counts as ready). Returns 0 or a local error (out of memory, the store).
 */
CAIRN_WARN_UNUSED int logio_step(struct logio *l, const struct pollfd *fds, size_t n);

/* Adds L's descriptors to FDS (up to CAP; *N counts every one, even past CAP) and lowers *AT
 * (monotonic ms) to L's next deadline. */
void logio_fds(const struct logio *l, struct pollfd *fds, size_t cap, size_t *n, int64_t *at);

/* A sync pass: everything sent and every read ended (or its relay failed). */
bool logio_done(const struct logio *l);

/* What L did so far. */
const struct logio_result *logio_result(const struct logio *l);

/* New outbox items: sent at the next step (client_engine_wake calls it). */
void logio_wake(struct logio *l);

/* The handler's set of logs changed (a move): re-listed at the next step. */
void logio_relist(struct logio *l);

/*
 * The blocking pass (as cairn_sync): sends C's group outbox and reads every log H lists to
 * its end, with poll() around the steps. Returns 0 (*RES says what happened; a relay that
 * failed leaves its items queued), CAIRN_ESTATE while C's engine runs, or a local error.
 */
CAIRN_WARN_UNUSED int logio_sync(struct cairn *c, const struct logio_handler *h, void *ctx,
                                 struct logio_result *res);

/* For the group state: its set of logs changed (a move); a running engine re-lists them. */
void logio_logs_changed(struct cairn *c);

#endif
