/* SPDX-License-Identifier: MIT */
/*
 * conn.c's WebSocket filter (PROTOCOL.md 7.2). Memory: a connection reading its head holds
 * at most HTTPHEAD_MAX bytes, and only if the head did not come in one read; once upgraded it
 * holds wslay's context (its fixed frame buffer) and nothing else between reads, since wslay
 * does not buffer data messages here (no_buffering: payloads go to the channel as they
 * arrive). The limits an anonymous peer meets: a head of HTTPHEAD_MAX bytes within the
 * handshake deadline, frames of WSCONN_FRAME_MAX, messages of WSCONN_MESSAGE_MAX, control
 * frames (pong, close) counted in the connection's output level like any other output.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wslay/wslay.h>

#include "conn.h"
#include "httphead.h"
#include "log.h"
#include "relay.h"
#include "wsconn.h"

#define FRAME_HEADER_MAX 10 /* an unmasked frame header with a 64-bit length */

struct wsconn {
	struct conn *c; /* set while wslay runs a callback */
	uint8_t *head;  /* the request head so far, when it did not come in one read */
	size_t head_len;
	bool upgraded, answered; /* 101 sent; 404 sent (the rest is discarded) */
	wslay_event_context_ptr ctx;

	const uint8_t *in; /* the bytes wslay_event_recv is reading */
	size_t in_len;
	bool bad;         /* a frame broke one of 7.2's rules: close */
	bool data_frame;  /* the frame being received is binary or a continuation */
	bool data_fin;    /* ...and ends its message */
	uint64_t msg_len; /* payload bytes of the data message so far */

	uint8_t *ctl; /* control frames wslay_event_send produced, not yet written */
	size_t ctl_len, ctl_cap;
	size_t ctl_pending; /* control bytes handed to libuv, not yet written */

	uint8_t *frames; /* the write in flight: its frame headers, then its buffers */
	size_t frames_bytes;
};

struct ctl_write {
	uv_write_t req;
	struct conn *c;
	size_t len;
	bool close_after;
	uint8_t data[];
};

struct wsconn *wsconn_new(void)
{
	return calloc(1, sizeof(struct wsconn));
}

void wsconn_free(struct wsconn *ws)
{
	if (ws == NULL)
		return;
	if (ws->ctx != NULL)
		wslay_event_context_free(ws->ctx);
	free(ws->head);
	free(ws->ctl);
	free(ws->frames);
	free(ws);
}

size_t wsconn_pending(const struct wsconn *ws)
{
	return ws->ctl_pending + ws->ctl_len + ws->frames_bytes;
}

/* ---- control output ------------------------------------------------------------------ */

static void on_ctl_written(uv_write_t *req, int status)
{
	struct ctl_write *w = req->data;
	struct conn *c = w->c;
	c->ws->ctl_pending -= w->len;
	if (status < 0 || w->close_after)
		conn_close(c);
	free(w);
	conn_unref(c);
}

/* Writes LEN bytes (copied: they are small) to C, closing C afterwards if CLOSE_AFTER. */
static void ctl_write(struct conn *c, const void *data, size_t len, bool close_after)
{
	struct ctl_write *w = malloc(sizeof(*w) + len);
	if (w == NULL) {
		conn_close(c);
		return;
	}
	memcpy(w->data, data, len);
	w->req.data = w;
	w->c = c;
	w->len = len;
	w->close_after = close_after;
	uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)len);
	conn_ref(c);
	c->ws->ctl_pending += len;
	if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_ctl_written) != 0) {
		c->ws->ctl_pending -= len;
		free(w);
		conn_unref(c);
		conn_close(c);
	}
}

/* ---- wslay's callbacks --------------------------------------------------------------- */

static ssize_t ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
	(void)flags;
	struct wsconn *ws = user;
	if (ws->in_len == 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	size_t n = len < ws->in_len ? len : ws->in_len;
	memcpy(buf, ws->in, n);
	ws->in += n;
	ws->in_len -= n;
	return (ssize_t)n;
}

static ssize_t ws_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
	(void)flags;
	struct wsconn *ws = user;
	if (ws->ctl_len + len > ws->ctl_cap) {
		size_t cap = ws->ctl_len + len + 128;
		uint8_t *p = realloc(ws->ctl, cap);
		if (p == NULL) {
			wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
			return -1;
		}
		ws->ctl = p;
		ws->ctl_cap = cap;
	}
	memcpy(ws->ctl + ws->ctl_len, data, len);
	ws->ctl_len += len;
	return (ssize_t)len;
}

static void ws_frame_start(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_start_arg *arg, void *user)
{
	(void)ctx;
	struct wsconn *ws = user;
	ws->data_frame =
	    arg->opcode == WSLAY_BINARY_FRAME || arg->opcode == WSLAY_CONTINUATION_FRAME;
	ws->data_fin = arg->fin != 0;
	if (arg->opcode == WSLAY_TEXT_FRAME || arg->rsv != 0)
		ws->bad = true;
	if (!ws->data_frame)
		return;
	/* Checked before any of the payload is taken: the channel never sees a byte of it. */
	ws->msg_len += arg->payload_length;
	if (arg->payload_length > WSCONN_FRAME_MAX || ws->msg_len > WSCONN_MESSAGE_MAX)
		ws->bad = true;
}

static void ws_frame_chunk(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_chunk_arg *arg, void *user)
{
	(void)ctx;
	struct wsconn *ws = user;
	if (!ws->data_frame || ws->bad || ws->c->state == CONN_CLOSING)
		return;
	conn_input(ws->c, arg->data, arg->data_length);
}

static void ws_frame_end(wslay_event_context_ptr ctx, void *user)
{
	(void)ctx;
	struct wsconn *ws = user;
	if (ws->data_frame && ws->data_fin)
		ws->msg_len = 0;
}

static const struct wslay_event_callbacks ws_callbacks = {
    .recv_callback = ws_recv,
    .send_callback = ws_send,
    .on_frame_recv_start_callback = ws_frame_start,
    .on_frame_recv_chunk_callback = ws_frame_chunk,
    .on_frame_recv_end_callback = ws_frame_end,
};

/* ---- input --------------------------------------------------------------------------- */

static void frames_input(struct conn *c, const uint8_t *in, size_t len)
{
	struct wsconn *ws = c->ws;
	ws->c = c;
	ws->in = in;
	ws->in_len = len;
	int rc = wslay_event_recv(ws->ctx);
	ws->in = NULL;
	ws->in_len = 0;
	if (c->state == CONN_CLOSING)
		return;
	if (rc != 0 || ws->bad) {
		log_debug("closing a connection: a WebSocket protocol error");
		conn_close(c);
		return;
	}
	/* Pongs, and the answer to a close (or wslay's own close on a protocol error). */
	if (wslay_event_want_write(ws->ctx) && wslay_event_send(ws->ctx) != 0) {
		conn_close(c);
		return;
	}
	bool ending = !wslay_event_get_read_enabled(ws->ctx);
	if (ws->ctl_len > 0) {
		ctl_write(c, ws->ctl, ws->ctl_len, ending);
		ws->ctl_len = 0;
	} else if (ending) {
		conn_close(c);
	}
}

/* Answers the head in HEAD (LEN bytes so far). Returns the bytes of HEAD it used, or 0 if it
 * is incomplete (or C was answered or closed). */
static size_t head_input(struct conn *c, const uint8_t *head, size_t len)
{
	static const char not_found[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
	                                "Connection: close\r\n\r\n";
	struct wsconn *ws = c->ws;
	struct httphead_request req;
	switch (httphead_parse(head, len, c->relay->cfg->https_path, &req)) {
	case HTTPHEAD_INCOMPLETE:
		return 0;
	case HTTPHEAD_MALFORMED:
		conn_close(c);
		return 0;
	case HTTPHEAD_NOT_FOUND:
		ws->answered = true;
		ctl_write(c, not_found, sizeof(not_found) - 1, true);
		return 0;
	case HTTPHEAD_UPGRADE:
		break;
	}
	char accept[HTTPHEAD_ACCEPT_LEN + 1], resp[160];
	if (httphead_accept(req.key, accept) != 0 ||
	    wslay_event_context_server_init(&ws->ctx, &ws_callbacks, ws) != 0) {
		conn_close(c);
		return 0;
	}
	wslay_event_config_set_no_buffering(ws->ctx, 1);
	wslay_event_config_set_max_recv_msg_length(ws->ctx, WSCONN_MESSAGE_MAX);
	int n = snprintf(resp, sizeof(resp),
	                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	                 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
	                 accept);
	ws->upgraded = true;
	ctl_write(c, resp, (size_t)n, false);
	return req.head_len;
}

void wsconn_read(struct conn *c, const uint8_t *in, size_t len)
{
	struct wsconn *ws = c->ws;
	if (ws->answered)
		return; /* a 404 is on its way; the connection closes after it */
	if (ws->upgraded) {
		frames_input(c, in, len);
		return;
	}
	size_t used;
	if (ws->head == NULL) {
		/* Usually the whole head comes in one read: parse it where it is. */
		used = head_input(c, in, len);
		if (used == 0 && !ws->answered && c->state != CONN_CLOSING) {
			ws->head = malloc(HTTPHEAD_MAX);
			if (ws->head == NULL) {
				conn_close(c);
				return;
			}
			size_t n = len < HTTPHEAD_MAX ? len : HTTPHEAD_MAX;
			memcpy(ws->head, in, n);
			ws->head_len = n;
		}
	} else {
		size_t before = ws->head_len;
		size_t n = len < HTTPHEAD_MAX - before ? len : HTTPHEAD_MAX - before;
		memcpy(ws->head + before, in, n);
		ws->head_len += n;
		size_t head = head_input(c, ws->head, ws->head_len);
		used = head > 0 ? head - before : 0;
		if (head > 0 || ws->answered || c->state == CONN_CLOSING) {
			free(ws->head);
			ws->head = NULL;
		}
	}
	/* The stream may follow the head in the same read. */
	if (used > 0 && used < len && c->state != CONN_CLOSING)
		frames_input(c, in + used, len - used);
}

/* ---- output -------------------------------------------------------------------------- */

/* Writes the header of an unmasked final binary frame of LEN payload bytes into OUT. */
static size_t frame_header(uint8_t *out, size_t len)
{
	out[0] = 0x80 | WSLAY_BINARY_FRAME;
	if (len < 126) {
		out[1] = (uint8_t)len;
		return 2;
	}
	if (len <= 0xffff) {
		out[1] = 126;
		out[2] = (uint8_t)(len >> 8);
		out[3] = (uint8_t)len;
		return 4;
	}
	out[1] = 127;
	for (int i = 0; i < 8; i++)
		out[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
	return 10;
}

int wsconn_write(struct conn *c, uv_write_cb cb)
{
	struct wsconn *ws = c->ws;
	size_t len = c->flight.len;
	size_t count = (len + WSCONN_FRAME_MAX - 1) / WSCONN_FRAME_MAX;
	/* One block: COUNT headers, then 2 * COUNT buffers (header, payload) for libuv. */
	size_t hdr_space = count * FRAME_HEADER_MAX;
	size_t align = _Alignof(uv_buf_t);
	hdr_space = (hdr_space + align - 1) / align * align;
	uint8_t *block = malloc(hdr_space + 2 * count * sizeof(uv_buf_t));
	if (block == NULL)
		return UV_ENOMEM;
	uv_buf_t *bufs = (uv_buf_t *)(void *)(block + hdr_space);
	size_t framing = 0;
	for (size_t i = 0; i < count; i++) {
		size_t off = i * WSCONN_FRAME_MAX;
		size_t n = len - off < WSCONN_FRAME_MAX ? len - off : WSCONN_FRAME_MAX;
		uint8_t *h = block + i * FRAME_HEADER_MAX;
		size_t hl = frame_header(h, n);
		framing += hl;
		bufs[2 * i] = uv_buf_init((char *)h, (unsigned)hl);
		bufs[2 * i + 1] = uv_buf_init((char *)c->flight.data + off, (unsigned)n);
	}
	ws->frames = block;
	ws->frames_bytes = framing;
	int rc = uv_write(&c->write_req, (uv_stream_t *)&c->tcp, bufs, (unsigned)(2 * count), cb);
	if (rc != 0)
		wsconn_write_done(ws);
	return rc;
}

void wsconn_write_done(struct wsconn *ws)
{
	free(ws->frames);
	ws->frames = NULL;
	ws->frames_bytes = 0;
}
