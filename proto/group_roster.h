/* SPDX-License-Identifier: MIT */
/*
 * A group's roster (docs/PROTOCOL.md section 9.2): the ordered list of its members, each with
 * its identity, group sign key, group key and that key's serial, and its role. Encoding,
 * decoding with every check of 9.2, and the roster hash that commits sign. Pure functions on
 * caller memory; a struct group_roster is about 104 KB, so callers put it on the heap.
 */
#ifndef CAIRN_PROTO_GROUP_ROSTER_H
#define CAIRN_PROTO_GROUP_ROSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cairn/error.h"
#include "cairn/limits.h"
#include "group_bytes.h"
#include "group_keys.h"

#define GROUP_ROLE_MEMBER    1
#define GROUP_ROLE_ADMIN     2
#define GROUP_MEMBER_LEN     (3 * CAIRN_KEY_LEN + 4 + 1) /* 101 */
#define GROUP_ROSTER_MAX_LEN (2 + GROUP_MEMBERS_MAX * GROUP_MEMBER_LEN)

struct group_member {
	uint8_t identity[CAIRN_KEY_LEN];  /* Ed25519 identity key (8.1) */
	uint8_t sign_key[CAIRN_KEY_LEN];  /* Ed25519 key made for this group */
	uint8_t group_key[CAIRN_KEY_LEN]; /* X25519 key commits seal to */
	uint32_t key_serial;              /* 0 at joining, +1 per counting key update */
	uint8_t role;                     /* GROUP_ROLE_MEMBER or GROUP_ROLE_ADMIN */
};

/* COUNT is 1..GROUP_MEMBERS_MAX in a valid roster; 0 only stands for "no roster yet" (what a
 * genesis applies its changes to). */
struct group_roster {
	uint16_t count;
	struct group_member member[GROUP_MEMBERS_MAX];
};

/* True if KEY is an Ed25519 public key that decodes to a point usable as a key (the check
 * invite.c makes of identity keys). */
bool group_ed25519_key_ok(const uint8_t key[static CAIRN_KEY_LEN]);

/* True if KEY is an X25519 public key not of low order: a DH with it is not all zero. */
bool group_x25519_key_ok(const uint8_t key[static CAIRN_KEY_LEN]);

/*
 * Checks the member M alone (9.2): role 1 or 2, identity and sign key Ed25519 keys that
 * decode, a group key not of low order. Returns 0 or CAIRN_EINVAL.
 */
CAIRN_WARN_UNUSED int group_member_check(const struct group_member *m);

/*
 * Checks R as a whole (9.2): count 1..GROUP_MEMBERS_MAX, every member valid
 * (group_member_check), at least one admin, no identity twice. Returns 0 or CAIRN_EINVAL.
 * Costs one X25519 and two point decodings per member (about 130 ms at 1,000 members).
 */
CAIRN_WARN_UNUSED int group_roster_check(const struct group_roster *r);

/* The index of IDENTITY in R, or -1. */
int group_roster_find(const struct group_roster *r, const uint8_t identity[static CAIRN_KEY_LEN]);

/* The number of admins in R. */
unsigned group_roster_admins(const struct group_roster *r);

/* Encoded length of R: 2 + 101 x count. */
size_t group_roster_len(const struct group_roster *r);

/*
 * Encodes R into OUT (capacity CAP; GROUP_ROSTER_MAX_LEN suffices) as 9.2 writes it. R is
 * not checked beyond its count (0..GROUP_MEMBERS_MAX, else CAIRN_EINVAL). Returns 0,
 * CAIRN_EINVAL or CAIRN_ENOBUFS.
 */
CAIRN_WARN_UNUSED int group_roster_encode(const struct group_roster *r, uint8_t *out, size_t cap,
                                          size_t *outlen);

/*
 * Decodes the roster that fills IN (LEN bytes, untrusted) exactly, then checks it with
 * group_roster_check. Returns 0 or CAIRN_EINVAL (wrong length, trailing bytes, or any failed
 * check); on failure *OUT has count 0 and its members are zeroed.
 */
CAIRN_WARN_UNUSED int group_roster_decode(const uint8_t *in, size_t len, struct group_roster *out);

/* roster_hash = H("cairn/1 group roster" || roster) of R (count 0..GROUP_MEMBERS_MAX). */
void group_roster_hash(const struct group_roster *r, uint8_t out[static GROUP_HEAD_LEN]);

#endif
