/* SPDX-License-Identifier: MIT */
/*
 * Private routing (docs/PROTOCOL.md section 5.11): a SEND or SEND_WORK sealed by the client
 * for the destination relay's static X25519 key, carried unchanged by the client's own relay
 * (FORWARD, FORWARDED), opened by the destination, whose reply is sealed back with the second
 * key of the same derivation. Pure functions over caller buffers: no allocation, no clock; the
 * one random draw is the ephemeral key of forward_seal, and forward_seal_with takes it from the
 * caller so that the vectors can be reproduced.
 *
 * Every key derived here is used for exactly one message (the nonce is fixed at zero), so a
 * caller must draw a fresh ephemeral key for every attempt, a retry included.
 */
#ifndef CAIRN_PROTO_FORWARD_H
#define CAIRN_PROTO_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/error.h"
#include "cairn/limits.h"

#define FORWARD_LABEL       "cairn/1 forward"
#define FORWARD_LEN_PREFIX  4 /* len (u32, big-endian) before the command */
#define FORWARD_INNER_MIN   1024
#define FORWARD_INNER_MID   4096
#define FORWARD_INNER_MAX   16640
#define FORWARD_REPLY_INNER 1024
/* Sealed sizes: E || ciphertext || tag. The wire bounds of FORWARD's and FORWARDED's `sealed`
 * field (5.2) are wider than the three sizes that open; a relay refuses the others on open. */
#define FORWARD_SEALED_MIN       (CAIRN_KEY_LEN + 1 + CAIRN_AEAD_TAG_LEN)                 /* 49 */
#define FORWARD_SEALED_MAX       (CAIRN_KEY_LEN + FORWARD_INNER_MAX + CAIRN_AEAD_TAG_LEN) /* 16688 */
#define FORWARD_REPLY_SEALED     (FORWARD_REPLY_INNER + CAIRN_AEAD_TAG_LEN)               /* 1040 */
#define FORWARD_REPLY_SEALED_MIN (1 + CAIRN_AEAD_TAG_LEN)                                 /* 17 */
#define FORWARD_RELAY_MAX        320 /* FORWARD's `relay`: an address's text */
/* The longest command that can be sealed, and the longest reply. */
#define FORWARD_COMMAND_MAX (FORWARD_INNER_MAX - FORWARD_LEN_PREFIX)
#define FORWARD_REPLY_MAX   (FORWARD_REPLY_INNER - FORWARD_LEN_PREFIX)
/* A bundle item (5.12) is the largest seal. */
_Static_assert(CAIRN_BUNDLE_INNER_LEN == FORWARD_INNER_MAX, "bundle inner");
_Static_assert(CAIRN_BUNDLE_ITEM_LEN == FORWARD_SEALED_MAX, "bundle item");

/*
 * Seals COMMAND (CMD_LEN bytes, 1..FORWARD_COMMAND_MAX; the caller encodes one SEND or
 * SEND_WORK with request id 0) for the relay whose static X25519 public key is RELAY_PK, with
 * the ephemeral secret E_SECRET. Writes the sealed bytes into OUT (capacity CAP; at most
 * FORWARD_SEALED_MAX are needed) and sets *OUTLEN, and the reply key into K_REP, which the
 * caller keeps to open the reply and then wipes. Returns 0, CAIRN_EINVAL (command empty or too
 * long), CAIRN_ENOBUFS, or CAIRN_ECRYPTO (RELAY_PK gives an all-zero shared secret). Wipes
 * every intermediate secret; on failure OUT and K_REP hold nothing secret.
 */
CAIRN_WARN_UNUSED int forward_seal_with(const uint8_t e_secret[static CAIRN_KEY_LEN],
                                        const uint8_t relay_pk[static CAIRN_KEY_LEN],
                                        const uint8_t *command, size_t cmd_len, uint8_t *out,
                                        size_t cap, size_t *outlen,
                                        uint8_t k_rep[static CAIRN_KEY_LEN]);

/* forward_seal_with with an ephemeral secret drawn from the CSPRNG (and wiped). */
CAIRN_WARN_UNUSED int forward_seal(const uint8_t relay_pk[static CAIRN_KEY_LEN],
                                   const uint8_t *command, size_t cmd_len, uint8_t *out, size_t cap,
                                   size_t *outlen, uint8_t k_rep[static CAIRN_KEY_LEN]);

/*
 * Opens SEALED (LEN bytes) with the relay's static key pair (RELAY_SK, RELAY_PK). INNER
 * (capacity FORWARD_INNER_MAX) receives the plaintext; on success *COMMAND points into it at
 * the inner command, *CMD_LEN its length, and K_REP holds the reply key (the caller wipes it
 * and INNER after use). Checks, each CAIRN_EBADREQ: a size that is not 32 + 1024, 4096 or 16640
 * + 16; an all-zero shared secret; a failed tag; `len` 0 or past the end; non-zero padding.
 * The inner command itself is the caller's to decode (forward_inner_kind helps). On failure
 * INNER and K_REP are wiped.
 */
CAIRN_WARN_UNUSED int forward_open(const uint8_t relay_sk[static CAIRN_KEY_LEN],
                                   const uint8_t relay_pk[static CAIRN_KEY_LEN],
                                   const uint8_t *sealed, size_t len,
                                   uint8_t inner[static FORWARD_INNER_MAX], const uint8_t **command,
                                   size_t *cmd_len, uint8_t k_rep[static CAIRN_KEY_LEN]);

/*
 * Whether COMMAND (CMD_LEN bytes, from forward_open) is exactly one SEND or SEND_WORK array,
 * well formed enough to carry a request id (5.1): returns its type (CAIRN_CMD_SEND or
 * CAIRN_CMD_SEND_WORK) or CAIRN_EBADREQ. A command with a faulty argument (an envelope too big,
 * a wrong size) still passes: the relay answers it as it answers the same direct command.
 */
CAIRN_WARN_UNUSED int forward_inner_kind(const uint8_t *command, size_t cmd_len);

/*
 * forward_inner_kind for a command opened from a seal of SEALED_LEN bytes, which may also be
 * one BUNDLED (5.12: returns CAIRN_CMD_BUNDLED) when the seal is a bundle item, exactly
 * CAIRN_BUNDLE_ITEM_LEN bytes (an inner of 16640); a BUNDLED in a smaller seal is
 * CAIRN_EBADREQ. A BUNDLED with a faulty argument passes, as in forward_inner_kind.
 */
CAIRN_WARN_UNUSED int forward_sealed_kind(const uint8_t *command, size_t cmd_len,
                                          size_t sealed_len);

/*
 * Seals COMMAND (CMD_LEN bytes, 1..FORWARD_COMMAND_MAX; the caller encodes one BUNDLED with
 * request id 0) as a bundle item (5.12, 12): the seal of forward_seal_with with `inner` always
 * CAIRN_BUNDLE_INNER_LEN bytes, so OUT receives exactly CAIRN_BUNDLE_ITEM_LEN bytes. No reply
 * key is kept (the relay answers a BUNDLED unsealed). Returns 0, CAIRN_EINVAL or
 * CAIRN_ECRYPTO as forward_seal_with; on failure OUT holds nothing secret.
 */
CAIRN_WARN_UNUSED int bundle_seal_with(const uint8_t e_secret[static CAIRN_KEY_LEN],
                                       const uint8_t relay_pk[static CAIRN_KEY_LEN],
                                       const uint8_t *command, size_t cmd_len,
                                       uint8_t out[static CAIRN_BUNDLE_ITEM_LEN]);

/* bundle_seal_with with an ephemeral secret drawn from the CSPRNG (and wiped). */
CAIRN_WARN_UNUSED int bundle_seal(const uint8_t relay_pk[static CAIRN_KEY_LEN],
                                  const uint8_t *command, size_t cmd_len,
                                  uint8_t out[static CAIRN_BUNDLE_ITEM_LEN]);

/*
 * Seals REPLY (REPLY_LEN bytes, 1..FORWARD_REPLY_MAX: one OK or ERROR with request id 0) with
 * K_REP into OUT (exactly FORWARD_REPLY_SEALED bytes). Returns 0 or CAIRN_EINVAL.
 */
CAIRN_WARN_UNUSED int forward_reply_seal(const uint8_t k_rep[static CAIRN_KEY_LEN],
                                         const uint8_t *reply, size_t reply_len,
                                         uint8_t out[static FORWARD_REPLY_SEALED]);

/*
 * Opens a sealed reply (LEN bytes) with K_REP into INNER (capacity FORWARD_REPLY_INNER); on
 * success *REPLY points into it and *REPLY_LEN is its length. Returns 0 or CAIRN_EAUTH for
 * anything that does not open exactly (size, tag, len, padding): the client treats that as
 * `unreachable`.
 */
CAIRN_WARN_UNUSED int forward_reply_open(const uint8_t k_rep[static CAIRN_KEY_LEN],
                                         const uint8_t *sealed, size_t len,
                                         uint8_t inner[static FORWARD_REPLY_INNER],
                                         const uint8_t **reply, size_t *reply_len);

#endif
