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

/* The generator bounds its own backlog (bconn_backlog); this only stops a runaway. */
#define BCONN_OUTPUT_MAX (256u << 20)

static uint8_t read_buf[256 * 1024];

static void start_write(struct bconn *c);

static uint64_t wall_now(void *ctx)
{
	(void)ctx;
	return (uint64_t)time(NULL);
}

int bconn_prepare(struct bconn *c, const uint8_t relay_public[static 32])
{
	memset(c, 0, sizeof(*c));
	struct channel_options opt = {
	    .role = CHANNEL_INITIATOR,
	    .relay_public = relay_public,
	    .output_max = BCONN_OUTPUT_MAX,
	    .now = wall_now,
	    .transport = channel_transport_parse(getenv("CAIRN_TRANSPORT_CIPHER"))};
	/* Message 1 is sealed into the channel's output here, ahead of the connection. */
	return channel_init(&c->ch, &opt);
}

static void fail(struct bconn *c, int err)
{
	if (c->broken || c->closing)
		return;
	c->broken = true;
	c->ops->failed(c, err);
}

/* ---- output ------------------------------------------------------------------------- */

int bconn_queue(struct bconn *c, const struct cairn_msg *m)
{
	return channel_queue(&c->ch, m);
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
	const uint8_t *out;
	if (c->writing || c->closing || channel_output(&c->ch, &out) == 0)
		return;
	/* The sealed frames go in flight; the old flight buffer collects the next ones. */
	channel_output_swap(&c->ch, &c->flight);
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
	int rc = channel_flush(&c->ch);
	if (rc != 0)
		return rc;
	start_write(c);
	return 0;
}

size_t bconn_backlog(const struct bconn *c)
{
	return channel_output_pending(&c->ch) + c->flight.len;
}

const uint8_t *bconn_handshake_hash(const struct bconn *c)
{
	return c->ch.session.h;
}

/* ---- input -------------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	*buf = uv_buf_init((char *)read_buf, sizeof(read_buf));
}

/* Hands the channel's events to the owner until it needs input. Returns false once C
 * failed or is closing. */
static bool handle_events(struct bconn *c)
{
	struct channel_event ev;
	while (!c->closing && !c->broken) {
		switch (channel_next_event(&c->ch, &ev)) {
		case CHANNEL_EV_NONE:
			return true;
		case CHANNEL_EV_OPEN:
			c->ops->ready(c);
			break;
		case CHANNEL_EV_MESSAGE:
			c->ops->message(c, &ev.msg);
			break;
		case CHANNEL_EV_FAILED:
			fail(c, ev.error);
			return false;
		case CHANNEL_EV_HELLO: /* a responder's event */
		case CHANNEL_EV_BAD_MESSAGE:
			fail(c, CAIRN_ESTATE);
			return false;
		}
	}
	return false;
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
	while (left > 0 && handle_events(c)) {
		size_t used = channel_feed(&c->ch, in, left);
		in += used;
		left -= used;
	}
	if (handle_events(c) && c->ops->read_done != NULL)
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
	start_write(c); /* message 1, prepared */
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
	if (uv_tcp_init_ex(loop, &c->tcp, AF_INET) != 0) {
		c->closing = true; /* nothing for bconn_close to close */
		channel_free(&c->ch);
		return CAIRN_EIO;
	}
	if (source != NULL && bind_source(c, source) != 0) {
		c->closing = true;
		channel_free(&c->ch);
		uv_close((uv_handle_t *)&c->tcp, NULL);
		return CAIRN_EIO;
	}
	c->connect_req.data = c;
	if (uv_tcp_connect(&c->connect_req, &c->tcp, relay, on_connect) != 0) {
		c->closing = true;
		channel_free(&c->ch);
		uv_close((uv_handle_t *)&c->tcp, NULL);
		return CAIRN_EIO;
	}
	return 0;
}

static void on_close(uv_handle_t *h)
{
	struct bconn *c = (struct bconn *)h;
	channel_free(&c->ch);
	channel_buf_free(&c->flight);
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
