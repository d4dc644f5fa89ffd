/* SPDX-License-Identifier: MIT */
/*
 * What the command layer's modules share; nothing outside the layer includes this (conn.c
 * sees only port.h, server.c only commands.h). The layer, top to bottom, each calling only
 * downwards:
 *
 *   commands.c   the handlers, the handler table (port.h) and per-connection events
 *   load.c       start-up: the index rebuilt from the store
 *   expiry.c     coarse times, expiry marks, touched times, removing mailboxes and envelopes
 *   delivery.c   windowed in-order delivery, read-ahead, the end of a subscription
 *   envelope.c   an envelope's life in memory: write, park, cancel, delete, free
 *   ids.c        envelope ids reserved by a durable mark
 *   peer.c       per-connection state, replies through the port, requests to the store
 *
 * Loop thread only.
 */
#ifndef CAIRN_RELAY_COMMAND_LAYER_H
#define CAIRN_RELAY_COMMAND_LAYER_H

#include <stdbool.h>
#include <stdint.h>

#include "admission.h"
#include "codec.h"
#include "envelope.h"
#include "mailbox.h"
#include "storage.h"

struct conn;
struct relay;

/* A forwarded command's reply waits to be sealed (docs/PROTOCOL.md 5.11; forwarded.c): the
 * FORWARDED's request id, which the inner command runs under, and the reply key. */
struct sealed_slot {
	uint32_t request_id;
	uint8_t k_rep[CAIRN_KEY_LEN];
};

/* A connection's group log reads in progress (logcmd.c, logread.c), a block of its own: made
 * with its first read and freed once it has no read and no read batch out, so that a
 * connection that reads no log (most: an idle one) holds none of it. Its capacity is implied
 * by LEN (grow_block). */
struct peer_reads {
	uint32_t len;
	uint32_t waiting; /* of them, waiting for the relay's read batches: read no more */
	uint32_t batches; /* log read batches out for its reads, ended ones' included */
	struct log_reader *r[];
};

/* A connection's forwarded commands whose reply waits to be sealed (peer.c), LEN of them; the
 * block stays until the connection's memory goes (peer_seal_free). */
struct peer_seals {
	uint32_t len;
	struct sealed_slot slot[];
};

/*
 * The command layer's state of one connection (port.h): what it may manage and what it is
 * subscribed to. Lives in the connection's memory (the handler's open to free), so a request
 * that holds a reference on the connection may use it after the connection closed.
 */
struct peer {
	struct relay *relay;
	struct conn *conn;        /* opaque: reached only through relay->port */
	struct peer *prev, *next; /* relay->peers, while the connection is open */
	uint64_t *authed;         /* store ids of mailboxes this connection may manage */
	struct mailbox **subs;    /* mailboxes this connection is subscribed to */
	/* Where AUTHED and SUBS point while they hold one entry (grow_array): most connections
	 * manage one mailbox, and an array of their own would cost a malloc chunk each. */
	uint64_t authed_one;
	struct mailbox *subs_one;
	struct peer_reads *reads; /* NULL while it reads no group log */
	/* Forwarded commands run under their FORWARDED's request id: their OK or ERROR is
	 * sealed into SEALED (peer_reply). At most inflight_requests + 1. NULL before the first. */
	struct peer_seals *sealed;
	/* While forwarded.c runs a BUNDLED opened from a bundle item: the seal's E (borrowed).
	 * A BUNDLED that arrives without it came outside a seal: `bad request` (5.12). */
	const uint8_t *bundle_e;
	struct admission_budget budget; /* CREATE/SECURE/LOG_CREATE */
	uint32_t inflight;              /* requests waiting for the storage thread */
	uint32_t authed_len;
	uint32_t subs_len;
	/* FORWARDs of this connection waiting for their destination (at most [forward]
	 * per_connection <= 65,536) and whether the connection is open: one word, so that struct
	 * peer is 120 bytes (a relay holds one per connection, in the connection's allocation:
	 * docs/PERFORMANCE.md). */
	uint32_t forwards : 31;
	uint32_t open : 1;
};

/* A storage job for a request that is not an envelope's own write. */
struct request {
	struct storage_job job;
	struct relay *relay;
	struct peer *peer; /* holds a reference on its connection; NULL for the relay's own jobs */
	uint32_t request_id;
	struct store_mailbox rec;
	struct store_log log; /* STORE_LOG_PUT's record (logcmd.c) */
	uint64_t *ids; /* STORE_MAILBOX_DELETE's and STORE_LOG_DELETE's entry ids, freed with it */
};

/* ---- peer.c ---------------------------------------------------------------------------- */

/* Queues reply M (or an OK, or an ERROR with CODE, a CAIRN_E* code in the wire range) to P's
 * connection, through the relay's port: dropped if it has closed. */
void peer_reply(struct peer *p, const struct cairn_msg *m);
void peer_reply_ok(struct peer *p, uint32_t request_id);
void peer_reply_error(struct peer *p, uint32_t request_id, int code);
/* The OK or ERROR of P's command REQUEST_ID will be sealed with K_REP into a SEALED reply
 * (instead of sent as it is): 0, or CAIRN_ELIMIT / CAIRN_ENOMEM (nothing registered). */
int peer_seal_next(struct peer *p, uint32_t request_id, const uint8_t k_rep[static CAIRN_KEY_LEN]);
/* Wipes and frees P's waiting reply keys (its memory goes). */
void peer_seal_free(struct peer *p);
/* A request of P's waits for the store: P and its connection stay in memory, and it counts
 * against inflight_requests, until peer_release (which may free P). */
void peer_hold(struct peer *p);
void peer_release(struct peer *p);
/* Whether P may manage mailbox STORE_ID; granting adds it (CAIRN_ELIMIT when P manages
 * mailboxes_per_connection already, CAIRN_ENOMEM). */
bool peer_is_authed(const struct peer *p, uint64_t store_id);
int peer_grant(struct peer *p, uint64_t store_id);
/* Makes room for element LEN of *ARRAY (ELEM bytes each, at most MAX): 0 or CAIRN_ENOMEM. */
int grow_array(void **array, size_t elem, uint32_t len, uint32_t max);
/* The same for an array that starts in ONE, one element of the caller's own struct, until it
 * holds two. */
int grow_array_from(void **array, const void *one, size_t elem, uint32_t len, uint32_t max);
/* The same for a block of HEAD bytes followed by its array (struct peer_reads, peer_seals):
 * made, its head zeroed, when *BLOCK is NULL. */
int grow_block(void **block, size_t head, size_t elem, uint32_t len, uint32_t max);

/* A request for P (holding it, NULL for the relay's own) whose job calls DONE, zeroed; NULL
 * when out of memory. A peer's comes from its relay's cache (relay->requests) when that keeps
 * one. request_finish answers P with OK or a storage error and frees R; request_done is a
 * job's DONE that does just that. request_free frees R (what it points to is the caller's):
 * wiped and kept by RELAY's cache while it has room (RELAY NULL: to malloc), so a request
 * made for a peer goes back through here with the peer's relay, read before peer_release. */
struct request *request_new(struct peer *p, uint32_t request_id,
                            void (*done)(struct storage_job *));
void request_finish(struct request *r);
void request_done(struct storage_job *job);
void request_free(struct relay *relay, struct request *r);
/* Hands JOB to the storage thread. */
void relay_submit(struct relay *relay, struct storage_job *job);

/* ---- ids.c ----------------------------------------------------------------------------- */

/* Envelope ids are reserved this many at a time; the next block when half is used. A node of
 * several (relay->node != 0) reserves about a minute of its clock (ids.c). */
#define ID_BLOCK      ((uint64_t)1 << 21)
#define ID_BLOCK_NODE ((uint64_t)60000 << 8)
/* The block RELAY reserves. */
uint64_t ids_block(const struct relay *relay);
/* The one place ids are handed out (envelopes and log entries): the next id, taken, or 0 when
 * none may be yet (the mark ahead of it is not durable: the caller answers `storage`, or
 * `full` when relay->ids_short). Asks for the next block when half of this one is used. */
uint64_t ids_take(struct relay *relay);
/* ID was given by another node (the change feed) or found at load: later ids are above it. */
void ids_seen(struct relay *relay, uint64_t id);
/* Once a second: a node's mark stays ahead of its clock. */
void ids_keep_ahead(struct relay *relay);
/* Asks for the next block (once at a time); relay->on_ids_ready runs when one is durable. */
void reserve_ids(struct relay *relay);
/* Every envelope (and log entry) below NEXT_ID was stored at or before NOW. */
void add_time_mark(struct relay *relay, int64_t now, uint64_t next_id);

/* ---- envelope.c: see envelope.h ----------------------------------------------------- */

/* ---- delivery.c ------------------------------------------------------------------------ */

/* Delivers what MB's subscriber's window and output allow, and reads ahead. */
void deliver(struct relay *relay, struct mailbox *mb);
/* Ends MB's subscription (END with CODE unless CODE < 0), forgetting what was in flight;
 * end_subscription keeps the bodies in memory (a takeover), unsubscribe drops them. */
void end_subscription(struct relay *relay, struct mailbox *mb, int code);
void unsubscribe(struct relay *relay, struct mailbox *mb, int code);

/* ---- expiry.c -------------------------------------------------------------------------- */

/* MB was touched by its owner or a sender now (written at most once a grain). */
void mailbox_touch(struct relay *relay, struct mailbox *mb);
/* Removes MB and its envelopes, answering P's REQUEST_ID once durable (if P is set): 0, or
 * CAIRN_ENOMEM with MB untouched. */
int mailbox_destroy(struct relay *relay, struct mailbox *mb, struct peer *p, uint32_t request_id);
/* MB leaves memory only (its subscriber gets END 0, its envelopes are dropped): what
 * mailbox_destroy does besides the store op, for a delete another node committed. */
void mailbox_forget(struct relay *relay, struct mailbox *mb);
/* Drops every envelope with an id below CUTOFF from memory, then (STORE) queues the one
 * STORE_EXPIRE that removes them on disk; subscribers go on. Returns how many were dropped. */
size_t envelopes_expire_below(struct relay *relay, uint64_t cutoff, bool store);

/* ---- logcmd.c: group logs (docs/PROTOCOL.md 5.9) ---------------------------------------- */

/* Runs M if it is LOG_CREATE, LOG_APPEND, LOG_READ or LOG_DELETE (true), else false. */
bool logs_command(struct peer *p, const struct cairn_msg *m);
/* P's connection closed: its reads end without END. */
void logs_peer_closed(struct peer *p);
/* P's output drained: its reads go on. */
void logs_peer_drained(struct peer *p);
/* The relay stops (storage closed): END `shutdown` to every read, then the registry goes. */
void logs_shutdown(struct relay *relay);
/* Expiry pass at NOW: idle logs, and entries with ids below CUTOFF (0: none this pass). */
void logs_expire(struct relay *relay, int64_t now, uint64_t cutoff);
/* Load callbacks (store_load_cb: log, log_entry; CTX is the relay). */
void logs_load_log(void *ctx, const struct store_log *rec);
void logs_load_entry(void *ctx, const struct store_log_entry_info *info);
/* Another node's commit (the change feed, feed.c): a log put, touched, deleted (its reads
 * end with END 0), an entry put (its followers here read it). What names a log this relay
 * does not hold, or repeats what it holds, changes nothing. */
void logs_apply_put(struct relay *relay, const struct store_log *rec);
/* Entries with ids below CUTOFF leave memory (logs_expire's second half). */
void logs_expire_below(struct relay *relay, uint64_t cutoff);
void logs_apply_touch(struct relay *relay, uint64_t key, int64_t touched);
void logs_apply_delete(struct relay *relay, uint64_t key);
void logs_apply_entry(struct relay *relay, const struct store_log_entry_info *info);

/* ---- forwarded.c: private routing (docs/PROTOCOL.md 5.11) ----------------------------- */

/* FORWARDED: opens M's sealed command off the loop thread, then runs it for P with its reply
 * sealed. FORWARD: the rules of 5.11 (forward.c carries it to the destination). */
void forwarded_command(struct peer *p, const struct cairn_msg *m);
void forward_command(struct peer *p, const struct cairn_msg *m);

/* ---- bundled.c: BUNDLED inside a FORWARDED (docs/PROTOCOL.md 5.12) --------------------- */

/* Rules 1 and 2 of 5.12 for the BUNDLED M, opened from a bundle item whose seal began with
 * E: true to go on to rule 3, else false with P answered (unsealed, under M's request id). */
bool bundle_check(struct peer *p, const struct cairn_msg *m, const uint8_t e[static CAIRN_KEY_LEN]);
/* A new item's pending seen entry and its mark (owned by the caller), or NULL with P
 * answered (`full` at bundle_seen_max, `storage` out of memory). */
struct bundle_mark *bundle_mark_new(struct peer *p, const struct cairn_msg *m,
                                    const uint8_t e[static CAIRN_KEY_LEN]);
/* Forgets MARK's pending seen entry and frees MARK (NULL: nothing): its envelope was not
 * accepted after all. */
void bundle_mark_drop(struct relay *relay, struct bundle_mark *mark);
/* MARK's envelope write is done with STATUS: the seen entry is settled (0) or forgotten. */
void bundle_mark_done(struct relay *relay, const struct bundle_mark *mark, int status);
/* Load callback (store_load_cb bundle_seen; CTX is the relay). */
void bundles_load_seen(void *ctx, const uint8_t e[CAIRN_KEY_LEN], int64_t not_after);
/* Expiry pass at NOW: a bounded sweep of the seen set, and now and then the stored rows. */
void bundles_expire(struct relay *relay, int64_t now);

/* ---- commands.c ------------------------------------------------------------------------ */

/* Sets the fixed values the denied paths work on (at start, once). */
void commands_init_dummies(void);

#endif
