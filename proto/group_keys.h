/* SPDX-License-Identifier: MIT */
/*
 * The key schedule of a group (docs/PROTOCOL.md section 9.1, 9.3, 9.5, 9.7, 9.10): pure
 * functions from secrets to secrets, with no state and no allocation, shared by the entry
 * layer (group_entry.h), the commits (group_commit.h) and the client. Every derived secret is
 * written to caller memory; callers wipe what they no longer need (the spec says when).
 *
 * Status: interface agreed before the implementation (group_keys.c).
 */
#ifndef CAIRN_PROTO_GROUP_KEYS_H
#define CAIRN_PROTO_GROUP_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/error.h"
#include "cairn/limits.h"

#define GROUP_ID_LEN          16
#define GROUP_SECRET_LEN      32 /* epoch secret, commit secret, every derived key */
#define GROUP_HEAD_LEN        32 /* SHA-256 */
#define GROUP_CTX_LEN         (GROUP_ID_LEN + 8 + GROUP_HEAD_LEN) /* 56 */
#define GROUP_NONCE_LEN       24                                  /* XChaCha20-Poly1305 */
#define GROUP_MEMBERS_MAX     1000
#define GROUP_MAX_SKIP        1000          /* skipped keys per step (9.3) */
#define GROUP_SKIPPED_MAX     2000          /* skipped keys kept per group */
#define GROUP_SAFETY_TEXT_LEN (60 + 11 + 1) /* twelve groups of five digits, NUL */

/* ctx(e) = group_id || u64 epoch || head (9.1). */
void group_ctx(const uint8_t group_id[static GROUP_ID_LEN], uint64_t epoch,
               const uint8_t head[static GROUP_HEAD_LEN], uint8_t out[static GROUP_CTX_LEN]);

/* The five keys of one epoch (9.3). */
struct group_epoch_keys {
	uint8_t header_key[GROUP_SECRET_LEN];
	uint8_t commit_key[GROUP_SECRET_LEN];
	uint8_t sender_base[GROUP_SECRET_LEN];
	uint8_t init_secret[GROUP_SECRET_LEN];
	uint8_t confirm_key[GROUP_SECRET_LEN];
};

/* Derives epoch E's keys from its secret and CTX (9.3). */
void group_epoch_keys(const uint8_t epoch_secret[static GROUP_SECRET_LEN],
                      const uint8_t ctx[static GROUP_CTX_LEN], struct group_epoch_keys *out);

/* CK[i] of the epoch whose sender_base is BASE (9.3). */
void group_sender_chain(const uint8_t base[static GROUP_SECRET_LEN], uint16_t index,
                        uint8_t out[static GROUP_SECRET_LEN]);

/* One step of a sender chain (KDF_CK of 8.4): MK from CK, then CK moves forward in place. */
void group_chain_step(uint8_t ck[static GROUP_SECRET_LEN], uint8_t mk[static GROUP_SECRET_LEN]);

/* The body key and nonce of message key MK (9.3, "cairn/1 group message keys"). */
void group_message_keys(const uint8_t mk[static GROUP_SECRET_LEN],
                        uint8_t key[static GROUP_SECRET_LEN],
                        uint8_t nonce[static GROUP_NONCE_LEN]);

/* head_{e+1} = H("cairn/1 group head" || SIGNED), SIGNED being the commit up to and including
 * its signature (9.5). */
void group_head(const uint8_t *signed_commit, size_t len, uint8_t out[static GROUP_HEAD_LEN]);

/* E_{e+1} from the previous epoch's init_secret (0^32 for the genesis), the commit secret and
 * the new head (9.5). */
void group_next_epoch(const uint8_t init_secret[static GROUP_SECRET_LEN],
                      const uint8_t commit_secret[static GROUP_SECRET_LEN],
                      const uint8_t head[static GROUP_HEAD_LEN],
                      uint8_t out[static GROUP_SECRET_LEN]);

/* confirm = HMAC(confirm_key, head) (9.5). */
void group_confirm(const uint8_t confirm_key[static GROUP_SECRET_LEN],
                   const uint8_t head[static GROUP_HEAD_LEN], uint8_t out[static GROUP_SECRET_LEN]);

/*
 * pad_i of a seal (9.5): HKDF over X25519(OUR_PRIVATE, THEIR_PUBLIC) bound to the group, the
 * new epoch NEW_EPOCH, PREV_HEAD, EPH and G (the recipient's group key). The committer passes
 * (eph.private, G); the recipient (G.private, eph). Returns 0, or CAIRN_ECRYPTO for an
 * all-zero DH (OUT untouched).
 */
CAIRN_WARN_UNUSED int group_seal_pad(const uint8_t our_private[static CAIRN_KEY_LEN],
                                     const uint8_t their_public[static CAIRN_KEY_LEN],
                                     const uint8_t group_id[static GROUP_ID_LEN],
                                     uint64_t new_epoch,
                                     const uint8_t prev_head[static GROUP_HEAD_LEN],
                                     const uint8_t eph[static CAIRN_KEY_LEN],
                                     const uint8_t g[static CAIRN_KEY_LEN],
                                     uint8_t out[static GROUP_SECRET_LEN]);

/* move_key = HKDF(init_secret_e, commit_secret, "cairn/1 group move") (9.7). */
void group_move_key(const uint8_t init_secret[static GROUP_SECRET_LEN],
                    const uint8_t commit_secret[static GROUP_SECRET_LEN],
                    uint8_t out[static GROUP_SECRET_LEN]);

/* The group safety number of (GROUP_ID, EPOCH, HEAD) as twelve groups of five digits (9.10). */
void group_safety_number(const uint8_t group_id[static GROUP_ID_LEN], uint64_t epoch,
                         const uint8_t head[static GROUP_HEAD_LEN],
                         char out[static GROUP_SAFETY_TEXT_LEN]);

#endif
