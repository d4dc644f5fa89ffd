/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the HTTPS listener's WebSocket filter (relay/wsconn.c) on its own: the input is what
 * a peer sends, cut into reads by its first byte (read size 1..256), fed to wsconn_read over a
 * libuv pipe whose other end the harness drains. Findings besides sanitizer reports: stream
 * bytes delivered after the connection closed, more stream bytes than the input held, control
 * writes still holding the connection after the loop ran dry, a libuv handle or memory left.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>
#include <uv.h>

#include "wsconn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x))                                                                          \
			abort();                                                                   \
	} while (0)

struct owner {
	bool closed;
	unsigned holds;
	size_t stream_bytes;
};

static void o_input(void *p, const uint8_t *in, size_t len)
{
	struct owner *o = p;
	(void)in;
	CHECK(!o->closed);
	o->stream_bytes += len;
}

static void o_close(void *p)
{
	((struct owner *)p)->closed = true;
}

static bool o_closing(const void *p)
{
	return ((const struct owner *)p)->closed;
}

static void o_hold(void *p)
{
	((struct owner *)p)->holds++;
}

static void o_release(void *p)
{
	struct owner *o = p;
	CHECK(o->holds > 0);
	o->holds--;
}

static const struct wsconn_ops ops = {o_input, o_close, o_closing, o_hold, o_release};

static void on_drain_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
	(void)h;
	(void)s;
	static char buf[65536];
	*b = uv_buf_init(buf, sizeof(buf));
}

static void on_drain(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	(void)b;
	if (n < 0)
		uv_read_stop(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	if (!ready) {
		CHECK(sodium_init() >= 0);
		ready = true;
	}
	if (size < 1)
		return 0;
	size_t step = (size_t)data[0] + 1;
	data++;
	size--;

	uv_loop_t loop;
	CHECK(uv_loop_init(&loop) == 0);
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	uv_pipe_t ours, theirs;
	CHECK(uv_pipe_init(&loop, &ours, 0) == 0 && uv_pipe_open(&ours, sv[0]) == 0);
	CHECK(uv_pipe_init(&loop, &theirs, 0) == 0 && uv_pipe_open(&theirs, sv[1]) == 0);
	CHECK(uv_read_start((uv_stream_t *)&theirs, on_drain_alloc, on_drain) == 0);

	struct owner o = {0};
	struct wsconn *ws = wsconn_new(&ops, &o, (uv_stream_t *)&ours, "k3Jx9-wq_Tn2LmA7pQe0Vg");
	CHECK(ws != NULL);
	for (size_t off = 0; off < size && !o.closed; off += step) {
		size_t n = size - off < step ? size - off : step;
		wsconn_read(ws, data + off, n);
		uv_run(&loop, UV_RUN_NOWAIT);
	}
	CHECK(o.stream_bytes <= size);
	/* Close as conn.c does: the handle, then its writes end (cancelled or done). */
	uv_close((uv_handle_t *)&ours, NULL);
	uv_close((uv_handle_t *)&theirs, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK(o.holds == 0);
	wsconn_free(ws);
	CHECK(uv_loop_close(&loop) == 0);
	return 0;
}
