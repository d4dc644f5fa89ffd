/* SPDX-License-Identifier: MIT */
/*
 * The metrics listener (metrics.h): GET /metrics over HTTP/1.0, one request per connection,
 * answered and closed. It runs on the relay's loop, so nothing a local client does may hold
 * it: a request head is at most METRICS_HEAD_MAX bytes, a connection lives at most
 * METRICS_TIMEOUT_MS, and at most METRICS_CONNS are open at once (more are accepted and closed
 * at once, so the backlog drains). Its connections count into none of the relay's own limits,
 * and the relay's clients cannot reach it: it listens on loopback or a Unix socket only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn/error.h"
#include "log.h"
#include "metrics.h"
#include "metrics_addr.h"

#define METRICS_HEAD_MAX   4096
#define METRICS_TIMEOUT_MS 5000
#define METRICS_CONNS      8

struct metrics_server {
	struct relay *relay;
	union {
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} listener;
	bool listening;
	struct metrics_addr addr;
	struct mconn *conns; /* open connections (doubly linked) */
	unsigned nconns;
};

struct mconn {
	struct metrics_server *ms;
	struct mconn *prev, *next;
	union {
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} h;
	uv_timer_t timer;
	uv_write_t wr;
	int handles; /* open handles: freed when both are closed */
	bool closing;
	size_t len;
	char head[METRICS_HEAD_MAX];
	char *resp; /* malloc'd answer, while it is written */
};

static void mconn_closed(uv_handle_t *h)
{
	struct mconn *c = h->data;
	if (--c->handles > 0)
		return;
	free(c->resp);
	free(c);
}

static void mconn_close(struct mconn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	struct metrics_server *ms = c->ms;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		ms->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	ms->nconns--;
	uv_close((uv_handle_t *)&c->h, mconn_closed);
	uv_close((uv_handle_t *)&c->timer, mconn_closed);
}

static void on_timeout(uv_timer_t *t)
{
	mconn_close(t->data);
}

static void on_written(uv_write_t *req, int status)
{
	(void)status;
	mconn_close(req->data);
}

/* Answers the request in C's head, which is complete (ROUTE). */
static void answer(struct mconn *c, enum metrics_route route)
{
	uv_read_stop((uv_stream_t *)&c->h);
	const char *status = route == METRICS_ROUTE_NOT_FOUND    ? "404 Not Found"
	                     : route == METRICS_ROUTE_BAD_METHOD ? "405 Method Not Allowed"
	                                                         : "200 OK";
	bool body = route == METRICS_ROUTE_GET;
	char text[METRICS_TEXT_MAX];
	int n = 0;
	if (body) {
		struct metrics_snapshot snap;
		metrics_snapshot(c->ms->relay, &snap);
		n = metrics_render(&snap, text, sizeof(text));
		if (n < 0) {
			status = "500 Internal Server Error";
			n = 0;
		}
	} else if (strcmp(status, "200 OK") != 0) {
		n = snprintf(text, sizeof(text), "%s\n", status);
	}
	size_t cap = (size_t)n + 256;
	c->resp = malloc(cap);
	if (c->resp == NULL) {
		mconn_close(c);
		return;
	}
	int h = snprintf(c->resp, cap,
	                 "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
	                 "Content-Length: %d\r\nConnection: close\r\n\r\n",
	                 status, n);
	memcpy(c->resp + h, text, (size_t)n);
	uv_buf_t buf = uv_buf_init(c->resp, (unsigned)(h + n));
	c->wr.data = c;
	if (uv_write(&c->wr, (uv_stream_t *)&c->h, &buf, 1, on_written) != 0)
		mconn_close(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)suggested;
	struct mconn *c = h->data;
	/* A head that fills the buffer without its empty line is refused (on_read). */
	*buf = uv_buf_init(c->head + c->len, (unsigned)(sizeof(c->head) - c->len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	(void)buf;
	struct mconn *c = s->data;
	if (c->closing || nread == 0)
		return;
	if (nread < 0) {
		mconn_close(c);
		return;
	}
	c->len += (size_t)nread;
	enum metrics_route route = metrics_route(c->head, c->len);
	if (route != METRICS_ROUTE_INCOMPLETE) {
		answer(c, route);
		return;
	}
	if (c->len == sizeof(c->head))
		mconn_close(c); /* no answer for a head this long */
}

static void on_connection(uv_stream_t *server, int status)
{
	struct metrics_server *ms = server->data;
	if (status < 0)
		return;
	struct mconn *c = calloc(1, sizeof(*c));
	uv_loop_t *loop = ms->relay->loop;
	if (c == NULL)
		return;
	c->ms = ms;
	if (ms->addr.unix_socket)
		uv_pipe_init(loop, &c->h.pipe, 0);
	else
		uv_tcp_init(loop, &c->h.tcp);
	uv_timer_init(loop, &c->timer);
	c->h.tcp.data = c->timer.data = c;
	c->handles = 2;
	c->next = ms->conns;
	if (ms->conns != NULL)
		ms->conns->prev = c;
	ms->conns = c;
	ms->nconns++;
	if (uv_accept(server, (uv_stream_t *)&c->h) != 0 || ms->nconns > METRICS_CONNS ||
	    ms->relay->stopping) {
		mconn_close(c);
		return;
	}
	uv_timer_start(&c->timer, on_timeout, METRICS_TIMEOUT_MS, 0);
	if (uv_read_start((uv_stream_t *)&c->h, on_alloc, on_read) != 0)
		mconn_close(c);
}

static int bind_tcp(struct metrics_server *ms)
{
	char port[8];
	snprintf(port, sizeof(port), "%u", ms->addr.port);
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	uv_getaddrinfo_t req;
	int rc = uv_getaddrinfo(ms->relay->loop, &req, NULL, ms->addr.host, port, &hints);
	if (rc != 0) {
		log_error("[metrics] listen: cannot resolve '%s': %s", ms->addr.host,
		          uv_strerror(rc));
		return CAIRN_EIO;
	}
	/* "localhost" is a name: whatever it resolves to must still be loopback. */
	char numeric[64] = "";
	const struct sockaddr *sa = req.addrinfo->ai_addr;
	if (sa->sa_family == AF_INET)
		uv_ip4_name((const struct sockaddr_in *)sa, numeric, sizeof(numeric));
	else if (sa->sa_family == AF_INET6)
		uv_ip6_name((const struct sockaddr_in6 *)sa, numeric, sizeof(numeric));
	if (!metrics_host_is_loopback(numeric)) {
		uv_freeaddrinfo(req.addrinfo);
		log_error("[metrics] listen: '%s' resolves to %s, which is not loopback",
		          ms->addr.host, numeric);
		return CAIRN_EIO;
	}
	uv_tcp_init(ms->relay->loop, &ms->listener.tcp);
	ms->listening = true;
	rc = uv_tcp_bind(&ms->listener.tcp, sa, 0);
	uv_freeaddrinfo(req.addrinfo);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&ms->listener.tcp, 16, on_connection);
	if (rc != 0) {
		log_error("[metrics] listen: cannot listen on %s port %u: %s", ms->addr.host,
		          ms->addr.port, uv_strerror(rc));
		return CAIRN_EIO;
	}
	return 0;
}

static int bind_unix(struct metrics_server *ms)
{
	const char *path = ms->addr.path;
	struct stat st;
	/* A socket left by a relay that did not exit cleanly; anything else is not ours. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_error("[metrics] listen: %s exists and is not a socket", path);
			return CAIRN_EIO;
		}
		unlink(path);
	}
	uv_pipe_init(ms->relay->loop, &ms->listener.pipe, 0);
	ms->listening = true;
	int rc = uv_pipe_bind(&ms->listener.pipe, path);
	/* Before listen: until then no one can connect, so the mode is set before anyone can. */
	if (rc == 0 && chmod(path, 0600) != 0)
		rc = uv_translate_sys_error(errno);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&ms->listener.pipe, 16, on_connection);
	if (rc != 0) {
		log_error("[metrics] listen: cannot listen on %s: %s", path, uv_strerror(rc));
		return CAIRN_EIO;
	}
	return 0;
}

int metrics_server_start(struct relay *relay)
{
	if (relay->cfg->metrics_listen[0] == '\0')
		return 0;
	struct metrics_server *ms = calloc(1, sizeof(*ms));
	if (ms == NULL)
		return CAIRN_EIO;
	ms->relay = relay;
	relay->metrics = ms;
	char err[300];
	if (metrics_addr_parse(relay->cfg->metrics_listen, &ms->addr, err, sizeof(err)) != 0) {
		log_error("[metrics] listen: %s", err);
		return CAIRN_EIO;
	}
	ms->listener.tcp.data = ms;
	int rc = ms->addr.unix_socket ? bind_unix(ms) : bind_tcp(ms);
	ms->listener.tcp.data = ms; /* the init calls above cleared it */
	if (rc == 0) {
		if (ms->addr.unix_socket)
			log_info("metrics on unix:%s", ms->addr.path);
		else
			log_info("metrics on %s port %u", ms->addr.host, ms->addr.port);
	}
	return rc;
}

void metrics_server_stop(struct relay *relay)
{
	struct metrics_server *ms = relay->metrics;
	if (ms == NULL)
		return;
	while (ms->conns != NULL)
		mconn_close(ms->conns);
	if (ms->listening && !uv_is_closing((uv_handle_t *)&ms->listener)) {
		uv_close((uv_handle_t *)&ms->listener, NULL);
		if (ms->addr.unix_socket)
			unlink(ms->addr.path);
	}
}

void metrics_server_free(struct relay *relay)
{
	free(relay->metrics);
	relay->metrics = NULL;
}
