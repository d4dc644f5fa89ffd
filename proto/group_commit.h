/* SPDX-License-Identifier: MIT */
/*
 * Commits (docs/PROTOCOL.md sections 9.5, 9.6 and 9.7): the signed record that moves a group
 * from epoch e to e + 1. Its encoding and decoding; the new roster its changes make; building
 * one as an admin (seals, move box, signature, head, next epoch, confirm); checking and
 * opening one as a member; and the genesis. Cutting a commit into log entries' parts and
 * putting them together again is group_commit_parts.h.
 *
 * Everything is pure: randomness (commit secret, ephemeral key) comes from the caller, so the
 * vectors of 9.12 replay exactly. The structs here are large (a roster is about 104 KB, a
 * decoded commit about 75 KB): callers keep them on the heap. Secrets in struct group_next
 * are wiped with group_next_wipe.
 */
#ifndef CAIRN_PROTO_GROUP_COMMIT_H
#define CAIRN_PROTO_GROUP_COMMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cairn/error.h"
#include "cairn/limits.h"
#include "group_join.h"
#include "group_keys.h"
#include "group_roster.h"

#define GROUP_COMMIT_VERSION 1

#define GROUP_CHANGE_ADD      1
#define GROUP_CHANGE_REMOVE   2
#define GROUP_CHANGE_ROLE     3
#define GROUP_CHANGE_SETTINGS 4
#define GROUP_CHANGES_MAX     255

/* Encoded sizes of the changes, kind byte included. (9.5 and 9.11 say 99 for an add; its
 * fields make 98, as the vectors and tests/vectors/group.py have it.) */
#define GROUP_CHANGE_ADD_LEN      (1 + 3 * CAIRN_KEY_LEN + 1) /* 98 */
#define GROUP_CHANGE_REMOVE_LEN   3
#define GROUP_CHANGE_ROLE_LEN     4
#define GROUP_CHANGE_SETTINGS_LEN 9

/* A location (9.7) is group_join.h's: relay_len (u16, 1..320) || relay || log_id || credential. */
#define GROUP_LOCATION_MIN (GROUP_LOCATION_FIXED + 1)
#define GROUP_MOVE_BOX_MIN (GROUP_LOCATION_MIN + CAIRN_AEAD_TAG_LEN) /* 75 */
#define GROUP_MOVE_BOX_MAX (GROUP_LOCATION_MAX + CAIRN_AEAD_TAG_LEN) /* 394 */

#define GROUP_SEAL_LEN 36 /* key_serial (u32) || masked (32) */

/* Every byte of a commit but its changes, move box and seals (9.11). */
#define GROUP_COMMIT_FIXED_LEN 232
#define GROUP_COMMIT_MAX_LEN                                                                       \
	(GROUP_COMMIT_FIXED_LEN + GROUP_CHANGES_MAX * GROUP_CHANGE_ADD_LEN + GROUP_MOVE_BOX_MAX +  \
	 GROUP_MEMBERS_MAX * GROUP_SEAL_LEN)

struct group_settings {
	uint32_t rotate_seconds;  /* default 604800 */
	uint32_t rotate_messages; /* default 1000 */
};

/* One change (9.5). Only the fields of its KIND are meaningful. */
struct group_change {
	uint8_t kind;                     /* GROUP_CHANGE_* */
	uint8_t role;                     /* add, set role: 1 or 2 */
	uint16_t index;                   /* remove, set role: in the roster as changes left it */
	uint8_t identity[CAIRN_KEY_LEN];  /* add */
	uint8_t sign_key[CAIRN_KEY_LEN];  /* add */
	uint8_t group_key[CAIRN_KEY_LEN]; /* add */
	struct group_settings settings;   /* settings */
};

struct group_seal {
	uint32_t key_serial;
	uint8_t masked[GROUP_SECRET_LEN];
};

/* A commit as decoded: every field, in wire order. */
struct group_commit {
	uint8_t version;
	uint8_t group_id[GROUP_ID_LEN];
	uint64_t epoch; /* e + 1; 0 for the genesis */
	uint8_t prev_head[GROUP_HEAD_LEN];
	uint16_t committer;
	uint64_t last_seq;
	uint8_t change_count;
	struct group_change changes[GROUP_CHANGES_MAX];
	uint16_t move_len;
	uint8_t move_box[GROUP_MOVE_BOX_MAX];
	uint8_t eph[CAIRN_KEY_LEN];
	uint8_t roster_hash[GROUP_HEAD_LEN];
	uint16_t seal_count;
	struct group_seal seals[GROUP_MEMBERS_MAX];
	uint8_t signature[CAIRN_SIGNATURE_LEN];
	uint8_t confirm[GROUP_SECRET_LEN];
};

/* A counting key update (9.6), as the caller found it in the log: member INDEX of roster_e
 * announced KEY_SERIAL with GROUP_KEY. */
struct group_counted_update {
	uint16_t index;
	uint32_t key_serial;
	uint8_t group_key[CAIRN_KEY_LEN];
};

/* One of a member's own group keys (9.6): the private key of serial KEY_SERIAL. */
struct group_key_pair {
	uint32_t key_serial;
	uint8_t private_key[CAIRN_KEY_LEN];
};

/* Epoch e as its members know it: what a commit builds on. GENESIS means there is no epoch
 * yet (the commit is the genesis: epoch 0, prev_head 0^32, init_secret 0^32, an empty
 * roster), and then only GROUP_ID is read. */
struct group_base {
	bool genesis;
	uint8_t group_id[GROUP_ID_LEN];
	uint64_t epoch;                        /* e */
	uint8_t head[GROUP_HEAD_LEN];          /* head_e */
	uint8_t init_secret[GROUP_SECRET_LEN]; /* init_secret_e (secret; borrowed) */
	struct group_settings settings;
	const struct group_roster *roster; /* roster_e, borrowed */
};

/* What a commit leads to: epoch e + 1, and the commit itself as decoded. */
struct group_next {
	struct group_commit commit;
	uint64_t epoch;
	uint8_t head[GROUP_HEAD_LEN];
	struct group_roster roster; /* roster_{e+1} */
	struct group_settings settings;
	uint16_t retained;                      /* roster.member[0..retained-1] were in roster_e */
	uint16_t from[GROUP_MEMBERS_MAX];       /* for those: their index in roster_e */
	bool removed;                           /* the opener is not in roster_{e+1} */
	bool has_secret;                        /* the fields below are set */
	uint8_t epoch_secret[GROUP_SECRET_LEN]; /* E_{e+1} */
	struct group_epoch_keys keys;           /* of E_{e+1} */
	uint16_t location_len;                  /* 0: the log does not move */
	uint8_t location[GROUP_LOCATION_MAX];   /* the opened move box */
};

/* Wipes every secret of N (and the rest of it). */
void group_next_wipe(struct group_next *n);

/* The encoded length of commit C, or 0 if a count or length in it is out of bounds. */
size_t group_commit_len(const struct group_commit *c);

/*
 * Encodes C into OUT (capacity CAP; GROUP_COMMIT_MAX_LEN suffices). C must hold only what
 * group_commit_decode accepts (else CAIRN_EINVAL). Returns 0, CAIRN_EINVAL or CAIRN_ENOBUFS.
 */
CAIRN_WARN_UNUSED int group_commit_encode(const struct group_commit *c, uint8_t *out, size_t cap,
                                          size_t *outlen);

/*
 * Decodes the commit that fills IN (LEN bytes, untrusted) exactly: version 1, change kinds 1
 * to 4 with roles 1 or 2, move_len 0 or 75..394, seal_count 0..1000, no byte missing or left
 * over. Nothing is checked against any state (group_commit_open does that). Returns 0 or
 * CAIRN_EINVAL; on failure *OUT is zeroed.
 */
CAIRN_WARN_UNUSED int group_commit_decode(const uint8_t *in, size_t len, struct group_commit *out);

/*
 * Applies CHANGES (COUNT of them) and the counting key UPDATES (NUPD, in log order) to
 * BASE's roster and settings, as 9.5 says, into NEXT's roster, settings, retained and from
 * (nothing else of NEXT is touched). For the genesis the roster starts empty and the
 * changes must set the settings. Each update names a member of roster_e; its serials must
 * follow on from the roster's (serial + 1, + 2, ...), and the latest one gives the member's
 * key in roster_{e+1} if it stays. Returns 0, or CAIRN_EINVAL: an index out of range, an add
 * of an identity present, a bad role or key, an update that does not follow on or names a
 * low-order key, a result of 0 or over 1,000 members or with no admin, or a genesis without
 * settings.
 */
CAIRN_WARN_UNUSED int group_commit_apply(const struct group_base *base,
                                         const struct group_change *changes, unsigned count,
                                         const struct group_counted_update *updates, size_t nupd,
                                         struct group_next *next);

/* What an admin needs to make a commit. Every pointer is borrowed. */
struct group_commit_request {
	uint16_t committer;                 /* its index in roster_e (0 for the genesis) */
	const uint8_t *sign_secret;         /* its Ed25519 secret key (64 bytes, libsodium's) */
	uint64_t last_seq;                  /* last seq it processed (0 for the genesis) */
	const struct group_change *changes; /* in order */
	unsigned change_count;
	const struct group_counted_update *updates; /* counting key updates, in log order */
	size_t update_count;
	const uint8_t *location; /* where the log moves (9.7), or NULL */
	size_t location_len;
	const uint8_t *commit_secret; /* 32 fresh random bytes */
	const uint8_t *eph_private;   /* a fresh X25519 private key */
};

/*
 * Builds the commit of REQ on BASE (9.5, 9.7) into OUT (capacity CAP; GROUP_COMMIT_MAX_LEN
 * suffices) and the epoch it leads to into *NEXT (with has_secret and the location). A commit
 * with a remove must move. The committer must be an admin of roster_e, and the genesis must
 * be "add the creator as admin" then "settings" (group_genesis_changes). Returns 0;
 * CAIRN_EINVAL for a request that 9.5 forbids (the errors of group_commit_apply, a committer
 * that is no admin, a remove without a move, a bad location, a genesis of another shape);
 * CAIRN_ECRYPTO if a DH gives zero; CAIRN_ENOMEM; CAIRN_ENOBUFS. On failure *NEXT is wiped.
 * next->removed is set if the committer removed itself (it still gets the secret).
 */
CAIRN_WARN_UNUSED int group_commit_build(const struct group_base *base,
                                         const struct group_commit_request *req, uint8_t *out,
                                         size_t cap, size_t *outlen, struct group_next *next);

/* Fills CH[0..1] with the genesis's changes: add CREATOR as admin, then SETTINGS. */
void group_genesis_changes(const struct group_member *creator, const struct group_settings *s,
                           struct group_change ch[2]);

/* The opener of a commit: a member of roster_e with its group keys (borrowed). A committer
 * recovering its own commit after a crash (9.5) may give the commit secret it stored instead:
 * that is the only way to epoch 0, since the genesis has no seals. For the genesis SELF and
 * KEYS are ignored, and the opener may be NULL. */
struct group_opener {
	uint16_t self; /* its index in roster_e */
	const struct group_key_pair *keys;
	size_t key_count;
	const uint8_t *commit_secret; /* 32 bytes, or NULL: open the seal */
};

/*
 * Checks the commit IN (LEN bytes, untrusted, complete) against BASE as a member in epoch e
 * does (9.5 "Which commit wins", the checks local to one commit), with the counting key
 * UPDATES of epoch e (NUPD, log order), FIRST_SEQ the seq of the commit's first part and
 * PREV_POSITION the position of the commit that began epoch e if it is in the same log (else
 * 0). On success *NEXT holds epoch e + 1: for a retained member with the secret, keys and
 * location; for a removed member (next->removed), or the genesis opened without its commit
 * secret, without them.
 *
 * Returns 0, or:
 *   CAIRN_EINVAL   malformed, or invalid whoever reads it (not an admin, bad changes, serials
 *                  or last_seq, a remove without a move): ignore it;
 *   CAIRN_ESTATE   for another group, epoch or head (a race's loser, a replay): ignore it;
 *   CAIRN_EAUTH    the signature does not verify: ignore it;
 *   CAIRN_ECRYPTO  signed by an admin, but its roster hash, seals, confirm or move box do not
 *                  match what this member computes: ignore it, and warn the user (9.5).
 * On failure *NEXT is wiped.
 */
CAIRN_WARN_UNUSED int group_commit_open(const struct group_base *base, const uint8_t *in,
                                        size_t len, const struct group_counted_update *updates,
                                        size_t nupd, uint64_t first_seq, uint64_t prev_position,
                                        const struct group_opener *opener, struct group_next *next);

#endif
