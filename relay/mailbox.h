/* SPDX-License-Identifier: MIT */
/*
 * The in-memory mailbox index (loop thread only): every mailbox by recipient id, by sender id
 * and by store id, a list of mailboxes from least to most recently touched (for idle-mailbox
 * expiry), and per mailbox the ids and sizes of its pending envelopes in id order. Envelope bodies
 * live on disk; a body is in memory only while its write is pending or it is being delivered.
 * Rebuilt from the store with one scan at start.
 */
#ifndef CAIRN_RELAY_MAILBOX_H
#define CAIRN_RELAY_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cairn/limits.h"
#include "store.h"

struct envelope; /* envelope.h */
struct mailbox;
struct peer;
struct relay;

/* One pending envelope of a mailbox. */
struct pending {
	uint64_t id;
	uint32_t len;
	bool acked;           /* tombstone: removed, waiting to be trimmed from the front */
	struct envelope *env; /* body in memory, or NULL */
};

/* Fields ordered so that no padding is left and queue positions are 32-bit (a queue holds at
 * most mailbox_max_envelopes live entries, <= 10^7, and as many tombstones again plus a
 * little): a relay holds one per mailbox, and idle memory per connection counts it
 * (docs/PERFORMANCE.md). */
struct mailbox {
	struct store_mailbox rec;
	struct mailbox *next_by_recipient, *next_by_sender, *next_by_store_id;
	struct mailbox *idle_prev, *idle_next; /* the index's list, by rec.touched */
	/* Pending envelopes in id order: a ring of pending, head..head+len. */
	struct pending *q;
	uint64_t bytes; /* their total size */
	/* Delivery. */
	struct peer *subscriber; /* the subscribed connection's command state */
	/* The ring's head, and its capacity's log2 (mailbox_q_cap): one word, so that struct
	 * mailbox is 232 bytes, a 240-byte malloc chunk (a 27-bit head bounds the capacity at
	 * MAILBOX_QUEUE_MAX, four times what the largest mailbox_max_envelopes needs). */
	uint32_t q_head : 27;
	uint32_t q_shift : 5;
	uint32_t q_len;
	uint32_t count;                /* live (not acked) envelopes */
	uint32_t sub_rid;
	uint32_t cursor; /* offset from q_head of the next envelope to deliver */
	uint32_t inflight;
	uint32_t reads; /* storage reads outstanding for delivery */
	/* ACKs since the subscription began: delivery reads ahead past two windows only as far
	 * as the subscriber has shown it takes what it is sent (delivery.c within_reach). */
	uint32_t acks;
};

/* Entries a mailbox's ring holds at most: its head is a 27-bit offset. */
#define MAILBOX_QUEUE_MAX ((size_t)1 << 27)

/* The ring's capacity: 0 before the first envelope, else a power of two. */
static inline uint32_t mailbox_q_cap(const struct mailbox *mb)
{
	return mb->q != NULL ? (uint32_t)1 << mb->q_shift : 0;
}

/* The last SEND credential that mailbox_send_digest hashed: the connection it came from (its
 * handshake hash), the sender id, the credential and their digest. */
struct mailbox_send_memo {
	bool full;
	uint8_t conn[CAIRN_HASH_LEN];
	uint8_t sender_id[CAIRN_MAILBOX_ID_LEN];
	uint8_t credential[CAIRN_CREDENTIAL_LEN];
	uint8_t digest[CAIRN_CREDENTIAL_LEN];
};

struct mailbox_index {
	struct mailbox **by_recipient, **by_sender, **by_store_id;
	size_t buckets; /* power of two */
	/* Least recently touched first: mailbox_add appends, mailbox_touched moves to the end. */
	struct mailbox *idle_head, *idle_tail;
	size_t count;
	uint8_t hash_key[16];
	uint64_t envelopes; /* live envelopes in all mailboxes */
	uint64_t bytes;     /* and their total size (max_stored_bytes) */
	struct mailbox_send_memo last_send; /* wiped with the index */
};

/* Returns 0 or CAIRN_ENOMEM. */
int mailbox_index_init(struct mailbox_index *ix);
/* Frees every mailbox (and its queue) and the tables. Envelopes must already be released. */
void mailbox_index_free(struct mailbox_index *ix);

/* Inserts a copy of REC, as the most recently touched. Returns the new mailbox or NULL (out
 * of memory). */
struct mailbox *mailbox_add(struct mailbox_index *ix, const struct store_mailbox *rec);
/* Unlinks MB from the tables and frees it; its queue must already be emptied by the caller. */
void mailbox_remove(struct mailbox_index *ix, struct mailbox *mb);
struct mailbox *mailbox_by_recipient(const struct mailbox_index *ix,
                                     const uint8_t id[static CAIRN_MAILBOX_ID_LEN]);
struct mailbox *mailbox_by_sender(const struct mailbox_index *ix,
                                  const uint8_t id[static CAIRN_MAILBOX_ID_LEN]);
struct mailbox *mailbox_by_store_id(const struct mailbox_index *ix, uint64_t id);

/*
 * The digest a SEND's credential check compares with its mailbox's (PROTOCOL.md 5.5: BLAKE2b
 * of CREDENTIAL keyed with SENDER_ID), into DIGEST. CONN is the handshake hash of the
 * connection the SEND came from (CAIRN_HASH_LEN bytes, which name it among all connections),
 * or NULL: then it is hashed whatever came before. When the last SEND hashed came from CONN,
 * to the same sender id with the same credential (all compared in constant time), its digest
 * is taken again instead of hashing: a sender's SENDs to one mailbox come in runs, and the
 * hash was a tenth of the relay's CPU per online envelope (docs/PERFORMANCE.md, session 17).
 * Any other SEND replaces the memo, so a connection learns from the time this takes only what
 * it sent itself, and whether another SEND came between two of its own.
 */
void mailbox_send_digest(struct mailbox_index *ix, const uint8_t *conn,
                         const uint8_t sender_id[static CAIRN_MAILBOX_ID_LEN],
                         const uint8_t credential[static CAIRN_CREDENTIAL_LEN],
                         uint8_t digest[static CAIRN_CREDENTIAL_LEN]);

/* The connection whose handshake hash is CONN closed: the memo forgets its credential, if it
 * holds that connection's, so that no credential stays in memory past its connection. */
void mailbox_send_forget(struct mailbox_index *ix, const uint8_t *conn);

/* MB's rec.touched has just moved forward: it becomes the most recently touched. */
void mailbox_touched(struct mailbox_index *ix, struct mailbox *mb);

/* Appends an envelope (ids must increase). Returns 0 or CAIRN_ENOMEM. */
int mailbox_push(struct mailbox_index *ix, struct mailbox *mb, uint64_t id, uint32_t len,
                 struct envelope *env);
/* Inserts an envelope without a body in id order (another node's: ID may be below the last),
 * its offset from head in *POS. Returns 0, CAIRN_EEXIST (ID is queued already: nothing
 * changes) or CAIRN_ENOMEM. The caller moves the delivery cursor if *POS is before it. */
int mailbox_insert(struct mailbox_index *ix, struct mailbox *mb, uint64_t id, uint32_t len,
                   size_t *pos);
/* Position (offset from head) of live envelope ID, or -1. */
long mailbox_find(const struct mailbox *mb, uint64_t id);
/* The pending entry at offset I from head. */
struct pending *mailbox_at(const struct mailbox *mb, size_t i);
/* Marks the entry at offset I acked (updating counts), trims acked entries from the front and
 * compacts the queue when tombstones outnumber live entries, keeping the cursor on the same
 * entry. Returns the entry's env (the caller releases it). Amortised O(1). */
struct envelope *mailbox_ack(struct mailbox_index *ix, struct mailbox *mb, size_t i);
/* Removes every tombstone, keeping the cursor before the same live entries. O(q_len). */
void mailbox_compact(struct mailbox *mb);
/* Moves the delivery cursor back to the head with nothing in flight (a new subscription),
 * compacting first if more than MAX_SKIP tombstones would be walked over: delivery from the
 * head then skips at most MAX_SKIP of them. */
void mailbox_rewind(struct mailbox *mb, size_t max_skip);
/* Drops every live entry with id < CUTOFF from the front, calling DROP for each entry's env
 * (may be NULL). Returns the number of live envelopes dropped. */
size_t mailbox_expire(struct mailbox_index *ix, struct mailbox *mb, uint64_t cutoff,
                      void (*drop)(void *ctx, struct envelope *env), void *ctx);

#endif
