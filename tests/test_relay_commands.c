/* SPDX-License-Identifier: MIT */
/*
 * Mailbox semantics (docs/PROTOCOL.md section 5) in-process: the relay's command layer driven
 * through its handler table (port.h) by connections that have no socket, against the in-memory
 * storage engine (relay/memstorage.c, put in struct relay in place of the storage thread),
 * with the relay's clock injected. Each test takes every step
 * itself: a storage batch runs only when the test says so, AUTH's signature check runs inline,
 * and time moves only when the test moves it. So the races the real relay has (an ACK before
 * the write was taken, a failing commit) are set up exactly, not hoped for.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "commands.h"
#include "envelope.h"
#include "memstorage.h"
#include "port.h"
#include "relay.h"

#define START_TIME  1767225600
#define TTL_S       3600
#define WINDOW      4
#define MAX_ENV     16
#define REPLIES_MAX 512

/* ---- fake connections ---------------------------------------------------------------------- */

/* One reply as the connection would have encoded it, with the bytes it points at copied. */
struct reply {
	uint8_t type;
	uint32_t request_id;
	uint32_t code;
	uint64_t envelope_id;
	uint8_t recipient_id[CAIRN_MAILBOX_ID_LEN];
	uint8_t sender_id[CAIRN_MAILBOX_ID_LEN];
	uint8_t body[64];
	size_t body_len;
};

/* The command layer sees struct conn only as an opaque pointer: this is the test's own. */
struct conn {
	void *peer;
	unsigned refs;
	bool open;
	bool full; /* output over its soft limit: no deliveries */
	uint8_t hash[CAIRN_HASH_LEN];
	struct reply replies[REPLIES_MAX];
	size_t n, seen;
};

static struct relay *relay;
static struct relay_config cfg;
static uv_loop_t loop;
static int64_t now_s, now_ms; /* the relay's wall clock and its monotonic milliseconds */

static int64_t test_clock(void *ctx)
{
	(void)ctx;
	return now_s;
}

static int64_t test_clock_ms(void *ctx)
{
	(void)ctx;
	return now_ms;
}

static void fake_reply(struct conn *c, const struct cairn_msg *m)
{
	if (!c->open)
		return;
	assert_true(c->n < REPLIES_MAX);
	struct reply *r = &c->replies[c->n++];
	memset(r, 0, sizeof(*r));
	r->type = m->type;
	r->request_id = m->request_id;
	r->code = m->code;
	r->envelope_id = m->envelope_id;
	if (m->recipient_id != NULL)
		memcpy(r->recipient_id, m->recipient_id, CAIRN_MAILBOX_ID_LEN);
	if (m->sender_id != NULL)
		memcpy(r->sender_id, m->sender_id, CAIRN_MAILBOX_ID_LEN);
	if (m->envelope != NULL) {
		assert_true(m->envelope_len <= sizeof(r->body));
		memcpy(r->body, m->envelope, m->envelope_len);
		r->body_len = m->envelope_len;
	}
}

static bool fake_can_deliver(const struct conn *c)
{
	return c->open && !c->full;
}

static void fake_ref(struct conn *c)
{
	c->refs++;
}

static void fake_unref(struct conn *c)
{
	assert_true(c->refs > 0);
	if (--c->refs > 0)
		return;
	commands_handler.free(c->peer);
	free(c);
}

/* The inline executor: what the thread pool would do, at once and on this thread. */
static void fake_defer(struct conn *c, struct conn_task *t)
{
	t->conn = c;
	fake_ref(c);
	t->run(t);
	t->done(t, !c->open);
	fake_unref(c);
}

static const uint8_t *fake_hash(const struct conn *c)
{
	return c->hash;
}

static const struct conn_port fake_port = {
    .reply = fake_reply,
    .can_deliver = fake_can_deliver,
    .ref = fake_ref,
    .unref = fake_unref,
    .defer = fake_defer,
    .handshake_hash = fake_hash,
};

static struct conn *conn_open(void)
{
	struct conn *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	c->refs = 1; /* the "open handle" */
	c->open = true;
	randombytes_buf(c->hash, sizeof(c->hash));
	c->peer = commands_handler.open(relay, c);
	assert_non_null(c->peer);
	return c;
}

static void conn_close(struct conn *c)
{
	if (!c->open)
		return;
	commands_handler.closed(c->peer);
	c->open = false;
	fake_unref(c);
}

/* Runs storage batches until nothing is queued (done() callbacks may queue more). */
static void settle(void)
{
	while (memstorage_run_batch(relay->storage, false) > 0)
		;
}

/* The next reply C has not looked at, or NULL. */
static struct reply *next_reply(struct conn *c)
{
	return c->seen < c->n ? &c->replies[c->seen++] : NULL;
}

static void expect_ok(struct conn *c, uint32_t rid)
{
	struct reply *r = next_reply(c);
	assert_non_null(r);
	assert_int_equal(r->request_id, rid);
	assert_int_equal(r->type, CAIRN_REPLY_OK);
}

static void expect_error(struct conn *c, uint32_t rid, int code)
{
	struct reply *r = next_reply(c);
	assert_non_null(r);
	assert_int_equal(r->request_id, rid);
	assert_int_equal(r->type, CAIRN_REPLY_ERROR);
	assert_int_equal(r->code, (uint32_t)-code);
}

static void expect_nothing(struct conn *c)
{
	assert_int_equal(c->seen, c->n);
}

/* An envelope delivered to C, with the body "env-N": returns N. */
static int expect_envelope(struct conn *c, uint32_t sub_rid, uint64_t *id)
{
	struct reply *r = next_reply(c);
	assert_non_null(r);
	assert_int_equal(r->type, CAIRN_REPLY_ENVELOPE);
	assert_int_equal(r->request_id, sub_rid);
	int n = -1;
	char text[65];
	memcpy(text, r->body, r->body_len);
	text[r->body_len] = '\0';
	assert_int_equal(sscanf(text, "env-%d", &n), 1);
	if (id != NULL)
		*id = r->envelope_id;
	return n;
}

/* ---- commands ----------------------------------------------------------------------------- */

static void command(struct conn *c, const struct cairn_msg *m)
{
	commands_handler.command(c->peer, m);
}

struct box {
	uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	uint8_t recipient_id[CAIRN_MAILBOX_ID_LEN], sender_id[CAIRN_MAILBOX_ID_LEN];
};

/* CREATE on C (which may then manage the mailbox) and wait until it is durable. */
static void create(struct conn *c, struct box *b)
{
	crypto_sign_keypair(b->pk, b->sk);
	struct cairn_msg m = {.type = CAIRN_CMD_CREATE, .request_id = 1, .recipient_key = b->pk};
	command(c, &m);
	expect_nothing(c); /* CREATED only once it is on disk */
	settle();
	struct reply *r = next_reply(c);
	assert_non_null(r);
	assert_int_equal(r->type, CAIRN_REPLY_CREATED);
	memcpy(b->recipient_id, r->recipient_id, CAIRN_MAILBOX_ID_LEN);
	memcpy(b->sender_id, r->sender_id, CAIRN_MAILBOX_ID_LEN);
}

static void auth(struct conn *c, const struct box *b, uint32_t rid, bool right_key)
{
	uint8_t msg[12 + CAIRN_HASH_LEN + CAIRN_MAILBOX_ID_LEN], sig[CAIRN_SIGNATURE_LEN];
	memcpy(msg, "cairn/1 auth", 12);
	memcpy(msg + 12, c->hash, CAIRN_HASH_LEN);
	memcpy(msg + 12 + CAIRN_HASH_LEN, b->recipient_id, CAIRN_MAILBOX_ID_LEN);
	uint8_t other_pk[crypto_sign_PUBLICKEYBYTES], other_sk[crypto_sign_SECRETKEYBYTES];
	crypto_sign_keypair(other_pk, other_sk);
	crypto_sign_detached(sig, NULL, msg, sizeof(msg), right_key ? b->sk : other_sk);
	struct cairn_msg m = {.type = CAIRN_CMD_AUTH,
	                      .request_id = rid,
	                      .recipient_id = b->recipient_id,
	                      .signature = sig};
	command(c, &m);
}

static void send_env(struct conn *c, const struct box *b, uint32_t rid, int n,
                     const uint8_t *credential)
{
	char body[32];
	int len = snprintf(body, sizeof(body), "env-%d", n);
	struct cairn_msg m = {.type = CAIRN_CMD_SEND,
	                      .request_id = rid,
	                      .sender_id = b->sender_id,
	                      .credential = credential,
	                      .envelope = (const uint8_t *)body,
	                      .envelope_len = (size_t)len};
	command(c, &m);
}

static void on_mailbox(struct conn *c, uint8_t type, const struct box *b, uint32_t rid,
                       uint64_t envelope_id)
{
	struct cairn_msg m = {.type = type,
	                      .request_id = rid,
	                      .recipient_id = b->recipient_id,
	                      .envelope_id = envelope_id};
	command(c, &m);
}

/* ---- fixture ------------------------------------------------------------------------------ */

static void on_ready(struct relay *r)
{
	r->ready = true;
}

static int setup(void **state)
{
	(void)state;
	relay_config_defaults(&cfg);
	cfg.ttl_s = TTL_S;
	cfg.delivery_window = WINDOW;
	cfg.mailbox_max_envelopes = MAX_ENV;
	cfg.mailboxes_per_connection = 4;
	cfg.inflight_requests = 64;
	if (uv_loop_init(&loop) != 0)
		return -1;
	relay = calloc(1, sizeof(*relay));
	if (relay == NULL)
		return -1;
	now_s = START_TIME;
	now_ms = 1000000;
	relay->loop = &loop;
	relay->cfg = &cfg;
	relay->clock.now = test_clock;
	relay->clock.now_ms = test_clock_ms;
	relay->port = &fake_port;
	if (mailbox_index_init(&relay->mailboxes) != 0 ||
	    (relay->storage = memstorage_new()) == NULL)
		return -1;
	commands_load_finish(relay, on_ready);
	settle(); /* the first block of envelope ids is reserved */
	return relay->ready ? 0 : -1;
}

static struct conn *conns[8];
static size_t n_conns;

/* A connection the fixture closes at the end. */
static struct conn *open_conn(void)
{
	assert_true(n_conns < sizeof(conns) / sizeof(conns[0]));
	struct conn *c = conn_open();
	fake_ref(c); /* the fixture's, so it may look at C after it closed */
	conns[n_conns++] = c;
	return c;
}

static void on_storage_closed(void *arg)
{
	commands_shutdown(arg);
}

static int teardown(void **state)
{
	(void)state;
	relay->stopping = true;
	storage_close(relay->storage, on_storage_closed, relay);
	relay->storage = NULL;
	for (size_t i = 0; i < n_conns; i++) {
		conn_close(conns[i]);
		fake_unref(conns[i]);
	}
	n_conns = 0;
	assert_null(relay->peers);
	mailbox_index_free(&relay->mailboxes);
	free(relay->marks);
	free(relay);
	relay = NULL;
	uv_loop_close(&loop);
	return 0;
}

/* ---- the tests ---------------------------------------------------------------------------- */

/* AUTH needs the mailbox's key over this connection's handshake hash; a wrong key and a
 * mailbox that does not exist get the same answer, and neither grants anything. */
static void test_auth(void **state)
{
	(void)state;
	struct conn *owner = open_conn(), *other = open_conn();
	struct box b, nowhere;
	create(owner, &b);
	memset(&nowhere, 0, sizeof(nowhere));
	crypto_sign_keypair(nowhere.pk, nowhere.sk);
	randombytes_buf(nowhere.recipient_id, sizeof(nowhere.recipient_id));

	on_mailbox(other, CAIRN_CMD_SUBSCRIBE, &b, 2, 0);
	expect_error(other, 2, CAIRN_EDENIED);
	auth(other, &b, 3, false);
	expect_error(other, 3, CAIRN_EDENIED);
	auth(other, &nowhere, 4, true);
	expect_error(other, 4, CAIRN_EDENIED);
	on_mailbox(other, CAIRN_CMD_SUBSCRIBE, &b, 5, 0);
	expect_error(other, 5, CAIRN_EDENIED);
	auth(other, &b, 6, true);
	expect_ok(other, 6);
	on_mailbox(other, CAIRN_CMD_SUBSCRIBE, &b, 7, 0);
	expect_ok(other, 7);
	/* The creator manages it without an AUTH. */
	on_mailbox(owner, CAIRN_CMD_SUBSCRIBE, &b, 8, 0);
	expect_ok(owner, 8);
	/* ... and took the subscription over: the other one is told it ended. */
	struct reply *r = next_reply(other);
	assert_non_null(r);
	assert_int_equal(r->type, CAIRN_REPLY_END);
	assert_int_equal(r->request_id, 7);
}

/* An offline mailbox: the sender's OK waits for the disk; the owner later gets every
 * envelope, in order, at most a window at a time, the bodies read back from the store. */
static void test_windowed_in_order_delivery(void **state)
{
	(void)state;
	struct conn *owner = open_conn(), *sender = open_conn();
	struct box b;
	create(owner, &b);
	for (int i = 0; i < 10; i++)
		send_env(sender, &b, 100 + (uint32_t)i, i, NULL);
	expect_nothing(sender);
	settle();
	for (int i = 0; i < 10; i++)
		expect_ok(sender, 100 + (uint32_t)i);
	assert_int_equal(memstorage_envelopes(relay->storage), 10);

	on_mailbox(owner, CAIRN_CMD_SUBSCRIBE, &b, 9, 0);
	expect_ok(owner, 9);
	settle(); /* the bodies are read back */
	uint64_t ids[10];
	for (int i = 0; i < WINDOW; i++)
		assert_int_equal(expect_envelope(owner, 9, &ids[i]), i);
	expect_nothing(owner); /* the window is full */
	for (int i = 1; i < WINDOW; i++)
		assert_true(ids[i] > ids[i - 1]);

	/* Each ACK opens the window by one. */
	on_mailbox(owner, CAIRN_CMD_ACK, &b, 20, ids[0]);
	expect_ok(owner, 20);
	settle();
	assert_int_equal(expect_envelope(owner, 9, &ids[WINDOW]), WINDOW);
	expect_nothing(owner);
	/* Bodies already in memory are delivered as the window opens, between the OKs. */
	for (int i = 1; i <= WINDOW; i++)
		on_mailbox(owner, CAIRN_CMD_ACK, &b, 20 + (uint32_t)i, ids[i]);
	settle();
	int oks = 0, next = WINDOW + 1;
	for (struct reply *r; (r = next_reply(owner)) != NULL;) {
		if (r->type == CAIRN_REPLY_OK) {
			assert_int_equal(r->request_id, 21 + (uint32_t)oks++);
		} else {
			owner->seen--;
			assert_int_equal(expect_envelope(owner, 9, NULL), next++);
		}
	}
	assert_int_equal(oks, WINDOW);
	assert_int_equal(next, 2 * WINDOW + 1);
	assert_int_equal(relay->stats.envelopes_acknowledged, WINDOW + 1);

	/* Unacknowledged envelopes are delivered again to the next subscription. */
	conn_close(owner);
	struct conn *again = open_conn();
	auth(again, &b, 30, true);
	expect_ok(again, 30);
	on_mailbox(again, CAIRN_CMD_SUBSCRIBE, &b, 31, 0);
	expect_ok(again, 31);
	settle();
	for (int i = WINDOW + 1; i < 2 * WINDOW + 1; i++)
		assert_int_equal(expect_envelope(again, 31, NULL), i);
	expect_nothing(again);
}

/* An online owner acknowledges before the write was taken: the write is cancelled, the
 * sender is answered at once, and nothing reaches the store. */
static void test_ack_before_durable_cancels_write(void **state)
{
	(void)state;
	struct conn *owner = open_conn(), *sender = open_conn();
	struct box b;
	create(owner, &b);
	on_mailbox(owner, CAIRN_CMD_SUBSCRIBE, &b, 2, 0);
	expect_ok(owner, 2);

	send_env(sender, &b, 50, 7, NULL);
	expect_nothing(sender);
	uint64_t id = 0;
	assert_int_equal(expect_envelope(owner, 2, &id), 7); /* before it is durable */
	on_mailbox(owner, CAIRN_CMD_ACK, &b, 3, id);
	expect_ok(owner, 3);
	expect_ok(sender, 50); /* no batch has run */
	assert_int_equal(relay->stats.writes_cancelled, 1);
	settle();
	assert_int_equal(memstorage_envelopes(relay->storage), 0);
	expect_nothing(sender);

	/* Acknowledged after it became durable: deleted from the store instead. */
	send_env(sender, &b, 51, 8, NULL);
	assert_int_equal(expect_envelope(owner, 2, &id), 8);
	settle();
	expect_ok(sender, 51);
	assert_int_equal(memstorage_envelopes(relay->storage), 1);
	on_mailbox(owner, CAIRN_CMD_ACK, &b, 4, id);
	expect_ok(owner, 4);
	settle();
	assert_int_equal(memstorage_envelopes(relay->storage), 0);
	assert_int_equal(relay->stats.writes_cancelled, 1);
}

/* A mailbox holds at most mailbox_max_envelopes; a failed commit accepts nothing. */
static void test_quota_and_storage_failure(void **state)
{
	(void)state;
	struct conn *owner = open_conn(), *sender = open_conn();
	struct box b;
	create(owner, &b);
	for (int i = 0; i < MAX_ENV; i++)
		send_env(sender, &b, 100 + (uint32_t)i, i, NULL);
	send_env(sender, &b, 200, 99, NULL);
	expect_error(sender, 200, CAIRN_EQUOTA);
	settle();
	for (int i = 0; i < MAX_ENV; i++)
		expect_ok(sender, 100 + (uint32_t)i);

	struct box c;
	create(owner, &c);
	send_env(sender, &c, 300, 1, NULL);
	assert_int_equal(memstorage_run_batch(relay->storage, true), 1);
	expect_error(sender, 300, CAIRN_ESTORAGE);
	/* Not stored, so not queued: a subscriber gets nothing. */
	on_mailbox(owner, CAIRN_CMD_SUBSCRIBE, &c, 301, 0);
	expect_ok(owner, 301);
	settle();
	expect_nothing(owner);
}

/* SECURE: from then on a SEND needs the credential; DELETE removes the mailbox. */
static void test_secure_and_delete(void **state)
{
	(void)state;
	struct conn *owner = open_conn(), *sender = open_conn();
	struct box b;
	create(owner, &b);
	uint8_t cred[CAIRN_CREDENTIAL_LEN], wrong[CAIRN_CREDENTIAL_LEN];
	uint8_t digest[CAIRN_CREDENTIAL_LEN];
	randombytes_buf(cred, sizeof(cred));
	randombytes_buf(wrong, sizeof(wrong));
	crypto_generichash(digest, sizeof(digest), cred, sizeof(cred), b.sender_id,
	                   CAIRN_MAILBOX_ID_LEN);
	struct cairn_msg m = {.type = CAIRN_CMD_SECURE,
	                      .request_id = 2,
	                      .recipient_id = b.recipient_id,
	                      .credential = digest};
	command(sender, &m);
	expect_error(sender, 2, CAIRN_EDENIED); /* not its mailbox */
	command(owner, &m);
	settle();
	expect_ok(owner, 2);

	send_env(sender, &b, 10, 1, NULL);
	expect_error(sender, 10, CAIRN_EDENIED);
	send_env(sender, &b, 11, 1, wrong);
	expect_error(sender, 11, CAIRN_EDENIED);
	send_env(sender, &b, 12, 1, cred);
	settle();
	expect_ok(sender, 12);

	on_mailbox(owner, CAIRN_CMD_SUBSCRIBE, &b, 3, 0);
	expect_ok(owner, 3);
	settle(); /* its body is read back */
	assert_int_equal(expect_envelope(owner, 3, NULL), 1);
	on_mailbox(owner, CAIRN_CMD_DELETE, &b, 4, 0);
	struct reply *r = next_reply(owner);
	assert_non_null(r);
	assert_int_equal(r->type, CAIRN_REPLY_END); /* the subscription ends: code 0, deleted */
	assert_int_equal(r->code, 0);
	expect_nothing(owner); /* OK once the delete is durable */
	settle();
	expect_ok(owner, 4);
	assert_int_equal(memstorage_envelopes(relay->storage), 0);
	send_env(sender, &b, 13, 2, cred);
	expect_error(sender, 13, CAIRN_EDENIED);
	on_mailbox(owner, CAIRN_CMD_SUBSCRIBE, &b, 5, 0);
	expect_error(owner, 5, CAIRN_EDENIED);
}

/* Envelopes older than the TTL expire by the relay's clock, in memory and on disk; an envelope
 * younger than that stays. */
static void test_ttl_expiry(void **state)
{
	(void)state;
	struct conn *owner = open_conn(), *sender = open_conn();
	struct box b;
	create(owner, &b);
	send_env(sender, &b, 10, 1, NULL);
	settle();
	expect_ok(sender, 10);
	now_s += TTL_S / 2;
	send_env(sender, &b, 11, 2, NULL);
	settle();
	expect_ok(sender, 11);

	/* Not yet: expiry is late, never early. */
	commands_expire(relay, now_s);
	settle();
	assert_int_equal(relay->stats.envelopes_expired, 0);
	now_s += TTL_S / 2 + 2 * (TTL_S / 1000 + 1);
	commands_expire(relay, now_s);
	settle();
	assert_int_equal(relay->stats.envelopes_expired, 1);
	assert_int_equal(relay->stats.mailboxes_expired, 0); /* a SEND touched it */
	assert_int_equal(memstorage_envelopes(relay->storage), 1);

	on_mailbox(owner, CAIRN_CMD_SUBSCRIBE, &b, 12, 0);
	expect_ok(owner, 12);
	settle();
	assert_int_equal(expect_envelope(owner, 12, NULL), 2);
	expect_nothing(owner);
}

/* A mailbox nobody touched for the TTL expires with its envelopes; one whose owner is
 * subscribed does not. */
static void test_idle_mailbox_expiry(void **state)
{
	(void)state;
	struct conn *owner = open_conn(), *sender = open_conn();
	struct box idle, online;
	create(owner, &idle);
	create(owner, &online);
	send_env(sender, &idle, 10, 1, NULL);
	settle();
	expect_ok(sender, 10);
	on_mailbox(owner, CAIRN_CMD_SUBSCRIBE, &online, 11, 0);
	expect_ok(owner, 11);

	now_s += TTL_S + 2 * (TTL_S / 1000 + 1);
	commands_expire(relay, now_s);
	settle();
	assert_int_equal(relay->stats.mailboxes_expired, 1);
	assert_int_equal(relay->mailboxes.count, 1);
	assert_int_equal(memstorage_envelopes(relay->storage), 0);
	send_env(sender, &idle, 12, 2, NULL);
	expect_error(sender, 12, CAIRN_EDENIED);
	send_env(sender, &online, 13, 3, NULL);
	assert_int_equal(expect_envelope(owner, 11, NULL), 3);
	settle();
	expect_ok(sender, 13);
}

/* Limits of one connection: mailboxes it manages, its CREATE budget, and a connection whose
 * output is full gets no deliveries until it drains. */
static void test_connection_limits(void **state)
{
	(void)state;
	struct conn *owner = open_conn(), *sender = open_conn();
	struct box b[4];
	for (int i = 0; i < 4; i++)
		create(owner, &b[i]);
	struct cairn_msg m = {.type = CAIRN_CMD_CREATE, .request_id = 9, .recipient_key = b[0].pk};
	command(owner, &m);
	expect_error(owner, 9, CAIRN_ELIMIT); /* mailboxes_per_connection */

	owner->full = true;
	on_mailbox(owner, CAIRN_CMD_SUBSCRIBE, &b[0], 10, 0);
	expect_ok(owner, 10);
	send_env(sender, &b[0], 20, 1, NULL);
	expect_nothing(owner);
	owner->full = false;
	commands_handler.drained(owner->peer);
	assert_int_equal(expect_envelope(owner, 10, NULL), 1);
	settle();
	expect_ok(sender, 20);

	/* PING is answered whatever else the connection has in flight. */
	struct cairn_msg ping = {.type = CAIRN_CMD_PING, .request_id = 30};
	command(sender, &ping);
	expect_ok(sender, 30);
	/* A reply type is not a command. */
	struct cairn_msg bogus = {.type = CAIRN_REPLY_OK, .request_id = 31};
	command(sender, &bogus);
	expect_error(sender, 31, CAIRN_EUNKNOWN);
}

/* SECURE of B's mailbox on C with a fresh credential digest: answered at once only when it
 * is refused. */
static void secure(struct conn *c, const struct box *b, uint32_t rid)
{
	uint8_t digest[CAIRN_CREDENTIAL_LEN];
	randombytes_buf(digest, sizeof(digest));
	struct cairn_msg m = {.type = CAIRN_CMD_SECURE,
	                      .request_id = rid,
	                      .recipient_id = b->recipient_id,
	                      .credential = digest};
	command(c, &m);
}

/* The CREATE/SECURE budget is a token bucket on the relay's monotonic clock: spent, it
 * refuses with CAIRN_ELIMIT until the injected clock has moved far enough, and it never
 * refills past create_burst. */
static void test_create_budget_refills(void **state)
{
	(void)state;
	cfg.create_burst = 2;
	cfg.create_per_minute = 60; /* a token a second */
	struct conn *owner = open_conn();
	struct box b;
	create(owner, &b); /* one token */
	secure(owner, &b, 10);
	settle();
	expect_ok(owner, 10); /* the second */
	secure(owner, &b, 11);
	expect_error(owner, 11, CAIRN_ELIMIT);

	now_ms += 999; /* not yet a whole token */
	secure(owner, &b, 12);
	expect_error(owner, 12, CAIRN_ELIMIT);
	now_ms += 1;
	secure(owner, &b, 13);
	settle();
	expect_ok(owner, 13);
	secure(owner, &b, 14);
	expect_error(owner, 14, CAIRN_ELIMIT);

	/* A long pause refills the burst, no more. */
	now_ms += 10 * 60 * 1000;
	for (uint32_t rid = 15; rid < 17; rid++) {
		secure(owner, &b, rid);
		settle();
		expect_ok(owner, rid);
	}
	secure(owner, &b, 17);
	expect_error(owner, 17, CAIRN_ELIMIT);
	/* The wall clock is not the budget's clock. */
	now_s += 3600;
	secure(owner, &b, 18);
	expect_error(owner, 18, CAIRN_ELIMIT);
	expect_nothing(owner);
}

/* ---- an envelope's states (envelope.h) --------------------------------------------------- */

/* A mailbox owned by a fresh connection, subscribed (rid 2) unless OFFLINE, and a sender. */
static void online_pair(struct conn **owner, struct conn **sender, struct box *b, bool offline)
{
	*owner = open_conn();
	*sender = open_conn();
	create(*owner, b);
	if (!offline) {
		on_mailbox(*owner, CAIRN_CMD_SUBSCRIBE, b, 2, 0);
		expect_ok(*owner, 2);
	}
}

/* WRITING, its PUT queued (the owner was offline, so it was not held back): an ACK before the
 * storage takes it cancels it, the sender is answered at once and nothing is stored. */
static void test_ack_of_queued_write_cancels(void **state)
{
	(void)state;
	struct conn *owner, *sender;
	struct box b;
	online_pair(&owner, &sender, &b, true);
	send_env(sender, &b, 50, 1, NULL);
	on_mailbox(owner, CAIRN_CMD_SUBSCRIBE, &b, 3, 0);
	expect_ok(owner, 3);
	uint64_t id = 0;
	assert_int_equal(expect_envelope(owner, 3, &id), 1); /* from memory, not yet durable */
	expect_nothing(sender);
	on_mailbox(owner, CAIRN_CMD_ACK, &b, 4, id);
	expect_ok(owner, 4);
	expect_ok(sender, 50);
	assert_int_equal(relay->stats.writes_cancelled, 1);
	settle();
	assert_int_equal(memstorage_envelopes(relay->storage), 0);
	expect_nothing(sender);
}

/* WRITING_ACKED: acknowledged after the storage took its PUT. The ACK is answered at once;
 * the sender's OK waits for the commit, and the DELETE follows it. WRITING_LEFT: its mailbox
 * deleted while the PUT was taken; the mailbox's removal on disk follows the PUT. */
static void test_ack_of_taken_write_deletes_after_commit(void **state)
{
	(void)state;
	struct conn *owner, *sender;
	struct box b;
	online_pair(&owner, &sender, &b, false);
	send_env(sender, &b, 50, 1, NULL);
	uint64_t id = 0;
	assert_int_equal(expect_envelope(owner, 2, &id), 1);
	assert_int_equal(memstorage_take_batch(relay->storage), 1); /* the held PUT */
	on_mailbox(owner, CAIRN_CMD_ACK, &b, 3, id);
	expect_ok(owner, 3);
	expect_nothing(sender); /* not cancelled: it is being written */
	assert_int_equal(relay->stats.writes_cancelled, 0);
	assert_int_equal(memstorage_run_batch(relay->storage, false), 1);
	expect_ok(sender, 50);
	assert_int_equal(memstorage_envelopes(relay->storage), 1);
	settle(); /* the DELETE */
	assert_int_equal(memstorage_envelopes(relay->storage), 0);

	send_env(sender, &b, 51, 2, NULL);
	assert_int_equal(expect_envelope(owner, 2, NULL), 2);
	assert_int_equal(memstorage_take_batch(relay->storage), 1);
	on_mailbox(owner, CAIRN_CMD_DELETE, &b, 4, 0);
	struct reply *r = next_reply(owner);
	assert_non_null(r);
	assert_int_equal(r->type, CAIRN_REPLY_END);
	expect_nothing(sender);
	assert_int_equal(memstorage_run_batch(relay->storage, false), 1);
	expect_ok(sender, 51);
	expect_nothing(owner); /* the mailbox's removal is not durable yet */
	settle();
	expect_ok(owner, 4);
	assert_int_equal(memstorage_envelopes(relay->storage), 0);
	assert_int_equal(relay->stats.writes_cancelled, 0);
}

/* STORED -> EVICTED -> READING -> STORED with an online owner: once durable, a body more than
 * two windows past the delivery cursor is dropped from memory and read back when delivery
 * nears it; the ones nearer are delivered from memory. */
static void test_eviction_and_read_back(void **state)
{
	(void)state;
	struct conn *owner, *sender;
	struct box b;
	online_pair(&owner, &sender, &b, false);
	const int n = 3 * WINDOW + 1;
	for (int i = 0; i < n; i++)
		send_env(sender, &b, 100 + (uint32_t)i, i, NULL);
	uint64_t ids[3 * WINDOW + 1];
	for (int i = 0; i < WINDOW; i++)
		assert_int_equal(expect_envelope(owner, 2, &ids[i]), i);
	expect_nothing(owner);
	settle(); /* every PUT durable: the last one is past two windows, and evicted */
	for (int i = 0; i < n; i++)
		expect_ok(sender, 100 + (uint32_t)i);
	assert_int_equal(memstorage_envelopes(relay->storage), (size_t)n);

	/* Two windows come from memory with no batch run; the last needs a read. */
	for (int w = 0; w < 3; w++) {
		for (int i = w * WINDOW; i < (w + 1) * WINDOW; i++) {
			on_mailbox(owner, CAIRN_CMD_ACK, &b, 200 + (uint32_t)i, ids[i]);
			expect_ok(owner, 200 + (uint32_t)i);
			if (w < 2)
				assert_int_equal(expect_envelope(owner, 2, &ids[i + WINDOW]),
				                 i + WINDOW);
		}
	}
	expect_nothing(owner);
	settle(); /* the read, and the DELETEs */
	uint64_t last = 0;
	assert_int_equal(expect_envelope(owner, 2, &last), n - 1);
	on_mailbox(owner, CAIRN_CMD_ACK, &b, 300, last);
	expect_ok(owner, 300);
	settle();
	assert_int_equal(memstorage_envelopes(relay->storage), 0);
	expect_nothing(owner);
}

/* Ends OWNER's connection (its bodies dropped) and subscribes again (rid 41) from a new one:
 * a read is queued for every stored envelope within two windows. */
static struct conn *resubscribe(struct conn *owner, const struct box *b)
{
	conn_close(owner);
	struct conn *c = open_conn();
	auth(c, b, 40, true);
	expect_ok(c, 40);
	on_mailbox(c, CAIRN_CMD_SUBSCRIBE, b, 41, 0);
	expect_ok(c, 41);
	expect_nothing(c); /* the bodies are being read */
	return c;
}

/* READING: an ACK takes a queued read back (DELETING); an ACK of a read already taken waits
 * for it (READING_ACKED) and the body is not delivered; a mailbox deleted while a read is
 * taken (READING_LEFT) frees the envelope when the read is done. */
static void test_ack_while_reading(void **state)
{
	(void)state;
	struct conn *owner, *sender;
	struct box b;
	online_pair(&owner, &sender, &b, true);
	for (int i = 0; i < 3; i++)
		send_env(sender, &b, 100 + (uint32_t)i, i, NULL);
	settle();
	on_mailbox(owner, CAIRN_CMD_SUBSCRIBE, &b, 3, 0);
	expect_ok(owner, 3);
	settle();
	uint64_t ids[3];
	for (int i = 0; i < 3; i++)
		assert_int_equal(expect_envelope(owner, 3, &ids[i]), i);

	struct conn *c = resubscribe(owner, &b);
	on_mailbox(c, CAIRN_CMD_ACK, &b, 42, ids[0]); /* its read still queued */
	expect_ok(c, 42);
	assert_true(memstorage_take_batch(relay->storage) >= 2); /* two reads, a DELETE */
	on_mailbox(c, CAIRN_CMD_ACK, &b, 43, ids[1]);            /* its read taken */
	expect_ok(c, 43);
	memstorage_run_batch(relay->storage, false);
	assert_int_equal(expect_envelope(c, 41, NULL), 2); /* not 1: acknowledged */
	expect_nothing(c);
	settle();
	assert_int_equal(memstorage_envelopes(relay->storage), 1);

	c = resubscribe(c, &b);
	assert_true(memstorage_take_batch(relay->storage) >= 1);
	on_mailbox(c, CAIRN_CMD_DELETE, &b, 44, 0);
	struct reply *r = next_reply(c);
	assert_non_null(r);
	assert_int_equal(r->type, CAIRN_REPLY_END);
	memstorage_run_batch(relay->storage, false);
	expect_nothing(c);
	settle();
	expect_ok(c, 44);
	assert_int_equal(memstorage_envelopes(relay->storage), 0);
}

/* The table of envelope.h: a few steps it allows and refuses, and no way out of a final
 * state. */
static void test_envelope_steps(void **state)
{
	(void)state;
	assert_true(envelope_step_legal(ENV_NEW, ENV_WRITING));
	assert_true(envelope_step_legal(ENV_WRITING, ENV_CANCELLED));
	assert_true(envelope_step_legal(ENV_WRITING_ACKED, ENV_DELETING));
	assert_true(envelope_step_legal(ENV_STORED, ENV_EVICTED));
	assert_false(envelope_step_legal(ENV_STORED, ENV_WRITING));
	assert_false(envelope_step_legal(ENV_STORED, ENV_CANCELLED)); /* it is on disk */
	assert_false(envelope_step_legal(ENV_DELETING, ENV_STORED));
	assert_false(envelope_step_legal(ENV_WRITING_ACKED, ENV_GONE)); /* the DELETE is due */
	assert_false(envelope_step_legal(ENV_NEW, ENV_STATES));
	for (int from = ENV_CANCELLED; from < ENV_STATES; from++)
		for (int to = 0; to < ENV_STATES; to++)
			assert_false(envelope_step_legal(from, to));
}

/* An illegal step aborts where the checks are compiled in (debug builds). */
static void test_illegal_step_aborts(void **state)
{
	(void)state;
#ifdef NDEBUG
	skip();
#else
	struct envelope *env = envelope_new(relay, NULL, 1, (const uint8_t *)"x", 1);
	assert_non_null(env);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		envelope_enter(env, ENV_STORED); /* NEW -> STORED: never written */
		_exit(0);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	envelope_enter(env, ENV_GONE);
#endif
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_windowed_in_order_delivery, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ack_before_durable_cancels_write, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_quota_and_storage_failure, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_secure_and_delete, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ttl_expiry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_idle_mailbox_expiry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_connection_limits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_create_budget_refills, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ack_of_queued_write_cancels, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ack_of_taken_write_deletes_after_commit, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_eviction_and_read_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ack_while_reading, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_envelope_steps, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_illegal_step_aborts, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
