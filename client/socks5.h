/* SPDX-License-Identifier: MIT */
/*
 * The client side of a SOCKS5 CONNECT (RFC 1928, docs/PROTOCOL.md section 7) over a socket
 * already connected to the proxy. No authentication (method 0x00). Hostnames, .onion names
 * included, go to the proxy unresolved (ATYP 3); IP literals go as ATYP 1 or 4.
 */
#ifndef CAIRN_CLIENT_SOCKS5_H
#define CAIRN_CLIENT_SOCKS5_H

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
 * Asks the proxy on FD (connected, blocking or not; borrowed) to connect to TARGET, waiting
 * at most TIMEOUT_MS in all. Reads exactly the proxy's replies and nothing more, so the
 * caller's protocol starts on a clean stream. Returns 0 once the proxy reports success;
 * CAIRN_EPROXY when the proxy refuses (any non-zero reply code, or no acceptable method),
 * sends a malformed or truncated reply, or closes; CAIRN_ETIMEDOUT; or CAIRN_EINVAL as
 * socks5_request().
 */
CAIRN_WARN_UNUSED int socks5_connect(int fd, const struct cairn_address *target, int timeout_ms);

#endif
