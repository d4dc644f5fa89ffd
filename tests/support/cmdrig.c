/* SPDX-License-Identifier: MIT */
/*
 * The command-layer test rig (cmdrig.h): fake connections behind a fake port, the commands
 * the tests send, and the fixture.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "policy.h"
#include "support/cmdrig.h"

/* ---- fake connections ---------------------------------------------------------------------- */

struct relay *relay;
struct relay_config cfg;
static uv_loop_t loop;
int64_t now_s, now_ms;

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
	r->seq = m->seq;
	r->first_seq = m->first_seq;
	r->next_seq = m->next_seq;
	if (m->recipient_id != NULL)
		memcpy(r->recipient_id, m->recipient_id, CAIRN_MAILBOX_ID_LEN);
	if (m->sender_id != NULL)
		memcpy(r->sender_id, m->sender_id, CAIRN_MAILBOX_ID_LEN);
	if (m->envelope != NULL) {
		assert_true(m->envelope_len <= sizeof(r->body));
		memcpy(r->body, m->envelope, m->envelope_len);
		r->body_len = m->envelope_len;
	}
	if (m->type == CAIRN_REPLY_SEALED) {
		assert_true(m->sealed_len <= sizeof(r->sealed));
		memcpy(r->sealed, m->sealed, m->sealed_len);
		r->sealed_len = m->sealed_len;
	}
	if (m->type == CAIRN_REPLY_POLICY && m->policy != NULL) {
		r->policy_len = m->policy_len;
		policy_digest(m->policy, m->policy_len, r->policy_digest);
		r->policy_verified =
		    policy_verify(relay->public_key, m->policy, m->policy_len, m->signature, NULL);
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
	free(c->peer);
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

static size_t fake_output_level(const struct conn *c)
{
	return c->level;
}

static const struct conn_port fake_port = {
    .reply = fake_reply,
    .can_deliver = fake_can_deliver,
    .ref = fake_ref,
    .unref = fake_unref,
    .defer = fake_defer,
    .handshake_hash = fake_hash,
    .output_level = fake_output_level,
};

static struct conn *conn_open(void)
{
	struct conn *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	c->refs = 1; /* the "open handle" */
	c->open = true;
	randombytes_buf(c->hash, sizeof(c->hash));
	c->peer = calloc(1, commands_handler.peer_size);
	assert_non_null(c->peer);
	commands_handler.open(c->peer, relay, c);
	return c;
}

void close_conn(struct conn *c)
{
	if (!c->open)
		return;
	commands_handler.closed(c->peer);
	c->open = false;
	fake_unref(c);
}

/* Runs storage batches until nothing is queued (done() callbacks may queue more). */
void settle(void)
{
	while (memstorage_run_batch(relay->storage, false) > 0)
		;
}

/* The next reply C has not looked at, or NULL. */
struct reply *next_reply(struct conn *c)
{
	return c->seen < c->n ? &c->replies[c->seen++] : NULL;
}

void expect_ok(struct conn *c, uint32_t rid)
{
	struct reply *r = next_reply(c);
	assert_non_null(r);
	assert_int_equal(r->request_id, rid);
	assert_int_equal(r->type, CAIRN_REPLY_OK);
}

void expect_error(struct conn *c, uint32_t rid, int code)
{
	struct reply *r = next_reply(c);
	assert_non_null(r);
	assert_int_equal(r->request_id, rid);
	assert_int_equal(r->type, CAIRN_REPLY_ERROR);
	assert_int_equal(r->code, (uint32_t)-code);
}

void expect_nothing(struct conn *c)
{
	assert_int_equal(c->seen, c->n);
}

/* An envelope delivered to C, with the body "env-N": returns N. */
int expect_envelope(struct conn *c, uint32_t sub_rid, uint64_t *id)
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

void command(struct conn *c, const struct cairn_msg *m)
{
	commands_handler.command(c->peer, m);
}

/* CREATE on C (which may then manage the mailbox) and wait until it is durable. */
void create(struct conn *c, struct box *b)
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

void auth(struct conn *c, const struct box *b, uint32_t rid, bool right_key)
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

void send_env(struct conn *c, const struct box *b, uint32_t rid, int n, const uint8_t *credential)
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

void on_mailbox(struct conn *c, uint8_t type, const struct box *b, uint32_t rid,
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

int setup(void **state)
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

static struct conn *conns[64];
static size_t n_conns;

/* A connection the fixture closes at the end. */
struct conn *open_conn(void)
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

int teardown(void **state)
{
	(void)state;
	relay->stopping = true;
	storage_close(relay->storage, on_storage_closed, relay);
	relay->storage = NULL;
	for (size_t i = 0; i < n_conns; i++) {
		close_conn(conns[i]);
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

struct conn *subscribe_again(const struct box *b, uint32_t rid)
{
	struct conn *c = open_conn();
	auth(c, b, rid - 1, true);
	expect_ok(c, rid - 1);
	on_mailbox(c, CAIRN_CMD_SUBSCRIBE, b, rid, 0);
	expect_ok(c, rid);
	return c;
}
