/* SPDX-License-Identifier: MIT */
/*
 * The entries of a group log (docs/PROTOCOL.md 9.4, 9.3, 9.6): sealing and opening an entry
 * (encrypted header, padded encrypted body), kind 1 messages (signed payloads) and the frame of
 * kind 2 commit parts, the receiving side of the sender chains with the bounded store of
 * skipped message keys, and the data of a key update. Pure functions on caller memory; the
 * caller owns every struct and buffer, and wipes what holds secrets when done.
 */
#ifndef CAIRN_PROTO_GROUP_ENTRY_H
#define CAIRN_PROTO_GROUP_ENTRY_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/error.h"
#include "cairn/limits.h"
#include "group_keys.h"

#define GROUP_KIND_MESSAGE     1
#define GROUP_KIND_COMMIT_PART 2
#define GROUP_HEADER_LEN       7 /* kind (u8) || sender (u16) || n (u32) */
#define GROUP_TAG_LEN          16
#define GROUP_EHEADER_LEN      (GROUP_HEADER_LEN + GROUP_TAG_LEN)    /* 23 */
#define GROUP_ENTRY_AD_LEN     (GROUP_NONCE_LEN + GROUP_EHEADER_LEN) /* hnonce || eheader, 47 */
#define GROUP_ENTRY_OVERHEAD   (GROUP_ENTRY_AD_LEN + GROUP_TAG_LEN)  /* 63 */
#define GROUP_ENTRY_MAX        CAIRN_LOG_ENTRY_MAX        /* 16384, the largest of 896/3968/16384 */
#define GROUP_ENTRY_MIN        (GROUP_ENTRY_OVERHEAD + 2) /* an empty content, no padding */
#define GROUP_BODY_MAX         (GROUP_ENTRY_MAX - GROUP_ENTRY_OVERHEAD) /* padded body */
#define GROUP_CONTENT_MAX      (GROUP_BODY_MAX - 2)                     /* 16319 */
#define GROUP_SIG_LEN          64
#define GROUP_PAYLOAD_MAX      (GROUP_CONTENT_MAX - GROUP_SIG_LEN) /* 16255 */
/* The data of one part of a text in a group (9.4: 16384 - 63 - 2 - 64 - 31), 2 bytes below
 * what GROUP_PAYLOAD_MAX would hold after the 29-byte header of 8.9, as 8.9 counts for 1:1. */
#define GROUP_TEXT_DATA_MAX (GROUP_PAYLOAD_MAX - 31) /* 16224 */

struct group_header {
	uint8_t kind;
	uint16_t sender;
	uint32_t n;
};

/*
 * Seals one entry: HNONCE (24 fresh random bytes, drawn by the caller) || the header H under
 * HEADER_KEY || u16 CONTENT_LEN, CONTENT and zero padding under (BODY_KEY, BODY_NONCE) with
 * hnonce || eheader as ad, padded to the smallest of 896, 3968 or 16384 bytes that holds it.
 * OUT (capacity CAP) receives the entry, *OUT_LEN its length. CONTENT may not overlap OUT.
 * Returns 0, CAIRN_ETOOBIG (CONTENT_LEN over GROUP_CONTENT_MAX) or CAIRN_ENOBUFS; on failure
 * *OUT_LEN is 0. Every kind is sealed (the reader drops the ones it does not know).
 */
CAIRN_WARN_UNUSED int group_entry_seal(const uint8_t header_key[static GROUP_SECRET_LEN],
                                       const uint8_t hnonce[static GROUP_NONCE_LEN],
                                       const struct group_header *h,
                                       const uint8_t body_key[static GROUP_SECRET_LEN],
                                       const uint8_t body_nonce[static GROUP_NONCE_LEN],
                                       const uint8_t *content, size_t content_len, uint8_t *out,
                                       size_t cap, size_t *out_len);

/*
 * Opens the header of ENTRY (LEN bytes, untrusted) under HEADER_KEY into *H. This is how a
 * reader finds an entry's epoch: it tries each header key it holds. Returns 0, CAIRN_EINVAL
 * (LEN outside GROUP_ENTRY_MIN..GROUP_ENTRY_MAX) or CAIRN_EAUTH (not this key, or forged); on
 * failure *H is zeroed. Any kind opens; the caller drops the kinds it does not know.
 */
CAIRN_WARN_UNUSED int group_entry_open_header(const uint8_t header_key[static GROUP_SECRET_LEN],
                                              const uint8_t *entry, size_t len,
                                              struct group_header *h);

/*
 * Opens the body of ENTRY (LEN bytes, untrusted, its header already opened) under (BODY_KEY,
 * BODY_NONCE) into BODY (capacity CAP >= LEN - GROUP_ENTRY_OVERHEAD), checks the padding
 * (content_len fits, every padding byte zero) and points *CONTENT into BODY. The caller wipes
 * BODY when done. Returns 0, CAIRN_EINVAL (LEN out of range), CAIRN_ENOBUFS, CAIRN_EAUTH or
 * CAIRN_EPADDING; on failure *CONTENT is NULL, *CONTENT_LEN 0 and BODY wiped.
 */
CAIRN_WARN_UNUSED int group_entry_open_body(const uint8_t body_key[static GROUP_SECRET_LEN],
                                            const uint8_t body_nonce[static GROUP_NONCE_LEN],
                                            const uint8_t *entry, size_t len, uint8_t *body,
                                            size_t cap, const uint8_t **content,
                                            size_t *content_len);

/*
 * Kind 2, a commit part (9.5), at the entry level: the body key is the epoch's COMMIT_KEY and
 * the body nonce is HNONCE; CONTENT is commit_id || part_count || slice || part_sig, which
 * group_commit builds and checks. The header's kind is GROUP_KIND_COMMIT_PART; SENDER the
 * committer's index, N the part's. Returns as group_entry_seal.
 */
CAIRN_WARN_UNUSED int group_part_seal(const struct group_epoch_keys *k,
                                      const uint8_t hnonce[static GROUP_NONCE_LEN], uint16_t sender,
                                      uint32_t n, const uint8_t *content, size_t content_len,
                                      uint8_t *out, size_t cap, size_t *out_len);

/* Opens the body of a kind 2 entry whose header *H opened under K's header_key; returns as
 * group_entry_open_body, or CAIRN_EINVAL if H is not of kind 2. */
CAIRN_WARN_UNUSED int group_part_open(const struct group_epoch_keys *k,
                                      const struct group_header *h, const uint8_t *entry,
                                      size_t len, uint8_t *body, size_t cap,
                                      const uint8_t **content, size_t *content_len);

/*
 * Kind 1, a message (9.4): seals PAYLOAD (an application message of 8.9, LEN bytes, at most
 * GROUP_PAYLOAD_MAX) as member SENDER's N-th message of the epoch whose context is CTX, with
 * the message key MK (the sender's chain stepped N times, group_chain_step) and its sign key
 * SIGN_SK (libsodium's 64-byte Ed25519 secret key). The content is PAYLOAD || Ed25519(SIGN_SK,
 * "cairn/1 group message" || ctx || u16 sender || u32 n || payload). Returns as
 * group_entry_seal. Ed25519 signs contiguous bytes: this and group_message_open build them in
 * about 16 KB of stack.
 */
CAIRN_WARN_UNUSED int group_message_seal(const uint8_t header_key[static GROUP_SECRET_LEN],
                                         const uint8_t hnonce[static GROUP_NONCE_LEN],
                                         const uint8_t ctx[static GROUP_CTX_LEN], uint16_t sender,
                                         uint32_t n, const uint8_t mk[static GROUP_SECRET_LEN],
                                         const uint8_t sign_sk[static 64], const uint8_t *payload,
                                         size_t len, uint8_t *out, size_t cap, size_t *out_len);

/*
 * Opens a kind 1 entry whose header *H opened under the epoch's header key: the body under the
 * message key MK of (h->sender, h->n) (from group_recv_lookup), the padding, then the signature
 * under SIGN_PK (the roster's sign_key of h->sender) over the epoch's CTX. BODY as
 * group_entry_open_body; *PAYLOAD points into it. Returns 0, the errors of
 * group_entry_open_body, CAIRN_EINVAL (not kind 1, or content shorter than a signature) or
 * CAIRN_EAUTH (bad signature); on failure *PAYLOAD is NULL, *PAYLOAD_LEN 0 and BODY wiped.
 */
CAIRN_WARN_UNUSED int group_message_open(const uint8_t ctx[static GROUP_CTX_LEN],
                                         const struct group_header *h,
                                         const uint8_t mk[static GROUP_SECRET_LEN],
                                         const uint8_t sign_pk[static 32], const uint8_t *entry,
                                         size_t len, uint8_t *body, size_t cap,
                                         const uint8_t **payload, size_t *payload_len);

/*
 * Receiving chains (9.3). struct group_chains holds one epoch's chain key and next n for
 * every member; struct group_skipped holds the group's skipped message keys, of this epoch and
 * the previous one in its grace period, at most GROUP_SKIPPED_MAX, in the order they were
 * skipped. Both are plain caller-owned memory (40 KB and 96 KB: allocate them, then
 * wipe with sodium_memzero when done); neither holds a pointer.
 *
 * Reading a message is two-phase, so that a failure changes no state: group_recv_lookup
 * derives the message key of (sender, n) into a struct group_recv_step without touching the
 * chains or the store; the caller opens the body and checks the signature with step.mk, then
 * group_recv_commit applies the step (the chain moves past n, the keys skipped on the way are
 * stored, a used skipped key is deleted), or group_recv_discard forgets it.
 */
struct group_chains {
	uint64_t epoch;
	uint16_t count; /* members of the epoch's roster */
	struct {
		uint8_t ck[GROUP_SECRET_LEN];
		uint64_t next; /* the next n this chain gives; 2^32 once exhausted */
	} chain[GROUP_MEMBERS_MAX];
};

struct group_skipped {
	size_t count; /* live keys, oldest first in key[0..count) */
	struct {
		uint64_t epoch;
		uint32_t n;
		uint16_t sender;
		uint8_t mk[GROUP_SECRET_LEN];
	} key[GROUP_SKIPPED_MAX];
};

struct group_recv_step {
	uint64_t epoch;
	uint16_t sender;
	uint32_t n;
	int skipped; /* 1: mk comes from the store; 0: from the chain */
	uint8_t mk[GROUP_SECRET_LEN];
};

/* Starts the receiving chains of epoch EPOCH: CK[i] from SENDER_BASE for i < COUNT, next 0.
 * Returns 0 or CAIRN_EINVAL (COUNT 0 or over GROUP_MEMBERS_MAX; C zeroed). */
CAIRN_WARN_UNUSED int group_chains_init(struct group_chains *c, uint64_t epoch,
                                        const uint8_t sender_base[static GROUP_SECRET_LEN],
                                        uint16_t count);

/* An empty store. */
void group_skipped_init(struct group_skipped *s);

/* Deletes (and wipes) every skipped key of EPOCH, when the grace of 9.3 ends. */
void group_skipped_drop_epoch(struct group_skipped *s, uint64_t epoch);

/*
 * Derives the message key of (SENDER, N) in C's epoch into *STEP, changing neither C nor S.
 * Returns 0, CAIRN_EINVAL (SENDER not in the roster), CAIRN_EREPLAY (N below the chain's next
 * and not in the store: used, or deleted) or CAIRN_ELIMIT (N more than GROUP_MAX_SKIP past the
 * chain's next); on failure *STEP is zeroed. Costs up to GROUP_MAX_SKIP + 1 chain steps.
 */
CAIRN_WARN_UNUSED int group_recv_lookup(const struct group_chains *c, const struct group_skipped *s,
                                        uint16_t sender, uint32_t n, struct group_recv_step *step);

/*
 * Applies STEP, from group_recv_lookup on the same C and S unchanged since: a stored key is
 * deleted; a chain key moves past n, storing the keys of the n it skipped (the oldest keys of
 * the group deleted first beyond GROUP_SKIPPED_MAX). STEP is wiped. Returns 0, or
 * CAIRN_ESTATE if C or S changed since the lookup in a way that voids STEP (nothing applied).
 */
CAIRN_WARN_UNUSED int group_recv_commit(struct group_chains *c, struct group_skipped *s,
                                        struct group_recv_step *step);

/* Forgets STEP (wipes it): the entry failed, the state stays as it was. */
void group_recv_discard(struct group_recv_step *step);

/*
 * The data of a key update (9.6), an application message of kind 16:
 * key_serial (u32) || group_key (32) || prev_count (u32).
 */
#define GROUP_KIND_KEY_UPDATE 16
#define GROUP_KIND_LEAVE      17
#define GROUP_KEY_UPDATE_LEN  (4 + CAIRN_KEY_LEN + 4) /* 40 */

struct group_key_update {
	uint32_t key_serial;
	uint8_t group_key[CAIRN_KEY_LEN];
	uint32_t prev_count;
};

/* Writes U into OUT (capacity CAP, GROUP_KEY_UPDATE_LEN bytes). Returns 0, CAIRN_EINVAL
 * (serial 0: an update's serial is its previous one plus one) or CAIRN_ENOBUFS. */
CAIRN_WARN_UNUSED int group_key_update_encode(const struct group_key_update *u, uint8_t *out,
                                              size_t cap, size_t *out_len);

/* Parses key update data IN (LEN bytes, untrusted) into *U. Returns 0 or CAIRN_EINVAL (wrong
 * length, serial 0; *U zeroed). The group key's order is checked where it is used (a seal to
 * a low-order key fails in group_seal_pad). */
CAIRN_WARN_UNUSED int group_key_update_parse(const uint8_t *in, size_t len,
                                             struct group_key_update *u);

#endif
