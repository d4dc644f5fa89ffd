/* SPDX-License-Identifier: MIT */
/*
 * Outgoing connections for private routing (outconn.h, docs/PROTOCOL.md 5.11). One connection
 * per destination relay (its key, host and port), opened on the first FORWARD for it, shared
 * by every later one, closed when idle for forward_idle or on any failure. A FORWARD waits in
 * its destination's list with its own request id on that connection until the destination
 * answers: SEALED goes back unchanged; anything else, a lost or failed connection, or a
 * deadline (forward_timeout: a destination that refused the handshake stays silent, 2.2) is
 * `unreachable`. A connection whose oldest write the kernel has not taken within forward_timeout
 * is closed: the FORWARD in it has had its answer, and without the rule the copies of later ones
 * would pile up for as long as they keep coming to a destination that reads nothing. Nothing
 * here is logged: a destination or a time would identify a user.
 *
 * The initiator's handshake costs the loop thread two X25519 (about 100 us) once per
 * connection, and connections are capped by forward_relays_max: kept on the loop.
 */
#include "outconn.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <uv.h>

#include "cairn/address.h"
#include "cairn/error.h"
#include "channel.h"
#include "config.h"
#include "fwdport.h"
#include "relay.h"

#define OUT_TICK_MS 250

/* One FORWARD waiting for its destination. SEALED is held only until it is queued. */
struct out_req {
	struct out_req *next;
	uint32_t request_id;
	int64_t deadline_ms;
	forward_done_fn done;
	void *arg;
	uint8_t *sealed;
	size_t len;
};

enum out_state { OUT_CONNECTING, OUT_HANDSHAKE, OUT_OPEN, OUT_CLOSED };

struct out_dest {
	struct outconn *oc;
	struct out_dest *next;
	struct cairn_address addr;
	enum out_state state;
	uv_tcp_t tcp;
	uv_connect_t connect;
	struct channel ch;
	bool ch_ready;
	struct out_req *reqs, **reqs_end; /* oldest first: sent, and so stored, in arrival order */
	uint32_t nreqs;
	uint32_t next_id;
	int64_t opened_ms, used_ms;
	struct out_write *writes, **writes_end; /* waiting in libuv, oldest first */
};

struct outconn {
	struct relay *relay;
	struct forward_carrier carrier;
	struct out_dest *dests;
	uint32_t ndests;
	uv_timer_t timer;
	bool stopping;
	struct sockaddr_storage bind_addr; /* family AF_UNSPEC: no bind */
	uint8_t read_buf[65536];
};

struct out_write {
	uv_write_t req;
	struct out_write *next;
	int64_t queued_ms;
	uv_buf_t buf;
	uint8_t data[];
};

static int64_t out_now_ms(const struct outconn *oc)
{
	return relay_now_ms(oc->relay);
}

static uint64_t out_clock(void *ctx)
{
	struct outconn *oc = ctx;
	return (uint64_t)relay_now(oc->relay);
}

/* Takes *PP, a FORWARD of D's list, out of it. */
static struct out_req *req_unlink(struct out_dest *d, struct out_req **pp)
{
	struct out_req *r = *pp;
	*pp = r->next;
	if (d->reqs_end == &r->next)
		d->reqs_end = pp;
	d->nreqs--;
	return r;
}

/* Ends R with RC (`unreachable` unless SEALED) and frees it. */
static void req_end(struct out_req *r, int rc, const uint8_t *reply, size_t len)
{
	forward_done_fn done = r->done;
	void *arg = r->arg;
	free(r->sealed);
	free(r);
	done(arg, rc, reply, len);
}

static void dest_freed(uv_handle_t *h)
{
	struct out_dest *d = h->data;
	channel_free(&d->ch);
	sodium_memzero(d, sizeof(*d));
	free(d);
}

/* Fails every FORWARD of D and closes it (freed by the close callback). */
static void dest_fail(struct out_dest *d)
{
	if (d->state == OUT_CLOSED)
		return;
	d->state = OUT_CLOSED;
	struct outconn *oc = d->oc;
	for (struct out_dest **pp = &oc->dests; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == d) {
			*pp = d->next;
			oc->ndests--;
			break;
		}
	}
	if (d->ch_ready)
		channel_close(&d->ch);
	while (d->reqs != NULL)
		req_end(req_unlink(d, &d->reqs), CAIRN_EUNREACHABLE, NULL, 0);
	uv_close((uv_handle_t *)&d->tcp, dest_freed);
}

static void on_written(uv_write_t *req, int status)
{
	struct out_write *w = (struct out_write *)req;
	struct out_dest *d = req->data;
	d->writes = w->next; /* libuv completes a stream's writes in order */
	if (d->writes == NULL)
		d->writes_end = &d->writes;
	free(w);
	if (status < 0 && status != UV_ECANCELED && d->state != OUT_CLOSED)
		dest_fail(d);
}

/* Writes what the channel has sealed: first what the kernel takes at once (uv_try_write, no
 * copy, no request, and not the epoll_ctl libuv 1.44 makes after a uv_write; it declines
 * while an earlier write waits, so the order holds), then a copy of the rest with uv_write. */
static void dest_write(struct out_dest *d)
{
	const uint8_t *data;
	size_t n = channel_output(&d->ch, &data);
	if (n == 0)
		return;
	uv_buf_t b = uv_buf_init((char *)data, (unsigned)n);
	int sent = uv_try_write((uv_stream_t *)&d->tcp, &b, 1);
	if (sent < 0 && sent != UV_EAGAIN) {
		dest_fail(d);
		return;
	}
	size_t done = sent > 0 ? (size_t)sent : 0;
	if (done == n) {
		channel_output_consume(&d->ch, n);
		return;
	}
	struct out_write *w = malloc(sizeof(*w) + n - done);
	if (w == NULL) {
		dest_fail(d);
		return;
	}
	memcpy(w->data, data + done, n - done);
	channel_output_consume(&d->ch, n);
	w->buf = uv_buf_init((char *)w->data, (unsigned)(n - done));
	w->req.data = d;
	w->next = NULL;
	w->queued_ms = out_now_ms(d->oc);
	if (uv_write(&w->req, (uv_stream_t *)&d->tcp, &w->buf, 1, on_written) != 0) {
		free(w);
		dest_fail(d);
		return;
	}
	*d->writes_end = w;
	d->writes_end = &w->next;
}

/* Queues every FORWARD of D not sent yet as FORWARDED, oldest first (those that waited for
 * the handshake reach the destination in the order they came), then writes. */
static void dest_send_pending(struct out_dest *d)
{
	for (struct out_req *r = d->reqs; r != NULL; r = r->next) {
		if (r->sealed == NULL)
			continue;
		struct cairn_msg m = {.type = CAIRN_CMD_FORWARDED,
		                      .request_id = r->request_id,
		                      .sealed = r->sealed,
		                      .sealed_len = r->len};
		if (channel_queue(&d->ch, &m) != 0 || channel_flush(&d->ch) != 0) {
			dest_fail(d);
			return;
		}
		free(r->sealed);
		r->sealed = NULL;
	}
	dest_write(d);
}

/* The destination answered request ID with M. */
static void dest_answer(struct out_dest *d, const struct cairn_msg *m)
{
	for (struct out_req **pp = &d->reqs; *pp != NULL; pp = &(*pp)->next) {
		struct out_req *r = *pp;
		if (r->request_id != m->request_id || r->sealed != NULL)
			continue;
		req_unlink(d, pp);
		d->used_ms = out_now_ms(d->oc);
		if (m->type == CAIRN_REPLY_SEALED)
			req_end(r, 0, m->sealed, m->sealed_len);
		else
			req_end(r, CAIRN_EUNREACHABLE, NULL, 0);
		return;
	}
	/* An answer to a FORWARD that timed out already, or to nothing: dropped. */
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)suggested;
	struct out_dest *d = h->data;
	*buf = uv_buf_init((char *)d->oc->read_buf, sizeof(d->oc->read_buf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct out_dest *d = s->data;
	if (d->state == OUT_CLOSED)
		return;
	if (nread < 0) {
		dest_fail(d);
		return;
	}
	const uint8_t *in = (const uint8_t *)buf->base;
	size_t off = 0, len = (size_t)nread;
	while (off < len) {
		size_t used = channel_feed(&d->ch, in + off, len - off);
		off += used;
		bool any = false;
		struct channel_event ev;
		enum channel_event_type t;
		while ((t = channel_next_event(&d->ch, &ev)) != CHANNEL_EV_NONE) {
			any = true;
			if (t == CHANNEL_EV_OPEN) {
				d->state = OUT_OPEN;
				dest_send_pending(d);
			} else if (t == CHANNEL_EV_MESSAGE) {
				dest_answer(d, &ev.msg);
			} else {
				dest_fail(d); /* failed, or a relay's command on a client channel */
			}
			if (d->state == OUT_CLOSED)
				return;
		}
		if (used == 0 && !any)
			break; /* the channel takes nothing more: cannot happen, but never spin */
	}
	channel_trim_small(&d->ch, 4096);
}

static void on_connect(uv_connect_t *req, int status)
{
	struct out_dest *d = req->data;
	if (d->state == OUT_CLOSED)
		return;
	if (status < 0) {
		dest_fail(d);
		return;
	}
	struct channel_options opt = {.role = CHANNEL_INITIATOR,
	                              .relay_public = d->addr.key,
	                              .frame_size = d->oc->relay->cfg->frame_size,
	                              .now = out_clock,
	                              .ctx = d->oc};
	if (channel_init(&d->ch, &opt) != 0) {
		dest_fail(d);
		return;
	}
	d->ch_ready = true;
	d->state = OUT_HANDSHAKE;
	if (uv_read_start((uv_stream_t *)&d->tcp, on_alloc, on_read) != 0) {
		dest_fail(d);
		return;
	}
	dest_write(d); /* message 1 */
}

/* The socket address of ADDR's literal host, or false (a name or an onion: not carried). */
static bool dest_sockaddr(const struct cairn_address *a, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->host_type == CAIRN_HOST_IPV4)
		return uv_ip4_addr(a->host, a->port, (struct sockaddr_in *)ss) == 0;
	if (a->host_type == CAIRN_HOST_IPV6)
		return uv_ip6_addr(a->host, a->port, (struct sockaddr_in6 *)ss) == 0;
	return false;
}

static void on_tick(uv_timer_t *t);

/* A new connection to ADDR, connecting; NULL when it cannot even start. */
static struct out_dest *dest_open(struct outconn *oc, const struct cairn_address *addr)
{
	struct sockaddr_storage ss;
	if (!dest_sockaddr(addr, &ss))
		return NULL;
	struct out_dest *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return NULL;
	d->oc = oc;
	d->addr = *addr;
	d->state = OUT_CONNECTING;
	d->opened_ms = d->used_ms = out_now_ms(oc);
	d->writes_end = &d->writes;
	d->reqs_end = &d->reqs;
	randombytes_buf(&d->next_id, sizeof(d->next_id));
	if (uv_tcp_init(oc->relay->loop, &d->tcp) != 0) {
		free(d);
		return NULL;
	}
	d->tcp.data = d;
	d->connect.data = d;
	/* The deadlines' timer runs only while there is a connection to watch. */
	if (!uv_is_active((uv_handle_t *)&oc->timer))
		uv_timer_start(&oc->timer, on_tick, OUT_TICK_MS, OUT_TICK_MS);
	d->next = oc->dests;
	oc->dests = d;
	oc->ndests++;
	/* From the listen address, when it is one of the same family. */
	if (oc->bind_addr.ss_family == ss.ss_family &&
	    uv_tcp_bind(&d->tcp, (const struct sockaddr *)&oc->bind_addr, 0) != 0) {
		dest_fail(d);
		return NULL;
	}
	(void)uv_tcp_nodelay(&d->tcp, 1);
	if (uv_tcp_connect(&d->connect, &d->tcp, (const struct sockaddr *)&ss, on_connect) != 0) {
		dest_fail(d);
		return NULL;
	}
	return d;
}

static struct out_dest *dest_find(struct outconn *oc, const struct cairn_address *a)
{
	for (struct out_dest *d = oc->dests; d != NULL; d = d->next)
		if (d->addr.port == a->port && strcmp(d->addr.host, a->host) == 0 &&
		    sodium_memcmp(d->addr.key, a->key, CAIRN_KEY_LEN) == 0)
			return d;
	return NULL;
}

/* At the cap of connections, one with nothing waiting (idle, or a handshake that went
 * nowhere) makes room for another destination: true if one was closed. */
static bool dest_evict(struct outconn *oc)
{
	for (struct out_dest *d = oc->dests; d != NULL; d = d->next) {
		if (d->nreqs == 0) {
			dest_fail(d);
			return true;
		}
	}
	return false;
}

static int out_carry(void *impl, const struct cairn_address *dest, const uint8_t *sealed,
                     size_t len, forward_done_fn done, void *arg)
{
	struct outconn *oc = impl;
	const struct relay_config *cfg = oc->relay->cfg;
	if (oc->stopping)
		return CAIRN_EUNREACHABLE;
	struct out_dest *d = dest_find(oc, dest);
	if (d != NULL && d->nreqs >= cfg->forward_per_destination)
		return CAIRN_ELIMIT;
	if (d == NULL && oc->ndests >= cfg->forward_relays_max && !dest_evict(oc))
		return CAIRN_ELIMIT;
	struct out_req *r = calloc(1, sizeof(*r));
	uint8_t *copy = malloc(len);
	if (r == NULL || copy == NULL) {
		free(r);
		free(copy);
		return CAIRN_ENOMEM;
	}
	if (d == NULL && (d = dest_open(oc, dest)) == NULL) {
		free(r);
		free(copy);
		return CAIRN_EUNREACHABLE; /* a name, an onion, or no socket */
	}
	memcpy(copy, sealed, len);
	r->sealed = copy;
	r->len = len;
	r->done = done;
	r->arg = arg;
	r->deadline_ms = out_now_ms(oc) + (int64_t)cfg->forward_timeout_s * 1000;
	r->request_id = d->next_id++;
	*d->reqs_end = r;
	d->reqs_end = &r->next;
	d->nreqs++;
	d->used_ms = out_now_ms(oc);
	if (d->state == OUT_OPEN)
		dest_send_pending(d);
	return 0;
}

/* Deadlines: FORWARDs unanswered in time, handshakes that never finish (a destination that
 * refuses stays silent), connections idle for forward_idle, writes stalled for forward_timeout. */
static void on_tick(uv_timer_t *t)
{
	struct outconn *oc = t->data;
	const struct relay_config *cfg = oc->relay->cfg;
	int64_t now = out_now_ms(oc);
	struct out_dest *next;
	for (struct out_dest *d = oc->dests; d != NULL; d = next) {
		next = d->next;
		if (d->state != OUT_OPEN &&
		    now - d->opened_ms > (int64_t)cfg->handshake_timeout_s * 1000) {
			dest_fail(d);
			continue;
		}
		if (d->nreqs == 0 && now - d->used_ms > (int64_t)cfg->forward_idle_s * 1000) {
			dest_fail(d);
			continue;
		}
		if (d->writes != NULL &&
		    now - d->writes->queued_ms > (int64_t)cfg->forward_timeout_s * 1000) {
			dest_fail(d); /* stalled */
			continue;
		}
		for (struct out_req **pp = &d->reqs; *pp != NULL;) {
			if (now < (*pp)->deadline_ms)
				pp = &(*pp)->next;
			else
				req_end(req_unlink(d, pp), CAIRN_EUNREACHABLE, NULL, 0);
		}
	}
	if (oc->dests == NULL)
		uv_timer_stop(t); /* an idle relay is not woken four times a second */
}

/* The listen host, when it is one specific IP (not a wildcard, not a name). */
static void bind_address(const struct relay_config *cfg, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
	if (uv_ip4_addr(cfg->listen_host, 0, v4) == 0) {
		if (v4->sin_addr.s_addr == 0)
			memset(ss, 0, sizeof(*ss));
		return;
	}
	memset(ss, 0, sizeof(*ss));
	if (uv_ip6_addr(cfg->listen_host, 0, v6) == 0) {
		static const uint8_t any[16];
		if (memcmp(&v6->sin6_addr, any, 16) == 0)
			memset(ss, 0, sizeof(*ss));
		return;
	}
	memset(ss, 0, sizeof(*ss));
}

int outconn_start(struct relay *relay)
{
	struct outconn *oc = calloc(1, sizeof(*oc));
	if (oc == NULL)
		return CAIRN_ENOMEM;
	oc->relay = relay;
	oc->carrier.carry = out_carry;
	oc->carrier.impl = oc;
	bind_address(relay->cfg, &oc->bind_addr);
	if (uv_timer_init(relay->loop, &oc->timer) != 0) {
		free(oc);
		return CAIRN_ENOMEM;
	}
	oc->timer.data = oc;
	relay->carrier = &oc->carrier;
	return 0;
}

static void timer_freed(uv_handle_t *h)
{
	free(h->data);
}

void outconn_stop(struct relay *relay)
{
	if (relay->carrier == NULL)
		return;
	struct outconn *oc = relay->carrier->impl;
	oc->stopping = true;
	while (oc->dests != NULL)
		dest_fail(oc->dests);
	relay->carrier = NULL;
	/* The destinations' close callbacks touch only themselves: the carrier may go first. */
	uv_close((uv_handle_t *)&oc->timer, timer_freed);
}
