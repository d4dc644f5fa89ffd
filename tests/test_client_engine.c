/* SPDX-License-Identifier: MIT */
/*
 * libcairn's engine (cairn_engine_* in cairn.h) driven in-process, as an application with its
 * own loop would: the test owns the poll() around cairn_engine_fds and cairn_engine_step.
 * Homes talk through in-memory relays (tests/support/memrelay.h) reached through the client's
 * injected connect; one relay can be made a blackhole (it takes the connection and never
 * answers). What is proved: listening through the engine receives messages and reports each
 * connection's states (up, down with the reason, up again); a queued message is reported sent
 * once a relay accepts every part of it; no step waits on the network: each returns in a
 * few milliseconds while a relay stays silent through the whole handshake; the move out of
 * the invite mailboxes runs on the engine's own connections; and the example
 * of contrib/libuv-embed receives a message inside a libuv loop and leaves no handle behind.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "cairn/address.h"
#include "cairn/cairn.h"
#include "client.h"
#include "it_common.h"
#include "memrelay.h"
#include "relayproc.h"
#include "uvembed.h"

#define PASS       "correct horse battery staple"
#define RELAYS     2
#define EVENTS_MAX 64
#define HOLES_MAX  16

/* What the engine reported to its callbacks. */
struct events {
	unsigned messages;
	char text[EVENTS_MAX][64];
	unsigned sent;
	uint8_t sent_id[EVENTS_MAX][CAIRN_MESSAGE_ID_LEN];
	unsigned nrelay;
	struct {
		char relay[CAIRN_ADDRESS_MAX + 1];
		int receiving;
		enum cairn_relay_state state;
		int error;
	} relay[EVENTS_MAX];
};

struct world {
	char root[64];
	struct memrelay *relay[RELAYS];
	const char *addr[RELAYS];
	struct client_env env;
	struct cairn *a, *b;                /* alice and bob */
	char hole_host[CAIRN_HOST_MAX + 1]; /* connects here get a peer that never answers */
	int holes[HOLES_MAX];               /* the silent ends, kept open until teardown */
	size_t nholes;
};

/* The test's connect: memrelay's, except to the blackhole host, where the relay's end of a
 * socketpair is kept by the test and never read. */
static int world_connect(void *ctx, const char *host, uint16_t port, bool numeric, int attempt,
                         int *fd)
{
	struct world *w = ctx;
	if (w->hole_host[0] == '\0' || strcmp(host, w->hole_host) != 0)
		return memrelay_connect(NULL, host, port, numeric, attempt, fd);
	int sv[2];
	if (w->nholes == HOLES_MAX ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
		return CAIRN_ECONNECT;
	w->holes[w->nholes++] = sv[1];
	*fd = sv[0];
	return 0;
}

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -1;
	strcpy(w->root, "/tmp/cairn-engine-XXXXXX");
	if (mkdtemp(w->root) == NULL)
		return -1;
	for (int i = 0; i < RELAYS; i++) {
		if ((w->relay[i] = memrelay_new(NULL)) == NULL)
			return -1;
		w->addr[i] = memrelay_address(w->relay[i]);
	}
	memrelay_env(&w->env);
	w->env.connect = world_connect;
	w->env.ctx = w;
	/* Two homes, each with the test's environment. */
	struct cairn **homes[2] = {&w->a, &w->b};
	static const char *const names[2] = {"alice", "bob"};
	for (int i = 0; i < 2; i++) {
		char path[128];
		snprintf(path, sizeof(path), "%s/%s", w->root, names[i]);
		if (cairn_init(path, PASS) != 0 || cairn_open(path, PASS, homes[i]) != 0)
			return -1;
		client_set_env(*homes[i], &w->env);
	}
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	cairn_close(w->a);
	cairn_close(w->b);
	for (size_t i = 0; i < w->nholes; i++)
		close(w->holes[i]);
	for (int i = 0; i < RELAYS; i++)
		memrelay_free(w->relay[i]);
	test_rm_tree(w->root);
	free(w);
	return 0;
}

/* ---- callbacks and the loop ------------------------------------------------------------- */

static int on_message(void *ctx, const struct cairn_message *m)
{
	struct events *ev = ctx;
	assert_true(ev->messages < EVENTS_MAX);
	assert_true(m->len < sizeof(ev->text[0]));
	memcpy(ev->text[ev->messages], m->text, m->len);
	ev->text[ev->messages][m->len] = '\0';
	ev->messages++;
	return 0;
}

static void on_delivery(void *ctx, const uint8_t id[CAIRN_MESSAGE_ID_LEN],
                        enum cairn_delivery state)
{
	struct events *ev = ctx;
	assert_int_equal(state, CAIRN_DELIVERY_SENT);
	assert_true(ev->sent < EVENTS_MAX);
	memcpy(ev->sent_id[ev->sent++], id, CAIRN_MESSAGE_ID_LEN);
}

static void on_relay(void *ctx, const struct cairn_relay_event *e)
{
	struct events *ev = ctx;
	assert_true(ev->nrelay < EVENTS_MAX);
	snprintf(ev->relay[ev->nrelay].relay, sizeof(ev->relay[0].relay), "%s", e->relay);
	ev->relay[ev->nrelay].receiving = e->receiving;
	ev->relay[ev->nrelay].state = e->state;
	ev->relay[ev->nrelay].error = e->error;
	assert_true(e->state == CAIRN_RELAY_DOWN ? e->error < 0 : e->error == 0);
	ev->nrelay++;
}

static const struct cairn_engine_callbacks callbacks = {
    .message = on_message, .delivery = on_delivery, .relay = on_relay};

typedef bool (*until_fn)(const struct events *ev, const void *arg);

/*
 * The application's loop: waits on C's descriptors until the engine's deadline (cut to 50 ms
 * so that the test notices UNTIL soon), steps, until UNTIL holds or LIMIT_MS passed. Returns
 * whether UNTIL held; *SLOWEST (may be NULL) receives the longest step in milliseconds.
 */
static bool pump(struct cairn *c, const struct events *ev, until_fn until, const void *arg,
                 int limit_ms, int64_t *slowest)
{
	struct pollfd fds[16];
	int64_t end = it_mono_ms() + limit_ms, worst = 0;
	bool held = false;
	while (!(held = until(ev, arg)) && it_mono_ms() < end) {
		size_t n = 0;
		int timeout = -1;
		assert_int_equal(cairn_engine_fds(c, fds, 16, &n, &timeout), 0);
		assert_true(timeout >= -1);
		if (timeout < 0 || timeout > 50)
			timeout = 50;
		assert_true(poll(fds, n, timeout) >= 0);
		int64_t t0 = it_mono_ms();
		assert_int_equal(cairn_engine_step(c, fds, n), 0);
		int64_t took = it_mono_ms() - t0;
		if (took > worst)
			worst = took;
	}
	if (slowest != NULL)
		*slowest = worst;
	return held;
}

static bool got_messages(const struct events *ev, const void *arg)
{
	return ev->messages >= *(const unsigned *)arg;
}

static bool got_sent(const struct events *ev, const void *arg)
{
	return ev->sent >= *(const unsigned *)arg;
}

/* The number of relay events with RECEIVING, STATE (and ERROR, unless 0). */
static unsigned count_state(const struct events *ev, int receiving, enum cairn_relay_state state,
                            int error)
{
	unsigned n = 0;
	for (unsigned i = 0; i < ev->nrelay; i++)
		n += ev->relay[i].receiving == receiving && ev->relay[i].state == state &&
		     (error == 0 || ev->relay[i].error == error);
	return n;
}

struct state_arg {
	int receiving;
	enum cairn_relay_state state;
	unsigned count;
};

static bool got_state(const struct events *ev, const void *arg)
{
	const struct state_arg *s = arg;
	return count_state(ev, s->receiving, s->state, 0) >= s->count;
}

static void sync_quiet(struct cairn *c)
{
	struct cairn_sync_result res;
	assert_int_equal(cairn_sync(c, &res, NULL, NULL), 0);
}

/* Alice invites Bob over the first NRELAYS relays, Bob accepts, both sync (the move out of
 * the invite mailboxes included): both established. */
static void pair(struct world *w, size_t nrelays)
{
	char *invite = NULL;
	assert_int_equal(cairn_invite_create(w->a, w->addr, nrelays, "bob", &invite), 0);
	assert_int_equal(cairn_invite_accept(w->b, invite, "alice", NULL, 0), 0);
	cairn_free(invite);
	sync_quiet(w->a);
	sync_quiet(w->b);
}

/* ---- the tests -------------------------------------------------------------------------- */

/*
 * Bob listens through the engine: his receiving connection is reported connecting, then up;
 * Alice's messages arrive through the message callback, each once. When the relay goes away
 * the connection is reported down with its reason, and after the backoff up again, and what
 * Alice sent meanwhile arrives.
 */
static void test_listen_through_engine(void **state)
{
	struct world *w = *state;
	pair(w, 1);
	struct events ev;
	memset(&ev, 0, sizeof(ev));
	assert_int_equal(cairn_engine_start(w->b, &callbacks, &ev), 0);
	assert_int_equal(cairn_engine_start(w->b, &callbacks, &ev), CAIRN_ESTATE);
	/* Not yet connected: the first step is due at once. */
	size_t n = 99;
	int timeout = -1;
	assert_int_equal(cairn_engine_fds(w->b, NULL, 0, &n, &timeout), 0);
	assert_int_equal(n, 0);
	assert_int_equal(timeout, 0);

	struct state_arg up = {1, CAIRN_RELAY_UP, 1};
	assert_true(pump(w->b, &ev, got_state, &up, 5000, NULL));
	assert_int_equal(count_state(&ev, 1, CAIRN_RELAY_CONNECTING, 0), 1);
	assert_string_equal(ev.relay[0].relay, w->addr[0]);
	/* Connected and subscribed (the step after the one that connected sends what waited
	 * for the connection): one descriptor to watch, and a deadline (the tick). */
	assert_int_equal(cairn_engine_step(w->b, NULL, 0), 0);
	struct pollfd fds[4];
	assert_int_equal(cairn_engine_fds(w->b, fds, 4, &n, &timeout), 0);
	assert_int_equal(n, 1);
	assert_true(fds[0].fd >= 0 && (fds[0].events & POLLIN));
	assert_true(timeout > 0 && timeout <= 2000);
	/* Too little room: told how much is needed. */
	assert_int_equal(cairn_engine_fds(w->b, fds, 0, &n, &timeout), CAIRN_ENOBUFS);
	assert_int_equal(n, 1);
	/* The blocking calls stay out of the engine's way. */
	struct cairn_sync_result res;
	assert_int_equal(cairn_sync(w->b, &res, NULL, NULL), CAIRN_ESTATE);
	assert_int_equal(cairn_send(w->b, "alice", (const uint8_t *)"x", 1, NULL), CAIRN_ESTATE);

	assert_int_equal(cairn_send(w->a, "bob", (const uint8_t *)"one", 3, NULL), 0);
	assert_int_equal(cairn_send(w->a, "bob", (const uint8_t *)"two", 3, NULL), 0);
	unsigned want = 2;
	assert_true(pump(w->b, &ev, got_messages, &want, 5000, NULL));
	assert_string_equal(ev.text[0], "one");
	assert_string_equal(ev.text[1], "two");

	/* The relay goes away: down, with the reason; back after the backoff. */
	memrelay_set_down(w->relay[0], true);
	struct state_arg down = {1, CAIRN_RELAY_DOWN, 1};
	assert_true(pump(w->b, &ev, got_state, &down, 5000, NULL));
	assert_int_equal(cairn_send(w->a, "bob", (const uint8_t *)"three", 5, NULL),
	                 CAIRN_ECONNECT);
	memrelay_set_down(w->relay[0], false);
	up.count = 2;
	assert_true(pump(w->b, &ev, got_state, &up, 10000, NULL));
	/* Alice's engine-less sync sends what waited; Bob's engine receives it. */
	assert_int_equal(cairn_sync(w->a, &res, NULL, NULL), 0);
	assert_int_equal(res.sent, 1);
	want = 3;
	assert_true(pump(w->b, &ev, got_messages, &want, 5000, NULL));
	assert_string_equal(ev.text[2], "three");
	/* Once each, and nothing more. */
	pump(w->b, &ev, got_messages, &(unsigned){4}, 600, NULL);
	assert_int_equal(ev.messages, 3);
	cairn_engine_stop(w->b);
	cairn_engine_stop(w->b); /* a second stop does nothing */
	assert_int_equal(cairn_engine_fds(w->b, fds, 4, &n, &timeout), CAIRN_ESTATE);
	assert_int_equal(cairn_engine_step(w->b, NULL, 0), CAIRN_ESTATE);
	sync_quiet(w->b);
}

/*
 * Alice queues without blocking while her engine runs: cairn_queue returns at once with the
 * message in the outbox, and the engine reports it sent once the relay took it; a message of
 * several parts (envelopes) is reported once, after the last. Bob's sync gets both, once.
 */
static void test_queue_reported_sent(void **state)
{
	struct world *w = *state;
	pair(w, 1);
	struct events ev;
	memset(&ev, 0, sizeof(ev));
	assert_int_equal(cairn_engine_start(w->a, &callbacks, &ev), 0);
	uint64_t before = 0;
	struct memrelay_stats st;
	memrelay_stats(w->relay[0], &st);
	before = st.accepted;

	uint8_t id1[CAIRN_MESSAGE_ID_LEN], id2[CAIRN_MESSAGE_ID_LEN];
	assert_int_equal(cairn_queue(w->a, "bob", (const uint8_t *)"short", 5, id1), 0);
	size_t big = 100 * 1024; /* several parts */
	uint8_t *text = malloc(big);
	assert_non_null(text);
	memset(text, 'x', big);
	assert_int_equal(cairn_queue(w->a, "bob", text, big, id2), 0);
	free(text);
	assert_int_equal(cairn_queue(w->a, "nobody", (const uint8_t *)"x", 1, NULL),
	                 CAIRN_ENOTFOUND);
	/* Queued: nothing has gone out yet, and the engine wants a step at once. */
	assert_int_equal(ev.sent, 0);
	size_t n = 0;
	int timeout = -1;
	struct pollfd fds[4];
	assert_int_equal(cairn_engine_fds(w->a, fds, 4, &n, &timeout), 0);
	assert_int_equal(timeout, 0);

	unsigned want = 2;
	assert_true(pump(w->a, &ev, got_sent, &want, 5000, NULL));
	assert_memory_equal(ev.sent_id[0], id1, CAIRN_MESSAGE_ID_LEN);
	assert_memory_equal(ev.sent_id[1], id2, CAIRN_MESSAGE_ID_LEN);
	memrelay_stats(w->relay[0], &st);
	assert_true(st.accepted > before + 2); /* the long one took several envelopes */
	/* Reported once each. */
	pump(w->a, &ev, got_sent, &(unsigned){3}, 500, NULL);
	assert_int_equal(ev.sent, 2);
	cairn_engine_stop(w->a);

	struct cairn_sync_result res;
	assert_int_equal(cairn_sync(w->b, &res, NULL, NULL), 0);
	assert_int_equal(res.received, 2);
	assert_int_equal(cairn_sync(w->a, &res, NULL, NULL), 0);
	assert_int_equal(res.pending, 0);
}

/* A callback may stop the engine: it takes effect when the step returns. */
static int stop_on_message(void *ctx, const struct cairn_message *m)
{
	(void)m;
	struct cairn *c = ctx;
	cairn_engine_stop(c);
	assert_int_equal(cairn_engine_step(c, NULL, 0), CAIRN_ESTATE); /* no reentry */
	return 0;
}

static void test_stop_from_callback(void **state)
{
	struct world *w = *state;
	pair(w, 1);
	assert_int_equal(cairn_send(w->a, "bob", (const uint8_t *)"stop", 4, NULL), 0);
	struct cairn_engine_callbacks cb = {.message = stop_on_message};
	assert_int_equal(cairn_engine_start(w->b, &cb, w->b), 0);
	int64_t end = it_mono_ms() + 5000;
	struct pollfd fds[4];
	size_t n = 0;
	int timeout = 0;
	while (it_mono_ms() < end && cairn_engine_fds(w->b, fds, 4, &n, &timeout) == 0) {
		assert_true(poll(fds, n, timeout < 0 || timeout > 50 ? 50 : timeout) >= 0);
		assert_int_equal(cairn_engine_step(w->b, fds, n), 0);
	}
	/* Stopped by its callback (cairn_engine_fds says it no longer runs). */
	assert_int_equal(cairn_engine_fds(w->b, fds, 4, &n, &timeout), CAIRN_ESTATE);
	assert_true(it_mono_ms() < end);
}

/*
 * No step waits on the network. Bob's mailboxes are on two relays; the second becomes a
 * blackhole (it takes the connection and never says a word, so the handshake never
 * completes). Bob's engine connects to both: every step returns within a few milliseconds,
 * the silent connection is reported down with CAIRN_ETIMEDOUT after the connect timeout, and
 * a message through the first relay arrives meanwhile.
 */
static void test_step_never_waits(void **state)
{
	struct world *w = *state;
	pair(w, 2);
	struct cairn_address hole;
	assert_int_equal(cairn_address_parse(w->addr[1], &hole), 0);
	strcpy(w->hole_host, hole.host);
	cairn_set_timeout(w->b, 1500);
	struct events ev;
	memset(&ev, 0, sizeof(ev));
	assert_int_equal(cairn_engine_start(w->b, &callbacks, &ev), 0);
	assert_int_equal(cairn_send(w->a, "bob", (const uint8_t *)"meanwhile", 9, NULL), 0);
	int64_t t0 = it_mono_ms(), slowest = 0;
	unsigned want = 1;
	assert_true(pump(w->b, &ev, got_messages, &want, 5000, &slowest));
	assert_string_equal(ev.text[0], "meanwhile");
	int64_t slow2 = 0;
	struct state_arg down = {1, CAIRN_RELAY_DOWN, 1};
	assert_true(pump(w->b, &ev, got_state, &down, 5000, &slow2));
	int64_t took = it_mono_ms() - t0;
	if (slow2 > slowest)
		slowest = slow2;
	print_message("slowest step %lld ms; blackhole reported down after %lld ms\n",
	              (long long)slowest, (long long)took);
	assert_int_equal(count_state(&ev, 1, CAIRN_RELAY_DOWN, CAIRN_ETIMEDOUT), 1);
	assert_true(took >= 1400);
	/* "A few milliseconds": generous for a loaded machine and sanitizers, far below the
	 * 1500 ms a blocking connect would spend. */
	assert_true(slowest < 200);
	cairn_engine_stop(w->b);
}

/* What the relay holds, as an until_fn argument: relay R has at least / at most N mailboxes. */
struct mailboxes_arg {
	struct memrelay *r;
	size_t n;
	bool at_most;
};

static bool got_mailboxes(const struct events *ev, const void *arg)
{
	(void)ev;
	const struct mailboxes_arg *x = arg;
	struct memrelay_stats st;
	memrelay_stats(x->r, &st);
	return x->at_most ? st.mailboxes <= x->n : st.mailboxes >= x->n;
}

/*
 * The move out of the invite mailbox (PROTOCOL.md 8.10) inside Alice's engine: once Bob has
 * answered her invite, her engine makes the fresh mailbox with CREATE and SECURE on the
 * receiving connection it already holds (no connection of its own: the relay counts only
 * the one the mailboxes message goes out on), Bob learns of it at his next sync and writes
 * there, and her engine then deletes the invite mailbox. No step takes long meanwhile.
 */
static void test_move_inside_engine(void **state)
{
	struct world *w = *state;
	char *invite = NULL;
	assert_int_equal(cairn_invite_create(w->a, w->addr, 1, "bob", &invite), 0);
	struct events ev;
	memset(&ev, 0, sizeof(ev));
	assert_int_equal(cairn_engine_start(w->a, &callbacks, &ev), 0);
	struct state_arg up = {1, CAIRN_RELAY_UP, 1};
	int64_t slowest = 0, slow = 0;
	assert_true(pump(w->a, &ev, got_state, &up, 5000, &slowest));

	assert_int_equal(cairn_invite_accept(w->b, invite, "alice", NULL, 0), 0);
	cairn_free(invite);
	assert_int_equal(cairn_send(w->b, "alice", (const uint8_t *)"before", 6, NULL), 0);
	unsigned want = 1;
	assert_true(pump(w->a, &ev, got_messages, &want, 5000, &slow));
	slowest = slow > slowest ? slow : slowest;
	struct memrelay_stats st;
	memrelay_stats(w->relay[0], &st);
	assert_int_equal(st.mailboxes, 2); /* Alice's invite mailbox, Bob's */
	unsigned conns = st.connections;

	/* Within a tick: the fresh mailbox, made on the engine's connection. */
	struct mailboxes_arg three = {w->relay[0], 3, false};
	assert_true(pump(w->a, &ev, got_mailboxes, &three, 5000, &slow));
	slowest = slow > slowest ? slow : slowest;
	/* ... and the mailboxes message on its way to Bob (the sending connection). */
	pump(w->a, &ev, got_messages, &(unsigned){2}, 500, NULL);
	memrelay_stats(w->relay[0], &st);
	assert_true(st.connections <= conns + 1);

	sync_quiet(w->b); /* Bob learns the fresh mailbox */
	assert_int_equal(cairn_send(w->b, "alice", (const uint8_t *)"after", 5, NULL), 0);
	want = 2;
	assert_true(pump(w->a, &ev, got_messages, &want, 5000, &slow));
	slowest = slow > slowest ? slow : slowest;
	assert_string_equal(ev.text[1], "after");
	/* Bob wrote to the fresh one: the invite mailbox goes once drained. */
	struct mailboxes_arg two = {w->relay[0], 2, true};
	assert_true(pump(w->a, &ev, got_mailboxes, &two, 5000, &slow));
	slowest = slow > slowest ? slow : slowest;
	print_message("slowest step during the move: %lld ms\n", (long long)slowest);
	assert_true(slowest < 200);
	assert_int_equal(ev.messages, 2);
	cairn_engine_stop(w->a);
	/* Both still talk. */
	assert_int_equal(cairn_send(w->a, "bob", (const uint8_t *)"still", 5, NULL), 0);
	struct cairn_sync_result res;
	assert_int_equal(cairn_sync(w->b, &res, NULL, NULL), 0);
	assert_int_equal(res.received, 1);
}

/* ---- contrib/libuv-embed ----------------------------------------------------------------- */

struct uvtest {
	struct uvembed *u;
	uv_timer_t guard; /* fails the test rather than hang it */
	struct events ev;
	bool timed_out;
};

static int uv_on_message(void *ctx, const struct cairn_message *m)
{
	struct uvtest *t = ctx;
	on_message(&t->ev, m);
	if (t->ev.messages == 1) {
		uvembed_stop(t->u); /* from inside the engine's callback: deferred */
		uv_close((uv_handle_t *)&t->guard, NULL);
	}
	return 0;
}

static void uv_on_relay(void *ctx, const struct cairn_relay_event *e)
{
	struct uvtest *t = ctx;
	on_relay(&t->ev, e);
}

static void uv_on_guard(uv_timer_t *h)
{
	struct uvtest *t = h->data;
	t->timed_out = true;
	uvembed_stop(t->u);
	uv_close((uv_handle_t *)&t->guard, NULL);
}

/* Bob listens inside a libuv loop; Alice's message, sent while the loop runs, arrives once;
 * the embedding stops from its message callback, and the loop closes with nothing left. */
static void test_libuv_embed(void **state)
{
	struct world *w = *state;
	pair(w, 1);
	assert_int_equal(cairn_send(w->a, "bob", (const uint8_t *)"through libuv", 13, NULL), 0);
	uv_loop_t loop;
	assert_int_equal(uv_loop_init(&loop), 0);
	struct uvtest t;
	memset(&t, 0, sizeof(t));
	struct cairn_engine_callbacks cb = {.message = uv_on_message, .relay = uv_on_relay};
	int rc = 0;
	t.u = uvembed_start(&loop, w->b, &cb, &t, &rc);
	assert_non_null(t.u);
	assert_int_equal(rc, 0);
	assert_int_equal(uv_timer_init(&loop, &t.guard), 0);
	t.guard.data = &t;
	assert_int_equal(uv_timer_start(&t.guard, uv_on_guard, 10000, 0), 0);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_false(t.timed_out);
	assert_int_equal(t.ev.messages, 1);
	assert_string_equal(t.ev.text[0], "through libuv");
	assert_int_equal(count_state(&t.ev, 1, CAIRN_RELAY_UP, 0), 1);
	assert_int_equal(uv_loop_close(&loop), 0); /* every handle closed */
	/* The engine stopped with the embedding: the blocking calls work again. */
	sync_quiet(w->b);
}

int main(void)
{
	setenv("CAIRN_PWHASH_FAST", "1", 1); /* homes made in milliseconds, not seconds */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_listen_through_engine, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_queue_reported_sent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stop_from_callback, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_step_never_waits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_move_inside_engine, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_libuv_embed, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
