/* SPDX-License-Identifier: MIT */
/*
 * The client side of a SOCKS5 CONNECT (RFC 1928, docs/PROTOCOL.md section 7) over a socket
 * already connected to the proxy. No authentication (method 0x00). Hostnames, .onion names
 * included, go to the proxy unresolved (ATYP 3); IP literals go as ATYP 1 or 4.
 */
#ifndef CAIRN_CLIENT_SOCKS5_H
#define CAIRN_CLIENT_SOCKS5_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "cairn/address.h"
#include "cairn/error.h"

/* Longest CONNECT request: header(4) + name length(1) + name(255) + port(2). */
#define SOCKS5_REQUEST_MAX (4 + 1 + 255 + 2)

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
	int step;                        /* where the exchange is (socks5.c) */
	uint8_t out[SOCKS5_REQUEST_MAX]; /* what is being written */
	size_t out_len, out_off;
	uint8_t in[SOCKS5_REQUEST_MAX]; /* what is being read: exactly NEED bytes */
	size_t need, have;
	uint8_t req[SOCKS5_REQUEST_MAX]; /* the CONNECT request, sent after the method */
	size_t req_len;
};

/* Prepares S to ask for TARGET. Returns 0 or CAIRN_EINVAL as socks5_request(). */
CAIRN_WARN_UNUSED int socks5_start(struct socks5_client *s, const struct cairn_address *target);

/*
 * Reads and writes on FD (non-blocking, borrowed) what it can without waiting. Returns 0 once
 * the proxy reported success, 1 while the exchange goes on (wait for socks5_events), or
 * CAIRN_EPROXY as socks5_connect.
 */
CAIRN_WARN_UNUSED int socks5_advance(struct socks5_client *s, int fd);

/* What S waits for on its descriptor: POLLOUT or POLLIN. */
short socks5_events(const struct socks5_client *s);

/*
 * Asks the proxy on FD (connected, blocking or not; borrowed) to connect to TARGET, waiting
 * at most TIMEOUT_MS in all. Reads exactly the proxy's replies and nothing more, so the
 * caller's protocol starts on a clean stream. Returns 0 once the proxy reports success;
 * CAIRN_EPROXY when the proxy refuses (any non-zero reply code, or no acceptable method),
 * sends a malformed or truncated reply, or closes; CAIRN_ETIMEDOUT; or CAIRN_EINVAL as
 * socks5_request().
 */
CAIRN_WARN_UNUSED int socks5_connect(int fd, const struct cairn_address *target, int timeout_ms);

#endif
