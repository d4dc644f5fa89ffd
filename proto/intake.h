/* SPDX-License-Identifier: MIT */
/*
 * Intake addresses and prekey bundles (docs/PROTOCOL.md sections 10.1 and 10.3): the
 * published, reusable address from which anyone can open a conversation with its owner, and
 * the signed prekey the owner publishes beside it in a bundle log on each relay.
 */
#ifndef CAIRN_PROTO_INTAKE_H
#define CAIRN_PROTO_INTAKE_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/address.h"
#include "cairn/error.h"
#include "cairn/limits.h"

#define INTAKE_VERSION     4
#define INTAKE_POINTS_MAX  CAIRN_MAILBOXES_MAX
#define INTAKE_POINT_FIXED (CAIRN_MAILBOX_ID_LEN + CAIRN_LOG_ID_LEN + 2) /* 50 */
#define INTAKE_MIN_LEN     (2 + CAIRN_KEY_LEN + INTAKE_POINT_FIXED + 1)   /* 85 */
#define INTAKE_MAX_LEN                                                                             \
	(2 + CAIRN_KEY_LEN + INTAKE_POINTS_MAX * (INTAKE_POINT_FIXED + CAIRN_ADDRESS_MAX)) /* 1514 */
#define INTAKE_SCHEME "cairn-intake:"

/* One relay of an intake address: its intake mailbox and its bundle log. */
struct intake_point {
	uint8_t sender_id[CAIRN_MAILBOX_ID_LEN];
	uint8_t log_id[CAIRN_LOG_ID_LEN];
	char relay[CAIRN_ADDRESS_MAX + 1]; /* relay address text, NUL-terminated */
};

struct intake_address {
	uint8_t identity[CAIRN_KEY_LEN]; /* the owner's Ed25519 identity public key */
	uint8_t count;                   /* 1..INTAKE_POINTS_MAX */
	struct intake_point point[INTAKE_POINTS_MAX];
};

/*
 * Encodes A into OUT (capacity CAP; INTAKE_MAX_LEN suffices). Returns 0, CAIRN_EINVAL (a
 * count of 0 or over INTAKE_POINTS_MAX, two points on one relay, an invalid identity key),
 * CAIRN_EADDRESS or CAIRN_ENOBUFS.
 */
CAIRN_WARN_UNUSED int intake_encode(const struct intake_address *a, uint8_t *out, size_t cap,
                                    size_t *outlen);

/* Parses IN (LEN bytes, untrusted) by the rules of 10.1. On failure *OUT is zeroed. */
CAIRN_WARN_UNUSED int intake_parse(const uint8_t *in, size_t len, struct intake_address *out);

#define BUNDLE_VERSION    1
#define BUNDLE_SIGNED_LEN (1 + 2 * CAIRN_KEY_LEN + 8 + 8 + 1) /* 82 */
#define BUNDLE_LEN        (BUNDLE_SIGNED_LEN + CAIRN_SIGNATURE_LEN) /* 146 */

struct intake_bundle {
	uint8_t identity[CAIRN_KEY_LEN]; /* Ed25519 */
	uint8_t prekey[CAIRN_KEY_LEN];   /* X25519 public: SPK */
	uint64_t created;
	uint64_t expires;
	uint8_t work_bits; /* WORK_BITS_MIN..WORK_BITS_MAX */
};

/*
 * Signs B for the bundle log LOG_ID with IDENTITY_SK (libsodium Ed25519 secret key, whose
 * public key must be B->identity) into OUT. Returns 0 or CAIRN_EINVAL (expires not after
 * created, work_bits out of range, a key that does not match).
 */
CAIRN_WARN_UNUSED int bundle_sign(const struct intake_bundle *b,
                                  const uint8_t log_id[static CAIRN_LOG_ID_LEN],
                                  const uint8_t identity_sk[static 64],
                                  uint8_t out[static BUNDLE_LEN]);

/*
 * Parses and verifies a bundle log entry IN (LEN bytes, untrusted) read from the log LOG_ID
 * of the address whose identity is IDENTITY. Returns 0, or CAIRN_EINVAL (length, version,
 * another identity, expires not after created, work_bits out of range) or CAIRN_EAUTH (the
 * signature). Expiry against a clock is the caller's. On failure *OUT is zeroed.
 */
CAIRN_WARN_UNUSED int bundle_open(const uint8_t *in, size_t len,
                                  const uint8_t identity[static CAIRN_KEY_LEN],
                                  const uint8_t log_id[static CAIRN_LOG_ID_LEN],
                                  struct intake_bundle *out);

#endif
