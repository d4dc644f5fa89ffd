/* SPDX-License-Identifier: MIT */
/*
 * Connection I/O: accept, read into the relay's one shared buffer (an idle connection holds no
 * read buffer), the handshake, frame decoding and command dispatch, batched sealed output and
 * the limits that keep a hostile or slow peer from costing more than a bounded amount.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cairn/error.h"
#include "conn.h"
#include "log.h"
#include "relay.h"

#define CONTENT_MAX(relay)                                                                         \
	((relay)->cfg->frame_size ? (relay)->cfg->frame_size - CAIRN_FRAME_CONTENT_HEADER          \
	                          : CAIRN_FRAME_CONTENT_MAX)

static void on_close(uv_handle_t *h);
static void start_write(struct conn *c);
static void update_read_state(struct conn *c);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

/* ---- buffers ------------------------------------------------------------------------- */

static int buf_reserve(struct conn_buf *b, size_t extra)
{
	if (b->cap - b->len >= extra)
		return 0;
	size_t ncap = b->cap ? b->cap : 1024;
	while (ncap - b->len < extra)
		ncap *= 2;
	uint8_t *p = realloc(b->data, ncap);
	if (p == NULL)
		return CAIRN_ENOMEM;
	b->data = p;
	b->cap = ncap;
	return 0;
}

static void buf_release(struct conn_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

#define SMALL_BUF 4096

/* Releases B if it is empty and small enough to be cheap to allocate again. */
static void buf_release_small(struct conn_buf *b)
{
	if (b->len == 0 && b->cap <= SMALL_BUF)
		buf_release(b);
}

/* ---- lifetime ------------------------------------------------------------------------ */

void conn_ref(struct conn *c)
{
	c->refs++;
}

void conn_unref(struct conn *c)
{
	if (--c->refs > 0)
		return;
	frame_reader_free(&c->reader);
	cairn_session_wipe(&c->session);
	buf_release(&c->plain);
	buf_release(&c->wire);
	buf_release(&c->flight);
	buf_release(&c->held);
	buf_release(&c->held_in);
	if (c->peer != NULL)
		c->relay->handler->free(c->peer);
	free(c);
}

static void unlink_flush(struct conn *c)
{
	if (!c->in_flush_list)
		return;
	struct conn **p = &c->relay->flush_head;
	while (*p != c)
		p = &(*p)->flush_next;
	*p = c->flush_next;
	c->in_flush_list = false;
}

/* The connections that have not completed a handshake, oldest first (relay->unopened_head):
 * the ones a full relay closes to make room for a newcomer. A connection is in the list
 * exactly while its state is CONN_HANDSHAKE, CONN_HANDSHAKING or CONN_FAILED. */
static void unopened_append(struct conn *c)
{
	struct relay *relay = c->relay;
	c->unopened_prev = relay->unopened_tail;
	c->unopened_next = NULL;
	if (relay->unopened_tail != NULL)
		relay->unopened_tail->unopened_next = c;
	else
		relay->unopened_head = c;
	relay->unopened_tail = c;
}

static void unopened_remove(struct conn *c)
{
	struct relay *relay = c->relay;
	if (c->unopened_prev != NULL)
		c->unopened_prev->unopened_next = c->unopened_next;
	else
		relay->unopened_head = c->unopened_next;
	if (c->unopened_next != NULL)
		c->unopened_next->unopened_prev = c->unopened_prev;
	else
		relay->unopened_tail = c->unopened_prev;
	c->unopened_prev = c->unopened_next = NULL;
}

void conn_close(struct conn *c)
{
	if (c->state == CONN_CLOSING)
		return;
	struct relay *relay = c->relay;
	if (c->state != CONN_OPEN)
		unopened_remove(c);
	c->state = CONN_CLOSING;
	if (c->peer != NULL)
		relay->handler->closed(c->peer);
	unlink_flush(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		relay->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	relay->conn_count--;
	cairn_session_wipe(&c->session);
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
	return c->plain.len + c->wire.len + c->flight.len;
}

bool conn_can_deliver(const struct conn *c)
{
	return c->state == CONN_OPEN && conn_output_level(c) < c->relay->cfg->output_buffer_max;
}

static void want_flush(struct conn *c)
{
	if (c->in_flush_list)
		return;
	c->in_flush_list = true;
	c->flush_next = c->relay->flush_head;
	c->relay->flush_head = c;
}

/* Seals the pending reply content into frames on the wire buffer, cut where padding wastes
 * least (frame_split). */
static int seal_plain(struct conn *c)
{
	size_t fixed = c->relay->cfg->frame_size;
	size_t done = 0;
	while (done < c->plain.len) {
		size_t take = frame_split(c->plain.data + done, c->plain.len - done, fixed);
		size_t need = frame_wire_len(take, fixed);
		if (take == 0 || need == 0)
			return CAIRN_EINVAL; /* cannot happen: the relay encoded this content */
		if (buf_reserve(&c->wire, need) != 0)
			return CAIRN_ENOMEM;
		size_t outlen = 0;
		int rc = frame_seal(&c->session.send, c->plain.data + done, take, fixed,
		                    c->wire.data + c->wire.len, c->wire.cap - c->wire.len, &outlen);
		if (rc != 0)
			return rc;
		c->wire.len += outlen;
		done += take;
	}
	c->plain.len = 0;
	return 0;
}

void conn_reply(struct conn *c, const struct cairn_msg *m)
{
	if (c->state != CONN_OPEN)
		return;
	size_t max = CONTENT_MAX(c->relay);
	for (int attempt = 0; attempt < 2; attempt++) {
		size_t room = 0;
		/* Room for this message only: every field but the envelope fits in 128 bytes,
		 * so an idle subscriber's buffers stay small. */
		size_t need = 128 + (m->envelope != NULL ? m->envelope_len : 0);
		if (buf_reserve(&c->plain, c->plain.len < max ? need : 0) == 0 &&
		    c->plain.len < max)
			room = (c->plain.cap < max ? c->plain.cap : max) - c->plain.len;
		size_t used = 0;
		int rc = room ? cairn_msg_encode(m, c->plain.data + c->plain.len, room, &used)
		              : CAIRN_ENOBUFS;
		if (rc == 0) {
			c->plain.len += used;
			want_flush(c);
			return;
		}
		/* No room left in this frame: seal it and start the next. */
		if (rc != CAIRN_ENOBUFS || c->plain.len == 0 || seal_plain(c) != 0)
			break;
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
	conn_reply(c, &m);
}

static void on_write(uv_write_t *req, int status)
{
	struct conn *c = req->data;
	c->writing = false;
	c->flight.len = 0;
	if (c->state == CONN_CLOSING) {
		conn_unref(c);
		return;
	}
	if (status < 0) {
		conn_close(c);
		conn_unref(c);
		return;
	}
	if (c->wire.len > 0) {
		start_write(c);
	} else {
		/* Small buffers go at once, so that an idle connection holds none; large ones
		 * belong to busy connections, which would otherwise reallocate up to 64 KiB per
		 * write cycle (that cost a fifth of the online throughput). The once-a-second
		 * tick takes those back once the connection idles (conn_check_timeouts). */
		buf_release_small(&c->flight);
		buf_release_small(&c->wire);
	}
	update_read_state(c);
	c->relay->handler->drained(c->peer);
	conn_unref(c);
}

static void start_write(struct conn *c)
{
	if (c->writing || c->wire.len == 0 || c->state == CONN_CLOSING)
		return;
	/* Swap: the wire buffer goes in flight, the old flight buffer collects new output. */
	struct conn_buf t = c->flight;
	c->flight = c->wire;
	c->wire = t;
	c->wire.len = 0;
	uv_buf_t b = uv_buf_init((char *)c->flight.data, (unsigned)c->flight.len);
	c->write_req.data = c;
	c->writing = true;
	c->write_since_ms = (int64_t)uv_now(c->relay->loop);
	conn_ref(c);
	int rc = uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
	if (rc != 0) {
		c->writing = false;
		conn_unref(c);
		conn_close(c);
	}
}

void conn_flush_all(struct relay *relay)
{
	while (relay->flush_head != NULL) {
		struct conn *c = relay->flush_head;
		relay->flush_head = c->flush_next;
		c->in_flush_list = false;
		if (c->state != CONN_OPEN)
			continue;
		if (seal_plain(c) != 0) {
			conn_close(c);
			continue;
		}
		buf_release_small(&c->plain);
		start_write(c);
	}
}

/* ---- input --------------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;
	struct relay *relay = c->relay;
	/* One shared buffer: every read is handled completely before the next one. */
	if (relay->read_buf_busy) {
		*buf = uv_buf_init(NULL, 0);
		return;
	}
	relay->read_buf_busy = true;
	*buf = uv_buf_init((char *)relay->read_buf, sizeof(relay->read_buf));
}

static void update_read_state(struct conn *c)
{
	if (c->state == CONN_CLOSING)
		return;
	const struct relay_config *cfg = c->relay->cfg;
	bool want = c->state != CONN_HANDSHAKING && !c->paused &&
	            c->held_in.len == c->held_in_off &&
	            conn_output_level(c) < cfg->output_buffer_max &&
	            !c->relay->handler->busy(c->peer) && !c->relay->stopping;
	if (want && !c->reading) {
		if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
			c->reading = true;
	} else if (!want && c->reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = false;
	}
}

/*
 * Message 1 answered on libuv's thread pool: its X25519 work (~100 µs of the relay's CPU per
 * handshake) would otherwise cap handshakes at what one core does, with every other
 * connection waiting behind it. The loop thread keeps the replay cache, so only the pure
 * computation crosses threads; the relay's key pair is read-only.
 */
struct hs_work {
	uv_work_t req;
	struct conn *c;
	uint64_t now;
	size_t len1, pad, outlen;
	int rc;
	uint8_t msg1[CAIRN_HANDSHAKE1_MAX];
	uint8_t out[CAIRN_FRAME_HEADER_LEN + CAIRN_HANDSHAKE2_MAX];
	struct cairn_session session;
};

static void hs_failed(struct conn *c, int rc)
{
	/* Section 2.2: whatever failed, stay silent and close at the deadline. */
	c->relay->stats.handshakes_failed++;
	log_debug("handshake failed: %s", cairn_strerror(rc));
	c->state = CONN_FAILED;
}

static void hs_work_run(uv_work_t *req)
{
	struct hs_work *w = req->data;
	struct relay *relay = w->c->relay;
	/* The replay cache is consulted on the loop thread, in hs_work_done. */
	w->rc = cairn_handshake_relay_respond(
	    relay->private_key, relay->public_key, NULL, NULL, w->now, w->msg1, w->len1, w->pad,
	    w->out + CAIRN_FRAME_HEADER_LEN, sizeof(w->out) - CAIRN_FRAME_HEADER_LEN, &w->outlen,
	    &w->session);
}

static void hs_work_done(uv_work_t *req, int status)
{
	struct hs_work *w = req->data;
	struct conn *c = w->c;
	struct relay *relay = c->relay;
	/* Closed, or failed (bytes after message 1), while the work ran: nothing to do. */
	if (status != 0 || c->state != CONN_HANDSHAKING)
		goto out;
	int rc = w->rc;
	/* Message 1 carries the initiator's ephemeral key in clear, first. */
	if (rc == 0)
		rc = replay_cache_add(relay->replay, w->msg1, w->now);
	if (rc == 0 && buf_reserve(&c->wire, w->outlen + CAIRN_FRAME_HEADER_LEN) != 0)
		rc = CAIRN_ENOMEM;
	if (rc != 0) {
		hs_failed(c, rc);
		/* Read and discard until the deadline, as after any failure (PROTOCOL.md 2.2):
		 * reads stopped while the work ran. */
		update_read_state(c);
		goto out;
	}
	c->session = w->session;
	unopened_remove(c);
	w->out[0] = (uint8_t)(w->outlen >> 8);
	w->out[1] = (uint8_t)w->outlen;
	memcpy(c->wire.data + c->wire.len, w->out, w->outlen + CAIRN_FRAME_HEADER_LEN);
	c->wire.len += w->outlen + CAIRN_FRAME_HEADER_LEN;
	c->state = CONN_OPEN;
	frame_reader_set_limits(&c->reader, CAIRN_AEAD_TAG_LEN + CAIRN_FRAME_CONTENT_HEADER,
	                        CAIRN_NOISE_MSG_MAX);
	c->deadline_ms = (int64_t)uv_now(relay->loop) + (int64_t)relay->cfg->idle_timeout_s * 1000;
	want_flush(c);
	update_read_state(c);
out:
	cairn_session_wipe(&w->session);
	sodium_memzero(w, sizeof(*w));
	free(w);
	conn_unref(c);
}

static int handle_handshake(struct conn *c, const uint8_t *msg, size_t len)
{
	struct relay *relay = c->relay;
	if (len < CAIRN_HANDSHAKE1_MIN || len > CAIRN_HANDSHAKE1_MAX) {
		hs_failed(c, CAIRN_EFRAME);
		return 0;
	}
	struct hs_work *w = malloc(sizeof(*w));
	if (w == NULL)
		return CAIRN_ENOMEM;
	w->req.data = w;
	w->c = c;
	w->now = (uint64_t)relay_now(relay);
	w->len1 = len;
	w->pad = randombytes_uniform(CAIRN_HELLO_PAD_MAX + 1);
	memcpy(w->msg1, msg, len);
	if (uv_queue_work(relay->loop, &w->req, hs_work_run, hs_work_done) != 0) {
		free(w);
		return CAIRN_ENOMEM;
	}
	conn_ref(c);
	c->state = CONN_HANDSHAKING;
	update_read_state(c);
	return 0;
}

/*
 * Runs the commands in CONTENT (LEN bytes, whole msgpack objects) in order, until the end,
 * until C closes, or until a command defers its work (conn_defer). Sets *USED to the bytes
 * run. Returns 0, or a negative code when the rest cannot be read (C must be closed).
 */
static int run_commands(struct conn *c, const uint8_t *content, size_t len, size_t *used)
{
	size_t off = 0;
	int rc = 0;
	while (off < len && c->state == CONN_OPEN && !c->paused) {
		struct cairn_msg m;
		size_t one = 0;
		int have_id = 0;
		memset(&m, 0, sizeof(m));
		rc = cairn_msg_decode(content + off, len - off, &one, &m, &have_id);
		if (rc == CAIRN_ETYPE || rc == CAIRN_EUNKNOWN) {
			/* Sound structure, wrong meaning: answer it and go on. */
			if (!have_id)
				break;
			int code = rc == CAIRN_EUNKNOWN ? CAIRN_EUNKNOWN : CAIRN_EBADREQ;
			if (m.type == CAIRN_CMD_SEND && m.envelope_len > CAIRN_ENVELOPE_MAX)
				code = CAIRN_ETOOBIG;
			conn_reply_error(c, m.request_id, code);
			rc = 0;
		} else if (rc != 0) {
			/* The next command's boundary is unknown: nothing more can be read. */
			break;
		} else {
			c->relay->handler->command(c->peer, &m);
		}
		off += one;
	}
	*used = off;
	return rc;
}

static int handle_frame(struct conn *c, const uint8_t *msg, size_t len)
{
	struct relay *relay = c->relay;
	const uint8_t *content = NULL;
	size_t content_len = 0, used = 0;
	int rc = frame_open(&c->session.recv, msg, len, relay->plain_buf, sizeof(relay->plain_buf),
	                    &content, &content_len);
	if (rc == 0)
		rc = run_commands(c, content, content_len, &used);
	if (rc != 0 || !c->paused || used == content_len)
		return rc;
	/* The rest of the batch waits for the deferred command; the shared buffer it lies in
	 * does not. (Frames are read only once nothing is held, so HELD is empty here.) */
	if (buf_reserve(&c->held, content_len - used) != 0)
		return CAIRN_ENOMEM;
	memcpy(c->held.data, content + used, content_len - used);
	c->held.len = content_len - used;
	c->held_off = 0;
	return 0;
}

/*
 * Handles the frames in IN (LEN bytes read from C) until the input ends, C closes or fails,
 * or a command defers its work. Returns the bytes consumed; when C is paused, the caller keeps
 * the rest for later.
 */
static size_t feed(struct conn *c, const uint8_t *in, size_t len)
{
	struct relay *relay = c->relay;
	size_t pos = 0;
	bool whole_frame = false;
	while (pos < len && (c->state == CONN_HANDSHAKE || c->state == CONN_OPEN) && !c->paused) {
		const uint8_t *frame = NULL;
		size_t frame_len = 0, used = 0;
		int rc =
		    frame_reader_next(&c->reader, in + pos, len - pos, &used, &frame, &frame_len);
		pos += used;
		if (rc < 0) {
			if (c->state == CONN_HANDSHAKE) {
				relay->stats.handshakes_failed++;
				c->state = CONN_FAILED;
				break;
			}
			log_debug("closing a connection: %s", cairn_strerror(rc));
			conn_close(c);
			return pos;
		}
		if (rc == 0)
			break;
		if (c->state == CONN_HANDSHAKE) {
			rc = handle_handshake(c, frame, frame_len);
		} else {
			rc = handle_frame(c, frame, frame_len);
			whole_frame = true;
		}
		if (rc != 0) {
			log_debug("closing a connection: %s", cairn_strerror(rc));
			conn_close(c);
			return pos;
		}
		if (conn_output_level(c) > 2 * (size_t)relay->cfg->output_buffer_max) {
			log_debug("closing a connection: output over the hard limit");
			conn_close(c);
			return pos;
		}
	}
	/* Only a whole frame is activity: a peer that dribbles one frame a byte at a time must
	 * not keep its connection, and up to 64 KiB of frame buffer, past the idle timeout. */
	if (c->state == CONN_OPEN && whole_frame)
		c->deadline_ms =
		    (int64_t)uv_now(relay->loop) + (int64_t)relay->cfg->idle_timeout_s * 1000;
	return pos;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = stream->data;
	struct relay *relay = c->relay;
	if (buf->base == (char *)relay->read_buf)
		relay->read_buf_busy = false;
	if (nread == 0 || c->state == CONN_CLOSING)
		return;
	if (nread < 0) {
		conn_close(c);
		return;
	}
	if (c->state == CONN_FAILED)
		return; /* discard: the deadline closes it */
	const uint8_t *in = (const uint8_t *)buf->base;
	size_t left = (size_t)nread;
	size_t used = feed(c, in, left);
	if (c->state == CONN_CLOSING)
		return;
	in += used;
	left -= used;
	if (c->paused && left > 0) {
		/* Reading stopped when the command deferred; what this read brought after it
		 * waits in order (the read buffer is shared). */
		if (buf_reserve(&c->held_in, left) != 0) {
			conn_close(c);
			return;
		}
		memcpy(c->held_in.data + c->held_in.len, in, left);
		c->held_in.len += left;
		left = 0;
	}
	/* An initiator cannot send a frame before it has read message 2. */
	if (c->state == CONN_HANDSHAKING && left > 0)
		hs_failed(c, CAIRN_EFRAME);
	update_read_state(c);
}

/* ---- deferred work ------------------------------------------------------------------- */

/* C's deferred command is done: run what waited behind it, in order, then read again. */
static void conn_resume(struct conn *c)
{
	struct relay *relay = c->relay;
	if (c->held_off < c->held.len) {
		size_t used = 0;
		int rc =
		    run_commands(c, c->held.data + c->held_off, c->held.len - c->held_off, &used);
		c->held_off += used;
		if (rc != 0) {
			log_debug("closing a connection: %s", cairn_strerror(rc));
			conn_close(c);
			return;
		}
		if (conn_output_level(c) > 2 * (size_t)relay->cfg->output_buffer_max) {
			log_debug("closing a connection: output over the hard limit");
			conn_close(c);
			return;
		}
		if (c->state != CONN_OPEN || c->paused)
			return;
	}
	buf_release(&c->held);
	c->held_off = 0;
	if (c->held_in_off < c->held_in.len) {
		/* Frames are opened here, so HELD (released above) may fill again. */
		size_t used =
		    feed(c, c->held_in.data + c->held_in_off, c->held_in.len - c->held_in_off);
		if (c->state == CONN_CLOSING)
			return;
		c->held_in_off += used;
		if (c->paused)
			return;
	}
	buf_release(&c->held_in);
	c->held_in_off = 0;
	update_read_state(c);
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
	struct relay *relay = c->relay;
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
	struct relay *relay = c->relay;
	t->conn = c;
	t->next = NULL;
	conn_ref(c);
	if (relay->tasks_tail != NULL)
		relay->tasks_tail->next = t;
	else
		relay->tasks_head = t;
	relay->tasks_tail = t;
	c->paused = true;
	update_read_state(c);
	task_pump(relay);
}

void conn_accept(struct relay *relay)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (c == NULL || uv_tcp_init(relay->loop, &c->tcp) != 0) {
		free(c);
		return;
	}
	c->relay = relay;
	c->tcp.data = c;
	c->refs = 1; /* held by the open handle, dropped in on_close */
	c->state = CONN_HANDSHAKE;
	frame_reader_init(&c->reader, CAIRN_HANDSHAKE1_MIN, CAIRN_HANDSHAKE1_MAX);
	c->next = relay->conns;
	if (relay->conns)
		relay->conns->prev = c;
	relay->conns = c;
	relay->conn_count++;
	unopened_append(c);
	c->peer = relay->handler->open(relay, c);
	if (c->peer == NULL) {
		conn_close(c);
		return;
	}
	c->deadline_ms =
	    (int64_t)uv_now(relay->loop) + (int64_t)relay->cfg->handshake_timeout_s * 1000;
	if (uv_accept((uv_stream_t *)&relay->listener, (uv_stream_t *)&c->tcp) != 0) {
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
	update_read_state(c);
}

/* ---- timeouts and the port ------------------------------------------------------ */

void conn_check_timeouts(struct relay *relay, int64_t now_ms)
{
	/* A writer that has not taken a byte for a whole idle period is gone or hostile. */
	int64_t stall_ms = (int64_t)relay->cfg->handshake_timeout_s * 1000;
	struct conn *c = relay->conns;
	while (c != NULL) {
		struct conn *next = c->next;
		bool stalled = c->writing && now_ms - c->write_since_ms > stall_ms &&
		               conn_output_level(c) >= relay->cfg->output_buffer_max;
		if (now_ms >= c->deadline_ms || stalled) {
			conn_close(c);
		} else if (!c->writing && conn_output_level(c) == 0) {
			/* Idle: it holds no output buffers at all until it needs them again. */
			buf_release(&c->plain);
			buf_release(&c->wire);
			buf_release(&c->flight);
		}
		c = next;
	}
}

static const uint8_t *conn_handshake_hash(const struct conn *c)
{
	return c->session.h;
}

const struct conn_port conn_socket_port = {
    .reply = conn_reply,
    .can_deliver = conn_can_deliver,
    .ref = conn_ref,
    .unref = conn_unref,
    .defer = conn_defer,
    .handshake_hash = conn_handshake_hash,
};
