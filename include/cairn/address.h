/* SPDX-License-Identifier: MIT */
/*
 * Relay addresses: cairn://<static key, base64url without padding>@<host>:<port>, or the same
 * reached through a transport that hides what it carries: cairn+https://...:<port>/<path>
 * [?pin=...] or cairn+obfs4://...:<port>?cert=...&iat-mode=N (docs/PROTOCOL.md section 1).
 * The key authenticates the relay; the host may be IPv4, bracketed IPv6, a DNS name or a Tor
 * v3 .onion name.
 */
#ifndef CAIRN_ADDRESS_H
#define CAIRN_ADDRESS_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/error.h"
#include "cairn/limits.h"

#define CAIRN_ADDRESS_MAX  320 /* longest address text, without the terminating NUL */
#define CAIRN_HOST_MAX     253
#define CAIRN_PATH_MAX     96 /* cairn+https: the secret path, without its leading '/' */
#define CAIRN_PIN_LEN      32 /* cairn+https: SHA-256 of the certificate's SubjectPublicKeyInfo */
#define CAIRN_OBFS4_CERT_LEN 52 /* cairn+obfs4: node id (20) || public key (32) */

enum cairn_host_type {
	CAIRN_HOST_IPV4 = 1,
	CAIRN_HOST_IPV6 = 2,
	CAIRN_HOST_NAME = 3,
	CAIRN_HOST_ONION = 4,
};

/* How the relay is reached; the byte stream inside is the same (PROTOCOL.md section 7). */
enum cairn_transport {
	CAIRN_TRANSPORT_DIRECT = 0, /* TCP */
	CAIRN_TRANSPORT_HTTPS = 1,  /* TLS to a web server, WebSocket on a secret path */
	CAIRN_TRANSPORT_OBFS4 = 2,  /* an obfs4 bridge, through obfs4proxy */
};

struct cairn_address {
	uint8_t key[CAIRN_KEY_LEN];
	enum cairn_host_type host_type;
	char host[CAIRN_HOST_MAX + 1]; /* NUL-terminated; IPv6 without brackets */
	uint16_t port;
	enum cairn_transport transport;
	/* CAIRN_TRANSPORT_HTTPS */
	char path[CAIRN_PATH_MAX + 1]; /* NUL-terminated, without the leading '/' */
	int has_pin;                   /* 1: accept exactly the certificate key PIN names */
	uint8_t pin[CAIRN_PIN_LEN];
	/* CAIRN_TRANSPORT_OBFS4 */
	uint8_t obfs4_cert[CAIRN_OBFS4_CERT_LEN];
	uint8_t obfs4_iat_mode; /* 0, 1 or 2 */
};

/* Parses TEXT (NUL-terminated). Returns 0, or CAIRN_EADDRESS with *OUT zeroed. */
CAIRN_WARN_UNUSED int cairn_address_parse(const char *text, struct cairn_address *out);

/* Formats A into OUT (capacity CAP, NUL-terminated). Returns 0, CAIRN_EINVAL for an invalid A,
 * or CAIRN_ENOBUFS. CAIRN_ADDRESS_MAX + 1 bytes always suffice. */
CAIRN_WARN_UNUSED int cairn_address_format(const struct cairn_address *a, char *out, size_t cap);

#endif
