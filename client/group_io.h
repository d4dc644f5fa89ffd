/* SPDX-License-Identifier: MIT */
/*
 * The seam between a group's state (group*.c: keys, roster, cursor; no I/O) and the transport
 * of group logs (logio.c: LOG_CREATE, LOG_APPEND, LOG_READ on relay connections; docs/
 * PROTOCOL.md 5.9 and 9.9). The state tells the transport what to read and from where, and
 * queues what to write inside its own store transaction; the transport hands back every entry
 * it reads, in log order, and every seq the relay gave an append. Neither includes the other's
 * header beyond this one.
 */
#ifndef CAIRN_CLIENT_GROUP_IO_H
#define CAIRN_CLIENT_GROUP_IO_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/address.h"
#include "cairn/error.h"
#include "cairn/limits.h"

struct cairn;

/* Where a group log is (PROTOCOL.md 9.7's location): a relay, the log's id and the writers'
 * shared credential. */
struct group_log_ref {
	char relay[CAIRN_ADDRESS_MAX + 1];
	uint8_t log_id[CAIRN_LOG_ID_LEN];
	uint8_t credential[CAIRN_CREDENTIAL_LEN];
};

/*
 * What the transport calls. Every function runs on the caller's thread, between network
 * steps, and owns its own store transaction (load, step, store: PROTOCOL.md 9.9's "storing
 * its state durably before it moves the cursor"). Each returns 0 or a negative code; a
 * negative code stops the transport's current pass over that log (the entry is offered again
 * on the next read, from the cursor the state kept).
 */
struct logio_handler {
	/* Calls EACH once per log the client reads now, with the seq to read from (cursor + 1).
	 * A log listed here is read with follow while the transport stays connected. */
	int (*logs)(struct cairn *c, void *ctx,
	            int (*each)(void *each_ctx, const struct group_log_ref *log, uint64_t from_seq),
	            void *each_ctx);
	/* LOG_STATE of a read of LOG: entries below FIRST_SEQ have expired (a gap if above the
	 * reader's from_seq). */
	int (*log_state)(struct cairn *c, void *ctx, const struct group_log_ref *log,
	                 uint64_t first_seq, uint64_t next_seq);
	/* One entry of LOG at SEQ (borrowed for the call), in log order. */
	int (*entry)(struct cairn *c, void *ctx, const struct group_log_ref *log, uint64_t seq,
	             const uint8_t *entry, size_t len);
	/* The queued append OUT_ID (group_out_append) got SEQ: it is durable in its log. */
	int (*appended)(struct cairn *c, void *ctx, const uint8_t out_id[16], uint64_t seq);
	/* LOG is gone (LOG_READ or LOG_APPEND answered `denied`): deleted, or expired. */
	int (*log_gone)(struct cairn *c, void *ctx, const struct group_log_ref *log);
};

/*
 * The group outbox (logio.c): what the state queues inside its own transaction and the
 * transport carries, each item until the relay confirms it, in queue order per log. An entry's
 * bytes are sealed once and re-sent unchanged until APPENDED (PROTOCOL.md 9.9), so a crash or
 * a lost reply never seals a second message under one key.
 */

/* Queues LOG_CREATE of LOG with the two digests of PROTOCOL.md 5.9 (computed from the
 * credential in LOG and DELETE_SECRET), before any append to it. */
CAIRN_WARN_UNUSED int group_out_create(struct cairn *c, const struct group_log_ref *log,
                                       const uint8_t delete_secret[static CAIRN_CREDENTIAL_LEN]);

/* Queues ENTRY (1..CAIRN_LOG_ENTRY_MAX bytes, copied) for LOG; *OUT_ID names it in the
 * handler's appended(). */
CAIRN_WARN_UNUSED int group_out_append(struct cairn *c, const struct group_log_ref *log,
                                       const uint8_t *entry, size_t len, uint8_t out_id[16]);

/* Queues LOG_DELETE of LOG (an old log after a move, PROTOCOL.md 9.7). */
CAIRN_WARN_UNUSED int group_out_delete(struct cairn *c, const struct group_log_ref *log,
                                       const uint8_t delete_secret[static CAIRN_CREDENTIAL_LEN]);

#endif
