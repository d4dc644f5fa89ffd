/* SPDX-License-Identifier: MIT */
/*
 * Commands and replies (docs/PROTOCOL.md section 5): msgpack arrays [type, request_id, ...].
 * Encoding uses msgpack-c's packer into a caller's buffer. Decoding first validates the raw
 * bytes with a bounded walker (msgcheck.h), so no claimed length or count sizes an allocation;
 * a decoded message borrows pointers into the input and allocates nothing.
 */
#ifndef CAIRN_PROTO_CODEC_H
#define CAIRN_PROTO_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/error.h"
#include "cairn/limits.h"

enum cairn_msg_type {
	CAIRN_CMD_PING = 1,
	CAIRN_CMD_CREATE = 2,
	CAIRN_CMD_AUTH = 3,
	CAIRN_CMD_SECURE = 4,
	CAIRN_CMD_SUBSCRIBE = 5,
	CAIRN_CMD_ACK = 6,
	CAIRN_CMD_DELETE = 7,
	CAIRN_CMD_SEND = 8,
	CAIRN_CMD_LOG_CREATE = 9, /* group logs, section 5.9 */
	CAIRN_CMD_LOG_APPEND = 10,
	CAIRN_CMD_LOG_READ = 11,
	CAIRN_CMD_LOG_DELETE = 12,
	CAIRN_CMD_INTAKE = 13, /* intake mailboxes, section 5.10 */
	CAIRN_CMD_SEND_WORK = 14,
	CAIRN_CMD_FORWARD = 15, /* private routing, section 5.11 */
	CAIRN_CMD_FORWARDED = 16,
	CAIRN_CMD_BUNDLED = 17, /* bundles, section 5.12: only inside a FORWARDED seal */
	CAIRN_CMD_POLICY = 18,  /* the relay's signed policy, section 5.13 */
	CAIRN_REPLY_OK = 64,
	CAIRN_REPLY_CREATED = 65,
	CAIRN_REPLY_ERROR = 66,
	CAIRN_REPLY_ENVELOPE = 67,
	CAIRN_REPLY_END = 68,
	CAIRN_REPLY_APPENDED = 69,
	CAIRN_REPLY_LOG_STATE = 70,
	CAIRN_REPLY_LOG_ENTRY = 71,
	CAIRN_REPLY_SEALED = 72,
	CAIRN_REPLY_POLICY = 73,
};

/*
 * One command or reply. Only the fields of its type are meaningful (docs/PROTOCOL.md 5.2,
 * 5.3, 5.9); pointer fields borrow from the decoded buffer, or from the caller when encoding.
 * A log entry travels in the envelope fields, so that one check of envelope_len serves both
 * for `too big`.
 */
struct cairn_msg {
	uint8_t type;
	uint32_t request_id;
	const uint8_t *recipient_key; /* CREATE: 32 bytes */
	const uint8_t *recipient_id;  /* AUTH SECURE SUBSCRIBE ACK DELETE INTAKE CREATED: 24 bytes */
	const uint8_t *sender_id;     /* SEND SEND_WORK BUNDLED CREATED: 24 bytes */
	const uint8_t *signature;     /* AUTH, POLICY reply with a body: 64 bytes */
	/* SECURE, LOG_CREATE: a credential digest, 32 bytes; SEND: 32 bytes or NULL (nil);
	 * LOG_APPEND: the log credential, 32 bytes; POLICY command: `have`, 32 bytes or NULL */
	const uint8_t *credential;
	uint64_t envelope_id;    /* ACK ENVELOPE */
	const uint8_t *envelope; /* SEND SEND_WORK BUNDLED ENVELOPE: envelope_len bytes (NULL if 0);
	                            LOG_APPEND LOG_ENTRY: the entry, 1..CAIRN_LOG_ENTRY_MAX */
	size_t envelope_len;
	uint32_t code; /* ERROR, END: a wire error code (0 for END of a deleted mailbox) */
	const uint8_t *log_id;        /* LOG_CREATE LOG_APPEND LOG_READ LOG_DELETE: 24 bytes */
	const uint8_t *delete_digest; /* LOG_CREATE: 32 bytes */
	const uint8_t *delete_secret; /* LOG_DELETE: 32 bytes */
	uint64_t seq;                 /* LOG_READ: from_seq; APPENDED LOG_ENTRY: the entry's seq */
	uint64_t first_seq;           /* LOG_STATE */
	uint64_t next_seq;            /* LOG_STATE */
	uint8_t follow;               /* LOG_READ: 0 or 1 */
	uint8_t work_bits;            /* INTAKE: 1..40 */
	const uint8_t *work;          /* SEND_WORK: 16 bytes */
	const uint8_t *relay;         /* FORWARD: the destination's address text, relay_len bytes */
	size_t relay_len;             /* 1..CODEC_RELAY_MAX */
	/* FORWARD FORWARDED: a sealed command, CODEC_SEALED_MIN..CODEC_SEALED_MAX bytes;
	 * SEALED: a sealed reply, CODEC_SEALED_REPLY_MIN..CODEC_SEALED_REPLY_MAX bytes */
	const uint8_t *sealed;
	size_t sealed_len;
	uint64_t not_after; /* BUNDLED: seconds since the epoch */
	/* POLICY reply: the body, 1..CODEC_POLICY_MAX bytes, or NULL (nil: no policy, and then no
	 * signature on the wire) */
	const uint8_t *policy;
	size_t policy_len;
};

/* The wire bounds of 5.2 and 5.3 for private routing's fields (forward.h has the sizes that
 * actually open, which are stricter). */
#define CODEC_RELAY_MAX        320
#define CODEC_SEALED_MIN       49
#define CODEC_SEALED_MAX       16688
#define CODEC_SEALED_REPLY_MIN 17
#define CODEC_SEALED_REPLY_MAX 1040
#define CODEC_POLICY_MAX       4096 /* policy.h's POLICY_BODY_MAX */

/* Largest encoding of any message (a full FORWARD: its two fields, their headers and the
 * array's), for sizing buffers. */
#define CAIRN_MSG_ENCODED_MAX (CODEC_SEALED_MAX + CODEC_RELAY_MAX + 32)

/*
 * Encodes M into OUT (capacity CAP) and sets *OUTLEN. Returns 0, CAIRN_EINVAL for an unknown
 * type or a field out of range (e.g. envelope too long, missing pointer), or CAIRN_ENOBUFS.
 */
CAIRN_WARN_UNUSED int cairn_msg_encode(const struct cairn_msg *m, uint8_t *out, size_t cap,
                                       size_t *outlen);

/*
 * Decodes the first message of BUF (LEN bytes) into M. With USED non-NULL, sets *USED to the
 * bytes it spans (so a frame's batch is decoded by calling again on the rest); with USED NULL,
 * BUF must hold exactly one message (else CAIRN_ETRAILING). Returns 0 or the first failing
 * check of docs/PROTOCOL.md 5.1: CAIRN_EMALFORMED, CAIRN_ETRUNCATED, CAIRN_ECOUNT,
 * CAIRN_EDEPTH, CAIRN_ETRAILING, CAIRN_ETYPE, CAIRN_EUNKNOWN. On CAIRN_ETYPE and CAIRN_EUNKNOWN
 * the message is structurally sound: *USED is set and, if M->request_id could be read,
 * *HAVE_ID (when non-NULL) is set to 1 so the caller can send an ERROR reply.
 * *HAVE_ID is also 1 on success; *USED and *HAVE_ID are 0 after any other failure.
 * On CAIRN_ETYPE, M holds the fields read before the faulty one; an envelope longer than
 * CAIRN_ENVELOPE_MAX (or a log entry longer than CAIRN_LOG_ENTRY_MAX) is the fault exactly
 * when M->envelope_len is over that, which lets the relay answer `too big` instead of `bad
 * request`; an empty log entry and a `follow` other than 0 or 1 are CAIRN_ETYPE. Reply types decode
 * too; a relay must itself refuse them as commands.
 */
CAIRN_WARN_UNUSED int cairn_msg_decode(const uint8_t *buf, size_t len, size_t *used,
                                       struct cairn_msg *m, int *have_id);

/* Name of a message type ("SEND", "ENVELOPE", ...), or "?" for an unknown one. */
const char *cairn_msg_type_name(int type);

/*
 * The code an ERROR reply carries for ERR: -ERR for a wire code (CAIRN_EBADREQ .. -15),
 * 1 (`bad request`) for the decode failures CAIRN_EMALFORMED, CAIRN_ETRUNCATED, CAIRN_ECOUNT,
 * CAIRN_EDEPTH, CAIRN_ETRAILING and CAIRN_ETYPE, and 0 for anything else (0 itself, or a
 * local code with no wire form, which the caller must map itself).
 */
uint32_t cairn_wire_code(int err);

/*
 * The library code for a wire CODE from an ERROR or END reply: 0 for 0, -CODE for 1..15
 * (codes this version does not name still come back as themselves), CAIRN_EINVAL above that.
 */
int cairn_wire_error(uint32_t code);

#endif
