/* SPDX-License-Identifier: MIT */
/*
 * A deterministic storage engine behind the same interface as the storage thread (storage.h),
 * for running the relay in one thread (the relayconn fuzz target and
 * tests/test_relay_commands.c, which put it in struct relay in place of storage_open's): an
 * in-memory store, and batches that run only when the harness says so. The harness thereby
 * chooses what the storage thread would have raced: whether an ACK arrives before its
 * envelope's write was taken, and whether a commit fails.
 */
#ifndef CAIRN_RELAY_MEMSTORAGE_H
#define CAIRN_RELAY_MEMSTORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage.h"

/* A new, empty in-memory storage (returns owned; freed by storage_close). NULL when out of
 * memory. memstorage_run_batch and memstorage_envelopes take only a storage made here. */
struct storage *memstorage_new(void);

/*
 * Takes every queued job (and every held one: its hold ends now) into the next batch, as the
 * storage thread takes its queue: storage_cancel can no longer take them back, and nothing
 * submitted from now on joins that batch. Returns how many jobs the batch holds.
 */
size_t memstorage_take_batch(struct storage *s);

/*
 * Runs the batch taken by memstorage_take_batch, or else takes every queued and held job as
 * one, as the storage thread does: reads first, then the writes as one transaction (all of
 * them fail with CAIRN_ESTORAGE, and none applies, if FAIL), then each job's done() in
 * submission order. Returns how many jobs completed.
 */
size_t memstorage_run_batch(struct storage *s, bool fail);

/* How many envelopes the store holds (committed and not deleted). */
size_t memstorage_envelopes(const struct storage *s);
/* How many group log entries it holds, and how many STORAGE_READ_ENTRIES it has served. */
size_t memstorage_log_entries(const struct storage *s);
uint64_t memstorage_entry_reads(const struct storage *s);
/* STORAGE_READ_ENVELOPES jobs served. */
uint64_t memstorage_envelope_batch_reads(const struct storage *s);
/* while FAIL, STORAGE_READ_ENVELOPES jobs fail with CAIRN_ESTORAGE (a failing disk). */
void memstorage_fail_reads(struct storage *s, bool fail);
/* The work bits the store holds for mailbox MAILBOX_ID (its store id): 0 for an ordinary
 * mailbox or none. The one mailbox field kept, so tests see that INTAKE reached the store. */
unsigned memstorage_work_bits(const struct storage *s, uint64_t mailbox_id);
/* Bundle seen rows committed with their envelopes (5.12), and in *EXPIRES (when non-NULL) the
 * STORE_BUNDLE_EXPIRE ops committed. */
uint64_t memstorage_bundle_rows(const struct storage *s, uint64_t *expires);

/*
 * Several nodes on one store (store.h feed_read). memstorage_feed_push queues a
 * change-feed row of node NODE (OPS[0..LEN) copied), which the next STORAGE_FEED job reads
 * (at most STORE_FEED_ROWS_MAX at a time, `more` set when more wait); memstorage_commit_other
 * applies OPS[0..N) to the store as another node's commit would (so a body it put can be
 * read back); memstorage_feed_fail makes the next TIMES feed reads fail with STATUS.
 */
int memstorage_feed_push(struct storage *s, uint8_t node, uint64_t seq, const uint8_t *ops,
                         size_t len);
int memstorage_commit_other(struct storage *s, const struct store_op *ops, size_t n);
void memstorage_feed_fail(struct storage *s, int status, unsigned times);

#endif
