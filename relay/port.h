/* SPDX-License-Identifier: MIT */
/*
 * The seam between a connection (conn.c: socket, handshake, frames) and the command layer
 * (commands.c: mailbox semantics). Each side knows the other only through one of the two
 * tables below, kept in struct relay, so neither includes the other and the command layer
 * runs in tests with connections that have no socket (tests/test_relay_commands.c).
 *
 *   conn.c --- struct conn_handler (open, command, closed, drained, busy, free) ---> commands
 *   conn.c <-- struct conn_port (reply, can_deliver, ref, unref, defer, hash) ------ commands
 *
 * struct conn is opaque to the command layer; the per-connection state the command layer
 * keeps (authorised mailboxes, subscriptions, requests in flight, budget) is its own, PEER:
 * PEER_SIZE bytes (the handler's) that the connection's side keeps in the connection's own
 * memory, one allocation with it, so that a relay pays one malloc chunk per connection, not
 * two (docs/PERFORMANCE.md, idle memory). Loop thread only.
 */
#ifndef CAIRN_RELAY_PORT_H
#define CAIRN_RELAY_PORT_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

struct cairn_msg;
struct conn;
struct relay;

/*
 * Work one command needs done off the loop thread (an AUTH's signature check). RUN runs on
 * libuv's thread pool and may touch only the task; DONE runs on the loop thread afterwards
 * and frees the task; CLOSED tells it the connection closed meanwhile (reply nothing).
 */
struct conn_task {
	uv_work_t req;
	struct conn *conn; /* holds a reference until DONE has run */
	struct conn_task *next;
	void (*run)(struct conn_task *t);
	void (*done)(struct conn_task *t, bool closed);
};

/* How the connection's side aligns PEER: enough for pointers and 64-bit integers. */
#define CONN_PEER_ALIGN 8

/* What a connection calls in the command layer. PEER is the state OPEN set up. */
struct conn_handler {
	/* The size of PEER: the connection's side keeps these bytes, CONN_PEER_ALIGN aligned,
	 * from before OPEN until C's memory goes (after FREE). */
	size_t peer_size;
	/* C was accepted: sets up PEER (zeroed) as its state. FREE follows, whatever comes. */
	void (*open)(void *peer, struct relay *relay, struct conn *c);
	/* Runs one decoded command (C is open and not paused). */
	void (*command)(void *peer, const struct cairn_msg *m);
	/* C is closing: its subscriptions end; replies from now on are dropped. */
	void (*closed)(void *peer);
	/* C's output drained below its limit: deliveries may resume. */
	void (*drained)(void *peer);
	/* True while C has as many requests waiting for the store as it may: read no more. */
	bool (*busy)(const void *peer);
	/* C's memory goes (no reference is left): what PEER holds goes; its bytes go with C's. */
	void (*free)(void *peer);
};

/* What the command layer calls in a connection. */
struct conn_port {
	/* Queues reply M to C (dropped if C is closing; C is closed if it cannot be queued). */
	void (*reply)(struct conn *c, const struct cairn_msg *m);
	/* True while C may be sent more deliveries (its output is below the soft limit). */
	bool (*can_deliver)(const struct conn *c);
	/* A reference keeps C's memory (and its PEER) until the matching UNREF. */
	void (*ref)(struct conn *c);
	void (*unref)(struct conn *c);
	/* Runs T off the loop thread for C's command being handled now; C runs no further
	 * command until T's DONE has run (conn_defer in conn.h). */
	void (*defer)(struct conn *c, struct conn_task *t);
	/* The handshake hash of C's session (CAIRN_HASH_LEN bytes), which AUTH signs. */
	const uint8_t *(*handshake_hash)(const struct conn *c);
	/* Bytes queued for C and not yet written (NULL: a port that does not tell; taken as
	 * 0). A group log read sizes its next batch by the room left under the limit. */
	size_t (*output_level)(const struct conn *c);
};

#endif
