/* SPDX-License-Identifier: MIT */
/*
 * A connection's handshake on libuv's thread pool, for conn.c: message 1 answered off the
 * loop thread, the replay cache step, and with several nodes on one store the claim. It
 * knows its connection only through struct conn_handshake_ops, which conn.c passes in, so
 * calls run one way: conn.c starts a handshake here, and the result comes back through the
 * ops, never through a call into conn.c.
 */
#ifndef CAIRN_RELAY_CONN_HANDSHAKE_H
#define CAIRN_RELAY_CONN_HANDSHAKE_H

#include <stdbool.h>

struct channel;
struct relay;

/* What a handshake asks of its connection, OWNER. */
struct conn_handshake_ops {
	/* True while OWNER still waits for the result: it has neither closed nor failed its
	 * handshake meanwhile (bytes after message 1). A result it no longer waits for is
	 * dropped, and its channel is not touched again. */
	bool (*waiting)(const void *owner);
	/* The handshake ended, OWNER waiting: RC 0, its channel is open with message 2 in its
	 * output (CHANNEL_EV_OPEN next); else the handshake's error, the channel failed (stay
	 * silent, PROTOCOL.md 2.2). */
	void (*done)(void *owner, int rc);
	/* A reference on OWNER from the start until the work is freed, after DONE if any. */
	void (*hold)(void *owner);
	void (*release)(void *owner);
};

/*
 * Message 1 is ready in CH (CHANNEL_EV_HELLO), the channel of OWNER on RELAY: takes it and
 * answers it on the thread pool. Returns 0 (OWNER is held until the work is freed), or an
 * error, with nothing started and nothing held.
 */
int conn_handshake_start(struct relay *relay, struct channel *ch,
                         const struct conn_handshake_ops *ops, void *owner);

#endif
