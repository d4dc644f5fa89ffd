/* SPDX-License-Identifier: MIT */
/*
 * libcairn inside a libuv loop (see uvembed.h). After every step the poll handles are closed
 * and made again for the descriptors the engine names now: a step may close a connection and
 * open another that gets the same descriptor number, and a handle kept for that number would
 * go on watching a registration the kernel dropped with the old socket. A handful of
 * descriptors makes this cheap.
 */
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>

#include "uvembed.h"

#define UVEMBED_FDS_MAX 32 /* descriptors watched at once; more are read at each step */

struct watch {
	uv_poll_t poll;
	struct uvembed *u;
	int fd;
	short events;
};

struct uvembed {
	uv_loop_t *loop;
	struct cairn *c;
	uv_timer_t timer;
	struct watch *w[UVEMBED_FDS_MAX];
	size_t nw;
	unsigned handles; /* not yet closed: the embedding is freed at 0 */
	bool in_step, stopping, stopped;
	int error;
};

static void on_closed(uv_handle_t *h)
{
	struct uvembed *u = h->data;
	if (h != (uv_handle_t *)&u->timer)
		free(h); /* a watch: its poll handle is its first member */
	if (--u->handles == 0)
		free(u);
}

static void unwatch_all(struct uvembed *u)
{
	for (size_t i = 0; i < u->nw; i++)
		uv_close((uv_handle_t *)&u->w[i]->poll, on_closed);
	u->nw = 0;
}

static void teardown(struct uvembed *u)
{
	u->stopped = true;
	cairn_engine_stop(u->c);
	unwatch_all(u);
	uv_close((uv_handle_t *)&u->timer, on_closed);
}

static void step(struct uvembed *u, const struct pollfd *fds, size_t n);

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct watch *w = (struct watch *)h;
	struct pollfd p = {.fd = w->fd, .events = w->events};
	if (status < 0)
		p.revents = POLLERR; /* the step finds out what went wrong */
	if (events & UV_READABLE)
		p.revents |= POLLIN;
	if (events & UV_WRITABLE)
		p.revents |= POLLOUT;
	if (events & UV_DISCONNECT)
		p.revents |= POLLHUP;
	step(w->u, &p, 1);
}

static void on_timer(uv_timer_t *t)
{
	step(t->data, NULL, 0);
}

/* Sets the handles from what the engine wants now. */
static void rearm(struct uvembed *u)
{
	struct pollfd fds[UVEMBED_FDS_MAX];
	size_t n = 0;
	int timeout = -1;
	int rc = cairn_engine_fds(u->c, fds, UVEMBED_FDS_MAX, &n, &timeout);
	if (rc == CAIRN_ENOBUFS)
		n = UVEMBED_FDS_MAX; /* the others are read whenever a step comes */
	else if (rc != 0)
		n = 0;
	unwatch_all(u);
	for (size_t i = 0; i < n; i++) {
		struct watch *w = calloc(1, sizeof(*w));
		if (w == NULL || uv_poll_init(u->loop, &w->poll, fds[i].fd) != 0) {
			free(w);
			timeout = 0; /* try again soon rather than miss the descriptor */
			continue;
		}
		w->poll.data = u;
		w->u = u;
		w->fd = fds[i].fd;
		w->events = fds[i].events;
		u->handles++;
		u->w[u->nw++] = w;
		int ev = ((fds[i].events & POLLIN) ? UV_READABLE : 0) |
		         ((fds[i].events & POLLOUT) ? UV_WRITABLE : 0);
		uv_poll_start(&w->poll, ev, on_poll);
	}
	if (timeout >= 0)
		uv_timer_start(&u->timer, on_timer, (uint64_t)timeout, 0);
	else
		uv_timer_stop(&u->timer);
}

static void step(struct uvembed *u, const struct pollfd *fds, size_t n)
{
	if (u->stopped)
		return;
	u->in_step = true;
	int rc = cairn_engine_step(u->c, fds, n);
	u->in_step = false;
	if (rc < 0 && u->error == 0)
		u->error = rc;
	if (u->stopping)
		teardown(u);
	else
		rearm(u);
}

struct uvembed *uvembed_start(uv_loop_t *loop, struct cairn *c,
                              const struct cairn_engine_callbacks *callbacks, void *ctx, int *rc)
{
	struct uvembed *u = calloc(1, sizeof(*u));
	if (u == NULL) {
		*rc = CAIRN_ENOMEM;
		return NULL;
	}
	if ((*rc = cairn_engine_start(c, callbacks, ctx)) != 0) {
		free(u);
		return NULL;
	}
	u->loop = loop;
	u->c = c;
	uv_timer_init(loop, &u->timer);
	u->timer.data = u;
	u->handles = 1;
	rearm(u); /* the engine asks for a first step at once */
	return u;
}

void uvembed_stop(struct uvembed *u)
{
	if (u == NULL || u->stopped || u->stopping)
		return;
	if (u->in_step)
		u->stopping = true;
	else
		teardown(u);
}

int uvembed_error(const struct uvembed *u)
{
	return u->error;
}
