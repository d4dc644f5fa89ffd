/* SPDX-License-Identifier: MIT */
/*
 * Application messages inside the end-to-end layer (docs/PROTOCOL.md section 8.9): one part of
 * a text (or a hello, or a mailboxes message) with its message id, time and part number, and
 * the accepter's reply that names the mailboxes where the inviter answers. The same layout
 * carries the group kinds: offer, join and welcome in 1:1 sessions (section 9.8), and text,
 * key update and leave inside a group log (9.4, 9.6); appmsg_check says which kind goes where.
 */
#ifndef CAIRN_PROTO_APPMSG_H
#define CAIRN_PROTO_APPMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cairn/address.h"
#include "cairn/error.h"
#include "cairn/limits.h"
#include "e2e.h"
#include "invite.h"

#define APPMSG_TEXT       1
#define APPMSG_HELLO      2
#define APPMSG_MAILBOXES  3
#define APPMSG_GROUP_OFFER   4  /* 1:1, section 9.8 */
#define APPMSG_GROUP_JOIN    5  /* 1:1 */
#define APPMSG_GROUP_WELCOME 6  /* 1:1, up to APPMSG_PARTS_MAX parts */
#define APPMSG_TIMER         7  /* 1:1 and group logs, section 8.11 */
#define APPMSG_KEY_UPDATE    16 /* group log only, section 9.6 */
#define APPMSG_LEAVE         17 /* group log only, section 9.4 */
#define APPMSG_ID_LEN     16
#define APPMSG_HEADER_LEN (1 + APPMSG_ID_LEN + 8 + 2 + 2) /* 29 */
#define APPMSG_PART_MAX   (E2E_MESSAGE_MAX - APPMSG_HEADER_LEN - 2)
#define APPMSG_PARTS_MAX  64
#define APPMSG_TEXT_MAX   (256 * 1024)

struct appmsg {
	uint8_t kind;
	uint8_t id[APPMSG_ID_LEN];
	uint64_t sent_at;
	uint16_t part_index, part_count;
	const uint8_t *data; /* borrowed */
	size_t data_len;
};

/* Where an application message travels: a 1:1 session (section 8) or a group log (9.4). */
enum appmsg_scope { APPMSG_DIRECT = 1, APPMSG_GROUP = 2 };

/* In a group log a text part holds less: 16384 - 63 - 2 - 64 - 31 bytes (9.4). A key update's
 * data is key_serial (u32) || group_key (32) || prev_count (u32) (9.6). */
#define APPMSG_GROUP_PART_MAX      (CAIRN_LOG_ENTRY_MAX - 63 - 2 - CAIRN_SIGNATURE_LEN - 31)
#define APPMSG_KEY_UPDATE_DATA_LEN (4 + CAIRN_KEY_LEN + 4)

/*
 * Says whether a parsed part M is one a receiver in SCOPE acts on. Returns 0, or CAIRN_EINVAL
 * when the part is to be dropped: a kind SCOPE does not carry (1:1: 1 to 7; group: 1, 7, 16,
 * 17; the others are dropped silently, so later versions can add kinds), or a kind whose parts
 * break its rules: one part for every kind but a text or a welcome; empty data for a hello or
 * a leave; APPMSG_KEY_UPDATE_DATA_LEN bytes for a key update; at most APPMSG_GROUP_PART_MAX
 * bytes for a text in a group; a timer's APPMSG_TIMER_DATA_LEN bytes of at most
 * CAIRN_TIMER_MAX_S seconds (8.11). The data itself is checked by each kind's own decoder.
 */
CAIRN_WARN_UNUSED int appmsg_check(const struct appmsg *m, enum appmsg_scope scope);

/* Writes M into OUT (capacity CAP). Returns 0, CAIRN_EINVAL (bad part numbers or data over
 * APPMSG_PART_MAX) or CAIRN_ENOBUFS. */
CAIRN_WARN_UNUSED int appmsg_encode(const struct appmsg *m, uint8_t *out, size_t cap,
                                    size_t *outlen);

/* Parses IN (LEN bytes, untrusted); M->data points into IN. Returns 0 or CAIRN_EINVAL. */
CAIRN_WARN_UNUSED int appmsg_parse(const uint8_t *in, size_t len, struct appmsg *m);

/*
 * The accepter's reply (section 8.9): version 2 and the mailbox list where the inviter writes
 * to it. It must fit E2E_REPLY_MAX bytes, which four mailboxes do unless their relay
 * addresses are long (more than 197 bytes on average).
 */
#define APPMSG_REPLY_VERSION 2
#define APPMSG_REPLY_MAX     E2E_REPLY_MAX

/* Writes the reply naming L into OUT (capacity CAP). Returns 0, the errors of
 * mailbox_list_encode, CAIRN_ETOOBIG (over APPMSG_REPLY_MAX bytes) or CAIRN_ENOBUFS. */
CAIRN_WARN_UNUSED int appmsg_reply_encode(const struct mailbox_list *l, uint8_t *out, size_t cap,
                                          size_t *outlen);
/* Parses a reply (untrusted) into *L. Returns 0, CAIRN_EINVAL (wrong version or length, or a
 * mailbox list mailbox_list_parse rejects so) or CAIRN_EADDRESS; on failure *L is zeroed. */
CAIRN_WARN_UNUSED int appmsg_reply_parse(const uint8_t *in, size_t len, struct mailbox_list *l);

/*
 * The data of a mailboxes message (kind 3, section 8.9): "from now on, write to me at these
 * mailboxes". SERIAL (1 and up) orders them: a receiver applies only a larger one.
 */
#define APPMSG_MAILBOXES_MAX (4 + MAILBOX_LIST_MAX)

/* Writes SERIAL and L into OUT (capacity CAP). Returns 0, CAIRN_EINVAL (SERIAL 0), the
 * errors of mailbox_list_encode, or CAIRN_ENOBUFS. */
CAIRN_WARN_UNUSED int appmsg_mailboxes_encode(uint32_t serial, const struct mailbox_list *l,
                                              uint8_t *out, size_t cap, size_t *outlen);
/* Parses mailboxes message data (untrusted). Returns 0, CAIRN_EINVAL or CAIRN_EADDRESS; on
 * failure *SERIAL is 0 and *L zeroed. */
CAIRN_WARN_UNUSED int appmsg_mailboxes_parse(const uint8_t *in, size_t len, uint32_t *serial,
                                             struct mailbox_list *l);

/*
 * The data of a timer message (kind 7, section 8.11): seconds (u32), 0 = off, at most
 * CAIRN_TIMER_MAX_S.
 */
#define APPMSG_TIMER_DATA_LEN 4

/* Writes SECONDS into OUT. Returns 0 or CAIRN_EINVAL (over CAIRN_TIMER_MAX_S). */
CAIRN_WARN_UNUSED int appmsg_timer_encode(uint32_t seconds, uint8_t out[static APPMSG_TIMER_DATA_LEN]);
/* Parses timer data (untrusted). Returns 0 or CAIRN_EINVAL (another length, or seconds over
 * CAIRN_TIMER_MAX_S); on failure *SECONDS is 0. */
CAIRN_WARN_UNUSED int appmsg_timer_parse(const uint8_t *in, size_t len, uint32_t *seconds);

/* Whether the timer message (SENT_AT_A, ID_A) comes after (SENT_AT_B, ID_B) in the order of
 * 8.11: sent_at, then the message id as bytes. */
bool appmsg_timer_later(uint64_t sent_at_a, const uint8_t id_a[static APPMSG_ID_LEN],
                        uint64_t sent_at_b, const uint8_t id_b[static APPMSG_ID_LEN]);

#endif
