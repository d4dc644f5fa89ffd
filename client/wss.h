/* SPDX-License-Identifier: MIT */
/*
 * The byte stream of a cairn+https address (PROTOCOL.md section 7.2): TLS (OpenSSL) over a
 * socket already connected to the web server (directly or through SOCKS5), the WebSocket
 * opening handshake on the secret path, then the Cairn stream in masked binary frames
 * (wslay, client role). Nothing here waits: net.c drives it when the descriptor is ready for
 * wss_events(), and reads and writes through it as it would through the socket.
 */
#ifndef CAIRN_CLIENT_WSS_H
#define CAIRN_CLIENT_WSS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cairn/address.h"
#include "cairn/error.h"
#include "env.h"

struct wss;

/*
 * A stream to RELAY (an https address; borrowed, copied) over FD (connected, non-blocking,
 * borrowed: the caller closes it after wss_free). ENV (borrowed, must outlive *OUT) draws the
 * Sec-WebSocket-Key. *OUT is owned: wss_free. Returns 0, CAIRN_EINVAL or CAIRN_ENOMEM.
 */
CAIRN_WARN_UNUSED int wss_new(const struct cairn_address *relay, int fd,
                              const struct client_env *env, struct wss **out);

/* Frees W, wiping what it held. Accepts NULL. Sends nothing (the socket is closed after). */
void wss_free(struct wss *w);

/*
 * TLS (with the pin or chain and name check) and the upgrade, as far as they go without
 * waiting. Returns 0 once the stream is open (and on every later call), 1 while it goes on
 * (wait for wss_events), or CAIRN_ECONNECT (TLS failed, the certificate was refused, the
 * server closed, or the answer was not the 101 of 7.2).
 */
CAIRN_WARN_UNUSED int wss_advance(struct wss *w);

/* What W waits for on its descriptor: what TLS last asked for (POLLIN or POLLOUT); open, POLLIN
 * with POLLOUT while frames wait to be written or a read needs a write. */
short wss_events(const struct wss *w);

/*
 * Like send(2) on an open stream: takes up to LEN bytes of BUF into binary frames and writes
 * what TLS takes now. Returns the count taken (> 0), or -1 with errno EAGAIN (nothing taken:
 * the frames already waiting are at their bound) or EIO.
 */
ssize_t wss_send(struct wss *w, const void *buf, size_t len);

/*
 * Like recv(2) on an open stream: up to CAP bytes of received frame payloads. Returns the
 * count (> 0), 0 once the stream ended (close frame, TLS close, end of TCP), or -1 with errno
 * EAGAIN (nothing now) or EIO (a protocol error: text frame, TLS failure).
 */
ssize_t wss_recv(struct wss *w, void *buf, size_t cap);

/* Writes the frames that wait, as far as TLS takes them now. Returns 0 or CAIRN_EIO. */
CAIRN_WARN_UNUSED int wss_flush(struct wss *w);

/* Whether frames (or a TLS record) wait to be written. */
bool wss_output_pending(const struct wss *w);

/* Whether wss_recv has bytes without reading the socket (decrypted or framed already): a
 * caller must not wait on the descriptor before taking them. */
bool wss_readable(const struct wss *w);

/*
 * The upgrade's check of 7.2 step 4, on one complete response HEAD (LEN bytes, ending in
 * the empty line) for the request whose Sec-WebSocket-Key was KEY (24 characters). Returns 0
 * or CAIRN_ECONNECT. Exposed for tests.
 */
CAIRN_WARN_UNUSED int wss_check_response(const char *head, size_t len, const char *key);

#endif
