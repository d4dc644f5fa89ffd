/* SPDX-License-Identifier: MIT */
/*
 * Proof of work for intake mailboxes (docs/PROTOCOL.md section 5.10): a hashcash over one
 * BLAKE2b block, bound to the envelope and to the mailbox's sender id, so that the relay
 * checks it with one hash of the envelope and one of a block while its sender pays 2^bits
 * block hashes on average.
 */
#ifndef CAIRN_PROTO_WORK_H
#define CAIRN_PROTO_WORK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cairn/error.h"
#include "cairn/limits.h"

#define WORK_LEN         16 /* time (u64) || nonce (u64) */
#define WORK_HASH_LEN    32
#define WORK_BITS_MIN    1
#define WORK_BITS_MAX    40
#define WORK_BITS_DEFAULT 20

/* BLAKE2b-256 of the envelope, the part of the digest a solver computes once. */
void work_envelope_hash(const uint8_t *env, size_t len, uint8_t out[static WORK_HASH_LEN]);

/* The work digest of 5.10 for SENDER_ID, ENVELOPE_HASH and WORK. */
void work_digest(const uint8_t sender_id[static CAIRN_MAILBOX_ID_LEN],
                 const uint8_t envelope_hash[static WORK_HASH_LEN],
                 const uint8_t work[static WORK_LEN], uint8_t out[static WORK_HASH_LEN]);

/* Whether the first BITS bits of DIGEST are zero (BITS 0..256). */
bool work_sufficient(const uint8_t digest[static WORK_HASH_LEN], unsigned bits);

/* The time a work names (its first 8 bytes). */
uint64_t work_time(const uint8_t work[static WORK_LEN]);

/*
 * Finds work for an envelope to SENDER_ID with time TIME, sufficient for BITS, trying nonces
 * from FIRST_NONCE upwards; writes it into WORK and, if DIGEST is not NULL, its digest.
 * Returns 0, or CAIRN_EINVAL for BITS outside WORK_BITS_MIN..WORK_BITS_MAX.
 */
CAIRN_WARN_UNUSED int work_solve(const uint8_t sender_id[static CAIRN_MAILBOX_ID_LEN],
                                 const uint8_t *env, size_t len, uint64_t time, unsigned bits,
                                 uint64_t first_nonce, uint8_t work[static WORK_LEN],
                                 uint8_t *digest);

/*
 * Checks WORK for an envelope to SENDER_ID against BITS (time is the caller's to check, 5.10
 * check 2). Writes the digest into DIGEST (for the relay's table of used work). Returns true
 * when sufficient.
 */
bool work_verify(const uint8_t sender_id[static CAIRN_MAILBOX_ID_LEN], const uint8_t *env,
                 size_t len, const uint8_t work[static WORK_LEN], unsigned bits,
                 uint8_t digest[static WORK_HASH_LEN]);

#endif
