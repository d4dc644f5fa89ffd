/* SPDX-License-Identifier: MIT */
/*
 * Invites (docs/PROTOCOL.md section 8.2): the binary payload an inviter hands over in person
 * or over a trusted channel. It names the inviter's relay and mailbox, carries the sender
 * credential that mailbox accepts, the inviter's identity key and a one-time key.
 */
#ifndef CAIRN_PROTO_INVITE_H
#define CAIRN_PROTO_INVITE_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/address.h"
#include "cairn/error.h"
#include "cairn/limits.h"

#define INVITE_VERSION   1
#define INVITE_FIXED_LEN (1 + 2 * CAIRN_KEY_LEN + CAIRN_MAILBOX_ID_LEN + CAIRN_CREDENTIAL_LEN + 2)
#define INVITE_MAX_LEN   (INVITE_FIXED_LEN + CAIRN_ADDRESS_MAX)

struct invite {
	uint8_t identity[CAIRN_KEY_LEN]; /* inviter's Ed25519 identity public key */
	uint8_t onetime[CAIRN_KEY_LEN];  /* X25519 one-time public key */
	uint8_t sender_id[CAIRN_MAILBOX_ID_LEN];
	uint8_t credential[CAIRN_CREDENTIAL_LEN];
	char relay[CAIRN_ADDRESS_MAX + 1]; /* relay address text, NUL-terminated */
};

/*
 * Encodes INV into OUT (capacity CAP; INVITE_MAX_LEN suffices). Returns 0, CAIRN_EADDRESS if
 * the relay text does not parse, CAIRN_EINVAL for an invalid identity key, or CAIRN_ENOBUFS.
 */
CAIRN_WARN_UNUSED int invite_encode(const struct invite *inv, uint8_t *out, size_t cap,
                                    size_t *outlen);

/*
 * Parses IN (LEN bytes, untrusted) into *OUT. Returns 0; CAIRN_EINVAL for a wrong length,
 * version, relay length or identity key (not a valid Ed25519 point); CAIRN_EADDRESS for relay
 * text that is not a valid address. On failure *OUT is zeroed.
 */
CAIRN_WARN_UNUSED int invite_parse(const uint8_t *in, size_t len, struct invite *out);

#endif
