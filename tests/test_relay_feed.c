/* SPDX-License-Identifier: MIT */
/*
 * Several relay nodes on one store, the loop side (relay/feed.c, relay/ids.c): rows another
 * node committed, read by the relay's STORAGE_FEED job from the in-memory storage
 * (memstorage_feed_push) and applied to this relay's memory through the real command layer,
 * on the rig (support/cmdrig.h); and envelope ids from the hybrid logical clock. The other
 * node's commit is made by hand: its ops applied to the store (memstorage_commit_other, so
 * bodies can be read back) and encoded as its feed row (feed_encode).
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

#include "cairn/error.h"
#include "command_layer.h"
#include "feed.h"
#include "feed_codec.h"
#include "support/cmdrig.h"

#define OTHER 2 /* the other node */

static uint64_t other_seq;

/* This relay becomes node 1 of several, its ids reserved by the clock. */
static void become_node(void)
{
	relay->node = 1;
	reserve_ids(relay);
	settle();
	other_seq = 0;
}

/* The other node commits OPS[0..N): in the store, and as its next feed row. */
static void other_commits(const struct store_op *ops, size_t n)
{
	assert_int_equal(memstorage_commit_other(relay->storage, ops, n), 0);
	size_t len = feed_encoded_len(ops, n);
	uint8_t *blob = malloc(len);
	assert_non_null(blob);
	assert_int_equal(feed_encode(ops, n, blob, len), len);
	assert_int_equal(memstorage_feed_push(relay->storage, OTHER, ++other_seq, blob, len), 0);
	free(blob);
}

/* A mailbox record of the other node's: store id ID, random ids. */
static struct store_mailbox other_mailbox(uint64_t id)
{
	struct store_mailbox rec = {.id = id, .touched = START_TIME};
	randombytes_buf(rec.recipient_id, sizeof(rec.recipient_id));
	randombytes_buf(rec.sender_id, sizeof(rec.sender_id));
	return rec;
}

/* The other node creates a mailbox with store id ID. */
static void other_creates(uint64_t id)
{
	struct store_mailbox rec = other_mailbox(id);
	struct store_op put = {.kind = STORE_MAILBOX_PUT, .mailbox = &rec};
	other_commits(&put, 1);
}

/* This relay reads the feed (as on a wake) and runs the storage until nothing is left. */
static void follow(void)
{
	feed_poll(relay);
	settle();
}

static struct mailbox *mailbox_of(const struct box *b)
{
	return mailbox_by_recipient(&relay->mailboxes, b->recipient_id);
}

/* The other node's SEND to B of "env-N" with id ID. */
static void other_sends(const struct box *b, uint64_t id, int n)
{
	char body[32];
	int len = snprintf(body, sizeof(body), "env-%d", n);
	struct store_op op = {.kind = STORE_ENVELOPE_PUT,
	                      .mailbox_id = mailbox_of(b)->rec.id,
	                      .envelope_id = id,
	                      .body = (const uint8_t *)body,
	                      .len = (uint32_t)len,
	                      .stored_at = START_TIME};
	other_commits(&op, 1);
}

static void other_acks(const struct box *b, uint64_t id)
{
	struct store_op op = {
	    .kind = STORE_ENVELOPE_DELETE, .mailbox_id = mailbox_of(b)->rec.id, .envelope_id = id};
	other_commits(&op, 1);
}

/* An id the other node would give now: after this node's, its low byte the other node's. */
static uint64_t other_id(uint64_t after)
{
	return ((after | 0xff) + 1) + OTHER;
}

/* ---- the tests ---------------------------------------------------------------------------- */

/* An envelope sent through the other node reaches its owner subscribed here at once, its body
 * read back from the store; the other node's ACK (the owner on the other node) removes it. */
static void test_put_delivered_to_subscriber(void **state)
{
	(void)state;
	become_node();
	struct conn *owner = open_conn();
	struct box b;
	create(owner, &b);
	on_mailbox(owner, CAIRN_CMD_SUBSCRIBE, &b, 2, 0);
	expect_ok(owner, 2);
	uint64_t id = other_id(relay->next_envelope_id);
	other_sends(&b, id, 7);
	expect_nothing(owner);
	follow();
	uint64_t got = 0;
	assert_int_equal(expect_envelope(owner, 2, &got), 7);
	assert_int_equal(got, id);
	assert_int_equal(relay->mailboxes.envelopes, 1);
	assert_int_equal(relay->mailboxes.bytes, 5);

	/* Acknowledged on the other node: gone here, its window open again. */
	other_acks(&b, id);
	follow();
	assert_int_equal(mailbox_of(&b)->count, 0);
	assert_int_equal(mailbox_of(&b)->inflight, 0);
	assert_int_equal(relay->mailboxes.envelopes, 0);
	expect_nothing(owner);
}

/* A delete applied while the owner is offline: a later subscriber here does not get it, and
 * the relay-wide counts drop. */
static void test_delete_not_delivered_later(void **state)
{
	(void)state;
	become_node();
	struct conn *owner = open_conn();
	struct box b;
	create(owner, &b);
	uint64_t first = other_id(relay->next_envelope_id), second = other_id(first);
	other_sends(&b, first, 1);
	other_sends(&b, second, 2);
	follow();
	assert_int_equal(mailbox_of(&b)->count, 2);
	other_acks(&b, first);
	follow();
	assert_int_equal(mailbox_of(&b)->count, 1);
	assert_int_equal(relay->mailboxes.envelopes, 1);
	on_mailbox(owner, CAIRN_CMD_SUBSCRIBE, &b, 3, 0);
	expect_ok(owner, 3);
	settle();
	uint64_t got = 0;
	assert_int_equal(expect_envelope(owner, 3, &got), 2);
	assert_int_equal(got, second);
	expect_nothing(owner);
}

/* An envelope of the other node with an id below one this node gave just before goes in id
 * order: the subscriber gets it (and what followed it again), a later one gets both in
 * order. */
static void test_out_of_order_insert(void **state)
{
	(void)state;
	become_node();
	struct conn *owner = open_conn(), *sender = open_conn();
	struct box b;
	create(owner, &b);
	uint64_t low = other_id(relay->next_envelope_id);
	/* This node's SEND takes an id above LOW (its clock is ahead of the other's). */
	send_env(sender, &b, 10, 1, NULL);
	settle();
	expect_ok(sender, 10);
	on_mailbox(owner, CAIRN_CMD_SUBSCRIBE, &b, 2, 0);
	expect_ok(owner, 2);
	settle();
	uint64_t mine = 0;
	assert_int_equal(expect_envelope(owner, 2, &mine), 1);
	assert_true(mine > low);
	assert_int_equal(mine & 0xff, 1);

	other_sends(&b, low, 2);
	follow();
	struct mailbox *mb = mailbox_of(&b);
	assert_int_equal(mb->count, 2);
	assert_int_equal(mailbox_at(mb, 0)->id, low);
	assert_int_equal(mailbox_at(mb, 1)->id, mine);
	uint64_t got = 0;
	assert_int_equal(expect_envelope(owner, 2, &got), 2);
	assert_int_equal(got, low);
	assert_int_equal(expect_envelope(owner, 2, &got), 1);
	assert_int_equal(got, mine);
	expect_nothing(owner);
	assert_int_equal(mb->inflight, 2);

	close_conn(owner);
	struct conn *again = subscribe_again(&b, 31);
	settle();
	assert_int_equal(expect_envelope(again, 31, NULL), 2);
	assert_int_equal(expect_envelope(again, 31, NULL), 1);
	expect_nothing(again);
}

/* A row read twice (a repeated put, a repeated mailbox) changes nothing the second time. */
static void test_duplicates_are_noops(void **state)
{
	(void)state;
	become_node();
	struct conn *owner = open_conn();
	struct box b;
	create(owner, &b);
	struct store_mailbox rec = other_mailbox(4242);
	struct store_op put = {.kind = STORE_MAILBOX_PUT, .mailbox = &rec};
	uint64_t id = other_id(relay->next_envelope_id);
	struct store_op env = {.kind = STORE_ENVELOPE_PUT,
	                       .mailbox_id = mailbox_of(&b)->rec.id,
	                       .envelope_id = id,
	                       .body = (const uint8_t *)"env-3",
	                       .len = 5,
	                       .stored_at = START_TIME};
	other_commits(&put, 1);
	other_commits(&env, 1);
	follow();
	size_t mailboxes = relay->mailboxes.count;
	assert_int_equal(relay->mailboxes.envelopes, 1);
	/* The same row again (a second read of it), without a second body in the store. */
	size_t len = feed_encoded_len(&env, 1);
	uint8_t blob[256];
	assert_true(len <= sizeof(blob));
	assert_int_equal(feed_encode(&env, 1, blob, sizeof(blob)), len);
	assert_int_equal(memstorage_feed_push(relay->storage, OTHER, ++other_seq, blob, len), 0);
	len = feed_encoded_len(&put, 1);
	assert_int_equal(feed_encode(&put, 1, blob, sizeof(blob)), len);
	assert_int_equal(memstorage_feed_push(relay->storage, OTHER, ++other_seq, blob, len), 0);
	follow();
	assert_int_equal(relay->mailboxes.count, mailboxes);
	assert_int_equal(relay->mailboxes.envelopes, 1);
	assert_int_equal(relay->mailboxes.bytes, 5);
	assert_int_equal(mailbox_of(&b)->count, 1);
	assert_int_equal(mailbox_of(&b)->q_len, 1);
}

/* The owner deletes the mailbox through the other node: its subscriber here is told (END 0)
 * and it is gone from memory, with its envelopes. */
static void test_mailbox_delete(void **state)
{
	(void)state;
	become_node();
	struct conn *owner = open_conn();
	struct box b;
	create(owner, &b);
	other_sends(&b, other_id(relay->next_envelope_id), 1);
	follow();
	on_mailbox(owner, CAIRN_CMD_SUBSCRIBE, &b, 2, 0);
	expect_ok(owner, 2);
	settle();
	assert_int_equal(expect_envelope(owner, 2, NULL), 1);
	uint64_t ids[1] = {mailbox_at(mailbox_of(&b), 0)->id};
	struct store_op del = {.kind = STORE_MAILBOX_DELETE,
	                       .mailbox_id = mailbox_of(&b)->rec.id,
	                       .envelope_ids = ids,
	                       .n_envelope_ids = 1};
	size_t before = relay->mailboxes.count;
	other_commits(&del, 1);
	follow();
	struct reply *r = next_reply(owner);
	assert_non_null(r);
	assert_int_equal(r->type, CAIRN_REPLY_END);
	assert_int_equal(r->request_id, 2);
	assert_int_equal(r->code, 0);
	assert_null(mailbox_of(&b));
	assert_int_equal(relay->mailboxes.count, before - 1);
	assert_int_equal(relay->mailboxes.envelopes, 0);
	send_env(owner, &b, 5, 9, NULL);
	expect_error(owner, 5, CAIRN_EDENIED);
}

/* The credential of the log create_log made last (its digest is what LOG_CREATE sends). */
static uint8_t log_cred[32];

/* Creates a log with a random id (written to LOG_ID) through W: what the other node's entries
 * are applied to. */
static struct glog *create_log(struct conn *w, uint8_t log_id[CAIRN_LOG_ID_LEN])
{
	uint8_t cred[32], del[32];
	randombytes_buf(log_id, CAIRN_LOG_ID_LEN);
	randombytes_buf(log_cred, sizeof(log_cred));
	crypto_generichash(cred, sizeof(cred), log_cred, sizeof(log_cred), log_id,
	                   CAIRN_LOG_ID_LEN);
	randombytes_buf(del, sizeof(del));
	struct cairn_msg create = {.type = CAIRN_CMD_LOG_CREATE,
	                           .request_id = 1,
	                           .log_id = log_id,
	                           .credential = cred,
	                           .delete_digest = del};
	command(w, &create);
	settle();
	expect_ok(w, 1);
	struct glog *log = glog_by_log_id(&relay->logs, log_id);
	assert_non_null(log);
	return log;
}

/* This relay becomes a node, W creates a log (its id in LOG_ID), and F follows it from seq 1
 * with read 100 (its LOG_STATE taken). */
static struct glog *followed_log(struct conn *w, struct conn *f, uint8_t log_id[CAIRN_LOG_ID_LEN])
{
	become_node();
	struct glog *log = create_log(w, log_id);
	struct cairn_msg read = {
	    .type = CAIRN_CMD_LOG_READ, .request_id = 100, .log_id = log_id, .seq = 1, .follow = 1};
	command(f, &read);
	struct reply *r = next_reply(f);
	assert_non_null(r);
	assert_int_equal(r->type, CAIRN_REPLY_LOG_STATE);
	return log;
}

/* The other node's entry SEQ of LOG with BODY (a string, which must outlive the op). */
static struct store_op other_entry(const struct glog *log, uint64_t seq, const char *body)
{
	return (struct store_op){.kind = STORE_LOG_ENTRY_PUT,
	                         .envelope_id = other_id(relay->next_envelope_id),
	                         .log_key = log->rec.id,
	                         .seq = seq,
	                         .body = (const uint8_t *)body,
	                         .len = (uint32_t)strlen(body),
	                         .stored_at = START_TIME};
}

/* An entry the other node appended to a log reaches a follower here. */
static void test_log_entry_wakes_follower(void **state)
{
	(void)state;
	struct conn *w = open_conn(), *f = open_conn();
	uint8_t log_id[CAIRN_LOG_ID_LEN];
	struct glog *log = followed_log(w, f, log_id);
	struct store_op entry = other_entry(log, 1, "entry-1");
	other_commits(&entry, 1);
	follow();
	struct reply *r = next_reply(f);
	assert_non_null(r);
	assert_int_equal(r->type, CAIRN_REPLY_LOG_ENTRY);
	assert_int_equal(r->seq, 1);
	assert_int_equal(r->body_len, 7);
	assert_memory_equal(r->body, "entry-1", 7);
	assert_int_equal(log->rec.next_seq, 2);
	expect_nothing(f);
}

/* Another node's entries come in seq order per log, but one may come below this node's last
 * (two nodes appended within the feed's lag, and the store kept the other's): it goes in its
 * place, a repeat changes nothing, and a reader from seq 1 gets them in seq order. */
static void test_log_entry_in_seq_order(void **state)
{
	(void)state;
	become_node();
	struct conn *w = open_conn(), *rd = open_conn();
	uint8_t log_id[CAIRN_LOG_ID_LEN];
	struct glog *log = create_log(w, log_id);
	static const uint64_t order[] = {1, 3, 2, 2};
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		struct store_op entry = other_entry(log, order[i], "entry-x");
		other_commits(&entry, 1);
		follow();
	}
	assert_int_equal(log->e_len, 3);
	assert_int_equal(log->count, 3);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(glog_at(log, i)->seq, i + 1);
	assert_int_equal(log->rec.next_seq, 4);
	struct cairn_msg read = {
	    .type = CAIRN_CMD_LOG_READ, .request_id = 100, .log_id = log_id, .seq = 1};
	command(rd, &read);
	settle();
	struct reply *r = next_reply(rd);
	assert_non_null(r);
	assert_int_equal(r->type, CAIRN_REPLY_LOG_STATE);
	for (uint64_t seq = 1; seq <= 3; seq++) {
		r = next_reply(rd);
		assert_non_null(r);
		assert_int_equal(r->type, CAIRN_REPLY_LOG_ENTRY);
		assert_int_equal(r->seq, seq);
	}
}

/* Expects C's next reply to be LOG_ENTRY SEQ of read RID with BODY. */
static void expect_entry(struct conn *c, uint32_t rid, uint64_t seq, const char *body)
{
	struct reply *r = next_reply(c);
	assert_non_null(r);
	assert_int_equal(r->type, CAIRN_REPLY_LOG_ENTRY);
	assert_int_equal(r->request_id, rid);
	assert_int_equal(r->seq, seq);
	assert_int_equal(r->body_len, strlen(body));
	assert_memory_equal(r->body, body, strlen(body));
}

/* Runs M on C and the storage until nothing is left: C's next reply, of type TYPE. */
static struct reply *reply_to(struct conn *c, const struct cairn_msg *m, uint8_t type)
{
	command(c, m);
	settle();
	struct reply *r = next_reply(c);
	assert_non_null(r);
	assert_int_equal(r->type, type);
	return r;
}

/*
 * Two nodes append to one log within the feed's lag (docs/SCALING.md 4): the other node's
 * entry is stored first (seq 1) but its feed row is late. This node's append is numbered by
 * the store after it (2, never a second 1), and a follower here waits at 1 instead of being
 * sent 2: the feed brings 1, and the follower gets 1 then 2, the log's one history. A later
 * gap the same way (the other node's 4 before its 3), and a reader that starts at 1 then
 * reads them all in order.
 */
static void test_log_follower_waits_for_gap(void **state)
{
	(void)state;
	struct conn *w = open_conn(), *f = open_conn(), *late = open_conn();
	uint8_t log_id[CAIRN_LOG_ID_LEN];
	struct glog *log = followed_log(w, f, log_id);

	/* The other node's 1, in the store; its feed row kept back. */
	struct store_op other = other_entry(log, 1, "other-1");
	assert_int_equal(memstorage_commit_other(relay->storage, &other, 1), 0);
	uint8_t row[128];
	size_t row_len = feed_encode(&other, 1, row, sizeof(row));
	assert_true(row_len > 0);

	struct cairn_msg append = {.type = CAIRN_CMD_LOG_APPEND,
	                           .request_id = 2,
	                           .log_id = log_id,
	                           .credential = log_cred,
	                           .envelope = (const uint8_t *)"mine-2",
	                           .envelope_len = 6};
	struct reply *r = reply_to(w, &append, CAIRN_REPLY_APPENDED);
	assert_int_equal(r->seq, 2);
	assert_int_equal(log->rec.next_seq, 3);
	expect_nothing(f); /* 1 is not here yet */

	assert_int_equal(memstorage_feed_push(relay->storage, OTHER, ++other_seq, row, row_len), 0);
	follow();
	expect_entry(f, 100, 1, "other-1");
	expect_entry(f, 100, 2, "mine-2");
	expect_nothing(f);

	/* The other node's 4 comes before its 3. */
	for (uint64_t seq = 4; seq >= 3; seq--) {
		other = other_entry(log, seq, seq == 4 ? "other-4" : "other-3");
		other_commits(&other, 1);
		follow();
		if (seq == 4)
			expect_nothing(f);
	}
	expect_entry(f, 100, 3, "other-3");
	expect_entry(f, 100, 4, "other-4");
	expect_nothing(f);
	/* And this node's next comes after them. */
	append.request_id = 3;
	append.envelope = (const uint8_t *)"mine-5";
	assert_int_equal(reply_to(w, &append, CAIRN_REPLY_APPENDED)->seq, 5);
	expect_entry(f, 100, 5, "mine-5");

	struct cairn_msg read = {
	    .type = CAIRN_CMD_LOG_READ, .request_id = 101, .log_id = log_id, .seq = 1};
	r = reply_to(late, &read, CAIRN_REPLY_LOG_STATE);
	assert_int_equal(r->first_seq, 1);
	assert_int_equal(r->next_seq, 6);
	static const char *const bodies[] = {"other-1", "mine-2", "other-3", "other-4", "mine-5"};
	for (uint64_t seq = 1; seq <= 5; seq++)
		expect_entry(late, 101, seq, bodies[seq - 1]);
}

/* A row that does not decode: nothing of it, nor of the rows after it, is applied, and the
 * relay stops following (it exits and reloads). */
static void test_malformed_row_stops(void **state)
{
	(void)state;
	become_node();
	struct store_mailbox b2 = other_mailbox(102), d = other_mailbox(104);
	struct store_op ops[2] = {{.kind = STORE_MAILBOX_PUT, .mailbox = &b2},
	                          {.kind = STORE_MAILBOX_PUT, .mailbox = &d}};
	other_creates(101);
	/* Two good ops, cut short in the second: neither is applied. */
	size_t len = feed_encoded_len(ops, 2);
	uint8_t blob[512];
	assert_true(len <= sizeof(blob));
	assert_int_equal(feed_encode(ops, 2, blob, sizeof(blob)), len);
	assert_int_equal(memstorage_feed_push(relay->storage, OTHER, ++other_seq, blob, len - 3),
	                 0);
	other_creates(103);
	follow();
	assert_int_equal(relay->exit_code, CAIRN_EMALFORMED);
	assert_non_null(mailbox_by_store_id(&relay->mailboxes, 101));
	assert_null(mailbox_by_store_id(&relay->mailboxes, 102));
	assert_null(mailbox_by_store_id(&relay->mailboxes, 103));
	assert_null(mailbox_by_store_id(&relay->mailboxes, 104));
	/* It reads no more. */
	follow();
	assert_null(mailbox_by_store_id(&relay->mailboxes, 103));
	assert_int_equal(feed_apply(relay, blob, len - 3), CAIRN_EMALFORMED);
	assert_null(mailbox_by_store_id(&relay->mailboxes, 102));
}

/* A feed the node can no longer follow (its rows were pruned) stops the relay; a failed read
 * is only tried again. */
static void test_feed_errors(void **state)
{
	(void)state;
	become_node();
	other_creates(77);
	memstorage_feed_fail(relay->storage, CAIRN_ESTORAGE, 1);
	follow();
	assert_int_equal(relay->exit_code, 0);
	assert_null(mailbox_by_store_id(&relay->mailboxes, 77));
	follow();
	assert_non_null(mailbox_by_store_id(&relay->mailboxes, 77));
	memstorage_feed_fail(relay->storage, CAIRN_ESTATE, 1);
	follow();
	assert_int_equal(relay->exit_code, CAIRN_ESTATE);
}

/* A reconnect that found this node's store taken by another relay (after a database
 * failover) stops the relay too. */
static void test_store_taken(void **state)
{
	(void)state;
	become_node();
	memstorage_feed_fail(relay->storage, CAIRN_EEXIST, 1);
	follow();
	assert_int_equal(relay->exit_code, CAIRN_EEXIST);
}

/* More rows than one read returns: the relay reads again until none is left. */
static void test_reads_until_drained(void **state)
{
	(void)state;
	become_node();
	enum { N = STORE_FEED_ROWS_MAX + 10 };
	size_t before = relay->mailboxes.count;
	for (uint64_t i = 0; i < N; i++)
		other_creates(1000 + i);
	follow();
	assert_int_equal(relay->mailboxes.count, before + N);
}

/* Relay-wide limits count the mailboxes the other nodes made. */
static void test_relay_wide_limit(void **state)
{
	(void)state;
	become_node();
	cfg.max_mailboxes = 3;
	struct conn *c = open_conn();
	struct box b;
	create(c, &b);
	other_creates(500);
	other_creates(501);
	follow();
	assert_int_equal(relay->mailboxes.count, 3);
	struct cairn_msg m = {.type = CAIRN_CMD_CREATE, .request_id = 9, .recipient_key = b.pk};
	command(c, &m);
	expect_error(c, 9, CAIRN_ECAPACITY);
}

/* ---- ids ------------------------------------------------------------------------------ */

/* A bare relay as node NODE for ids_take: its clock the rig's, no storage, every id covered. */
static void bare_node(struct relay *r, uint8_t node)
{
	memset(r, 0, sizeof(*r));
	r->node = node;
	r->clock = relay->clock;
	r->next_envelope_id = 1;
	r->id_limit = UINT64_MAX;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Two nodes taking ids at the same clock, each seeing some of the other's: unique, growing
 * per node, carrying the node, close to time; past every id seen. */
static void test_ids_two_nodes(void **state)
{
	(void)state;
	static struct relay one, two;
	bare_node(&one, 1);
	bare_node(&two, 2);
	enum { N = 2000 };
	static uint64_t all[2 * N];
	uint64_t last1 = 0, last2 = 0;
	for (int i = 0; i < N; i++) {
		if (i % 100 == 0)
			now_s++; /* the clock moves now and then */
		uint64_t a = ids_take(&one), b = ids_take(&two);
		assert_true(a > last1 && b > last2);
		assert_int_equal(a & 0xff, 1);
		assert_int_equal(b & 0xff, 2);
		assert_true((a >> 8) >= (uint64_t)now_s * 1000 &&
		            (a >> 8) < (uint64_t)now_s * 1000 + 1000);
		last1 = a;
		last2 = b;
		all[2 * i] = a;
		all[2 * i + 1] = b;
		if (i % 7 == 0)
			ids_seen(&two, a); /* the feed carries some of one's to two */
		if (i % 5 == 0) {
			ids_seen(&one, b);
			assert_true(ids_take(&one) > b);
			last1 = one.next_envelope_id - 1;
			all[2 * i] = last1; /* the id given last stands for this step's */
		}
	}
	qsort(all, 2 * N, sizeof(all[0]), cmp_u64);
	for (int i = 1; i < 2 * N; i++)
		assert_true(all[i] != all[i - 1]);
	/* An id seen in the feed far ahead of the clock: the next one is past it. */
	uint64_t ahead = ((uint64_t)(now_s + 3600) * 1000) << 8 | 2;
	ids_seen(&one, ahead);
	uint64_t next = ids_take(&one);
	assert_true(next > ahead);
	assert_int_equal(next & 0xff, 1);
}

/* A node's durable mark covers about a minute of its clock ahead of what it gave; started
 * again from the store with its clock gone back an hour, it gives nothing below the mark. */
static void test_ids_mark_and_clock_back(void **state)
{
	(void)state;
	become_node();
	uint64_t id = ids_take(relay);
	assert_true(id != 0);
	assert_int_equal(id & 0xff, 1);
	uint64_t ahead = relay->id_limit - id;
	assert_true(ahead >= ID_BLOCK_NODE / 2 && ahead <= ID_BLOCK_NODE + 256);
	/* Past the mark by the clock alone (a quiet minute): ids stop until a new mark. */
	now_s += 61;
	assert_int_equal(ids_take(relay), 0);
	settle();
	id = ids_take(relay);
	assert_true(id != 0 && (id >> 8) >= (uint64_t)now_s * 1000);
	/* The tick keeps the mark ahead of the clock, so a quiet node's next id waits for
	 * nothing: 75 s on, with ticks, the mark is ahead still. */
	now_s += 45;
	commands_expire(relay, now_s);
	settle();
	now_s += 30;
	assert_true(ids_take(relay) != 0);

	/* Started again: load sees the mark; the clock is an hour behind. */
	uint64_t mark = relay->id_limit;
	static struct relay again;
	bare_node(&again, 1);
	commands_load_cb.id_mark(&again, mark);
	now_s -= 3600;
	uint64_t after = ids_take(&again);
	assert_true(after >= mark);
	assert_int_equal(after & 0xff, 1);
	assert_true(ids_take(&again) > after);
}

/* A node alone keeps counting up by one, as before. */
static void test_ids_node_zero_unchanged(void **state)
{
	(void)state;
	uint64_t a = ids_take(relay), b = ids_take(relay);
	assert_true(a != 0);
	assert_int_equal(b, a + 1);
	assert_true(relay->id_limit - a <= ID_BLOCK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_put_delivered_to_subscriber, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delete_not_delivered_later, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_out_of_order_insert, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_duplicates_are_noops, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mailbox_delete, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_log_entry_wakes_follower, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_log_entry_in_seq_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_log_follower_waits_for_gap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_malformed_row_stops, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_feed_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_taken, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reads_until_drained, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_relay_wide_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ids_two_nodes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ids_mark_and_clock_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ids_node_zero_unchanged, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
