/* SPDX-License-Identifier: MIT */
/*
 * The client side of a SOCKS5 CONNECT (RFC 1928, docs/PROTOCOL.md section 7) over a socket
 * already connected to the proxy, with the username/password sub-negotiation of RFC 1929 when
 * the proxy picks it: a fresh random username per connection, so that Tor gives each
 * connection a circuit of its own (section 7.1), or the obfs4 bridge's arguments for
 * obfs4proxy (section 7.3). Hostnames, .onion names included, go to the proxy unresolved
 * (ATYP 3); IP literals go as ATYP 1 or 4.
 */
#ifndef CAIRN_CLIENT_SOCKS5_H
#define CAIRN_CLIENT_SOCKS5_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cairn/address.h"
#include "cairn/error.h"

/* Longest CONNECT request: header(4) + name length(1) + name(255) + port(2). */
#define SOCKS5_REQUEST_MAX (4 + 1 + 255 + 2)
/* Longest RFC 1929 request: version(1) + ULEN(1) + user(255) + PLEN(1) + password(255). */
#define SOCKS5_AUTH_MAX (1 + 1 + 255 + 1 + 255)
/* The fresh username of section 7.1: 32 lower-case hex characters of 16 random bytes. */
#define SOCKS5_ISOLATION_RANDOM 16

/*
 * Credentials for the RFC 1929 sub-negotiation (at most 255 bytes each, not NUL-terminated).
 * REQUIRED offers method 0x02 alone: obfs4proxy cannot reach a bridge without its arguments,
 * so a proxy that would pick "no authentication" must not be given the choice. Otherwise
 * 0x00 and 0x02 are offered, in that order (section 7.1).
 */
struct socks5_auth {
	uint8_t user[255];
	size_t user_len;
	uint8_t pass[255];
	size_t pass_len;
	bool required;
};

/*
 * Fills A with the isolation credentials of section 7.1 from RANDOM (16 bytes the caller drew
 * fresh for this one connection): the username in lower-case hex, the password "x".
 */
void socks5_auth_isolation(struct socks5_auth *a,
                           const uint8_t random[static SOCKS5_ISOLATION_RANDOM]);

/*
 * Fills A with the pluggable transport arguments of an obfs4 bridge (section 7.3, Tor's
 * pt-spec): the username "cert=<cert>;iat-mode=<n>" (the cert in standard base64 without
 * padding, as in the address; '\', ';' and '=' inside a value escaped with '\', though
 * none can occur there today) and a single NUL byte as the password; REQUIRED is set.
 * Returns 0, or CAIRN_EINVAL when TARGET is not an obfs4 address or its iat-mode is not
 * 0..2.
 */
CAIRN_WARN_UNUSED int socks5_auth_obfs4(struct socks5_auth *a, const struct cairn_address *target);

/*
 * Writes the CONNECT request for TARGET's host and port into OUT (capacity CAP) and sets
 * *OUTLEN. Returns 0, CAIRN_EINVAL (unknown host type, unparsable IP literal, empty or
 * over-long name) or CAIRN_ENOBUFS.
 */
CAIRN_WARN_UNUSED int socks5_request(const struct cairn_address *target, uint8_t *out, size_t cap,
                                     size_t *outlen);

/*
 * The exchange without waiting: a state machine the caller drives when FD is ready for
 * socks5_events(). Start it with socks5_start, then call socks5_advance after each readiness;
 * it reads exactly the proxy's replies and nothing more.
 */
struct socks5_client {
	int step;                     /* where the exchange is (socks5.c) */
	uint8_t out[SOCKS5_AUTH_MAX]; /* what is being written */
	size_t out_len, out_off;
	uint8_t in[SOCKS5_REQUEST_MAX]; /* what is being read: exactly NEED bytes */
	size_t need, have;
	uint8_t req[SOCKS5_REQUEST_MAX]; /* the CONNECT request, sent after the method */
	size_t req_len;
	uint8_t auth[SOCKS5_AUTH_MAX]; /* the RFC 1929 request, if the proxy picks 0x02 */
	size_t auth_len;               /* 0: no credentials, 0x00 is the only method offered */
	bool auth_required;
};

/*
 * Prepares S to ask for TARGET, with AUTH (borrowed, copied; NULL: no credentials, method
 * 0x00 alone). Returns 0 or CAIRN_EINVAL as socks5_request(), or for an empty or over-long
 * username or password.
 */
CAIRN_WARN_UNUSED int socks5_start(struct socks5_client *s, const struct cairn_address *target,
                                   const struct socks5_auth *auth);

/*
 * Reads and writes on FD (non-blocking, borrowed) what it can without waiting. Returns 0 once
 * the proxy reported success, 1 while the exchange goes on (wait for socks5_events), or
 * CAIRN_EPROXY as socks5_connect.
 */
CAIRN_WARN_UNUSED int socks5_advance(struct socks5_client *s, int fd);

/* What S waits for on its descriptor: POLLOUT or POLLIN. */
short socks5_events(const struct socks5_client *s);

/*
 * Asks the proxy on FD (connected, blocking or not; borrowed) to connect to TARGET, with AUTH
 * as socks5_start, waiting at most TIMEOUT_MS in all. Reads exactly the proxy's replies and
 * nothing more, so the caller's protocol starts on a clean stream. Returns 0 once the proxy
 * reports success; CAIRN_EPROXY when the proxy refuses (any non-zero reply code, a method we
 * did not offer or 0xff, a sub-negotiation reply other than version 1 status 0), sends a
 * malformed or truncated reply, or closes; CAIRN_ETIMEDOUT; or CAIRN_EINVAL as socks5_start().
 */
CAIRN_WARN_UNUSED int socks5_connect(int fd, const struct cairn_address *target,
                                     const struct socks5_auth *auth, int timeout_ms);

#endif
