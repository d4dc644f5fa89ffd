/* SPDX-License-Identifier: MIT */
/*
 * A deterministic stand-in for relay/storage.c, for running the relay in one thread (the
 * relayconn fuzz target and tests/test_relay_commands.c): the same API (storage.h), an
 * in-memory store, and batches that run only when the harness says so. The harness thereby
 * chooses what the storage thread would have raced: whether an ACK arrives before its
 * envelope's write was taken, and whether a commit fails.
 */
#ifndef CAIRN_FUZZ_MEMSTORAGE_H
#define CAIRN_FUZZ_MEMSTORAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "storage.h"

/* A new, empty storage (returns owned; freed by storage_close). NULL when out of memory. */
struct storage *memstorage_new(void);

/*
 * Takes every queued job (and every held one: its hold ends now) as one batch, as the storage
 * thread does: reads first, then the
 * writes as one transaction (all of them fail with CAIRN_ESTORAGE, and none applies, if FAIL),
 * then each job's done() in submission order. Returns how many jobs completed.
 */
size_t memstorage_run_batch(struct storage *s, bool fail);

/* How many envelopes the store holds (committed and not deleted). */
size_t memstorage_envelopes(const struct storage *s);

#endif
