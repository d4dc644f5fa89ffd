/* SPDX-License-Identifier: MIT */
/*
 * Mailbox semantics (docs/PROTOCOL.md section 5) in-process: the relay's command layer driven
 * through its handler table (port.h) by connections that have no socket, against the in-memory
 * storage engine (relay/memstorage.c, put in struct relay in place of the storage thread),
 * with the relay's clock injected (the rig: support/cmdrig.h). Each test takes every step
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
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "log.h"
#include "support/cmdrig.h"

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
	close_conn(owner);
	struct conn *again = subscribe_again(&b, 31);
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

/* Lines of the log file PATH that contain TEXT. */
static int log_lines_with(const char *path, const char *text)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char line[512];
	int n = 0;
	while (fgets(line, sizeof(line), f) != NULL)
		n += strstr(line, text) != NULL;
	fclose(f);
	return n;
}

/* A store out of reach fails every write for as long as it lasts: the log says so once when
 * writes start failing and once when one succeeds again, not once per envelope. */
static void test_storage_failure_logged_once(void **state)
{
	(void)state;
	char path[] = "/tmp/cairn-cmdlog-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(log_open(LOG_WARN, path), 0);
	struct conn *owner = open_conn(), *sender = open_conn();
	struct box b;
	create(owner, &b);
	for (uint32_t round = 0; round < 3; round++) {
		for (uint32_t i = 0; i < 4; i++)
			send_env(sender, &b, 10 * round + i + 1, (int)i, NULL);
		assert_int_equal(memstorage_run_batch(relay->storage, true), 4);
		for (uint32_t i = 0; i < 4; i++)
			expect_error(sender, 10 * round + i + 1, CAIRN_ESTORAGE);
	}
	assert_int_equal(log_lines_with(path, "storage: writes are failing"), 1);
	assert_int_equal(log_lines_with(path, "writes succeed again"), 0);
	send_env(sender, &b, 99, 1, NULL);
	settle();
	expect_ok(sender, 99);
	send_env(sender, &b, 100, 2, NULL);
	settle();
	expect_ok(sender, 100);
	assert_int_equal(log_lines_with(path, "storage: writes succeed again"), 1);
	assert_int_equal(log_lines_with(path, "storage: writes are failing"), 1);
	log_close();
	assert_int_equal(log_open(LOG_WARN, NULL), 0);
	unlink(path);
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
	/* Right after the right credential, on the same connection (whose digest the relay may
	 * take again, mailbox_send_digest), a wrong one is still refused. */
	send_env(sender, &b, 14, 1, wrong);
	expect_error(sender, 14, CAIRN_EDENIED);

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

/* ---- drain: stored envelopes read back in batches --------------------------------------- */

/* Stores N envelopes (env-0 .. env-N-1) for B's owner, offline, all durable. */
static void store_offline(struct conn *sender, const struct box *b, int n)
{
	/* Sixteen at a time: a batch's answers come in the order of its commit. */
	for (int from = 0; from < n; from += 16) {
		int to = from + 16 < n ? from + 16 : n;
		for (int i = from; i < to; i++)
			send_env(sender, b, 500 + (uint32_t)i, i, NULL);
		settle();
		for (int i = from; i < to; i++)
			expect_ok(sender, 500 + (uint32_t)i);
	}
}

/* A mailbox of B's with a backlog of N envelopes stored while its owner was offline; the owner
 * (returned) then subscribes as request 9. The sender in *SENDER when set. */
static struct conn *backlog(struct box *b, int n, struct conn **sender)
{
	struct conn *owner = open_conn(), *s = open_conn();
	create(owner, b);
	store_offline(s, b, n);
	if (sender != NULL)
		*sender = s;
	on_mailbox(owner, CAIRN_CMD_SUBSCRIBE, b, 9, 0);
	expect_ok(owner, 9);
	return owner;
}

/* Receives and acknowledges everything, checking that envelope FIRST..N-1 come exactly once
 * in order; returns their ids in IDS (when set). */
static void drain_all(struct conn *c, const struct box *b, uint32_t sub_rid, int first, int n,
                      uint64_t *ids)
{
	uint32_t rid = 1000;
	for (int next = first; next < n;) {
		settle();
		int got = 0;
		for (struct reply *r; (r = next_reply(c)) != NULL;) {
			if (r->type == CAIRN_REPLY_OK)
				continue;
			c->seen--;
			uint64_t id;
			assert_int_equal(expect_envelope(c, sub_rid, &id), next);
			if (ids != NULL)
				ids[next] = id;
			next++;
			got++;
			on_mailbox(c, CAIRN_CMD_ACK, b, rid++, id);
		}
		assert_true(got > 0); /* each round delivers: nothing is stuck */
	}
	settle();
	for (struct reply *r; (r = next_reply(c)) != NULL;)
		assert_int_equal(r->type, CAIRN_REPLY_OK);
}

#define DRAIN_N 200

/* Batch jobs a drain of N envelopes takes, each step checked for order and once-only. */
static size_t drain_reads(int n)
{
	cfg.mailbox_max_envelopes = (uint32_t)n;
	struct box b;
	struct conn *owner = backlog(&b, n, NULL);
	settle();
	/* Two windows at the start, whatever the budget: the subscriber has not yet shown that
	 * it reads (one that never does holds no more, test_it_hostile_resources). */
	assert_int_equal(memstorage_envelope_batch_reads(relay->storage), 1);
	assert_int_equal(relay->read_back_bytes, 2 * WINDOW * 5); /* "env-0".."env-7" */
	drain_all(owner, &b, 9, 0, n, NULL);
	assert_int_equal(memstorage_envelopes(relay->storage), 0);
	assert_int_equal(relay->read_back_bytes, 0);
	return memstorage_envelope_batch_reads(relay->storage);
}

/* A subscriber coming back to a backlog: its bodies are read in batch jobs (not one read per
 * envelope), further ahead as it acknowledges (read_ahead_bytes has room), so in fewer jobs
 * than with the two windows alone; delivered once each in id order, every body released. */
static void test_drain_reads_in_batches(void **state)
{
	(void)state;
	size_t reads = drain_reads(DRAIN_N);
	print_message("drain of %d: %zu batch reads\n", DRAIN_N, reads);
	assert_true(reads < DRAIN_N / (2 * WINDOW));
}

/* [limits] read_ahead_bytes 0: only the two windows are read ahead; the rest follows as the
 * subscriber acknowledges, still in order and exactly once, a window's reads at a time. */
static void test_drain_read_ahead_budget(void **state)
{
	(void)state;
	cfg.read_ahead_bytes = 0;
	size_t reads = drain_reads(DRAIN_N);
	print_message("drain of %d within two windows: %zu batch reads\n", DRAIN_N, reads);
	assert_true(reads >= DRAIN_N / (2 * WINDOW));
}

/* Races with a batch the storage has taken: an envelope of it acknowledged (its delete
 * follows the read, it is never delivered), then its subscriber gone (the bodies are dropped
 * when the batch returns), then the mailbox deleted (nothing of the batch is kept). */
static void test_drain_races_with_a_taken_batch(void **state)
{
	(void)state;
	struct conn *sender;
	struct box b;
	struct conn *owner = backlog(&b, 8, &sender);
	/* Learn the ids: a first subscription, closed without acknowledging. */
	settle();
	uint64_t ids[WINDOW];
	for (int i = 0; i < WINDOW; i++)
		assert_int_equal(expect_envelope(owner, 9, &ids[i]), i);
	close_conn(owner);
	settle();
	assert_int_equal(relay->read_back_bytes, 0); /* offline mailboxes keep no bodies */

	/* ACK while the batch is taken. */
	struct conn *c = subscribe_again(&b, 11);
	assert_true(memstorage_take_batch(relay->storage) >= 1);
	on_mailbox(c, CAIRN_CMD_ACK, &b, 12, ids[0]);
	expect_ok(c, 12);
	settle();
	drain_all(c, &b, 11, 1, 8, NULL); /* env-0 never comes; env-1 .. env-7 do, once */
	assert_int_equal(memstorage_envelopes(relay->storage), 0);
	assert_int_equal(relay->read_back_bytes, 0);
	store_offline(sender, &b, 5);

	/* The subscriber gone while the batch is taken. */
	close_conn(c);
	settle();
	c = subscribe_again(&b, 21);
	assert_true(memstorage_take_batch(relay->storage) >= 1);
	close_conn(c);
	settle();
	assert_int_equal(relay->read_back_bytes, 0);
	assert_int_equal(memstorage_envelopes(relay->storage), 5);

	/* The mailbox deleted while the batch is taken. */
	c = subscribe_again(&b, 31);
	assert_true(memstorage_take_batch(relay->storage) >= 1);
	struct conn *creator = open_conn();
	auth(creator, &b, 32, true);
	expect_ok(creator, 32);
	on_mailbox(creator, CAIRN_CMD_DELETE, &b, 33, 0);
	settle();
	expect_ok(creator, 33);
	assert_int_equal(relay->read_back_bytes, 0);
	assert_int_equal(memstorage_envelopes(relay->storage), 0);
	assert_null(mailbox_by_recipient(&relay->mailboxes, b.recipient_id));
}

/* A batch that cannot be read: nothing is delivered or lost, the subscription ends with
 * END storage (asking again at once could spin on a failing disk), the bodies are released, and the
 * next subscription gets everything in order. */
static void test_drain_read_failure(void **state)
{
	(void)state;
	struct box b;
	struct conn *owner = backlog(&b, 6, NULL);
	memstorage_fail_reads(relay->storage, true); /* before the batch runs */
	settle();
	struct reply *end = next_reply(owner);
	assert_non_null(end);
	assert_int_equal(end->type, CAIRN_REPLY_END);
	assert_int_equal(end->request_id, 9);
	assert_int_equal(end->code, (uint32_t)-CAIRN_ESTORAGE);
	expect_nothing(owner);
	assert_int_equal(relay->read_back_bytes, 0);
	assert_int_equal(memstorage_envelopes(relay->storage), 6);
	struct mailbox *mb = mailbox_by_recipient(&relay->mailboxes, b.recipient_id);
	assert_non_null(mb);
	assert_null(mb->subscriber);
	memstorage_fail_reads(relay->storage, false);
	on_mailbox(owner, CAIRN_CMD_SUBSCRIBE, &b, 10, 0);
	expect_ok(owner, 10);
	drain_all(owner, &b, 10, 0, 6, NULL);
	assert_int_equal(memstorage_envelopes(relay->storage), 0);
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
	    cmocka_unit_test_setup_teardown(test_storage_failure_logged_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_secure_and_delete, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ttl_expiry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_idle_mailbox_expiry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_connection_limits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_create_budget_refills, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_drain_reads_in_batches, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_drain_read_ahead_budget, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_drain_races_with_a_taken_batch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_drain_read_failure, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
