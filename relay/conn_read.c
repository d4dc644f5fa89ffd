/* SPDX-License-Identifier: MIT */
/*
 * A connection's input, over conn.c: accept (a direct or a WebSocket connection), read into the
 * relay's one shared buffer (an idle connection holds no read buffer) and feed the channel,
 * hand its events to the command layer or its handshake to the thread pool
 * (conn_handshake.c), pause it while a command's work is on the thread pool (conn_defer), the
 * limits that keep a hostile or slow peer from costing more than a bounded amount, and the
 * port the command layer replies through. Writing is conn_write.c's.
 */
#include <stdlib.h>
#include <string.h>

#include "cairn/error.h"
#include "chanpool.h"
#include "conn.h"
#include "conn_handshake.h"
#include "conn_internal.h"
#include "conn_read.h"
#include "log.h"
#include "relay.h"
#include "wsconn.h"

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void conn_input(struct conn *c, const uint8_t *in, size_t len);

static uint64_t channel_clock(void *ctx)
{
	return (uint64_t)relay_now(ctx);
}

/* ---- input --------------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;
	struct relay *relay = conn_relay(c);
	/* One shared buffer: every read is handled completely before the next one. */
	if (relay->read_buf_busy) {
		*buf = uv_buf_init(NULL, 0);
		return;
	}
	relay->read_buf_busy = true;
	*buf = uv_buf_init((char *)relay->read_buf, sizeof(relay->read_buf));
}

void conn_update_read_state(struct conn *c)
{
	if (c->state == CONN_CLOSING)
		return;
	struct relay *relay = conn_relay(c);
	const struct relay_config *cfg = relay->cfg;
	/* Reading goes on while message 1 is answered (CONN_HANDSHAKING): a peer may send
	 * nothing before message 2, and what it sends fails its handshake at once, as in the
	 * read that brought message 1. Stopping and starting again cost two epoll_ctl calls per
	 * handshake with libuv 1.44 (docs/PERFORMANCE.md, System calls). */
	bool held = c->state == CONN_OPEN && c->u.open.held != NULL; /* else U is UNOPENED */
	bool want = !c->paused && !held && conn_output_level(c) < cfg->output_buffer_max &&
	            !relay->handler->busy(conn_peer(c)) && !relay->stopping;
	if (want && !c->reading) {
		if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
			c->reading = true;
	} else if (!want && c->reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = false;
	}
}

static void hs_failed(struct conn *c, int rc)
{
	/* Section 2.2: whatever failed, stay silent and close at the deadline. */
	conn_relay(c)->stats.handshakes_failed++;
	log_debug("handshake failed: %s", cairn_strerror(rc));
	c->state = CONN_FAILED;
}

static void run_events(struct conn *c);

/* The handshake's view of a connection (conn_handshake.h), which answers message 1 on the
 * thread pool. */
static bool hs_waiting(const void *owner)
{
	return ((const struct conn *)owner)->state == CONN_HANDSHAKING;
}

/* C's handshake ended (RC): C opens, or stays silent until the deadline. */
static void hs_done(void *owner, int rc)
{
	struct conn *c = owner;
	struct relay *relay = conn_relay(c);
	if (rc != 0) {
		hs_failed(c, rc);
		/* Read and discard until the deadline, as after any failure (PROTOCOL.md 2.2). */
		conn_update_read_state(c);
		return;
	}
	conn_unopened_remove(c);
	relay->stats.handshakes_accepted++;
	c->state = CONN_OPEN;
	c->deadline_ms = (int64_t)uv_now(relay->loop) + (int64_t)relay->cfg->idle_timeout_s * 1000;
	run_events(c);      /* CHANNEL_EV_OPEN: nothing to do but take it */
	conn_want_flush(c); /* message 2 */
	conn_update_read_state(c);
}

/* A reference on the connection OWNER, for the handshake's work and the WebSocket filter. */
static void owner_hold(void *owner)
{
	conn_ref(owner);
}

static void owner_release(void *owner)
{
	conn_unref(owner);
}

static const struct conn_handshake_ops hs_ops = {
    .waiting = hs_waiting,
    .done = hs_done,
    .hold = owner_hold,
    .release = owner_release,
};

/* Message 1 arrived (CHANNEL_EV_HELLO): hands it to the thread pool (conn_handshake.c). */
static int start_handshake(struct conn *c)
{
	int rc = conn_handshake_start(conn_relay(c), &c->ch, &hs_ops, c);
	if (rc == 0)
		c->state = CONN_HANDSHAKING;
	return rc;
}

/*
 * Takes C's channel events in order until it needs input, C pauses (a command deferred its
 * work: the rest of the batch waits in the channel, which is asked for nothing more until
 * conn_resume), C's handshake goes to the thread pool, or C fails or closes.
 */
static void run_events(struct conn *c)
{
	struct relay *relay = conn_relay(c);
	bool more = true;
	while (
	    more && !c->paused &&
	    (c->state == CONN_HANDSHAKE || c->state == CONN_OPEN || c->state == CONN_HANDSHAKING)) {
		struct channel_event ev;
		switch (channel_next_event(&c->ch, &ev)) {
		case CHANNEL_EV_NONE:
			more = false;
			break;
		case CHANNEL_EV_HELLO:
			if (start_handshake(c) != 0) {
				conn_close(c);
				return;
			}
			break;
		case CHANNEL_EV_OPEN:
			break;
		case CHANNEL_EV_MESSAGE:
			relay->handler->command(conn_peer(c), &ev.msg);
			break;
		case CHANNEL_EV_BAD_MESSAGE:
			/* Sound structure, wrong meaning: answer it and go on. */
			conn_reply_error(c, ev.msg.request_id, ev.error);
			break;
		case CHANNEL_EV_FAILED:
			if (c->state != CONN_OPEN) {
				hs_failed(c, ev.error);
				return;
			}
			log_debug("closing a connection: %s", cairn_strerror(ev.error));
			conn_close(c);
			return;
		}
	}
	if (c->state == CONN_OPEN &&
	    conn_output_level(c) > 2 * (size_t)relay->cfg->output_buffer_max) {
		log_debug("closing a connection: output over the hard limit");
		conn_close(c);
	}
}

/*
 * Feeds IN (LEN bytes read from C) to C's channel and runs what it yields, until the input
 * ends, C closes or fails, or a command defers its work. Returns the bytes consumed; when C
 * is paused, the caller keeps the rest for later. Bytes after message 1 fail the handshake
 * (the channel's rule: an initiator cannot send a frame before it has read message 2).
 */
static size_t feed(struct conn *c, const uint8_t *in, size_t len)
{
	struct relay *relay = conn_relay(c);
	uint64_t frames = c->ch.frames_in;
	size_t pos = 0;
	/* A frame's content is opened into the channel's buffers: from the pool if it has some. */
	if (c->state == CONN_OPEN)
		channel_pool_lend(&relay->bufpool, &c->ch);
	while (
	    pos < len && !c->paused &&
	    (c->state == CONN_HANDSHAKE || c->state == CONN_OPEN || c->state == CONN_HANDSHAKING)) {
		pos += channel_feed(&c->ch, in + pos, len - pos);
		run_events(c);
	}
	/* Only a whole frame is activity: a peer that dribbles one frame a byte at a time must
	 * not keep its connection, and up to 64 KiB of frame buffer, past the idle timeout. */
	if (c->state == CONN_OPEN && c->ch.frames_in != frames)
		c->deadline_ms =
		    (int64_t)uv_now(relay->loop) + (int64_t)relay->cfg->idle_timeout_s * 1000;
	/* Nothing to write (a partial frame, a command without a reply yet): the buffers lent
	 * above go back now, not with a write that may never come. */
	if (c->state == CONN_OPEN && !c->in_flush_list && !c->writing && !c->paused)
		conn_release_small(c, NULL);
	return pos;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = stream->data;
	struct relay *relay = conn_relay(c);
	if (buf->base == (char *)relay->read_buf)
		relay->read_buf_busy = false;
	if (nread == 0 || c->state == CONN_CLOSING)
		return;
	if (nread < 0) {
		conn_close(c);
		return;
	}
	/* The input filter: a WebSocket connection's bytes reach conn_input deframed. Its
	 * frames are still checked after a failed handshake (conn_input then discards their
	 * payload): breaking the WebSocket rules closes at once whatever the stream inside. */
	if (c->ws != NULL)
		wsconn_read(c->ws, (const uint8_t *)buf->base, (size_t)nread);
	else if (c->state != CONN_FAILED) /* else discard: the deadline closes it */
		conn_input(c, (const uint8_t *)buf->base, (size_t)nread);
	conn_update_read_state(c);
}

/* Feeds LEN bytes of C's Cairn stream (borrowed) to its channel, keeping what a paused C
 * cannot take yet: a TCP read, or what the WebSocket filter deframed. May close C. */
static void conn_input(struct conn *c, const uint8_t *in, size_t len)
{
	size_t used = feed(c, in, len);
	if (c->state == CONN_CLOSING)
		return;
	if (c->paused && used < len) {
		/* Reading stopped when the command deferred; what this read brought after it
		 * waits in order (the read buffer is shared). */
		size_t left = len - used;
		if (c->u.open.held == NULL &&
		    (c->u.open.held = calloc(1, sizeof(*c->u.open.held))) == NULL) {
			conn_close(c);
			return;
		}
		struct channel_buf *h = &c->u.open.held->in;
		uint8_t *p = realloc(h->data, h->len + left);
		if (p == NULL) {
			conn_close(c);
			return;
		}
		memcpy(p + h->len, in + used, left);
		h->data = p;
		h->len += left;
		h->cap = h->len;
	}
}

/* ---- deferred work ------------------------------------------------------------------- */

/* C's deferred command is done: run what waited behind it, in order, then read again. */
static void conn_resume(struct conn *c)
{
	run_events(c); /* the rest of the batch, left in the channel */
	if (c->state != CONN_OPEN || c->paused)
		return;
	struct conn_held *h = c->u.open.held;
	if (h != NULL && h->off < h->in.len) {
		size_t used = feed(c, h->in.data + h->off, h->in.len - h->off);
		if (c->state == CONN_CLOSING)
			return;
		h->off += used;
		if (c->paused)
			return;
	}
	conn_held_free(c);
	conn_update_read_state(c);
}

static void task_pump(struct relay *relay);

static void task_run(uv_work_t *req)
{
	struct conn_task *t = req->data;
	t->run(t);
}

static void task_done(uv_work_t *req, int status)
{
	struct conn_task *t = req->data;
	struct conn *c = t->conn;
	struct relay *relay = conn_relay(c);
	relay->tasks_running--;
	bool closed = status != 0 || c->state == CONN_CLOSING;
	t->done(t, closed); /* frees T */
	if (!closed) {
		c->paused = false;
		conn_resume(c);
	}
	conn_unref(c);
	task_pump(relay);
}

/* Hands waiting tasks to the thread pool, oldest first, while slots are free. */
static void task_pump(struct relay *relay)
{
	while (relay->tasks_running < CAIRN_AUTH_VERIFY_SLOTS && relay->tasks_head != NULL) {
		struct conn_task *t = relay->tasks_head;
		relay->tasks_head = t->next;
		if (relay->tasks_head == NULL)
			relay->tasks_tail = NULL;
		struct conn *c = t->conn;
		if (c->state == CONN_CLOSING) {
			/* Closed while it waited: its work is not worth doing. */
			t->done(t, true);
			conn_unref(c);
			continue;
		}
		t->req.data = t;
		if (uv_queue_work(relay->loop, &t->req, task_run, task_done) != 0) {
			/* Cannot happen (only a missing callback fails). Running it here instead
			 * would answer before the rest of the batch is held: leave it first in
			 * line; its connection stays paused until its idle timeout closes it. */
			t->next = relay->tasks_head;
			relay->tasks_head = t;
			if (relay->tasks_tail == NULL)
				relay->tasks_tail = t;
			return;
		}
		relay->tasks_running++;
	}
}

void conn_defer(struct conn *c, struct conn_task *t)
{
	struct relay *relay = conn_relay(c);
	t->conn = c;
	t->next = NULL;
	conn_ref(c);
	if (relay->tasks_tail != NULL)
		relay->tasks_tail->next = t;
	else
		relay->tasks_head = t;
	relay->tasks_tail = t;
	c->paused = true;
	conn_update_read_state(c);
	task_pump(relay);
}

/* ---- accept -------------------------------------------------------------------------- */

/* The WebSocket filter's view of a connection (wsconn.h). */
static void ws_input(void *owner, const uint8_t *in, size_t len)
{
	conn_input(owner, in, len);
}

static void ws_close(void *owner)
{
	conn_close(owner);
}

static bool ws_closing(const void *owner)
{
	return ((const struct conn *)owner)->state == CONN_CLOSING;
}

static const struct wsconn_ops ws_ops = {
    .input = ws_input,
    .close = ws_close,
    .closing = ws_closing,
    .hold = owner_hold,
    .release = owner_release,
};

void conn_accept(struct relay *relay, uv_tcp_t *listener)
{
	struct conn *c = calloc(1, PEER_OFFSET + relay->handler->peer_size);
	/* The HTTPS listener's connections read a request head, then WebSocket frames. */
	bool https = listener == &relay->https_listener;
	if (c == NULL ||
	    (https && (c->ws = wsconn_new(&ws_ops, c, (uv_stream_t *)&c->tcp,
	                                  relay->cfg->https_path)) == NULL) ||
	    uv_tcp_init(relay->loop, &c->tcp) != 0) {
		if (c != NULL)
			wsconn_free(c->ws);
		free(c);
		return;
	}
	c->tcp.data = c;
	c->refs = 1; /* held by the open handle, dropped in on_close */
	c->state = CONN_HANDSHAKE;
	/* The channel's output limit is set out of reach: the relay's own limits apply, to
	 * the output this connection holds in all (conn_output_level). */
	struct channel_options opt = {.role = CHANNEL_RESPONDER,
	                              .frame_size = relay->cfg->frame_size,
	                              .output_max = SIZE_MAX,
	                              .now = channel_clock,
	                              .ctx = relay,
	                              .hs_cache = &relay->hs_cache};
	int rc = channel_init(&c->ch, &opt);
	c->next = relay->conns;
	if (relay->conns)
		relay->conns->prev = c;
	relay->conns = c;
	relay->conn_count++;
	if (c->ws != NULL)
		relay->conn_count_https++;
	conn_unopened_append(c);
	relay->handler->open(conn_peer(c), relay, c);
	if (rc != 0) {
		conn_close(c);
		return;
	}
	c->deadline_ms =
	    (int64_t)uv_now(relay->loop) + (int64_t)relay->cfg->handshake_timeout_s * 1000;
	if (uv_accept((uv_stream_t *)listener, (uv_stream_t *)&c->tcp) != 0) {
		conn_close(c);
		return;
	}
	if (relay->conn_count > relay->cfg->max_connections && !relay->stopping &&
	    relay->unopened_head != c) {
		/* Full: make room by closing the oldest connection that has not completed a
		 * handshake, so that peers that never finish one cannot keep clients out. Only
		 * when there is none is the newcomer refused. */
		conn_close(relay->unopened_head);
	}
	if (relay->conn_count > relay->cfg->max_connections || relay->stopping) {
		conn_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	conn_update_read_state(c);
}

/* ---- the port ----------------------------------------------------------------------- */

static const uint8_t *conn_handshake_hash(const struct conn *c)
{
	/* Commands run only while the channel is open; a closed one signs nothing. */
	static const uint8_t none[CAIRN_HASH_LEN];
	const struct cairn_session *s = channel_session(&c->ch);
	return s != NULL ? s->h : none;
}

const struct conn_port conn_socket_port = {
    .reply = conn_reply,
    .can_deliver = conn_can_deliver,
    .ref = conn_ref,
    .unref = conn_unref,
    .defer = conn_defer,
    .handshake_hash = conn_handshake_hash,
    .output_level = conn_output_level,
};
