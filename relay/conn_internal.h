/* SPDX-License-Identifier: MIT */
/*
 * What conn.c shares with the connection's other files (conn_read.c, conn_write.c), which build
 * on it: where a connection's memory holds the command layer's state and its relay, the lists
 * a connection is on, and the small steps of its output both paths take. Private to those
 * three files; conn.h is what the rest of the relay sees.
 */
#ifndef CAIRN_RELAY_CONN_INTERNAL_H
#define CAIRN_RELAY_CONN_INTERNAL_H

#include "chanpool.h"
#include "conn.h"
#include "relay.h"

/* Empty buffers up to this size go as soon as they are empty, so that an idle connection
 * holds none (to the relay's pool, relay->bufpool, when they all can: the next connection
 * that writes takes them from there rather than from malloc); larger ones belong to busy
 * connections, which would otherwise reallocate up to 64 KiB per write cycle (that cost a fifth
 * of the online throughput). The once-a-second tick takes those back once the connection idles
 * (conn_check_timeouts). 8 KiB holds one frame of the 4,096-byte bucket, what a lone envelope
 * of 1 KiB travels in: at 4 KiB, 10,000 connections that each received one a second kept theirs
 * until the tick, which then freed them all in one block of the loop (5.6-10.5 ms, against
 * 2.8-3.1 ms now; docs/PERFORMANCE.md, Many connections under load). */
#define SMALL_BUF CHANNEL_POOL_BUF_MAX

/* Where the command layer's state for a connection starts in its allocation (port.h). */
#define PEER_OFFSET                                                                                \
	((sizeof(struct conn) + CONN_PEER_ALIGN - 1) / CONN_PEER_ALIGN * CONN_PEER_ALIGN)

static inline void *conn_peer(const struct conn *c)
{
	return (char *)c + PEER_OFFSET;
}

/* The relay's loop's data pointer is the relay (server.c): struct conn keeps no copy. */
static inline struct relay *conn_relay(const struct conn *c)
{
	return c->tcp.loop->data;
}

/* Frees the bytes C held while paused (conn_input in conn_read.c), if any. */
void conn_held_free(struct conn *c);

/* C joins the list of connections that have not completed a handshake when it is accepted,
 * and leaves it when it opens (or closes: conn_close). */
void conn_unopened_append(struct conn *c);
void conn_unopened_remove(struct conn *c);

static inline void conn_want_flush(struct conn *c)
{
	if (c->in_flush_list)
		return;
	c->in_flush_list = true;
	struct relay *relay = conn_relay(c);
	c->flush_next = relay->flush_head;
	relay->flush_head = c;
}

/* Gives back the buffers C has emptied that are cheap to allocate again (SMALL_BUF): to the
 * relay's pool when C's are all empty, else to malloc. SPARE (may be NULL) is an empty buffer
 * swapped out of C's channel (channel_pool_give). */
static inline void conn_release_small(struct conn *c, struct channel_buf *spare)
{
	channel_pool_give(&conn_relay(c)->bufpool, &c->ch, spare, SMALL_BUF);
}

#endif
