/* SPDX-License-Identifier: MIT */
/*
 * Publishers and subscribers against mosquitto (see mqfleet.h). libmosquitto runs without its
 * own thread or select loop: each client's socket is watched by a uv_poll handle, a readable
 * socket is read with mosquitto_loop_read until a call handles no packet, and what the
 * publishers queue during one loop iteration is written from a uv_check handler, the way
 * fleet.c batches a loop turn's commands. A 1 ms pacer paces runs as fleet.c's does.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <sodium.h>
#include <uv.h>

#include "mqfleet.h"
#include "procscan.h"
#include "sockbytes.h"

#define BODY_HEADER     16   /* send time (ns) and sequence number, little-endian */
#define KEEPALIVE_S     600  /* PINGREQs are sent as libmosquitto sees fit, but rarely */
#define READ_BUDGET     4096 /* packets per readable event: one busy socket must not starve */
#define SETUP_TIMEOUT_S 60.0
#define SETTLE_S        10.0 /* QoS 0 messages not received this long after a run are lost */
#define TOPIC_MAX       24
#define CLIENT_ID_MAX   32

enum role { ROLE_PUB, ROLE_SUB };

struct mqclient {
	struct mosquitto *m;
	uv_poll_t poll;
	struct mqfleet *f;
	enum role role;
	uint32_t index;
	uint64_t handled; /* packets handled: a read that handles none found the socket empty */
	int events;       /* what the poll handle watches; 0 when stopped */
	bool polling;     /* the poll handle is initialised and its close has not completed */
	bool connected, subscribed, closing;
};

/* The client is the first member, so a callback's object is both. */
struct publisher {
	struct mqclient c;
	uint8_t *body;     /* the payload; its header is rewritten for every message */
	uint32_t inflight; /* QoS 1: PUBLISHes awaiting PUBACK */
	uint64_t next_seq;
	uint64_t quota;    /* messages this run may send */
	uint64_t run_sent; /* messages sent in this run */
};

struct subscriber {
	struct mqclient c;
	char topic[TOPIC_MAX];
	uint64_t expect_seq;
	uint64_t delivered;
	uint64_t duplicates;
};

struct mqfleet {
	uv_loop_t loop;
	uv_timer_t pacer;
	uv_check_t flusher;
	uint16_t port;
	pid_t broker_pid;
	const char *cafile; /* TLS: the certificate to trust; NULL for plain TCP */
	uint32_t n, size, window;
	uint32_t nsubs, fanout; /* subscriber i is on the topic of publisher i / fanout */
	struct fan_window fan;  /* fan-out (mqfleet_open_fanout): what every subscriber has */
	int qos;
	bool durable;
	struct publisher *pubs;
	struct subscriber *subs;
	uint32_t ready;  /* setup progress: clients ready */
	uint32_t closed; /* poll handles whose close completed */
	uint64_t ticks;
	bool failed;

	/* The current run, as in fleet.c. */
	bool sending;
	double rate_per_pub; /* messages/s; 0 = as fast as the window allows */
	uint64_t t0, measure_from, measure_to;
	bool measuring;
	uint64_t measured; /* delivered between measure_from and measure_to */
	double broker_cpu0, broker_cpu1, gen_cpu0, gen_cpu1;
	struct lat_samples lat;
	uint64_t errors;
};

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* ---- one client on the loop ------------------------------------------------------------ */

static void client_fail(struct mqclient *c, const char *what, int rc)
{
	if (!c->f->failed)
		bench_note("mosquitto %s %u: %s (%s)",
		           c->role == ROLE_PUB ? "publisher" : "subscriber", (unsigned)c->index,
		           what, mosquitto_strerror(rc));
	c->f->failed = true;
}

static void on_poll(uv_poll_t *h, int status, int events);

/* Watches for reading always, and for writing while libmosquitto holds unwritten packets. */
static void client_watch(struct mqclient *c)
{
	if (!c->polling || c->closing)
		return;
	int want = UV_READABLE | (mosquitto_want_write(c->m) ? UV_WRITABLE : 0);
	if (want != c->events && uv_poll_start(&c->poll, want, on_poll) == 0)
		c->events = want;
}

/* Writes what is queued, until the socket would block; the rest waits for UV_WRITABLE. */
static void client_flush(struct mqclient *c)
{
	if (!c->polling || c->closing || c->events == 0)
		return;
	if (mosquitto_want_write(c->m)) {
		int rc = mosquitto_loop_write(c->m, 1);
		if (rc != MOSQ_ERR_SUCCESS) {
			client_fail(c, "write failed", rc);
			return;
		}
	}
	client_watch(c);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct mqclient *c = h->data;
	if (status < 0) {
		client_fail(c, "poll failed", MOSQ_ERR_ERRNO);
		uv_poll_stop(h);
		c->events = 0;
		return;
	}
	/* One mosquitto_loop_read call reads one packet (for QoS 0) in three or four read()s;
	 * reading on while calls handle packets empties the socket in one event. */
	for (int i = 0; (events & UV_READABLE) && i < READ_BUDGET && c->events != 0; i++) {
		uint64_t before = c->handled;
		int rc = mosquitto_loop_read(c->m, 1);
		if (rc != MOSQ_ERR_SUCCESS) {
			if (!c->closing)
				client_fail(c, "read failed", rc);
			return;
		}
		if (c->handled == before)
			break;
	}
	/* PUBACKs and SUBSCRIBEs queued by the packets just read go out now. */
	client_flush(c);
}

/* The poll handle must let go of the socket before libmosquitto closes it. */
static void on_disconnect(struct mosquitto *m, void *obj, int rc)
{
	struct mqclient *c = obj;
	if (c->polling && c->events != 0) {
		uv_poll_stop(&c->poll);
		c->events = 0;
	}
	c->connected = false;
	if (!c->closing)
		client_fail(c, "lost its connection", rc);
}

static void on_poll_closed(uv_handle_t *h)
{
	struct mqclient *c = h->data;
	c->polling = false;
	c->f->closed++;
}

/* Stops watching the socket; returns true if a close callback is coming. */
static bool client_release(struct mqclient *c)
{
	c->events = 0;
	if (!c->polling || uv_is_closing((uv_handle_t *)&c->poll))
		return false;
	uv_close((uv_handle_t *)&c->poll, on_poll_closed);
	return true;
}

/* Says DISCONNECT and closes. A persistent session stays with the broker. */
static bool client_disconnect(struct mqclient *c)
{
	c->closing = true;
	bool pending = client_release(c);
	if (c->m != NULL && c->connected) {
		mosquitto_disconnect(c->m);
		mosquitto_loop_write(c->m, 1);
	}
	c->connected = false;
	return pending;
}

/* ---- publishers ----------------------------------------------------------------------- */

static uint64_t publisher_inflight(const struct publisher *p)
{
	const struct mqfleet *f = p->c.f;
	if (f->qos > 0)
		return p->inflight;
	/* QoS 0 has no acknowledgement: in flight until the subscriber has it (or a later one);
	 * fanned out, until every subscriber has it. */
	if (f->fanout > 1)
		return p->next_seq - f->fan.done;
	return p->next_seq - f->subs[p->c.index].expect_seq;
}

static void publisher_pump(struct publisher *p)
{
	struct mqfleet *f = p->c.f;
	if (!f->sending || !p->c.connected || f->failed)
		return;
	uint64_t allowed = p->quota;
	if (f->rate_per_pub > 0) {
		double due = (double)(bench_now_ns() - f->t0) * f->rate_per_pub / 1e9;
		if ((uint64_t)due + 1 < allowed)
			allowed = (uint64_t)due + 1;
	}
	const char *topic = f->subs[p->c.index * f->fanout].topic;
	bool any = false;
	while (publisher_inflight(p) < f->window && p->run_sent < allowed) {
		put_le64(p->body, bench_now_ns());
		put_le64(p->body + 8, p->next_seq);
		int rc =
		    mosquitto_publish(p->c.m, NULL, topic, (int)f->size, p->body, f->qos, false);
		if (rc != MOSQ_ERR_SUCCESS) {
			client_fail(&p->c, "publish failed", rc);
			return;
		}
		p->next_seq++;
		p->run_sent++;
		if (f->qos > 0)
			p->inflight++;
		any = true;
	}
	if (any)
		client_flush(&p->c);
}

static void pub_on_connect(struct mosquitto *m, void *obj, int rc)
{
	struct publisher *p = obj;
	p->c.handled++;
	if (rc != 0) {
		client_fail(&p->c, mosquitto_connack_string(rc), MOSQ_ERR_CONN_REFUSED);
		return;
	}
	p->c.connected = true;
	p->c.f->ready++;
}

/* QoS 1 only: the PUBACK arrived. */
static void pub_on_publish(struct mosquitto *m, void *obj, int mid)
{
	struct publisher *p = obj;
	p->c.handled++;
	if (p->inflight > 0)
		p->inflight--;
}

/* ---- subscribers ---------------------------------------------------------------------- */

static void sub_on_connect(struct mosquitto *m, void *obj, int rc)
{
	struct subscriber *s = obj;
	s->c.handled++;
	if (rc != 0) {
		client_fail(&s->c, mosquitto_connack_string(rc), MOSQ_ERR_CONN_REFUSED);
		return;
	}
	s->c.connected = true;
	if (s->c.subscribed) { /* a persistent session comes back subscribed */
		s->c.f->ready++;
		return;
	}
	rc = mosquitto_subscribe(m, NULL, s->topic, s->c.f->qos);
	if (rc != MOSQ_ERR_SUCCESS)
		client_fail(&s->c, "subscribe failed", rc);
}

static void sub_on_subscribe(struct mosquitto *m, void *obj, int mid, int count, const int *granted)
{
	struct subscriber *s = obj;
	s->c.handled++;
	if (count < 1 || granted[0] != s->c.f->qos) {
		client_fail(&s->c, "the subscription was refused or downgraded", MOSQ_ERR_PROTOCOL);
		return;
	}
	s->c.subscribed = true;
	s->c.f->ready++;
}

static void sub_on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
	struct subscriber *s = obj;
	struct mqfleet *f = s->c.f;
	uint64_t now = bench_now_ns();
	s->c.handled++;
	if (msg->payloadlen < BODY_HEADER) {
		if (f->errors++ == 0)
			bench_note("a %d-byte message arrived", msg->payloadlen);
		return;
	}
	uint64_t sent = get_le64(msg->payload), seq = get_le64((const uint8_t *)msg->payload + 8);
	if (seq < s->expect_seq) {
		/* QoS 1 may deliver again after a reconnection (at least once), as cairn may after
		 * a resubscription; QoS 0 never should. */
		s->duplicates++;
		if (f->qos == 0 && f->errors++ == 0)
			bench_note("message %llu arrived twice", (unsigned long long)seq);
		return;
	}
	if (seq != s->expect_seq && f->errors++ == 0)
		bench_note("message %llu arrived, %llu expected", (unsigned long long)seq,
		           (unsigned long long)s->expect_seq);
	s->expect_seq = seq + 1;
	if (f->fanout > 1)
		fan_got(&f->fan, seq);
	if (f->measuring && now >= f->measure_from && now < f->measure_to) {
		f->measured++;
		lat_add(&f->lat, now - sent);
	}
	s->delivered++;
}

/* ---- setup ---------------------------------------------------------------------------- */

static struct mosquitto *client_new(struct mqclient *c, const char *id, bool clean)
{
	struct mosquitto *m = mosquitto_new(id, clean, c);
	if (m == NULL)
		return NULL;
	/* Packets are queued by publish/subscribe/PUBACK and written by client_flush. */
	mosquitto_threaded_set(m, true);
	mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1); /* as bconn.c and both servers */
	mosquitto_disconnect_callback_set(m, on_disconnect);
	/* The handshake runs inside mosquitto_connect, before the socket turns non-blocking. */
	if (c->f->cafile != NULL &&
	    mosquitto_tls_set(m, c->f->cafile, NULL, NULL, NULL, NULL) != MOSQ_ERR_SUCCESS) {
		mosquitto_destroy(m);
		return NULL;
	}
	if (c->role == ROLE_PUB) {
		mosquitto_int_option(m, MOSQ_OPT_SEND_MAXIMUM, (int)c->f->window);
		mosquitto_connect_callback_set(m, pub_on_connect);
		if (c->f->qos > 0)
			mosquitto_publish_callback_set(m, pub_on_publish);
	} else {
		mosquitto_connect_callback_set(m, sub_on_connect);
		mosquitto_subscribe_callback_set(m, sub_on_subscribe);
		mosquitto_message_callback_set(m, sub_on_message);
	}
	return m;
}

/* Connects (the TCP connect blocks, on loopback) and sends CONNECT; on_connect follows. */
static int client_connect(struct mqclient *c, bool clean)
{
	struct mqfleet *f = c->f;
	char id[CLIENT_ID_MAX];
	snprintf(id, sizeof(id), "cb-%s-%u", c->role == ROLE_PUB ? "pub" : "sub",
	         (unsigned)c->index);
	if (c->m == NULL && (c->m = client_new(c, id, clean)) == NULL)
		return -1;
	c->connected = c->closing = false;
	int rc = mosquitto_connect(c->m, "127.0.0.1", f->port, KEEPALIVE_S);
	if (rc != MOSQ_ERR_SUCCESS) {
		client_fail(c, "could not connect", rc);
		return -1;
	}
	int fd = mosquitto_socket(c->m);
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
	    uv_poll_init_socket(&f->loop, &c->poll, fd) != 0)
		return -1;
	c->poll.data = c;
	c->polling = true;
	c->events = 0;
	client_watch(c);
	client_flush(c);
	return 0;
}

/* Runs the loop until DONE(F), a failure, or TIMEOUT_S: 0, -1 failed, 1 timed out. */
static int fleet_wait(struct mqfleet *f, bool (*done)(const struct mqfleet *f), double timeout_s)
{
	uint64_t deadline = bench_now_ns() + (uint64_t)(timeout_s * 1e9);
	while (!done(f) && !f->failed) {
		if (bench_now_ns() > deadline)
			return 1;
		uv_run(&f->loop, UV_RUN_ONCE);
	}
	return f->failed ? -1 : 0;
}

/* For setup steps, where a time-out is a failure. */
static int setup_wait(struct mqfleet *f, bool (*done)(const struct mqfleet *f))
{
	int rc = fleet_wait(f, done, SETUP_TIMEOUT_S);
	if (rc > 0)
		bench_note("timed out waiting for mosquitto");
	return rc == 0 ? 0 : -1;
}

static bool all_pubs_ready(const struct mqfleet *f)
{
	return f->ready == f->n;
}

static bool all_subs_ready(const struct mqfleet *f)
{
	return f->ready == f->nsubs;
}

static bool all_subs_closed(const struct mqfleet *f)
{
	return f->closed == f->nsubs;
}

static int connect_subscribers(struct mqfleet *f)
{
	f->ready = 0;
	for (uint32_t i = 0; i < f->nsubs; i++)
		if (client_connect(&f->subs[i].c, !f->durable) != 0)
			return -1;
	return setup_wait(f, all_subs_ready);
}

static int connect_publishers(struct mqfleet *f)
{
	f->ready = 0;
	for (uint32_t i = 0; i < f->n; i++)
		if (client_connect(&f->pubs[i].c, true) != 0)
			return -1;
	return setup_wait(f, all_pubs_ready);
}

static int disconnect_subscribers(struct mqfleet *f)
{
	f->closed = 0;
	uint32_t pending = 0;
	for (uint32_t i = 0; i < f->nsubs; i++)
		pending += client_disconnect(&f->subs[i].c);
	f->closed += f->nsubs - pending;
	return setup_wait(f, all_subs_closed);
}

/* Moves the run through warm-up, measurement and the end of sending; keeps clients alive. */
static void on_pacer(uv_timer_t *t)
{
	struct mqfleet *f = t->data;
	if (++f->ticks % 1000 == 0) {
		for (uint32_t i = 0; i < f->n + f->nsubs; i++) {
			struct mqclient *c = i < f->n ? &f->pubs[i].c : &f->subs[i - f->n].c;
			if (c->connected && c->events != 0) {
				mosquitto_loop_misc(c->m);
				client_flush(c);
			}
		}
	}
	if (!f->sending)
		return;
	uint64_t now = bench_now_ns();
	if (!f->measuring && f->measure_to != 0 && now >= f->measure_from) {
		f->measuring = true;
		f->broker_cpu0 = proc_cpu_s(f->broker_pid);
		f->gen_cpu0 = bench_self_cpu_s();
	}
	if (f->measuring && now >= f->measure_to) {
		f->broker_cpu1 = proc_cpu_s(f->broker_pid);
		f->gen_cpu1 = bench_self_cpu_s();
		f->measuring = false;
		f->sending = false;
		return;
	}
	for (uint32_t i = 0; i < f->n; i++)
		publisher_pump(&f->pubs[i]);
}

/* Once per loop iteration, after every readable socket was read: publish into the room the
 * iteration's deliveries and PUBACKs made, one write pass per publisher. */
static void on_flush(uv_check_t *h)
{
	struct mqfleet *f = h->data;
	for (uint32_t i = 0; f->sending && i < f->n; i++)
		publisher_pump(&f->pubs[i]);
}

/* N publishers, each with FANOUT subscribers on its topic. */
static struct mqfleet *fleet_open(uint16_t port, pid_t broker_pid, const char *cafile, uint32_t n,
                                  uint32_t fanout, uint32_t size, uint32_t window, bool durable)
{
	struct mqfleet *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return NULL;
	f->pubs = calloc(n, sizeof(*f->pubs));
	f->subs = calloc((size_t)n * fanout, sizeof(*f->subs));
	if (f->pubs == NULL || f->subs == NULL || window > 65535 ||
	    (fanout > 1 && fan_init(&f->fan, window, fanout) != 0) || uv_loop_init(&f->loop) != 0) {
		fan_free(&f->fan);
		free(f->pubs);
		free(f->subs);
		free(f);
		return NULL;
	}
	f->port = port;
	f->broker_pid = broker_pid;
	f->cafile = cafile;
	f->n = n;
	f->nsubs = n * fanout;
	f->fanout = fanout;
	f->size = size < BODY_HEADER ? BODY_HEADER : size;
	f->window = window;
	f->durable = durable;
	f->qos = durable ? 1 : 0;
	uv_timer_init(&f->loop, &f->pacer);
	f->pacer.data = f;
	uv_timer_start(&f->pacer, on_pacer, 1, 1);
	uv_check_init(&f->loop, &f->flusher);
	f->flusher.data = f;
	uv_check_start(&f->flusher, on_flush);
	for (uint32_t i = 0; i < f->nsubs; i++) {
		struct subscriber *s = &f->subs[i];
		s->c = (struct mqclient){.f = f, .role = ROLE_SUB, .index = i};
		snprintf(s->topic, sizeof(s->topic), "cb/%u", (unsigned)(i / fanout));
	}
	for (uint32_t i = 0; i < n; i++) {
		struct publisher *p = &f->pubs[i];
		p->c = (struct mqclient){.f = f, .role = ROLE_PUB, .index = i};
		p->body = malloc(f->size);
		if (p->body == NULL) {
			mqfleet_close(f);
			return NULL;
		}
		randombytes_buf(p->body, f->size);
	}
	if (connect_subscribers(f) != 0 || (durable && disconnect_subscribers(f) != 0) ||
	    connect_publishers(f) != 0) {
		bench_note("could not set up %u publishers and %u subscribers", (unsigned)n,
		           (unsigned)f->nsubs);
		mqfleet_close(f);
		return NULL;
	}
	return f;
}

struct mqfleet *mqfleet_open(uint16_t port, pid_t broker_pid, const char *cafile, uint32_t n,
                             uint32_t size, uint32_t window, bool durable)
{
	return fleet_open(port, broker_pid, cafile, n, 1, size, window, durable);
}

struct mqfleet *mqfleet_open_fanout(uint16_t port, pid_t broker_pid, uint32_t members,
                                    uint32_t size, uint32_t window)
{
	return fleet_open(port, broker_pid, NULL, 1, members, size, window, false);
}

/* ---- runs ----------------------------------------------------------------------------- */

static uint64_t total_sent(const struct mqfleet *f)
{
	uint64_t sum = 0;
	for (uint32_t i = 0; i < f->n; i++)
		sum += f->pubs[i].next_seq;
	return sum;
}

/* Everything published has reached its subscribers. */
static bool all_settled(const struct mqfleet *f)
{
	if (f->sending)
		return false;
	for (uint32_t i = 0; i < f->nsubs; i++) {
		const struct publisher *p = &f->pubs[i / f->fanout];
		if (f->subs[i].expect_seq < p->next_seq || p->inflight > 0)
			return false;
	}
	return true;
}

/* The publishers' bytes on the wire so far (sockbytes.h), or UINT64_MAX. */
static uint64_t publisher_bytes(const struct mqfleet *f)
{
	uint64_t sum = 0;
	for (uint32_t i = 0; i < f->n; i++) {
		uint64_t b = sock_bytes_acked(mosquitto_socket(f->pubs[i].c.m));
		if (b == UINT64_MAX)
			return UINT64_MAX;
		sum += b;
	}
	return sum;
}

static void run_begin(struct mqfleet *f, double target_rate, uint64_t quota)
{
	lat_reset(&f->lat);
	f->measured = 0;
	f->measuring = false;
	f->rate_per_pub = target_rate / f->n;
	for (uint32_t i = 0; i < f->n; i++) {
		f->pubs[i].run_sent = 0;
		f->pubs[i].quota = quota;
	}
	f->t0 = bench_now_ns();
	f->sending = true;
	for (uint32_t i = 0; i < f->n; i++)
		publisher_pump(&f->pubs[i]);
}

int mqfleet_run(struct mqfleet *f, double target_rate, double warmup_s, double duration_s,
                struct online_run *out)
{
	memset(out, 0, sizeof(*out));
	uint64_t errors0 = f->errors, sent0 = total_sent(f), bytes0 = publisher_bytes(f);
	f->measure_from = bench_now_ns() + (uint64_t)(warmup_s * 1e9);
	f->measure_to = f->measure_from + (uint64_t)(duration_s * 1e9);
	run_begin(f, target_rate, UINT64_MAX);
	int rc = fleet_wait(f, all_settled, warmup_s + duration_s + SETTLE_S);
	if (rc < 0)
		return -1;
	if (rc > 0) {
		/* QoS 0 may drop; what never arrived is counted, not waited for. */
		uint64_t lost = 0;
		for (uint32_t i = 0; i < f->nsubs; i++)
			lost += f->pubs[i / f->fanout].next_seq - f->subs[i].expect_seq;
		bench_note("mosquitto: %llu messages never arrived", (unsigned long long)lost);
		f->errors += lost;
		f->sending = false;
	}
	out->target_rate = target_rate;
	out->delivered = f->measured;
	out->rate = (double)f->measured / duration_s;
	out->msgs_per_s = out->rate / f->fanout;
	uint64_t bytes1 = publisher_bytes(f), sent = total_sent(f) - sent0;
	if (bytes0 != UINT64_MAX && bytes1 != UINT64_MAX && sent > 0)
		out->upload_per_msg = (double)(bytes1 - bytes0) / (double)sent;
	lat_fill(&f->lat, out);
	out->relay_cpu = (f->broker_cpu1 - f->broker_cpu0) / duration_s;
	out->gen_cpu = (f->gen_cpu1 - f->gen_cpu0) / duration_s;
	out->errors = f->errors - errors0;
	return 0;
}

static bool all_answered(const struct mqfleet *f)
{
	for (uint32_t i = 0; i < f->n; i++)
		if (f->pubs[i].run_sent < f->pubs[i].quota || f->pubs[i].inflight > 0)
			return false;
	return true;
}

/* Every subscriber has every message and its PUBACKs are written. */
static bool all_drained(const struct mqfleet *f)
{
	for (uint32_t i = 0; i < f->n; i++)
		if (f->subs[i].expect_seq < f->pubs[i].next_seq ||
		    mosquitto_want_write(f->subs[i].c.m))
			return false;
	return true;
}

int mqfleet_durable(struct mqfleet *f, uint64_t count, struct durable_result *out)
{
	uint64_t errors0 = f->errors;
	f->measure_to = 0; /* no timed phases: the pacer only paces */
	double cpu0 = proc_cpu_s(f->broker_pid);
	uint64_t t0 = bench_now_ns();
	run_begin(f, 0, count / f->n);
	if (fleet_wait(f, all_answered, 600) != 0)
		return -1;
	f->sending = false;
	uint64_t t1 = bench_now_ns();
	double cpu1 = proc_cpu_s(f->broker_pid);
	if (connect_subscribers(f) != 0 || fleet_wait(f, all_drained, 600) != 0)
		return -1;
	uint64_t t2 = bench_now_ns();
	double cpu2 = proc_cpu_s(f->broker_pid);
	uint64_t sent = total_sent(f), duplicates = 0;
	for (uint32_t i = 0; i < f->n; i++)
		duplicates += f->subs[i].duplicates;
	if (duplicates > 0)
		bench_note("mosquitto: %llu messages delivered twice (QoS 1 allows it)",
		           (unsigned long long)duplicates);
	durable_times(out, sent, t0, t1, t2, cpu0, cpu1, cpu2);
	out->errors = f->errors - errors0;
	return 0;
}

void mqfleet_close(struct mqfleet *f)
{
	if (f == NULL)
		return;
	for (uint32_t i = 0; i < f->n; i++)
		client_disconnect(&f->pubs[i].c);
	for (uint32_t i = 0; i < f->nsubs; i++)
		client_disconnect(&f->subs[i].c);
	uv_close((uv_handle_t *)&f->pacer, NULL);
	uv_close((uv_handle_t *)&f->flusher, NULL);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&f->loop) != 0)
		bench_note("a libuv handle was left open");
	for (uint32_t i = 0; i < f->n; i++) {
		mosquitto_destroy(f->pubs[i].c.m);
		free(f->pubs[i].body);
	}
	for (uint32_t i = 0; i < f->nsubs; i++)
		mosquitto_destroy(f->subs[i].c.m);
	fan_free(&f->fan);
	lat_free(&f->lat);
	free(f->pubs);
	free(f->subs);
	free(f);
}
