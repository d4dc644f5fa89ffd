/* SPDX-License-Identifier: MIT */
/*
 * A connection's write path, over conn.c and the read side (conn_read.c): writes what the
 * channel has sealed for the connections on the flush list, batched and without a copy,
 * offering it to the kernel first (uv_try_write), and reads again once the output drains.
 */
#include <stdlib.h>

#include "chanpool.h"
#include "conn.h"
#include "conn_internal.h"
#include "conn_read.h"
#include "relay.h"
#include "wsconn.h"

static void start_write(struct conn *c, struct channel_buf *spare);

/* C's write is all in the kernel, its buffer (SPARE, emptied) back with C: frees what it can,
 * reads again if its output was what stopped reading, and tells the command layer, which may
 * queue more (sealed by conn_flush_all, or at once when it fills a frame). May close C. */
static void write_done(struct conn *c, struct channel_buf *spare)
{
	const uint8_t *more = NULL;
	spare->len = 0;
	if (channel_output(&c->ch, &more) == 0)
		conn_release_small(c, spare);
	conn_update_read_state(c);
	conn_relay(c)->handler->drained(conn_peer(c));
}

static void on_write(uv_write_t *req, int status)
{
	struct conn *c = req->data;
	struct conn_write *w = c->u.open.write;
	struct channel_buf spare = w->flight; /* written: its buffer collects the next output */
	free(w);
	c->u.open.write = NULL;
	c->writing = false;
	if (c->ws != NULL)
		wsconn_write_done(c->ws);
	if (c->state == CONN_CLOSING || status < 0) {
		channel_buf_free(&spare);
		conn_close(c); /* nothing if closing already */
		conn_unref(c);
		return;
	}
	write_done(c, &spare);
	start_write(c, &spare);
	conn_unref(c);
}

/* Hands OUT (the write's bytes) from byte SENT on (what the kernel did not take at once) to
 * libuv, which writes it when the socket can take it and then calls on_write. OUT moves into
 * the write request (or is freed): it is empty after. */
static void write_rest(struct conn *c, struct channel_buf *out, size_t sent)
{
	/* One small allocation per write that waits, not per envelope: an idle connection,
	 * and one whose writes the kernel takes at once, holds no write request, and no
	 * descriptor of the bytes in flight either. */
	struct conn_write *w = malloc(sizeof(*w));
	if (w == NULL) {
		channel_buf_free(out);
		conn_close(c);
		return;
	}
	w->flight = *out;
	*out = (struct channel_buf){0};
	uv_buf_t b = uv_buf_init((char *)w->flight.data + sent, (unsigned)(w->flight.len - sent));
	w->req.data = c;
	/* The stall check (conn_check_timeouts) runs from here: the kernel took nothing more. */
	w->since_ms = (int64_t)uv_now(conn_relay(c)->loop);
	c->u.open.write = w;
	c->writing = true;
	conn_ref(c);
	int rc = c->ws != NULL
	             ? wsconn_write(c->ws, &w->req, w->flight.data, w->flight.len, on_write)
	             : uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
	if (rc != 0) {
		channel_buf_free(&w->flight);
		free(w);
		c->u.open.write = NULL;
		c->writing = false;
		conn_unref(c);
		conn_close(c);
	}
}

/*
 * Writes what C's channel has sealed. A direct TCP connection first offers it to the kernel
 * (uv_try_write): a write it takes whole completes here, without a request, and without the
 * epoll_ctl that libuv 1.44 makes after every uv_write (docs/PERFORMANCE.md, System calls);
 * only what it leaves goes to uv_write. The command layer may queue more when a write
 * completes: that is written by this loop, not by a call into it again. A WebSocket
 * connection's bytes go through its filter, with uv_write. SPARE is an empty buffer of C's
 * (a finished write's) or none: freed here unless C's channel took it back.
 */
static void start_write(struct conn *c, struct channel_buf *spare)
{
	const uint8_t *data = NULL;
	while (!c->writing && c->state != CONN_CLOSING && channel_output(&c->ch, &data) > 0) {
		/* Swap: the channel's sealed bytes go out as they are, without a copy; the spare
		 * buffer (empty) collects the channel's new output meanwhile. */
		channel_output_swap(&c->ch, spare);
		size_t sent = 0;
		if (c->ws == NULL) {
			uv_buf_t b = uv_buf_init((char *)spare->data, (unsigned)spare->len);
			int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
			if (n < 0 && n != UV_EAGAIN) { /* EPIPE, ECONNRESET: as a failed uv_write */
				channel_buf_free(spare);
				conn_close(c);
				return;
			}
			sent = n > 0 ? (size_t)n : 0;
		}
		if (sent < spare->len) {
			write_rest(c, spare, sent);
			return;
		}
		/* Taken whole: the buffer goes back to the channel, which had none meanwhile. */
		spare->len = 0;
		channel_output_swap(&c->ch, spare);
		write_done(c, spare);
	}
	channel_buf_free(spare);
}

void conn_flush_all(struct relay *relay)
{
	while (relay->flush_head != NULL) {
		struct conn *c = relay->flush_head;
		relay->flush_head = c->flush_next;
		c->in_flush_list = false;
		if (c->state != CONN_OPEN)
			continue;
		if (channel_flush(&c->ch) != 0) {
			conn_close(c);
			continue;
		}
		/* A write the kernel took whole gave C's buffers back (write_done): to the pool,
		 * for the next connection. One that waits keeps only what it still needs. */
		start_write(c, &(struct channel_buf){0});
		if (c->state == CONN_OPEN && c->writing)
			conn_release_small(c, NULL);
	}
}
