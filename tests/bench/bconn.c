/* SPDX-License-Identifier: MIT */
/*
 * The load generator's connection (see bconn.h). One read buffer and one plaintext buffer
 * serve every connection of the process, since each read is handled completely before the
 * next; per-connection buffers grow only as far as the traffic needs, so thousands of idle
 * connections stay cheap for the generator too.
 */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <sodium.h>

#include "bconn.h"
#include "cairn/error.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24 /* Linux 4.2; not every libc header names it */
#endif

static uint8_t read_buf[256 * 1024];
static uint8_t plain_in[CAIRN_NOISE_MSG_MAX];
static uint8_t encode_scratch[CAIRN_MSG_ENCODED_MAX];

static void start_write(struct bconn *c);

static int bbuf_reserve(struct bbuf *b, size_t extra)
{
	if (b->cap - b->len >= extra)
		return 0;
	size_t ncap = b->cap ? b->cap : 256;
	while (ncap - b->len < extra)
		ncap *= 2;
	uint8_t *p = realloc(b->data, ncap);
	if (p == NULL)
		return CAIRN_ENOMEM;
	b->data = p;
	b->cap = ncap;
	return 0;
}

static void bbuf_free(struct bbuf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

int bconn_prepare(struct bconn *c, const uint8_t relay_public[static 32])
{
	memset(c, 0, sizeof(*c));
	size_t len = 0;
	int rc = cairn_handshake_client_start(&c->hs, relay_public, NULL, (uint64_t)time(NULL),
	                                      randombytes_uniform(CAIRN_HELLO_PAD_MAX + 1),
	                                      c->hello + CAIRN_FRAME_HEADER_LEN,
	                                      sizeof(c->hello) - CAIRN_FRAME_HEADER_LEN, &len);
	if (rc != 0)
		return rc;
	c->hello[0] = (uint8_t)(len >> 8);
	c->hello[1] = (uint8_t)len;
	c->hello_len = len + CAIRN_FRAME_HEADER_LEN;
	return 0;
}

static void fail(struct bconn *c, int err)
{
	if (c->broken || c->closing)
		return;
	c->broken = true;
	c->ops->failed(c, err);
}

/* ---- output ------------------------------------------------------------------------- */

/* Seals the batch as frames cut where padding wastes least, as the relay and clients do. */
static int seal_plain(struct bconn *c)
{
	size_t done = 0;
	while (done < c->plain.len) {
		size_t take = frame_split(c->plain.data + done, c->plain.len - done, 0);
		size_t need = frame_wire_len(take, 0);
		if (take == 0 || need == 0)
			return CAIRN_EINVAL;
		if (bbuf_reserve(&c->wire, need) != 0)
			return CAIRN_ENOMEM;
		size_t outlen = 0;
		int rc = frame_seal(&c->session.send, c->plain.data + done, take, 0,
		                    c->wire.data + c->wire.len, c->wire.cap - c->wire.len, &outlen);
		if (rc != 0)
			return rc;
		c->wire.len += outlen;
		done += take;
	}
	c->plain.len = 0;
	return 0;
}

int bconn_queue(struct bconn *c, const struct cairn_msg *m)
{
	size_t used = 0;
	int rc = cairn_msg_encode(m, encode_scratch, sizeof(encode_scratch), &used);
	if (rc != 0)
		return rc;
	/* A command never spans two frames: seal the batch when this one would not fit. */
	if (c->plain.len + used > CAIRN_FRAME_CONTENT_MAX && (rc = seal_plain(c)) != 0)
		return rc;
	if (bbuf_reserve(&c->plain, used) != 0)
		return CAIRN_ENOMEM;
	memcpy(c->plain.data + c->plain.len, encode_scratch, used);
	c->plain.len += used;
	return 0;
}

static void on_write(uv_write_t *req, int status)
{
	struct bconn *c = req->data;
	c->writing = false;
	c->flight.len = 0;
	if (c->closing)
		return;
	if (status < 0) {
		fail(c, CAIRN_EIO);
		return;
	}
	start_write(c);
	if (c->ops->writable != NULL)
		c->ops->writable(c);
}

static void start_write(struct bconn *c)
{
	if (c->writing || c->wire.len == 0 || c->closing)
		return;
	/* The sealed frames go in flight; the old flight buffer collects the next ones. */
	struct bbuf t = c->flight;
	c->flight = c->wire;
	c->wire = t;
	c->wire.len = 0;
	uv_buf_t b = uv_buf_init((char *)c->flight.data, (unsigned)c->flight.len);
	c->write_req.data = c;
	c->writing = true;
	if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
		c->writing = false;
		fail(c, CAIRN_EIO);
	}
}

int bconn_flush(struct bconn *c)
{
	if (c->closing || c->broken)
		return CAIRN_EIO;
	int rc = seal_plain(c);
	if (rc != 0)
		return rc;
	start_write(c);
	return 0;
}

size_t bconn_backlog(const struct bconn *c)
{
	return c->plain.len + c->wire.len + c->flight.len;
}

/* ---- input -------------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	*buf = uv_buf_init((char *)read_buf, sizeof(read_buf));
}

static int handle_hello_reply(struct bconn *c, const uint8_t *frame, size_t len)
{
	int rc = cairn_handshake_client_finish(&c->hs, frame, len, &c->session);
	if (rc != 0)
		return rc;
	frame_reader_set_limits(&c->reader, CAIRN_AEAD_TAG_LEN + CAIRN_FRAME_CONTENT_HEADER,
	                        CAIRN_NOISE_MSG_MAX);
	c->open = true;
	c->ops->ready(c);
	return 0;
}

static int handle_frame(struct bconn *c, const uint8_t *frame, size_t len)
{
	const uint8_t *content = NULL;
	size_t content_len = 0;
	int rc = frame_open(&c->session.recv, frame, len, plain_in, sizeof(plain_in), &content,
	                    &content_len);
	if (rc != 0)
		return rc;
	size_t off = 0;
	while (off < content_len && !c->closing && !c->broken) {
		struct cairn_msg m;
		size_t used = 0;
		rc = cairn_msg_decode(content + off, content_len - off, &used, &m, NULL);
		if (rc != 0)
			return rc;
		c->ops->message(c, &m);
		off += used;
	}
	return 0;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct bconn *c = (struct bconn *)stream;
	if (nread == 0 || c->closing || c->broken)
		return;
	if (nread < 0) {
		fail(c, CAIRN_EIO);
		return;
	}
	const uint8_t *in = (const uint8_t *)buf->base;
	size_t left = (size_t)nread;
	while (left > 0 && !c->closing && !c->broken) {
		const uint8_t *frame = NULL;
		size_t frame_len = 0, used = 0;
		int rc = frame_reader_next(&c->reader, in, left, &used, &frame, &frame_len);
		in += used;
		left -= used;
		if (rc == 1)
			rc = c->open ? handle_frame(c, frame, frame_len)
			             : handle_hello_reply(c, frame, frame_len);
		if (rc < 0) {
			fail(c, rc);
			return;
		}
	}
	if (!c->closing && !c->broken && c->ops->read_done != NULL)
		c->ops->read_done(c);
}

/* ---- connection --------------------------------------------------------------------- */

static void on_connect(uv_connect_t *req, int status)
{
	struct bconn *c = req->data;
	if (c->closing)
		return;
	if (status < 0) {
		fail(c, CAIRN_EIO);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	if (bbuf_reserve(&c->wire, c->hello_len) != 0) {
		fail(c, CAIRN_ENOMEM);
		return;
	}
	memcpy(c->wire.data, c->hello, c->hello_len);
	c->wire.len = c->hello_len;
	start_write(c);
	if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
		fail(c, CAIRN_EIO);
}

/*
 * Binds to SOURCE's address, leaving the port to connect(): a bind to port 0 would pick a
 * port unique for every destination, a search that grows with every socket already bound
 * and made thousands of connections slower to open than the relay was to accept them.
 */
static int bind_source(struct bconn *c, const struct sockaddr *source)
{
	uv_os_fd_t fd;
	int one = 1;
	if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0 ||
	    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)) != 0)
		return -1;
	return uv_tcp_bind(&c->tcp, source, 0) == 0 ? 0 : -1;
}

int bconn_connect(struct bconn *c, uv_loop_t *loop, const struct sockaddr *relay,
                  const struct sockaddr *source, const struct bconn_ops *ops, void *data)
{
	c->ops = ops;
	c->data = data;
	frame_reader_init(&c->reader, CAIRN_HANDSHAKE2_MIN, CAIRN_HANDSHAKE2_MAX);
	if (uv_tcp_init_ex(loop, &c->tcp, AF_INET) != 0) {
		c->closing = true; /* nothing for bconn_close to close */
		return CAIRN_EIO;
	}
	if (source != NULL && bind_source(c, source) != 0) {
		c->closing = true;
		uv_close((uv_handle_t *)&c->tcp, NULL);
		return CAIRN_EIO;
	}
	c->connect_req.data = c;
	if (uv_tcp_connect(&c->connect_req, &c->tcp, relay, on_connect) != 0) {
		c->closing = true;
		uv_close((uv_handle_t *)&c->tcp, NULL);
		return CAIRN_EIO;
	}
	return 0;
}

static void on_close(uv_handle_t *h)
{
	struct bconn *c = (struct bconn *)h;
	frame_reader_free(&c->reader);
	cairn_session_wipe(&c->session);
	bbuf_free(&c->plain);
	bbuf_free(&c->wire);
	bbuf_free(&c->flight);
	if (c->closed != NULL)
		c->closed(c);
}

void bconn_close(struct bconn *c, void (*closed)(struct bconn *c))
{
	if (c->closing)
		return;
	c->closing = true;
	c->closed = closed;
	uv_close((uv_handle_t *)&c->tcp, on_close);
}
