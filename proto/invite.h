/* SPDX-License-Identifier: MIT */
/*
 * Invites (docs/PROTOCOL.md section 8.2): the binary payload an inviter hands over in person
 * or over a trusted channel. It carries the inviter's identity key, a one-time key and a list
 * of one to four mailboxes, each on its own relay, with the sender credential each accepts.
 * The mailbox list has one encoding wherever it appears: in invites, in the accepter's reply
 * and in a mailboxes message (section 8.9). A group invite (version 3, section 9.8) is an
 * invite with a trailer that names the group the accepter joins.
 */
#ifndef CAIRN_PROTO_INVITE_H
#define CAIRN_PROTO_INVITE_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/address.h"
#include "cairn/error.h"
#include "cairn/limits.h"
#include "group_join.h"

#define INVITE_VERSION 2

/* One mailbox as its senders know it: where it is and what it takes to write to it. */
struct mailbox_addr {
	uint8_t sender_id[CAIRN_MAILBOX_ID_LEN];
	uint8_t credential[CAIRN_CREDENTIAL_LEN];
	char relay[CAIRN_ADDRESS_MAX + 1]; /* relay address text, NUL-terminated */
};

/* One to CAIRN_MAILBOXES_MAX mailboxes on distinct relays, in the order senders try them. */
struct mailbox_list {
	uint8_t count;
	struct mailbox_addr box[CAIRN_MAILBOXES_MAX];
};

#define MAILBOX_ENTRY_FIXED (CAIRN_MAILBOX_ID_LEN + CAIRN_CREDENTIAL_LEN + 2) /* 58 */
#define MAILBOX_LIST_MAX    (1 + CAIRN_MAILBOXES_MAX * (MAILBOX_ENTRY_FIXED + CAIRN_ADDRESS_MAX))

#define INVITE_HEADER_LEN (1 + 2 * CAIRN_KEY_LEN) /* version, identity, one-time key */
#define INVITE_MAX_LEN    (INVITE_HEADER_LEN + MAILBOX_LIST_MAX) /* 1578 */

struct invite {
	uint8_t identity[CAIRN_KEY_LEN]; /* inviter's Ed25519 identity public key */
	uint8_t onetime[CAIRN_KEY_LEN];  /* X25519 one-time public key */
	struct mailbox_list mailboxes;
};

/*
 * Encodes the mailbox list L into OUT (capacity CAP; MAILBOX_LIST_MAX suffices). Returns 0,
 * CAIRN_EINVAL (a count of 0 or over CAIRN_MAILBOXES_MAX, or two mailboxes on one relay),
 * CAIRN_EADDRESS (a relay text that does not parse) or CAIRN_ENOBUFS.
 */
CAIRN_WARN_UNUSED int mailbox_list_encode(const struct mailbox_list *l, uint8_t *out, size_t cap,
                                          size_t *outlen);

/*
 * Parses a mailbox list that fills IN (LEN bytes, untrusted) exactly. Returns 0; CAIRN_EINVAL
 * for a bad count, a relay length of 0, over CAIRN_ADDRESS_MAX or past the end, trailing
 * bytes, or two mailboxes on the same relay (the same static key); CAIRN_EADDRESS for relay
 * text that holds a NUL or is no address. Structure is checked before any relay text. On
 * failure *OUT is zeroed.
 */
CAIRN_WARN_UNUSED int mailbox_list_parse(const uint8_t *in, size_t len, struct mailbox_list *out);

/*
 * Encodes INV into OUT (capacity CAP; INVITE_MAX_LEN suffices). Returns 0, the errors of
 * mailbox_list_encode, or CAIRN_EINVAL for an invalid identity key.
 */
CAIRN_WARN_UNUSED int invite_encode(const struct invite *inv, uint8_t *out, size_t cap,
                                    size_t *outlen);

/*
 * Parses IN (LEN bytes, untrusted) into *OUT. Returns 0; CAIRN_EINVAL for a wrong length or
 * version, an identity key that is not a valid Ed25519 point, or a mailbox list that
 * mailbox_list_parse rejects with CAIRN_EINVAL; CAIRN_EADDRESS for relay text that is not a
 * valid address. On failure *OUT is zeroed.
 */
CAIRN_WARN_UNUSED int invite_parse(const uint8_t *in, size_t len, struct invite *out);

/*
 * The group invite (section 9.8): version 3, then as a version 2 invite, then the trailer
 * group_id (16) || name_len (u8, 0..64) || name. invite_parse refuses it (another version),
 * and group_invite_parse refuses a version 2 invite, trailer or not.
 */
#define INVITE_GROUP_VERSION     3
#define INVITE_GROUP_TRAILER_MIN (GROUP_ID_LEN + 1)                                 /* 17 */
#define INVITE_GROUP_MIN_LEN     (INVITE_HEADER_LEN + 1 + INVITE_GROUP_TRAILER_MIN) /* 83 */
/* 1659 */
#define INVITE_GROUP_MAX_LEN (INVITE_MAX_LEN + INVITE_GROUP_TRAILER_MIN + GROUP_NAME_MAX)

struct group_invite {
	struct invite invite;
	uint8_t group_id[GROUP_ID_LEN];
	char name[GROUP_NAME_MAX + 1]; /* NUL-terminated; a valid name (group_join.h) */
};

/* Encodes GI into OUT (capacity CAP; INVITE_GROUP_MAX_LEN suffices). Returns 0, the errors of
 * invite_encode, CAIRN_EINVAL for an invalid name, or CAIRN_ENOBUFS. */
CAIRN_WARN_UNUSED int group_invite_encode(const struct group_invite *gi, uint8_t *out, size_t cap,
                                          size_t *outlen);

/*
 * Parses a group invite IN (LEN bytes, untrusted) into *OUT: the rules of invite_parse on the
 * part before the trailer (version 3, 83 to 1659 bytes), then the trailer present whole with
 * nothing after it (CAIRN_EINVAL), then its name (CAIRN_EINVAL unless valid, group_join.h).
 * Returns 0 or the codes of invite_parse. On failure *OUT is zeroed.
 */
CAIRN_WARN_UNUSED int group_invite_parse(const uint8_t *in, size_t len, struct group_invite *out);

/*
 * What intake addresses (intake.c, PROTOCOL.md 10.1) check as invites do. identity_key_check:
 * 0, or CAIRN_EINVAL for an identity key that 8.1's map to X25519 rejects. relay_texts_check:
 * the COUNT (at most CAIRN_MAILBOXES_MAX) NUL-terminated relay texts RELAY, each an address
 * (else CAIRN_EADDRESS), then no two with the same static key (else CAIRN_EINVAL).
 */
CAIRN_WARN_UNUSED int identity_key_check(const uint8_t key[static CAIRN_KEY_LEN]);
CAIRN_WARN_UNUSED int relay_texts_check(const char *const relay[], size_t count);

#endif
