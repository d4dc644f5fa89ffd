/* SPDX-License-Identifier: MIT */
/*
 * The change feed's row format (several relay nodes on one store, store.h): the ops of one
 * committed batch without their bodies, so that another node can apply them to its memory
 * as the start-up load would. A STORE_ENVELOPE_PUT or STORE_LOG_ENTRY_PUT keeps its LEN and
 * STORED_AT, its BODY is NULL (the other node reads it from the store when it delivers).
 * Written by the engine inside the batch's transaction, read back by other nodes only: the
 * bytes come from the database, and are decoded as untrusted all the same (fuzz/).
 */
#ifndef CAIRN_RELAY_FEED_CODEC_H
#define CAIRN_RELAY_FEED_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Bytes feed_encode needs for OPS[0..N). */
size_t feed_encoded_len(const struct store_op *ops, size_t n);

/* Writes OPS[0..N) (bodies left out) into OUT; returns the length, or 0 if CAP is short. */
size_t feed_encode(const struct store_op *ops, size_t n, uint8_t *out, size_t cap);

/*
 * Calls OP once per op in BLOB, in order. What an op points to (its mailbox, log, envelope
 * ids, bundle key) lives only during the call; BODY is NULL. Returns 0, OP's first non-zero
 * return, or CAIRN_EMALFORMED for a blob that is not one feed_encode wrote (nothing past the
 * malformed op is called).
 */
int feed_decode(const uint8_t *blob, size_t len, int (*op)(void *ctx, const struct store_op *op),
                void *ctx);

#endif
