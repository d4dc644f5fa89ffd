/* SPDX-License-Identifier: MIT */
/*
 * The storage interface: what the relay needs from a durable engine, so that another engine
 * (LMDB, a distributed SQL store) can be added without touching the server. An engine is
 * driven from one thread only (the storage thread, storage.h); nothing here is thread-safe.
 *
 * Ids are assigned by the relay, not the engine. Envelope ids only grow, so envelope rows
 * append at the right edge of the table and TTL expiry is a range delete; mailbox ids are
 * random, so the store does not show which mailboxes were created together.
 */
#ifndef CAIRN_RELAY_STORE_H
#define CAIRN_RELAY_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cairn/limits.h"

struct store_mailbox {
	uint64_t id; /* the store's key for the mailbox; never on the wire */
	uint8_t recipient_id[CAIRN_MAILBOX_ID_LEN];
	uint8_t sender_id[CAIRN_MAILBOX_ID_LEN];
	uint8_t recipient_key[CAIRN_KEY_LEN];
	uint8_t credential_digest[CAIRN_CREDENTIAL_LEN];
	bool secured;
	/* 0: an ordinary mailbox. Else an intake mailbox (docs/PROTOCOL.md 5.10), which takes
	 * SEND_WORKs with work of this many bits (1..40) and no SEND. */
	uint8_t work_bits;
	/* Last touched by its owner or a sender, rounded up to the expiry grain (commands.c):
	 * what idle-mailbox expiry needs and no more. */
	int64_t touched;
};

/* A group log (docs/PROTOCOL.md 5.9). Its entries share the envelope id space, so STORE_EXPIRE
 * and STORE_ID_MARK cover them too, and an entry's row id grows with its time of arrival. */
struct store_log {
	uint64_t id; /* the store's key for the log; random like a mailbox's, never on the wire */
	uint8_t log_id[CAIRN_LOG_ID_LEN];
	uint8_t credential_digest[CAIRN_CREDENTIAL_LEN];
	uint8_t delete_digest[CAIRN_CREDENTIAL_LEN];
	/* The seq the next append gets. On load it is at least one above every seq the log ever
	 * gave, even when those entries have expired: 5.9 never gives a seq twice. */
	uint64_t next_seq;
	int64_t touched; /* as a mailbox's */
};

struct store_log_entry_info {
	uint64_t id;  /* in the envelope id space */
	uint64_t log; /* the store_log's id */
	uint64_t seq;
	uint32_t len;
	int64_t stored_at;
};

struct store_envelope_info {
	uint64_t id;
	uint64_t mailbox_id;
	uint32_t len;
	int64_t stored_at; /* seconds since the epoch */
};

enum store_op_kind {
	STORE_MAILBOX_PUT,    /* insert MAILBOX */
	STORE_MAILBOX_SECURE, /* set MAILBOX->credential_digest for MAILBOX->id */
	STORE_MAILBOX_INTAKE, /* set MAILBOX->work_bits for MAILBOX->id */
	STORE_MAILBOX_TOUCH,  /* set mailbox MAILBOX_ID's touched time to STORED_AT */
	STORE_MAILBOX_DELETE, /* delete mailbox MAILBOX_ID and its envelopes ENVELOPE_IDS */
	/* insert envelope ENVELOPE_ID of MAILBOX_ID: BODY, LEN, STORED_AT; with BUNDLE_E set
	 * (a BUNDLED's, PROTOCOL.md 5.12), also the seen row (BUNDLE_E, BUNDLE_UNTIL) */
	STORE_ENVELOPE_PUT,
	STORE_ENVELOPE_DELETE, /* delete envelope ENVELOPE_ID of MAILBOX_ID (absent: no error) */
	STORE_EXPIRE,          /* delete every envelope whose id is below ENVELOPE_ID */
	STORE_ID_MARK,         /* no envelope id below ENVELOPE_ID may be handed out again */
	STORE_LOG_PUT,         /* insert LOG */
	STORE_LOG_TOUCH,       /* set log LOG_KEY's touched time to STORED_AT */
	STORE_LOG_DELETE,      /* delete log LOG_KEY and its entries ENVELOPE_IDS */
	/* insert entry ENVELOPE_ID of log LOG_KEY with SEQ: BODY, LEN, STORED_AT; the log's
	 * stored next_seq becomes at least SEQ + 1 (an engine may write it once per batch) */
	STORE_LOG_ENTRY_PUT,
	STORE_BUNDLE_EXPIRE, /* delete every seen row whose BUNDLE_UNTIL is before STORED_AT */
};

struct store_op {
	enum store_op_kind kind;
	const struct store_mailbox *mailbox; /* borrowed */
	uint64_t mailbox_id;
	uint64_t envelope_id;
	const uint8_t *body; /* borrowed */
	uint32_t len;
	int64_t stored_at;
	/* STORE_MAILBOX_DELETE: every envelope of the mailbox the relay holds (borrowed). The
	 * relay knows them, so a delete costs what the mailbox holds, not what the store holds. */
	const uint64_t *envelope_ids;
	size_t n_envelope_ids;
	const struct store_log *log; /* STORE_LOG_PUT, borrowed */
	uint64_t log_key;            /* the store_log's id */
	uint64_t seq;
	const uint8_t *bundle_e; /* STORE_ENVELOPE_PUT: CAIRN_KEY_LEN bytes or NULL, borrowed */
	int64_t bundle_until;    /* its not_after */
	/* STORE_LOG_ENTRY_PUT on a node of several (store_params.node != 0; NULL on a relay
	 * alone): the engine numbers the entry itself, one past the highest seq the log ever
	 * gave, under the log's lock in the batch's transaction (SEQ is ignored), so seqs stay
	 * contiguous and unique whichever node appends, and a batch that fails gives none; the
	 * change-feed row carries that seq. Written here (borrowed) before commit returns 0. */
	uint64_t *assigned_seq;
};

/* Called by load(), once per mailbox in increasing touched order (then id order), then once
 * per envelope in increasing id order, then once per log (increasing touched order), then once
 * per log entry in increasing id order, then (if one was stored, and the callback is set) once
 * with the highest envelope id mark, then once per bundle seen row. A NULL log or log_entry
 * callback skips them. */
struct store_load_cb {
	void (*mailbox)(void *ctx, const struct store_mailbox *mailbox);
	void (*envelope)(void *ctx, const struct store_envelope_info *info);
	void (*log)(void *ctx, const struct store_log *log);
	void (*log_entry)(void *ctx, const struct store_log_entry_info *info);
	void (*id_mark)(void *ctx, uint64_t mark);
	/* Then once per bundle seen row (any order; NULL skips them). */
	void (*bundle_seen)(void *ctx, const uint8_t e[CAIRN_KEY_LEN], int64_t not_after);
};

/* Where an engine's store is. An engine reads the member it needs and ignores the other. */
struct store_params {
	const char *dir;        /* SQLite: the data directory, which holds relay.db */
	const char *connection; /* PostgreSQL: a libpq connection string ([store] connection) */
	/* 0: the only relay on this store (an engine refuses a second one). 1..255: node NODE of
	 * several relays sharing the store ([store] node; an engine without feed_read refuses
	 * it): each commit also writes the batch's ops (feed_codec.h) as one change-feed row,
	 * in the same transaction, and open() refuses a second process with the same NODE, or
	 * any node while a relay with node 0 holds the store (and 0 while nodes do). */
	uint8_t node;
	/* NODE != 0: called from any thread (possibly spuriously) when another node may have
	 * committed rows past what feed_read returned; it only wakes the caller's loop. */
	void (*feed_wake)(void *arg);
	void *feed_wake_arg;
	/* Optional (NULL): where open() writes, NUL-terminated, why it failed when the code
	 * alone would not tell an operator (the database's own message). No user data. */
	char *error;
	size_t error_cap;
};

/* One change-feed row: the ops of one batch another node committed, without bodies
 * (feed_codec.h), in OPS (owned by the struct store_feed). */
struct store_feed_row {
	uint8_t node;
	uint64_t seq; /* per node, from 1, one per batch, in commit order */
	uint8_t *ops;
	size_t len;
};

#define STORE_FEED_ROWS_MAX 256 /* rows one feed_read returns at most */

struct store_feed {
	struct store_feed_row *rows;
	size_t n;
	bool more; /* more rows were waiting past the bound: read again */
};

/* Frees FEED's rows (any engine's) and zeroes it. */
void store_feed_free(struct store_feed *feed);

struct store_engine {
	const char *name;
	/* Opens (creating if needed) the store PARAMS names. Returns 0 or a CAIRN_E code. */
	int (*open)(const struct store_params *params, void **store);
	/* Applies OPS in order as one transaction, durable when it returns 0; on error nothing
	 * of the batch is applied: CAIRN_ECAPACITY when the file system had no room for it (a
	 * full disk: the same ops without the inserts may still commit), else CAIRN_ESTORAGE. */
	int (*commit)(void *store, const struct store_op *ops, size_t n);
	/* Reports every mailbox and every envelope's metadata (not bodies). */
	int (*load)(void *store, const struct store_load_cb *cb, void *ctx);
	/* Reads the body of envelope ID of mailbox MAILBOX into OUT (capacity CAP >=
	 * CAIRN_ENVELOPE_MAX suffices). An engine may look in MAILBOX's rows only (PostgreSQL:
	 * one partition), or ignore it (SQLite: ids are unique). Returns 0, CAIRN_EDENIED if
	 * absent, CAIRN_ENOBUFS if it does not fit, or CAIRN_ESTORAGE. */
	int (*read_envelope)(void *store, uint64_t mailbox, uint64_t id, uint8_t *out, size_t cap,
	                     size_t *len);
	/* The same for log entry ID. */
	int (*read_log_entry)(void *store, uint64_t id, uint8_t *out, size_t cap, size_t *len);
	/* Reads log entries IDS[0..N) in one read transaction (one snapshot, one lock instead of
	 * one per entry), their bodies one after the other into OUT (capacity CAP), the sum of
	 * their lengths in *TOTAL. Returns 0, CAIRN_EDENIED if one is absent, CAIRN_ENOBUFS if
	 * they do not fit, or CAIRN_ESTORAGE; on error *TOTAL is 0 and OUT's contents are
	 * unspecified. May be NULL: the caller then uses read_log_entry once per id. */
	int (*read_log_entries)(void *store, const uint64_t *ids, size_t n, uint8_t *out,
	                        size_t cap, size_t *total);
	/* Bytes the store occupies on disk. */
	uint64_t (*disk_bytes)(void *store);
	/* Gives back to the file system what the engine can (a journal it keeps beyond its
	 * data), for a full disk. Returns 0 or a CAIRN_E code. May be NULL. */
	int (*reclaim)(void *store);
	/* Bytes inside the store that deleted rows left free, which later inserts reuse before
	 * the store grows on disk. May be NULL (none). */
	uint64_t (*free_bytes)(void *store);
	/* Several nodes on one store (params->node != 0): the rows the other nodes committed
	 * since the last call (since load()'s snapshot for the first), in commit order per
	 * node, at most STORE_FEED_ROWS_MAX. Returns 0, CAIRN_ESTORAGE, or CAIRN_ESTATE when
	 * rows this node had not read were pruned meanwhile (it was cut off for longer than the
	 * feed is kept): its memory can no longer follow, and it must start again. Node 0 (a
	 * relay alone on an engine that could be shared): no rows, a check that the store is
	 * still reachable and still its own. Any node: CAIRN_EEXIST when a reconnect found the
	 * store or the node taken by another relay meanwhile (it must stop). NULL: an engine
	 * that cannot be shared. */
	int (*feed_read)(void *store, struct store_feed *out);
	void (*close)(void *store);

	/* ---- A handshake claimed once across nodes (docs/SCALING.md 4) ---- */
	/*
	 * Claims each of KEYS[0..N) (N <= STORE_CLAIM_MAX) until UNTIL (seconds since the epoch),
	 * once for every node on the store: FRESH[i] is true when this call claimed KEYS[i]
	 * first, false when any node (this one included) claimed it before, or an earlier
	 * KEYS[j] of this call is the same. KEYS are keyed hashes of handshake ephemeral keys
	 * (conn.c), never the keys. Claims past UNTIL may be forgotten. Returns 0, or
	 * CAIRN_ESTORAGE with every FRESH[i] false. NULL: an engine that cannot be shared.
	 */
	int (*claim_once)(void *store, const uint8_t (*keys)[32], size_t n, int64_t until,
	                  bool *fresh);

	/* ---- Batched envelope reads ---- */
	/* Reads envelopes IDS[0..N) of mailbox MAILBOX (as read_envelope, in one read
	 * transaction or statement), their bodies one after the other into OUT (capacity CAP)
	 * in the order of IDS; LENS[i] is body i's length, or STORE_ABSENT if it is not stored
	 * (acknowledged or expired meanwhile: the others are still read). Only MAILBOX's rows
	 * are read (an id of another mailbox is absent). Returns 0, CAIRN_ENOBUFS if the bodies
	 * do not fit, or CAIRN_ESTORAGE; on error LENS is unspecified. May be NULL: the caller
	 * then uses read_envelope once per id. */
	int (*read_envelopes)(void *store, uint64_t mailbox, const uint64_t *ids, size_t n,
	                      uint8_t *out, size_t cap, size_t *lens);
};

#define STORE_CLAIM_MAX 256 /* keys one claim_once takes at most */

/* read_envelopes: the length of an envelope that is not stored. */
#define STORE_ABSENT SIZE_MAX

/* SQLite: WAL, synchronous=FULL, envelopes in a rowid table with no secondary index. */
extern const struct store_engine store_sqlite;
/* Virtual machine steps run by the SQLite engine's own statements since STORE was opened: a
 * deterministic measure of the work an operation costs, for tests. */
uint64_t store_sqlite_vm_steps(void *store);

/* PostgreSQL (libpq): one transaction per batch in pipeline mode, synchronous_commit on,
 * envelopes in a table partitioned by hash of the mailbox (store_pg.c). */
extern const struct store_engine store_pg;

#endif
