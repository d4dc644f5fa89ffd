/* SPDX-License-Identifier: MIT */
/*
 * A client's connection to one relay: TCP directly or through a SOCKS5 proxy (hostnames go to
 * the proxy unresolved, ATYP 3, so .onion works and DNS never leaks), the Cairn handshake,
 * then batched commands and replies one at a time. Connecting comes two ways: cnet_start and
 * cnet_advance never wait (the caller polls cnet_fd for cnet_events until
 * cnet_deadline_ms), and cnet_connect waits with poll() until the connection is open. Once
 * open, writes never wait: what the socket does not take now stays sealed in the channel and
 * goes out as the descriptor becomes writable (cnet_events says POLLOUT), during cnet_recv
 * or a later flush; reads wait only as long as the caller says.
 */
#ifndef CAIRN_CLIENT_NET_H
#define CAIRN_CLIENT_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cairn/address.h"
#include "cairn/error.h"
#include "codec.h"
#include "env.h"

struct cnet;

struct cnet_options {
	const char *socks;            /* "HOST:PORT" of a SOCKS5 proxy, or NULL for direct TCP */
	const char *obfs4_socks;      /* cairn+obfs4: obfs4proxy's SOCKS5 listener (pt.h) */
	int connect_timeout_ms;       /* TCP + proxy + handshake; default 15000 when 0 */
	const struct client_env *env; /* how to connect, the handshake's clock; NULL: real */
};

/*
 * Connects to RELAY and completes the handshake. Returns 0, CAIRN_ECONNECT (refused,
 * unreachable, name not resolved), CAIRN_EPROXY (the proxy refused; the reply code is
 * logged nowhere), CAIRN_ETIMEDOUT, or a handshake error (CAIRN_EAUTH: wrong relay key).
 */
CAIRN_WARN_UNUSED int cnet_connect(const struct cairn_address *relay,
                                   const struct cnet_options *opt, struct cnet **out);

/*
 * Starts connecting to RELAY without waiting on the network (only the environment's name
 * resolution may take time, env.h). *OUT (owned: cnet_close) is then connecting: drive it with
 * cnet_advance. Returns 0, or at once CAIRN_EINVAL, CAIRN_ECONNECT (every address refused,
 * an onion without a proxy; a cairn+obfs4 address without OBFS4_SOCKS, or with SOCKS too,
 * since obfs4 through Tor is not supported), CAIRN_EPROXY (the proxy's), CAIRN_ENOMEM.
 */
CAIRN_WARN_UNUSED int cnet_start(const struct cairn_address *relay, const struct cnet_options *opt,
                                 struct cnet **out);

/*
 * Takes N's connection as far as it goes without waiting: TCP (the next address when one
 * refuses), the SOCKS5 exchange, the handshake. Returns 0 once open (and on every later
 * call), 1 while it goes on (wait for cnet_events on cnet_fd, at most until
 * cnet_deadline_ms), or an error as cnet_connect's (CAIRN_ETIMEDOUT once the environment's
 * clock passed the deadline); N is then unusable.
 */
CAIRN_WARN_UNUSED int cnet_advance(struct cnet *n);

/* What N waits for on its descriptor: connecting, POLLOUT or POLLIN; open, POLLIN, with
 * POLLOUT while sealed bytes wait to be written. */
short cnet_events(const struct cnet *n);

/* By when N must be open (the environment's monotonic ms), or -1 once it is. */
int64_t cnet_deadline_ms(const struct cnet *n);

/* Whether the handshake completed. */
bool cnet_open(const struct cnet *n);

/* Closes and frees. Accepts NULL. */
void cnet_close(struct cnet *n);

/* Adds M to the outgoing batch (flushing a full frame first if needed). */
CAIRN_WARN_UNUSED int cnet_queue(struct cnet *n, const struct cairn_msg *m);
/* Seals the batch into frames and writes what the socket takes now (see above). */
CAIRN_WARN_UNUSED int cnet_flush(struct cnet *n);

/*
 * Next reply or event, waiting up to TIMEOUT_MS (-1: forever), and writing what waits to be
 * written meanwhile. Pointers in *M stay valid
 * until the next call. Returns 0, CAIRN_ETIMEDOUT, CAIRN_EIO (closed or failed), or a
 * decode error (the connection is then unusable).
 */
CAIRN_WARN_UNUSED int cnet_recv(struct cnet *n, struct cairn_msg *m, int timeout_ms);

/* The handshake hash of this connection (for AUTH signatures). */
const uint8_t *cnet_handshake_hash(const struct cnet *n);

/* A fresh request id for this connection. */
uint32_t cnet_next_id(struct cnet *n);

/* The file descriptor, for callers that poll several relays. */
int cnet_fd(const struct cnet *n);

#endif
