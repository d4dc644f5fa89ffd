/* SPDX-License-Identifier: MIT */
/*
 * Application messages inside the end-to-end layer (docs/PROTOCOL.md section 8.9): one part of
 * a text (or a hello) with its message id, time and part number, and the accepter's reply that
 * names the mailbox where the inviter answers.
 */
#ifndef CAIRN_PROTO_APPMSG_H
#define CAIRN_PROTO_APPMSG_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/address.h"
#include "cairn/error.h"
#include "cairn/limits.h"
#include "e2e.h"

#define APPMSG_TEXT        1
#define APPMSG_HELLO       2
#define APPMSG_ID_LEN      16
#define APPMSG_HEADER_LEN  (1 + APPMSG_ID_LEN + 8 + 2 + 2) /* 29 */
#define APPMSG_PART_MAX    (E2E_MESSAGE_MAX - APPMSG_HEADER_LEN - 2)
#define APPMSG_PARTS_MAX   64
#define APPMSG_TEXT_MAX    (256 * 1024)

struct appmsg {
	uint8_t kind;
	uint8_t id[APPMSG_ID_LEN];
	uint64_t sent_at;
	uint16_t part_index, part_count;
	const uint8_t *data; /* borrowed */
	size_t data_len;
};

/* Writes M into OUT (capacity CAP). Returns 0, CAIRN_EINVAL (bad part numbers or data over
 * APPMSG_PART_MAX) or CAIRN_ENOBUFS. */
CAIRN_WARN_UNUSED int appmsg_encode(const struct appmsg *m, uint8_t *out, size_t cap,
				    size_t *outlen);

/* Parses IN (LEN bytes, untrusted); M->data points into IN. Returns 0 or CAIRN_EINVAL. */
CAIRN_WARN_UNUSED int appmsg_parse(const uint8_t *in, size_t len, struct appmsg *m);

/* The accepter's reply: its mailbox for the inviter. */
struct appmsg_reply {
	uint8_t sender_id[CAIRN_MAILBOX_ID_LEN];
	uint8_t credential[CAIRN_CREDENTIAL_LEN];
	char relay[CAIRN_ADDRESS_MAX + 1];
};

#define APPMSG_REPLY_MAX (1 + CAIRN_MAILBOX_ID_LEN + CAIRN_CREDENTIAL_LEN + 2 + CAIRN_ADDRESS_MAX)

CAIRN_WARN_UNUSED int appmsg_reply_encode(const struct appmsg_reply *r, uint8_t *out, size_t cap,
					  size_t *outlen);
/* Parses and checks that the relay is a valid address. Returns 0 or CAIRN_EINVAL. */
CAIRN_WARN_UNUSED int appmsg_reply_parse(const uint8_t *in, size_t len, struct appmsg_reply *r);

#endif
