/* SPDX-License-Identifier: MIT */
/*
 * Relay addresses: cairn://<static key, base64url without padding>@<host>:<port>
 * (docs/PROTOCOL.md section 1). The key authenticates the relay; the host may be IPv4,
 * bracketed IPv6, a DNS name or a Tor v3 .onion name.
 */
#ifndef CAIRN_ADDRESS_H
#define CAIRN_ADDRESS_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/error.h"
#include "cairn/limits.h"

#define CAIRN_ADDRESS_MAX  320 /* longest address text, without the terminating NUL */
#define CAIRN_HOST_MAX     253

enum cairn_host_type {
	CAIRN_HOST_IPV4 = 1,
	CAIRN_HOST_IPV6 = 2,
	CAIRN_HOST_NAME = 3,
	CAIRN_HOST_ONION = 4,
};

struct cairn_address {
	uint8_t key[CAIRN_KEY_LEN];
	enum cairn_host_type host_type;
	char host[CAIRN_HOST_MAX + 1]; /* NUL-terminated; IPv6 without brackets */
	uint16_t port;
};

/* Parses TEXT (NUL-terminated). Returns 0, or CAIRN_EADDRESS with *OUT zeroed. */
CAIRN_WARN_UNUSED int cairn_address_parse(const char *text, struct cairn_address *out);

/* Formats A into OUT (capacity CAP, NUL-terminated). Returns 0, CAIRN_EINVAL for an invalid A,
 * or CAIRN_ENOBUFS. CAIRN_ADDRESS_MAX + 1 bytes always suffice. */
CAIRN_WARN_UNUSED int cairn_address_format(const struct cairn_address *a, char *out, size_t cap);

#endif
