/* SPDX-License-Identifier: MIT */
/*
 * A connection's lifetime and its queue of replies, under both of its I/O paths (conn_read.c,
 * conn_write.c): references and closing, the lists a connection is on (all, unopened, to
 * flush), replies queued into its channel for the next flush, its output level, and the
 * once-a-second tick that closes the connections past a deadline or stalled. Nothing here
 * calls up into the I/O paths.
 */
#include <stdlib.h>

#include "chanpool.h"
#include "conn.h"
#include "conn_internal.h"
#include "log.h"
#include "relay.h"
#include "wsconn.h"

static void on_close(uv_handle_t *h);

/* ---- lifetime ------------------------------------------------------------------------ */

/* One allocation per connection, of struct conn and the command layer's state: on LP64
 * struct conn is 544 bytes; with commands.c's 120 the block is a 672-byte malloc chunk
 * (docs/PERFORMANCE.md, idle memory). */
_Static_assert(sizeof(void *) != 8 || sizeof(struct conn) <= 544, "struct conn grew");

void conn_held_free(struct conn *c)
{
	if (c->u.open.held == NULL)
		return;
	channel_buf_free(&c->u.open.held->in);
	free(c->u.open.held);
	c->u.open.held = NULL;
}

void conn_ref(struct conn *c)
{
	c->refs++;
}

void conn_unref(struct conn *c)
{
	if (--c->refs > 0)
		return;
	channel_free(&c->ch);
	conn_held_free(c);
	wsconn_free(c->ws);
	conn_relay(c)->handler->free(conn_peer(c));
	free(c);
}

static void unlink_flush(struct conn *c)
{
	if (!c->in_flush_list)
		return;
	struct conn **p = &conn_relay(c)->flush_head;
	while (*p != c)
		p = &(*p)->flush_next;
	*p = c->flush_next;
	c->in_flush_list = false;
}

/* The connections that have not completed a handshake, oldest first (relay->unopened_head):
 * the ones a full relay closes to make room for a newcomer. A connection is in the list
 * exactly while its state is CONN_HANDSHAKE, CONN_HANDSHAKING or CONN_FAILED. */
void conn_unopened_append(struct conn *c)
{
	struct relay *relay = conn_relay(c);
	c->u.unopened.prev = relay->unopened_tail;
	c->u.unopened.next = NULL;
	if (relay->unopened_tail != NULL)
		relay->unopened_tail->u.unopened.next = c;
	else
		relay->unopened_head = c;
	relay->unopened_tail = c;
}

void conn_unopened_remove(struct conn *c)
{
	struct relay *relay = conn_relay(c);
	if (c->u.unopened.prev != NULL)
		c->u.unopened.prev->u.unopened.next = c->u.unopened.next;
	else
		relay->unopened_head = c->u.unopened.next;
	if (c->u.unopened.next != NULL)
		c->u.unopened.next->u.unopened.prev = c->u.unopened.prev;
	else
		relay->unopened_tail = c->u.unopened.prev;
	c->u.unopened.prev = c->u.unopened.next = NULL;
}

void conn_close(struct conn *c)
{
	if (c->state == CONN_CLOSING)
		return;
	struct relay *relay = conn_relay(c);
	if (c->state != CONN_OPEN)
		conn_unopened_remove(c);
	c->state = CONN_CLOSING;
	relay->handler->closed(conn_peer(c));
	unlink_flush(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		relay->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	relay->conn_count--;
	if (relay->conn_count == 0) { /* no connection needs them soon */
		channel_pool_free(&relay->bufpool);
		channel_hs_cache_free(&relay->hs_cache);
	}
	if (c->ws != NULL)
		relay->conn_count_https--;
	/* Keys go now; the buffers with the memory (a handler may still read its command). */
	channel_close(&c->ch);
	uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void on_close(uv_handle_t *h)
{
	struct conn *c = h->data;
	conn_unref(c); /* the reference the open handle held */
}

/* ---- output -------------------------------------------------------------------------- */

size_t conn_output_level(const struct conn *c)
{
	/* A WebSocket connection's framing and control frames are output like the rest. */
	size_t flight = c->writing ? c->u.open.write->flight.len : 0;
	return channel_output_pending(&c->ch) + flight +
	       (c->ws != NULL ? wsconn_pending(c->ws) : 0);
}

bool conn_can_deliver(const struct conn *c)
{
	return c->state == CONN_OPEN &&
	       conn_output_level(c) < conn_relay(c)->cfg->output_buffer_max;
}

void conn_reply(struct conn *c, const struct cairn_msg *m)
{
	if (c->state != CONN_OPEN)
		return;
	/* Into the open batch, sealed by conn_flush_all after this loop iteration (or at once
	 * when it fills a frame). The channel never refuses for size: its limit is unused. */
	channel_pool_lend(&conn_relay(c)->bufpool, &c->ch);
	if (channel_queue(&c->ch, m) == 0) {
		conn_want_flush(c);
		return;
	}
	log_warn("closing a connection: a reply could not be queued");
	conn_close(c);
}

void conn_reply_ok(struct conn *c, uint32_t request_id)
{
	struct cairn_msg m = {.type = CAIRN_REPLY_OK, .request_id = request_id};
	conn_reply(c, &m);
}

void conn_reply_error(struct conn *c, uint32_t request_id, int code)
{
	struct cairn_msg m = {
	    .type = CAIRN_REPLY_ERROR, .request_id = request_id, .code = (uint32_t)-code};
	if (m.code < RELAY_WIRE_CODES)
		conn_relay(c)->stats.refused[m.code]++;
	conn_reply(c, &m);
}

/* ---- timeouts ----------------------------------------------------------------------- */

void conn_check_timeouts(struct relay *relay, int64_t now_ms)
{
	/* A writer that has not taken a byte for a whole idle period is gone or hostile. */
	int64_t stall_ms = (int64_t)relay->cfg->handshake_timeout_s * 1000;
	channel_pool_tick(&relay->bufpool); /* an idle relay keeps no spare buffers */
	channel_hs_cache_tick(&relay->hs_cache);
	struct conn *c = relay->conns;
	while (c != NULL) {
		struct conn *next = c->next;
		bool stalled = c->writing && now_ms - c->u.open.write->since_ms > stall_ms &&
		               conn_output_level(c) >= relay->cfg->output_buffer_max;
		if (now_ms >= c->deadline_ms || stalled) {
			conn_close(c);
		} else if (!c->writing && conn_output_level(c) == 0) {
			/* Idle: it holds no buffers at all until it needs them again. */
			channel_trim(&c->ch);
		}
		c = next;
	}
}
