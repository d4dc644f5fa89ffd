/* SPDX-License-Identifier: MIT */
/*
 * A non-blocking Cairn client connection on libuv for the load generator, built only on
 * proto/. Message 1 of the handshake can be computed ahead of time (bconn_prepare), so that
 * a handshake measurement times the relay rather than the generator's key generation.
 * Commands queued during one loop turn are batched into as few frames as the content allows
 * and written with one uv_write; every reply is handed to a callback as it is decoded.
 */
#ifndef CAIRN_BENCH_BCONN_H
#define CAIRN_BENCH_BCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "channel.h"

struct bconn;

struct bconn_ops {
	void (*ready)(struct bconn *c);                              /* handshake complete */
	void (*message)(struct bconn *c, const struct cairn_msg *m); /* one decoded reply */
	void (*read_done)(struct bconn *c);       /* a read was handled: a good moment to flush */
	void (*writable)(struct bconn *c);        /* a write completed (may be NULL) */
	void (*failed)(struct bconn *c, int err); /* lost or broken; the owner closes it */
};

struct bconn {
	uv_tcp_t tcp; /* first: a handle pointer is a bconn pointer */
	uv_connect_t connect_req;
	uv_write_t write_req;
	const struct bconn_ops *ops;
	void *data; /* the owner's */
	void (*closed)(struct bconn *c);

	struct channel ch;         /* the protocol: this file only moves its bytes */
	struct channel_buf flight; /* the write in flight, swapped out of the channel */
	bool writing, closing, broken;
};

/* Computes message 1 against RELAY_PUBLIC now; the relay accepts it for about 2 minutes. */
int bconn_prepare(struct bconn *c, const uint8_t relay_public[static 32]);

/*
 * Connects to RELAY (from SOURCE when non-NULL) and runs the handshake with the prepared
 * message 1; OPS->ready is called when it completes. C must stay put until closed.
 */
int bconn_connect(struct bconn *c, uv_loop_t *loop, const struct sockaddr *relay,
                  const struct sockaddr *source, const struct bconn_ops *ops, void *data);

/* Queues command M (copied); returns 0 or a CAIRN_E code. */
int bconn_queue(struct bconn *c, const struct cairn_msg *m);

/* Seals what is queued and starts a write unless one is in flight. */
int bconn_flush(struct bconn *c);

/* The handshake hash (for AUTH signatures), once ready. */
const uint8_t *bconn_handshake_hash(const struct bconn *c);

/* Bytes queued or in flight, not yet taken by the kernel. */
size_t bconn_backlog(const struct bconn *c);

/* Closes C; CLOSED (may be NULL) runs once libuv has let go of it. Idempotent. */
void bconn_close(struct bconn *c, void (*closed)(struct bconn *c));

#endif
