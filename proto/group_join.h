/* SPDX-License-Identifier: MIT */
/*
 * Joining a group (docs/PROTOCOL.md section 9.8): the data of the three 1:1 application
 * messages an admin and a joiner exchange (offer, kind 4; join, kind 5; welcome, kind 6), the
 * group name they carry, and a group log's location (section 9.7), which a welcome names and a
 * commit's move box encrypts. Pure encoders and strict decoders on caller buffers.
 *
 * What is checked here and what is not: every length, the name (below), the relay address
 * (section 1) and the welcome's roster framing (count 1..1000, 101 bytes a member, nothing
 * after). The members themselves (roles, one admin at least, no identity twice, keys that
 * decode) are proto/group_roster's to check, as are the keys of a join before an admin
 * commits them; the joiner's checks of 9.8 (its own entry at `index`) are the client's.
 */
#ifndef CAIRN_PROTO_GROUP_JOIN_H
#define CAIRN_PROTO_GROUP_JOIN_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/address.h"
#include "cairn/error.h"
#include "cairn/limits.h"
#include "group_keys.h"

/*
 * A group's name: 0 to 64 bytes of UTF-8 (RFC 3629: no overlong forms, no surrogates) with
 * no control character (C0, DEL, C1). The decoders reject any other name, and the encoders
 * refuse it, so that a name that decodes encodes back to the same bytes and no NUL hides in
 * it: it is held as a NUL-terminated string. The spec asks only for UTF-8; the ban on control
 * characters is ours (a name is shown in lists, on one line). Other characters a terminal
 * could misuse (bidirectional overrides, line and paragraph separators) are valid here:
 * whoever displays a name escapes them (client/termsafe.h), as for message text.
 */
#define GROUP_NAME_MAX 64

/* Returns 0 when the LEN bytes at NAME are a valid group name (above), else CAIRN_EINVAL. */
CAIRN_WARN_UNUSED int group_name_check(const uint8_t *name, size_t len);

/* A group log's location (9.7): the relay that holds it, its id and the credential that
 * writes to it. The credential is a secret of the group's members. */
struct group_location {
	char relay[CAIRN_ADDRESS_MAX + 1]; /* relay address text, NUL-terminated */
	uint8_t log_id[CAIRN_LOG_ID_LEN];
	uint8_t credential[CAIRN_CREDENTIAL_LEN];
};

#define GROUP_LOCATION_FIXED (2 + CAIRN_LOG_ID_LEN + CAIRN_CREDENTIAL_LEN) /* 58 */
#define GROUP_LOCATION_MAX   (GROUP_LOCATION_FIXED + CAIRN_ADDRESS_MAX)    /* 378 */

/*
 * Encodes LOC (relay_len u16 || relay || log_id || credential) into OUT (capacity CAP;
 * GROUP_LOCATION_MAX suffices). Returns 0, CAIRN_EADDRESS (a relay text that is empty, over
 * CAIRN_ADDRESS_MAX or no address of section 1) or CAIRN_ENOBUFS. Used for a welcome's
 * location and for the plaintext of a commit's move box (9.7).
 */
CAIRN_WARN_UNUSED int group_location_encode(const struct group_location *loc, uint8_t *out,
                                            size_t cap, size_t *outlen);

/*
 * Decodes a location that fills IN (LEN bytes, untrusted) exactly: an opened move box.
 * Returns 0; CAIRN_EINVAL for a relay_len of 0, over CAIRN_ADDRESS_MAX or past the end, a
 * location cut short or bytes after it; CAIRN_EADDRESS for relay text that holds a NUL or does
 * not parse (section 1). On failure *OUT is zeroed.
 */
CAIRN_WARN_UNUSED int group_location_decode(const uint8_t *in, size_t len,
                                            struct group_location *out);

/* Offer (kind 4): "join my group", from an admin to a contact. */
struct group_offer {
	uint8_t group_id[GROUP_ID_LEN];
	char name[GROUP_NAME_MAX + 1]; /* NUL-terminated, see GROUP_NAME_MAX */
};

#define GROUP_OFFER_MIN (GROUP_ID_LEN + 1)                 /* 17 */
#define GROUP_OFFER_MAX (GROUP_OFFER_MIN + GROUP_NAME_MAX) /* 81 */

/* Encodes O into OUT (capacity CAP; GROUP_OFFER_MAX suffices). Returns 0, CAIRN_EINVAL (an
 * invalid name) or CAIRN_ENOBUFS. */
CAIRN_WARN_UNUSED int group_offer_encode(const struct group_offer *o, uint8_t *out, size_t cap,
                                         size_t *outlen);
/* Decodes offer data IN (LEN bytes, untrusted). Returns 0 or CAIRN_EINVAL (a wrong length,
 * name_len over 64 or not the bytes left, an invalid name); on failure *OUT is zeroed. */
CAIRN_WARN_UNUSED int group_offer_decode(const uint8_t *in, size_t len, struct group_offer *out);

/* Join (kind 5): the joiner's fresh sign key (Ed25519) and group key (X25519, serial 0). */
struct group_join {
	uint8_t group_id[GROUP_ID_LEN];
	uint8_t sign_key[CAIRN_KEY_LEN];
	uint8_t group_key[CAIRN_KEY_LEN];
};

#define GROUP_JOIN_LEN (GROUP_ID_LEN + 2 * CAIRN_KEY_LEN) /* 80 */

/* Encodes J into OUT (capacity CAP). Returns 0 or CAIRN_ENOBUFS. */
CAIRN_WARN_UNUSED int group_join_encode(const struct group_join *j, uint8_t *out, size_t cap,
                                        size_t *outlen);
/* Decodes join data IN (LEN bytes, untrusted): exactly GROUP_JOIN_LEN bytes, else
 * CAIRN_EINVAL and *OUT zeroed. The keys are not checked here (see the top of this file). */
CAIRN_WARN_UNUSED int group_join_decode(const uint8_t *in, size_t len, struct group_join *out);

/* A roster's framing as a welcome carries it (9.2): count (u16) || count x member. */
#define GROUP_WELCOME_MEMBER_LEN 101
#define GROUP_WELCOME_ROSTER_MAX (2 + GROUP_WELCOME_MEMBER_LEN * GROUP_MEMBERS_MAX)

/* The fixed part of a welcome before its location, and the largest welcome (101,551 bytes,
 * within 64 parts of 8.9). */
#define GROUP_WELCOME_HEAD_LEN                                                                     \
	(GROUP_ID_LEN + 8 + GROUP_HEAD_LEN + GROUP_SECRET_LEN + 2 + 4 + 4 + 8) /* 106 */
#define GROUP_WELCOME_MAX                                                                          \
	(GROUP_WELCOME_HEAD_LEN + GROUP_LOCATION_MAX + 1 + GROUP_NAME_MAX +                        \
	 GROUP_WELCOME_ROSTER_MAX)

/*
 * Welcome (kind 6): what a joiner needs to enter the epoch its add began. EPOCH_SECRET is a
 * secret, and the location's credential one of the group's: wipe a welcome with
 * group_welcome_clear once its values are taken.
 */
struct group_welcome {
	uint8_t group_id[GROUP_ID_LEN];
	uint64_t epoch;
	uint8_t head[GROUP_HEAD_LEN];
	uint8_t epoch_secret[GROUP_SECRET_LEN];
	uint16_t index; /* the joiner's position in the roster; below its count */
	uint32_t rotate_seconds, rotate_messages;
	uint64_t commit_seq; /* the joiner reads the log from commit_seq + 1 */
	struct group_location location;
	char name[GROUP_NAME_MAX + 1]; /* NUL-terminated, see GROUP_NAME_MAX */
	/* The roster's bytes, borrowed: into the decoder's input, or the encoder's caller's.
	 * Framing only is checked here; decode it with proto/group_roster.h. */
	const uint8_t *roster;
	size_t roster_len;
};

/*
 * Encodes W into OUT (capacity CAP; GROUP_WELCOME_MAX suffices). Returns 0; CAIRN_EINVAL for an
 * invalid name, roster framing that group_welcome_decode would reject, or an index not below
 * the roster's count; CAIRN_EADDRESS for the location's relay; CAIRN_ENOBUFS. OUT then holds
 * the epoch secret: the caller wipes it once sent.
 */
CAIRN_WARN_UNUSED int group_welcome_encode(const struct group_welcome *w, uint8_t *out, size_t cap,
                                           size_t *outlen);

/*
 * Decodes welcome data IN (LEN bytes, untrusted, the joined parts of a kind 6 message) into
 * *OUT; OUT->roster points into IN, so IN must outlive its use. Returns 0; CAIRN_EINVAL for a
 * welcome cut short, a bad relay_len or name_len, an invalid name, a roster count of 0 or over
 * 1000, a roster length other than 2 + 101 x count (nothing may follow it), or an index not
 * below the count; CAIRN_EADDRESS for a relay that holds a NUL or does not parse. Structure is
 * checked before the relay text. On failure *OUT is wiped.
 */
CAIRN_WARN_UNUSED int group_welcome_decode(const uint8_t *in, size_t len,
                                           struct group_welcome *out);

/* Wipes W (the epoch secret, the credential, everything); W may be NULL. */
void group_welcome_clear(struct group_welcome *w);

#endif
