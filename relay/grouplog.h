/* SPDX-License-Identifier: MIT */
/*
 * The in-memory registry of group logs (docs/PROTOCOL.md 5.9), shaped like the mailbox index
 * (mailbox.h): every log by log id and by store key in two chained hash tables, a list from
 * least to most recently touched (for idle-log expiry), and per log the (id, seq, len) of its
 * stored entries in seq order. Entry bodies live on disk: a body is in memory only while its
 * append is being written (one buffer, shared by every follower's reply) or while a read batch
 * is being sent. Rebuilt from the store at start. Loop thread only.
 *
 * The tables are allocated with the first log, so a relay that never sees one pays nothing,
 * and a zeroed struct log_registry is an empty one.
 */
#ifndef CAIRN_RELAY_GROUPLOG_H
#define CAIRN_RELAY_GROUPLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cairn/limits.h"
#include "store.h"

struct log_append;
struct log_reader;

/* One stored (durable) entry of a log. */
struct log_entry_ref {
	uint64_t id; /* in the envelope id space */
	uint64_t seq;
	uint32_t len;
};

struct glog {
	struct store_log rec;
	struct glog *next_by_log_id, *next_by_key;
	struct glog *idle_prev, *idle_next; /* the registry's list, by rec.touched */
	/* Stored entries in seq (and id) order: e[head..head+len). */
	struct log_entry_ref *e;
	size_t e_head, e_len, e_cap;
	/* On a relay of several nodes (docs/SCALING.md 4): a seq below this that is not listed
	 * never will be (expired, or a gap the log had when this node loaded it); one at or
	 * above it is an entry the change feed has yet to bring, which followers wait for. */
	uint64_t gone_below;
	/* Entries stored or being appended, and their bytes: what the quotas count. */
	uint32_t count;
	uint64_t bytes;
	bool creating;              /* its LOG_PUT is not durable yet: not usable */
	struct log_reader *readers; /* reads in progress (doubly linked) */
	struct log_append *appends; /* appends being written, oldest first (doubly linked) */
	struct log_append *appends_tail;
};

struct log_registry {
	struct glog **by_log_id, **by_key;
	size_t buckets; /* power of two; 0 until the first log */
	struct glog *idle_head, *idle_tail;
	size_t count;
	uint8_t hash_key[16];
	uint64_t entries; /* entries stored or being appended, in all logs */
	uint64_t bytes;   /* and their bytes (max_stored_bytes counts them with the envelopes') */
	/* Entries with ids below this have expired (STORE_EXPIRE is queued for them): an append
	 * whose write completes after that is not listed. */
	uint64_t expired_below;
	/* Read batches asked of the storage (at most log_read_batches), and the reads waiting
	 * for one of them to come back, oldest first (logcmd.c). */
	uint32_t batches_out;
	struct log_reader *wait_head, *wait_tail;
};

/* Frees every log and the tables (no reader or append may be left). */
void log_registry_free(struct log_registry *reg);
/* Inserts a copy of REC, as the most recently touched (the seqs below its next_seq are
 * settled: gone_below). Returns the log or NULL (no memory). */
struct glog *glog_add(struct log_registry *reg, const struct store_log *rec);
/* Unlinks LOG and frees it with its entry list (its entries' counts are taken off REG). */
void glog_remove(struct log_registry *reg, struct glog *log);
struct glog *glog_by_log_id(const struct log_registry *reg,
                            const uint8_t log_id[static CAIRN_LOG_ID_LEN]);
struct glog *glog_by_key(const struct log_registry *reg, uint64_t key);
/* LOG's rec.touched has just moved forward: it becomes the most recently touched. */
void glog_touched(struct log_registry *reg, struct glog *log);

/* Appends a stored entry (seqs and ids must increase). 0 or CAIRN_ENOMEM. */
int glog_push(struct glog *log, uint64_t id, uint64_t seq, uint32_t len);
/* Inserts a stored entry in seq order (another node's, arriving after a later seq this node
 * numbered): 0, CAIRN_EEXIST if LOG holds SEQ already, or CAIRN_ENOMEM. */
int glog_insert(struct glog *log, uint64_t id, uint64_t seq, uint32_t len);
/* The I-th stored entry from the oldest. */
static inline const struct log_entry_ref *glog_at(const struct glog *log, size_t i)
{
	return &log->e[log->e_head + i];
}
/* The position of the first stored entry with seq >= SEQ (LOG->e_len if none). */
size_t glog_find_seq(const struct glog *log, uint64_t seq);
/* Drops the stored entries with id < CUTOFF from the front, taking them off the counts of
 * LOG and REG, and raises LOG's gone_below past them. Returns how many went. */
size_t glog_expire(struct log_registry *reg, struct glog *log, uint64_t cutoff);

#endif
