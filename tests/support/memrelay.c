/* SPDX-License-Identifier: MIT */
/*
 * The in-memory relay (see memrelay.h). One thread per relay runs a poll loop over its
 * socketpair ends and a wake-up pipe; each connection is a proto/channel responder whose
 * decoded commands go to the relay's real command layer through its handler table (port.h),
 * and whose replies come back through this file's conn_port. The test's thread only queues
 * new connections, asks for drops and reads the counters, under the relay's lock.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <uv.h>

#include "channel.h"
#include "commands.h"
#include "env.h"
#include "memrelay.h"
#include "memstorage.h"
#include "port.h"
#include "relay.h"

#define MR_HOST_FMT  "relay-%u.memrelay.test"
#define MR_PORT_BASE 40000u
#define MR_MAX       16           /* memrelays alive at once in one process */
#define MR_NEW_MAX   64           /* connections queued for the relay's thread */
#define MR_SOFT_OUT  (256u << 10) /* output beyond which deliveries pause */
#define MR_READ      65536
#define MR_SKIP_MS   1000 /* how far the skipping clock jumps when everything is idle */

/* One client connection. The command layer sees it only as an opaque struct conn. */
struct conn {
	struct conn *next; /* the relay's open connections */
	struct memrelay *mr;
	int fd;
	struct channel ch;
	void *peer;     /* the command layer's state (handler->open), its own block here */
	unsigned refs;  /* the open one, plus the command layer's */
	bool open;      /* not closed yet */
	bool kill;      /* to be closed at the end of the round (a reply could not be queued) */
	bool over_soft; /* output was over MR_SOFT_OUT: drained() is due when it falls */
	uint8_t *in;    /* received, not yet consumed by the channel */
	size_t in_len, in_off, in_cap;
};

struct memrelay {
	unsigned index; /* in the registry; makes host and port */
	char host[64];
	uint16_t port;
	char address[CAIRN_ADDRESS_MAX + 1];
	uint8_t priv[CAIRN_KEY_LEN], pub[CAIRN_KEY_LEN];

	pthread_t thread;
	int wake[2]; /* the test's thread writes a byte to wake the relay's */

	/* Shared with the test's thread, under LOCK. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop, down;
	int new_fds[MR_NEW_MAX];
	size_t n_new;
	uint64_t drop_asked, drop_done;
	bool cut_asked;     /* memrelay_cut_after_send */
	bool cut_log_asked; /* memrelay_cut_after_append */
	/* Set by the relay's thread while it waits in poll with nothing to write and nothing
	 * left to read, cleared (under LOCK) before it touches anything again: IDLE_FDS, its
	 * sockets, stay open while IDLE holds. */
	bool idle;
	int *idle_fds;
	size_t n_idle_fds;
	struct memrelay_stats stats;

	/* The relay's thread only. */
	uv_loop_t loop; /* never run: the command layer reads its time (admission budgets) */
	struct relay_config cfg;
	struct relay *relay;
	struct conn *conns;
	unsigned accepted;
	bool cut_armed; /* cut when envelopes_accepted passes CUT_FROM */
	uint64_t cut_from;
	bool cut_log_armed; /* cut when log_entries_appended passes CUT_LOG_FROM */
	uint64_t cut_log_from;
	uint8_t buf[MR_READ];
};

/* Running memrelays by index, for memrelay_connect. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct memrelay *registry[MR_MAX];
static unsigned registry_serial;

/* ---- the port: what the command layer calls in a connection ------------------------------ */

static void conn_unref(struct conn *c)
{
	if (--c->refs > 0)
		return;
	c->mr->relay->handler->free(c->peer);
	free(c->peer);
	channel_free(&c->ch);
	free(c->in);
	free(c);
}

static void port_reply(struct conn *c, const struct cairn_msg *m)
{
	if (!c->open || c->kill)
		return;
	/* As conn.c: a reply that cannot be queued closes the connection. */
	if (channel_queue(&c->ch, m) != 0)
		c->kill = true;
}

static bool port_can_deliver(const struct conn *c)
{
	return c->open && !c->kill && channel_output_pending(&c->ch) < MR_SOFT_OUT;
}

static void port_ref(struct conn *c)
{
	c->refs++;
}

/* The signature check runs at once, on this thread: the thread pool's job, done inline. */
static void port_defer(struct conn *c, struct conn_task *t)
{
	t->conn = c;
	port_ref(c);
	t->run(t);
	t->done(t, !c->open);
	conn_unref(c);
}

static const uint8_t *port_hash(const struct conn *c)
{
	const struct cairn_session *s = channel_session(&c->ch);
	return s != NULL ? s->h : c->ch.session.h;
}

static const struct conn_port memrelay_port = {
    .reply = port_reply,
    .can_deliver = port_can_deliver,
    .ref = port_ref,
    .unref = conn_unref,
    .defer = port_defer,
    .handshake_hash = port_hash,
};

/* ---- connections (the relay's thread) ------------------------------------------------------ */

/* The relay's wall clock, for the handshake's timestamp check: the real one, as the client's. */
static uint64_t wall_now(void *ctx)
{
	(void)ctx;
	return (uint64_t)time(NULL);
}

static void conn_close(struct conn *c)
{
	if (!c->open)
		return;
	struct memrelay *mr = c->mr;
	for (struct conn **p = &mr->conns; *p != NULL; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	mr->relay->handler->closed(c->peer);
	c->open = false;
	close(c->fd);
	c->fd = -1;
	conn_unref(c); /* the open reference */
}

static void conn_accept(struct memrelay *mr, int fd)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		return;
	}
	struct channel_options opt = {.role = CHANNEL_RESPONDER, .now = wall_now};
	c->mr = mr;
	c->fd = fd;
	c->refs = 1;
	c->open = true;
	if (channel_init(&c->ch, &opt) != 0) {
		close(fd);
		free(c);
		return;
	}
	if ((c->peer = calloc(1, mr->relay->handler->peer_size)) == NULL) {
		channel_free(&c->ch);
		close(fd);
		free(c);
		return;
	}
	mr->relay->handler->open(c->peer, mr->relay, c);
	c->next = mr->conns;
	mr->conns = c;
	mr->accepted++;
}

/* Reads what C's socket holds into its input buffer. False when C must close (EOF, error). */
static bool conn_read(struct conn *c)
{
	for (;;) {
		ssize_t n = recv(c->fd, c->mr->buf, sizeof(c->mr->buf), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK;
		if (n == 0)
			return false;
		if (c->in_off == c->in_len)
			c->in_off = c->in_len = 0;
		if (c->in_len + (size_t)n > c->in_cap) {
			size_t ncap = c->in_cap ? c->in_cap : MR_READ;
			while (ncap < c->in_len + (size_t)n)
				ncap *= 2;
			uint8_t *p = realloc(c->in, ncap);
			if (p == NULL)
				return false;
			c->in = p;
			c->in_cap = ncap;
		}
		memcpy(c->in + c->in_len, c->mr->buf, (size_t)n);
		c->in_len += (size_t)n;
	}
}

/* The ERROR reply to a command the channel could decode only as far as its request id. */
static void reply_error(struct conn *c, uint32_t rid, int err)
{
	struct cairn_msg m = {
	    .type = CAIRN_REPLY_ERROR, .request_id = rid, .code = cairn_wire_code(err)};
	port_reply(c, &m);
}

/* Handles C's channel events until it needs more input. False when C must close. */
static bool conn_events(struct conn *c)
{
	struct memrelay *mr = c->mr;
	struct channel_event ev;
	for (;;) {
		switch (channel_next_event(&c->ch, &ev)) {
		case CHANNEL_EV_NONE:
			return true;
		case CHANNEL_EV_HELLO:
			/* No replay cache: every handshake here is a fresh socketpair's. */
			if (channel_accept(&c->ch, mr->priv, mr->pub, NULL) != 0)
				return false;
			break;
		case CHANNEL_EV_OPEN:
			break;
		case CHANNEL_EV_MESSAGE:
			mr->relay->handler->command(c->peer, &ev.msg);
			break;
		case CHANNEL_EV_BAD_MESSAGE:
			reply_error(c, ev.msg.request_id, ev.error);
			break;
		case CHANNEL_EV_FAILED:
			return false;
		}
		if (!c->open || c->kill)
			return false;
	}
}

/*
 * Feeds C's buffered input to its channel, one frame at a time, while the command layer will
 * take more (busy: as many requests wait for the store as it allows; the next storage batch
 * frees them). Returns true when input is left over.
 */
static bool conn_input(struct conn *c)
{
	while (c->open && !c->kill && c->in_off < c->in_len &&
	       !c->mr->relay->handler->busy(c->peer)) {
		size_t n = channel_feed(&c->ch, c->in + c->in_off, c->in_len - c->in_off);
		c->in_off += n;
		if (!conn_events(c)) {
			c->kill = true;
			return false;
		}
		if (n == 0)
			break;
	}
	return c->open && !c->kill && c->in_off < c->in_len;
}

/* Seals and writes what C has queued, as far as its socket takes it. False when C must
 * close. Deliveries paused by a full output resume (drained) once it falls again. */
static bool conn_output(struct conn *c)
{
	for (int round = 0; round < 64; round++) {
		if (channel_flush(&c->ch) != 0)
			return false;
		const uint8_t *out;
		size_t len = channel_output(&c->ch, &out);
		bool wrote = false;
		while (len > 0) {
			ssize_t n = send(c->fd, out, len, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				break;
			if (n <= 0)
				return false;
			channel_output_consume(&c->ch, (size_t)n);
			len = channel_output(&c->ch, &out);
			wrote = true;
		}
		size_t pending = channel_output_pending(&c->ch);
		if (pending >= MR_SOFT_OUT) {
			c->over_soft = true;
			return true;
		}
		/* A log read pauses below MR_SOFT_OUT too (at half the relay's output limit,
		 * logcmd.c) and waits for drained() after a write, as the real relay calls it. */
		if (!c->over_soft && !wrote)
			break;
		c->over_soft = false;
		c->mr->relay->handler->drained(c->peer); /* may queue more: write it too */
	}
	if (channel_output_pending(&c->ch) == 0)
		channel_trim(&c->ch);
	return true;
}

/* ---- the relay's thread ---------------------------------------------------------------- */

/* Runs storage batches until none is queued (a batch's done() may queue more). */
static void settle(struct memrelay *mr)
{
	while (memstorage_run_batch(mr->relay->storage, false) > 0)
		;
}

static void publish_stats(struct memrelay *mr)
{
	struct relay *relay = mr->relay;
	unsigned open = 0;
	for (struct conn *c = mr->conns; c != NULL; c = c->next)
		open++;
	pthread_mutex_lock(&mr->lock);
	mr->stats.mailboxes = relay->mailboxes.count;
	mr->stats.stored = memstorage_envelopes(relay->storage);
	mr->stats.accepted = relay->stats.envelopes_accepted;
	mr->stats.delivered = relay->stats.envelopes_delivered;
	mr->stats.acknowledged = relay->stats.envelopes_acknowledged;
	mr->stats.appended = relay->stats.log_entries_appended;
	mr->stats.connections = mr->accepted;
	mr->stats.open_connections = open;
	pthread_mutex_unlock(&mr->lock);
}

/* Takes what the test's thread asked for: new connections, drops, stop. True to stop. */
static bool take_requests(struct memrelay *mr)
{
	uint8_t junk[64];
	while (read(mr->wake[0], junk, sizeof(junk)) > 0)
		;
	int fds[MR_NEW_MAX];
	pthread_mutex_lock(&mr->lock);
	size_t n = mr->n_new;
	memcpy(fds, mr->new_fds, n * sizeof(fds[0]));
	mr->n_new = 0;
	uint64_t drop = mr->drop_asked;
	if (mr->cut_asked) {
		mr->cut_asked = false;
		mr->cut_armed = true;
		mr->cut_from = mr->relay->stats.envelopes_accepted;
	}
	if (mr->cut_log_asked) {
		mr->cut_log_asked = false;
		mr->cut_log_armed = true;
		mr->cut_log_from = mr->relay->stats.log_entries_appended;
	}
	bool stop = mr->stop;
	pthread_mutex_unlock(&mr->lock);
	for (size_t i = 0; i < n; i++)
		conn_accept(mr, fds[i]);
	if (drop != mr->drop_done || stop) {
		while (mr->conns != NULL)
			conn_close(mr->conns);
		settle(mr);
		publish_stats(mr);
		pthread_mutex_lock(&mr->lock);
		mr->drop_done = drop;
		pthread_cond_broadcast(&mr->cond);
		pthread_mutex_unlock(&mr->lock);
	}
	return stop;
}

/* One round: every connection's input through the command layer, the storage batches that
 * makes, the counters, then every connection's output. */
static void serve_round(struct memrelay *mr, const struct pollfd *pfd, struct conn **who, size_t np)
{
	for (size_t k = 1; k < np; k++) {
		struct conn *c = who[k];
		if (c->open && (pfd[k].revents & (POLLIN | POLLHUP | POLLERR)) && !conn_read(c))
			c->kill = true;
	}
	/* Input left behind a busy connection goes in once the batch freed its requests. */
	bool more = true;
	for (int pass = 0; more && pass < 1000; pass++) {
		more = false;
		for (struct conn *c = mr->conns; c != NULL; c = c->next)
			more |= conn_input(c);
		settle(mr);
	}
	for (struct conn *c = mr->conns, *next; c != NULL; c = next) {
		next = c->next;
		if (c->kill)
			conn_close(c);
	}
	settle(mr);
	bool cut_log =
	    mr->cut_log_armed && mr->relay->stats.log_entries_appended > mr->cut_log_from;
	if ((mr->cut_armed && mr->relay->stats.envelopes_accepted > mr->cut_from) || cut_log) {
		if (cut_log)
			mr->cut_log_armed = false;
		else
			mr->cut_armed = false;
		while (mr->conns != NULL)
			conn_close(mr->conns);
		settle(mr);
	}
	publish_stats(mr);
	for (struct conn *c = mr->conns, *next; c != NULL; c = next) {
		next = c->next;
		if (!conn_output(c))
			conn_close(c);
	}
	settle(mr);
}

/* Before waiting: whether R has nothing of its own to do (every connection's input consumed,
 * its output written), and the sockets whose queues tell whether anything is in flight. */
static void set_idle(struct memrelay *mr, const struct pollfd *pfd, size_t np)
{
	bool idle = true;
	for (struct conn *c = mr->conns; c != NULL && idle; c = c->next)
		idle = !c->kill && c->in_off == c->in_len && channel_output_pending(&c->ch) == 0;
	pthread_mutex_lock(&mr->lock);
	mr->idle = idle;
	mr->n_idle_fds = 0;
	for (size_t k = 1; k < np; k++)
		mr->idle_fds[mr->n_idle_fds++] = pfd[k].fd;
	pthread_mutex_unlock(&mr->lock);
}

static void *relay_thread(void *arg)
{
	struct memrelay *mr = arg;
	size_t cap = 0;
	struct pollfd *pfd = NULL;
	struct conn **who = NULL;
	for (;;) {
		if (take_requests(mr))
			break;
		uv_update_time(&mr->loop);
		size_t n = 1;
		for (struct conn *c = mr->conns; c != NULL; c = c->next)
			n++;
		if (n > cap) {
			struct pollfd *p = realloc(pfd, n * sizeof(*p));
			struct conn **w = p != NULL ? realloc(who, n * sizeof(*w)) : NULL;
			if (p != NULL)
				pfd = p;
			if (w == NULL)
				abort(); /* a test harness out of memory has nothing to report */
			who = w;
			pthread_mutex_lock(&mr->lock);
			int *f = realloc(mr->idle_fds, n * sizeof(*f));
			if (f == NULL)
				abort();
			mr->idle_fds = f;
			mr->n_idle_fds = 0;
			pthread_mutex_unlock(&mr->lock);
			cap = n;
		}
		size_t np = 0;
		pfd[np] = (struct pollfd){.fd = mr->wake[0], .events = POLLIN};
		who[np++] = NULL;
		for (struct conn *c = mr->conns; c != NULL; c = c->next) {
			short ev = POLLIN;
			if (channel_output_pending(&c->ch) > 0)
				ev |= POLLOUT;
			pfd[np] = (struct pollfd){.fd = c->fd, .events = ev};
			who[np++] = c;
		}
		set_idle(mr, pfd, np);
		int polled = poll(pfd, (nfds_t)np, -1);
		pthread_mutex_lock(&mr->lock);
		mr->idle = false;
		pthread_mutex_unlock(&mr->lock);
		if (polled < 0 && errno != EINTR)
			abort();
		serve_round(mr, pfd, who, np);
	}
	free(pfd);
	free(who);
	return NULL;
}

/* ---- life cycle (the test's thread) -------------------------------------------------- */

static void on_ready(struct relay *relay)
{
	relay->ready = true;
}

static void on_storage_closed(void *arg)
{
	commands_shutdown(arg);
}

/* Builds the relay as relay/server.c would, with memstorage in place of the storage thread,
 * and waits until the first block of envelope ids is reserved. */
static int relay_build(struct memrelay *mr)
{
	relay_config_defaults(&mr->cfg);
	if (uv_loop_init(&mr->loop) != 0)
		return -1;
	struct relay *relay = calloc(1, sizeof(*relay));
	if (relay == NULL)
		return -1;
	mr->relay = relay;
	relay->loop = &mr->loop;
	relay->cfg = &mr->cfg;
	relay->private_key = mr->priv;
	memcpy(relay->public_key, mr->pub, sizeof(relay->public_key));
	relay->handler = &commands_handler;
	relay->port = &memrelay_port;
	if (mailbox_index_init(&relay->mailboxes) != 0 ||
	    (relay->storage = memstorage_new()) == NULL)
		return -1;
	commands_load_finish(relay, on_ready);
	settle(mr);
	return relay->ready ? 0 : -1;
}

static void relay_destroy(struct memrelay *mr)
{
	struct relay *relay = mr->relay;
	if (relay == NULL)
		return;
	relay->stopping = true;
	if (relay->storage != NULL)
		storage_close(relay->storage, on_storage_closed, relay);
	relay->storage = NULL;
	while (mr->conns != NULL)
		conn_close(mr->conns);
	mailbox_index_free(&relay->mailboxes);
	free(relay->marks);
	free(relay);
	mr->relay = NULL;
	uv_loop_close(&mr->loop);
}

static bool registry_add(struct memrelay *mr)
{
	pthread_mutex_lock(&registry_lock);
	bool ok = false;
	for (unsigned i = 0; i < MR_MAX && !ok; i++)
		if (registry[i] == NULL) {
			registry[i] = mr;
			mr->index = i;
			ok = true;
		}
	/* A serial in the name: a relay freed and another made never share an address. */
	unsigned serial = ++registry_serial;
	pthread_mutex_unlock(&registry_lock);
	snprintf(mr->host, sizeof(mr->host), MR_HOST_FMT, serial);
	mr->port = (uint16_t)(MR_PORT_BASE + serial % 20000u);
	return ok;
}

static void registry_remove(struct memrelay *mr)
{
	pthread_mutex_lock(&registry_lock);
	if (registry[mr->index] == mr)
		registry[mr->index] = NULL;
	pthread_mutex_unlock(&registry_lock);
}

struct memrelay *memrelay_new(const uint8_t *private_key)
{
	if (sodium_init() < 0)
		return NULL;
	struct memrelay *mr = calloc(1, sizeof(*mr));
	if (mr == NULL)
		return NULL;
	mr->wake[0] = mr->wake[1] = -1;
	if (private_key != NULL)
		memcpy(mr->priv, private_key, sizeof(mr->priv));
	else
		randombytes_buf(mr->priv, sizeof(mr->priv));
	crypto_scalarmult_base(mr->pub, mr->priv);
	if (pthread_mutex_init(&mr->lock, NULL) != 0) {
		free(mr);
		return NULL;
	}
	pthread_cond_init(&mr->cond, NULL);
	if (pipe2(mr->wake, O_NONBLOCK | O_CLOEXEC) != 0 || relay_build(mr) != 0)
		goto fail;
	if (!registry_add(mr))
		goto fail;
	struct cairn_address a = {.host_type = CAIRN_HOST_NAME, .port = mr->port};
	memcpy(a.key, mr->pub, sizeof(a.key));
	snprintf(a.host, sizeof(a.host), "%s", mr->host);
	if (cairn_address_format(&a, mr->address, sizeof(mr->address)) != 0) {
		registry_remove(mr);
		goto fail;
	}
	if (pthread_create(&mr->thread, NULL, relay_thread, mr) != 0) {
		registry_remove(mr);
		goto fail;
	}
	return mr;
fail:
	relay_destroy(mr);
	for (int i = 0; i < 2; i++)
		if (mr->wake[i] >= 0)
			close(mr->wake[i]);
	pthread_cond_destroy(&mr->cond);
	pthread_mutex_destroy(&mr->lock);
	sodium_memzero(mr->priv, sizeof(mr->priv));
	free(mr);
	return NULL;
}

static void wake(struct memrelay *mr)
{
	uint8_t b = 1;
	ssize_t n = write(mr->wake[1], &b, 1);
	(void)n; /* a full pipe already wakes it */
}

void memrelay_free(struct memrelay *r)
{
	if (r == NULL)
		return;
	registry_remove(r);
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_mutex_unlock(&r->lock);
	wake(r);
	pthread_join(r->thread, NULL);
	/* Connections queued but never taken. */
	for (size_t i = 0; i < r->n_new; i++)
		close(r->new_fds[i]);
	relay_destroy(r);
	close(r->wake[0]);
	close(r->wake[1]);
	free(r->idle_fds);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	sodium_memzero(r->priv, sizeof(r->priv));
	free(r);
}

const char *memrelay_address(const struct memrelay *r)
{
	return r->address;
}

int memrelay_connect(void *ctx, const char *host, uint16_t port, bool numeric, int attempt,
                     int *fd)
{
	(void)ctx;
	(void)numeric;
	if (attempt > 0)
		return CAIRN_ENOTFOUND; /* a memrelay has one address */
	int rc = CAIRN_ECONNECT;
	pthread_mutex_lock(&registry_lock);
	struct memrelay *mr = NULL;
	for (unsigned i = 0; i < MR_MAX && mr == NULL; i++)
		if (registry[i] != NULL && registry[i]->port == port &&
		    strcmp(registry[i]->host, host) == 0)
			mr = registry[i];
	/* Under the registry's lock, MR cannot be freed before its connection is queued. */
	if (mr != NULL) {
		int sv[2];
		pthread_mutex_lock(&mr->lock);
		if (!mr->down && !mr->stop && mr->n_new < MR_NEW_MAX &&
		    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0) {
			mr->new_fds[mr->n_new++] = sv[1];
			*fd = sv[0];
			rc = 0;
		}
		pthread_mutex_unlock(&mr->lock);
		if (rc == 0)
			wake(mr);
	}
	pthread_mutex_unlock(&registry_lock);
	return rc;
}

void memrelay_env(struct client_env *env)
{
	*env = *env_default();
	env->connect = memrelay_connect;
	env->ctx = NULL;
}

/*
 * Whether nothing can happen at R unless a client acts: its thread waits with nothing to do,
 * nothing is queued for it, and no byte is in flight either way on any of its connections
 * (SIOCINQ: the client's bytes it has not read; SIOCOUTQ: its bytes the client has not read).
 * Called under the registry's lock.
 */
static bool relay_idle(struct memrelay *mr)
{
	pthread_mutex_lock(&mr->lock);
	bool idle = mr->idle && mr->n_new == 0 && !mr->cut_asked && !mr->cut_log_asked &&
	            !mr->stop && mr->drop_asked == mr->drop_done;
	for (size_t i = 0; idle && i < mr->n_idle_fds; i++) {
		int in = 0, out = 0;
		idle = ioctl(mr->idle_fds[i], SIOCINQ, &in) == 0 &&
		       ioctl(mr->idle_fds[i], SIOCOUTQ, &out) == 0 && in == 0 && out == 0;
	}
	pthread_mutex_unlock(&mr->lock);
	return idle;
}

static int64_t real_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The skipping clock: real time, plus every jump taken when every relay was idle. */
static int64_t skip_mono_ms(void *ctx)
{
	(void)ctx;
	static int64_t skipped;
	pthread_mutex_lock(&registry_lock);
	bool idle = true;
	for (unsigned i = 0; i < MR_MAX && idle; i++)
		if (registry[i] != NULL)
			idle = relay_idle(registry[i]);
	if (idle)
		skipped += MR_SKIP_MS;
	int64_t now = real_mono_ms() + skipped;
	pthread_mutex_unlock(&registry_lock);
	return now;
}

void memrelay_env_skipping(struct client_env *env)
{
	memrelay_env(env);
	env->mono_ms = skip_mono_ms;
}

void memrelay_set_down(struct memrelay *r, bool down)
{
	pthread_mutex_lock(&r->lock);
	r->down = down;
	uint64_t ticket = 0;
	if (down)
		ticket = ++r->drop_asked;
	pthread_mutex_unlock(&r->lock);
	if (!down)
		return;
	wake(r);
	pthread_mutex_lock(&r->lock);
	while (r->drop_done < ticket)
		pthread_cond_wait(&r->cond, &r->lock);
	pthread_mutex_unlock(&r->lock);
}

void memrelay_cut_after_send(struct memrelay *r)
{
	pthread_mutex_lock(&r->lock);
	r->cut_asked = true;
	pthread_mutex_unlock(&r->lock);
	wake(r);
}

void memrelay_cut_after_append(struct memrelay *r)
{
	pthread_mutex_lock(&r->lock);
	r->cut_log_asked = true;
	pthread_mutex_unlock(&r->lock);
	wake(r);
}

void memrelay_stats(struct memrelay *r, struct memrelay_stats *out)
{
	pthread_mutex_lock(&r->lock);
	*out = r->stats;
	pthread_mutex_unlock(&r->lock);
}
