/* SPDX-License-Identifier: MIT */
/*
 * An envelope's states (relay/envelope.h) in-process, on the command-layer rig
 * (support/cmdrig.h): each race with the storage is set up exactly by taking a batch
 * (memstorage_take_batch: the moment an ACK can no longer cancel a job) before running it.
 * Also the table of steps, and an illegal step aborting where the checks are compiled in.
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

#include "envelope.h"
#include "support/cmdrig.h"

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
	close_conn(owner);
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
	struct mailbox mb = {0}; /* its delete job names its mailbox */
	struct envelope *env = envelope_new(relay, &mb, 1, (const uint8_t *)"x", 1);
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
