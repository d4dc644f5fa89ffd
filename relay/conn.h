/* SPDX-License-Identifier: MIT */
/*
 * One client connection: a thin I/O adapter over the protocol channel (proto/channel.h, in
 * the responder role), which holds the handshake, the frame reader, decoding of command
 * batches, batching and sealing. This side owns the socket, the limits, the timeouts, the
 * handshake's trip to the thread pool and the pauses. Replies queued during one loop
 * iteration are sealed into as few frames as possible and written with one uv_write after
 * the iteration's I/O (uv_check).
 *
 * Lifetime: a connection is freed only when its handle is closed and no storage job still
 * refers to it (conn_ref/conn_unref): replies to a closed connection are dropped.
 *
 * Three files, calls running one way, each down into the ones below it: conn_write.c (the
 * write path: conn_flush_all) over conn_read.c (accept, input, the handshake's hand-off,
 * deferred work, the port) over conn.c (lifetime, the reply queue, timeouts). The output path
 * resumes reading and the input path queues replies, so what both need is in conn.c, and
 * only the write path calls into the read side (conn_read.h), never the other way.
 */
#ifndef CAIRN_RELAY_CONN_H
#define CAIRN_RELAY_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "channel.h"
#include "port.h"

struct relay;
struct wsconn;

enum conn_state {
	CONN_HANDSHAKE,   /* waiting for message 1 */
	CONN_HANDSHAKING, /* message 1 is being answered on the thread pool; input fails it */
	CONN_FAILED,      /* handshake failed: silently discard input until the deadline */
	CONN_OPEN,        /* transport established */
	CONN_CLOSING,     /* handle closing; output dropped */
};

/* The write in flight (at most one per connection): allocated when it starts and freed when it
 * completes, so that an idle connection holds no uv_write_t (192 bytes on Linux), nor the
 * descriptor of the bytes in flight. */
struct conn_write {
	uv_write_t req;
	int64_t since_ms;          /* when it started (loop time), for the stall check */
	struct channel_buf flight; /* its bytes, swapped out of the channel */
};

/* Bytes read but not yet fed to the channel while a command's work is off the loop thread
 * (conn_defer), from OFF on: allocated only then. */
struct conn_held {
	struct channel_buf in;
	size_t off;
};

/* Fields are ordered largest first and the flags share a word: a relay holds tens of
 * thousands of these (docs/PERFORMANCE.md, idle memory). The command layer's state for the
 * connection (relay->handler's PEER, opaque here) follows it in the same allocation
 * (conn_peer in conn.c). */
struct conn {
	uv_tcp_t tcp;             /* its loop's data pointer is the relay (conn_relay) */
	struct conn *prev, *next; /* relay->conns */
	struct conn *flush_next;  /* relay->flush_head */

	/* A connection from the HTTPS listener: its WebSocket filter (relay/wsconn.h), owned;
	 * NULL for a direct TCP connection. */
	struct wsconn *ws;

	int64_t deadline_ms; /* handshake deadline, then idle deadline (loop time) */

	/* What a connection needs only before it opens, or only once it is open, shares the
	 * memory: the list of connections that have not completed a handshake
	 * (relay->unopened_head, oldest first), which a connection leaves when it opens (or
	 * closes), and the write in flight and the bytes held, which only an open one has. */
	union {
		struct {
			struct conn *prev, *next;
		} unopened; /* while the state is CONN_HANDSHAKE, _HANDSHAKING or _FAILED */
		struct {
			struct conn_write *write; /* the write in flight, or NULL */
			/* A command's work is off the loop thread (conn_defer): later commands
			 * wait, in order. The rest of the batch waits in CH (no event is asked
			 * for); the bytes read after it wait in HELD (NULL when there are none)
			 * until it is done. */
			struct conn_held *held;
		} open; /* while the state is CONN_OPEN or CONN_CLOSING (NULL, NULL at first) */
	} u;

	/* The protocol: replies not yet sealed and sealed frames not yet handed to libuv are in
	 * it, and so is the rest of a batch whose commands wait. Its output limit is unused: the
	 * relay's limits are its own (conn_output_level). */
	struct channel ch;

	unsigned refs;
	enum conn_state state;
	bool in_flush_list;
	bool reading;
	bool writing; /* WRITE is set */
	bool paused;
};

/* Accepts a pending connection from LISTENER (the relay's listener or its HTTPS listener). */
void conn_accept(struct relay *relay, uv_tcp_t *listener);

/* Queues reply M to C (dropped if C is closing). On failure to encode, closes C. */
void conn_reply(struct conn *c, const struct cairn_msg *m);
/* Shorthands for OK and ERROR replies. CODE is a CAIRN_E* code in the wire range. */
void conn_reply_ok(struct conn *c, uint32_t request_id);
void conn_reply_error(struct conn *c, uint32_t request_id, int code);

/* Bytes queued for C and not yet written. */
size_t conn_output_level(const struct conn *c);
/* True while C may be sent more deliveries (its output is below the soft limit). */
bool conn_can_deliver(const struct conn *c);

/* Seals and writes everything queued for connections on the flush list. */
void conn_flush_all(struct relay *relay);

/* Closes C (idempotent). Its memory goes once no job holds a reference. */
void conn_close(struct conn *c);
void conn_ref(struct conn *c);
void conn_unref(struct conn *c);

/*
 * Runs T for C's command being handled now. Until T is done, C runs no further command and
 * reads nothing: the rest of its batch waits, in order, and runs right after DONE. At most
 * CAIRN_AUTH_VERIFY_SLOTS tasks are on the thread pool at once, relay-wide; the others wait
 * in arrival order, so one connection cannot fill the pool and keep handshakes waiting.
 */
void conn_defer(struct conn *c, struct conn_task *t);

/* Called once a second: handshake deadlines, idle timeouts, stalled writers. */
void conn_check_timeouts(struct relay *relay, int64_t now_ms);

/* These functions as the command layer sees them (port.h): set as relay->port. */
extern const struct conn_port conn_socket_port;

#endif
