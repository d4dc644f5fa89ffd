/* SPDX-License-Identifier: MIT */
/*
 * Intake mailboxes (docs/PROTOCOL.md 5.10) in the relay's command layer, on the rig of
 * test_relay_commands.c (support/cmdrig.h: no sockets, the in-memory storage, the clock
 * injected): INTAKE and who may send it; SEND_WORK's checks, each refusal with its code and
 * nothing stored or remembered, in the spec's order; a plain SEND to an intake mailbox and a
 * SEND_WORK to an ordinary one; and a valid one stored and delivered. Work is solved for 8 to
 * 12 bits, a few thousand hashes at most.
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

#include "support/cmdrig.h"
#include "work.h"

#define BITS 10

/* Makes B's mailbox on OWNER an intake mailbox of BITS bits: OK only once durable. */
static void make_intake(struct conn *owner, struct box *b, unsigned bits)
{
	create(owner, b);
	struct cairn_msg m = {.type = CAIRN_CMD_INTAKE,
	                      .request_id = 2,
	                      .recipient_id = b->recipient_id,
	                      .work_bits = (uint8_t)bits};
	command(owner, &m);
	expect_nothing(owner);
	settle();
	expect_ok(owner, 2);
	struct mailbox *mb = mailbox_by_sender(&relay->mailboxes, b->sender_id);
	assert_int_equal(memstorage_work_bits(relay->storage, mb->rec.id), bits);
}

/* The body "env-N" into BODY; returns its length. */
static size_t body_of(int n, char body[static 32])
{
	return (size_t)snprintf(body, 32, "env-%d", n);
}

/* Work for "env-N" to B at TIME, sufficient for BITS, its nonce FIRST or above. */
static void solve_from(const struct box *b, int n, int64_t time, unsigned bits, uint64_t first,
                       uint8_t work[WORK_LEN])
{
	char body[32];
	size_t len = body_of(n, body);
	assert_int_equal(work_solve(b->sender_id, (const uint8_t *)body, len, (uint64_t)time, bits,
	                            first, work, NULL),
	                 0);
}

static void solve(const struct box *b, int n, int64_t time, unsigned bits, uint8_t work[WORK_LEN])
{
	solve_from(b, n, time, bits, 0, work);
}

/* Whether WORK is sufficient for "env-N" to B at BITS. */
static bool suffices(const struct box *b, int n, const uint8_t work[WORK_LEN], unsigned bits)
{
	char body[32];
	size_t len = body_of(n, body);
	uint8_t digest[WORK_HASH_LEN];
	return work_verify(b->sender_id, (const uint8_t *)body, len, work, bits, digest);
}

/* The nonce of WORK (big-endian, like its time). */
static uint64_t nonce_of(const uint8_t work[WORK_LEN])
{
	uint64_t v = 0;
	for (int i = 8; i < 16; i++)
		v = v << 8 | work[i];
	return v;
}

/* Work for "env-N" to B at TIME that is NOT sufficient for BITS. */
static void solve_weak(const struct box *b, int n, int64_t time, unsigned bits,
                       uint8_t work[WORK_LEN])
{
	char body[32];
	size_t len = body_of(n, body);
	uint8_t hash[WORK_HASH_LEN], digest[WORK_HASH_LEN];
	work_envelope_hash((const uint8_t *)body, len, hash);
	solve(b, n, time, 1, work); /* the time field, in the codec's byte order */
	for (uint32_t nonce = 0;; nonce++) {
		memcpy(work + 8, &nonce, sizeof(nonce));
		work_digest(b->sender_id, hash, work, digest);
		if (!work_sufficient(digest, bits))
			return;
	}
}

/* SEND_WORK of "env-N" with WORK to B on C. */
static void send_work(struct conn *c, const struct box *b, uint32_t rid, int n,
                      const uint8_t work[WORK_LEN])
{
	char body[32];
	size_t len = body_of(n, body);
	struct cairn_msg m = {.type = CAIRN_CMD_SEND_WORK,
	                      .request_id = rid,
	                      .sender_id = b->sender_id,
	                      .work = work,
	                      .envelope = (const uint8_t *)body,
	                      .envelope_len = len};
	command(c, &m);
}

/* Nothing was stored or queued for B, and the table of used work holds USED entries. */
static void expect_unchanged(const struct box *b, size_t stored, uint32_t used)
{
	settle();
	assert_int_equal(memstorage_envelopes(relay->storage), stored);
	struct mailbox *mb = mailbox_by_sender(&relay->mailboxes, b->sender_id);
	assert_non_null(mb);
	assert_int_equal(mb->count, stored);
	assert_int_equal(relay->work.len, used);
}

/* INTAKE: OK once durable, for the mailbox's owner only, bits 1..40, on the create budget;
 * then a plain SEND gets `work` whatever its credential, and a SEND_WORK to an ordinary
 * mailbox or to none gets `denied`. */
static void test_intake_command(void **state)
{
	(void)state;
	struct conn *owner = open_conn(), *other = open_conn();
	struct box b, plain, nowhere;
	create(owner, &b);
	create(owner, &plain);
	memset(&nowhere, 0, sizeof(nowhere));
	randombytes_buf(nowhere.recipient_id, sizeof(nowhere.recipient_id));
	randombytes_buf(nowhere.sender_id, sizeof(nowhere.sender_id));

	struct cairn_msg m = {.type = CAIRN_CMD_INTAKE,
	                      .request_id = 10,
	                      .recipient_id = b.recipient_id,
	                      .work_bits = BITS};
	command(other, &m); /* not authenticated for it */
	expect_error(other, 10, CAIRN_EDENIED);
	m.recipient_id = nowhere.recipient_id;
	command(owner, &m);
	expect_error(owner, 10, CAIRN_EDENIED);
	m.recipient_id = b.recipient_id;
	m.work_bits = 0;
	command(owner, &m);
	expect_error(owner, 10, CAIRN_EBADREQ);
	m.work_bits = WORK_BITS_MAX + 1;
	command(owner, &m);
	expect_error(owner, 10, CAIRN_EBADREQ);
	settle();
	expect_nothing(owner);
	assert_int_equal(mailbox_by_sender(&relay->mailboxes, b.sender_id)->rec.work_bits, 0);

	/* Secured first: the credential no longer matters once it is an intake mailbox. */
	uint8_t cred[CAIRN_CREDENTIAL_LEN], digest[CAIRN_CREDENTIAL_LEN];
	randombytes_buf(cred, sizeof(cred));
	crypto_generichash(digest, sizeof(digest), cred, sizeof(cred), b.sender_id,
	                   CAIRN_MAILBOX_ID_LEN);
	struct cairn_msg sec = {.type = CAIRN_CMD_SECURE,
	                        .request_id = 11,
	                        .recipient_id = b.recipient_id,
	                        .credential = digest};
	command(owner, &sec);
	settle();
	expect_ok(owner, 11);

	m.work_bits = BITS;
	m.request_id = 12;
	command(owner, &m);
	expect_nothing(owner); /* the OK waits for the disk */
	settle();
	expect_ok(owner, 12);
	struct mailbox *mb = mailbox_by_sender(&relay->mailboxes, b.sender_id);
	assert_int_equal(mb->rec.work_bits, BITS);
	assert_int_equal(memstorage_work_bits(relay->storage, mb->rec.id), BITS); /* durable */

	send_env(other, &b, 20, 1, cred);
	expect_error(other, 20, CAIRN_EWORK);
	send_env(other, &b, 21, 1, NULL);
	expect_error(other, 21, CAIRN_EWORK);
	uint8_t work[WORK_LEN];
	solve(&plain, 1, now_s, BITS, work);
	send_work(other, &plain, 22, 1, work);
	expect_error(other, 22, CAIRN_EDENIED);
	solve(&nowhere, 1, now_s, BITS, work);
	send_work(other, &nowhere, 23, 1, work);
	expect_error(other, 23, CAIRN_EDENIED);
	expect_unchanged(&b, 0, 0);

	/* Changing the bits works the same way; a failed write is a storage error. */
	m.work_bits = 12;
	m.request_id = 13;
	command(owner, &m);
	assert_true(memstorage_run_batch(relay->storage, true) >= 1);
	expect_error(owner, 13, CAIRN_ESTORAGE);
	assert_int_equal(memstorage_work_bits(relay->storage, mb->rec.id), BITS);
	m.request_id = 14;
	command(owner, &m);
	settle();
	expect_ok(owner, 14);
	assert_int_equal(memstorage_work_bits(relay->storage, mb->rec.id), 12);
}

/* INTAKE draws on the CREATE/SECURE budget. */
static void test_intake_budget(void **state)
{
	(void)state;
	cfg.create_burst = 2;
	cfg.create_per_minute = 0;
	struct conn *owner = open_conn(), *again = open_conn();
	struct box b;
	create(owner, &b); /* one token */
	auth(again, &b, 3, true);
	expect_ok(again, 3);
	struct cairn_msg m = {.type = CAIRN_CMD_INTAKE,
	                      .request_id = 4,
	                      .recipient_id = b.recipient_id,
	                      .work_bits = BITS};
	command(owner, &m); /* the second */
	settle();
	expect_ok(owner, 4);
	command(owner, &m);
	expect_error(owner, 4, CAIRN_ELIMIT);
	command(again, &m); /* another connection has its own budget */
	settle();
	expect_ok(again, 4);
}

/* A valid SEND_WORK: OK once durable, delivered to the subscriber, touching the mailbox. */
static void test_send_work_delivered(void **state)
{
	(void)state;
	struct conn *owner = open_conn(), *sender = open_conn();
	struct box b;
	make_intake(owner, &b, BITS);
	on_mailbox(owner, CAIRN_CMD_SUBSCRIBE, &b, 3, 0);
	expect_ok(owner, 3);

	uint8_t work[WORK_LEN];
	solve(&b, 7, now_s, BITS, work);
	send_work(sender, &b, 30, 7, work);
	uint64_t id;
	assert_int_equal(expect_envelope(owner, 3, &id), 7);
	expect_nothing(sender); /* OK only once durable */
	settle();
	expect_ok(sender, 30);
	assert_int_equal(memstorage_envelopes(relay->storage), 1);
	assert_int_equal(relay->work.len, 1);
	on_mailbox(owner, CAIRN_CMD_ACK, &b, 4, id);
	expect_ok(owner, 4);
	settle();
	assert_int_equal(memstorage_envelopes(relay->storage), 0);

	/* Deleted like any mailbox: the store forgets its bits, a SEND_WORK gets `denied`. */
	uint64_t store_id = mailbox_by_sender(&relay->mailboxes, b.sender_id)->rec.id;
	on_mailbox(owner, CAIRN_CMD_DELETE, &b, 5, 0);
	settle();
	assert_non_null(next_reply(owner)); /* the subscription's END */
	expect_ok(owner, 5);
	assert_int_equal(memstorage_work_bits(relay->storage, store_id), 0);
	solve(&b, 8, now_s, BITS, work);
	send_work(sender, &b, 31, 8, work);
	expect_error(sender, 31, CAIRN_EDENIED);
}

/* Check 2: a time more than work_window either side of the relay's clock, or before the
 * relay started, is stale; the window's edges are in. */
static void test_send_work_time(void **state)
{
	(void)state;
	struct conn *owner = open_conn(), *sender = open_conn();
	struct box b;
	make_intake(owner, &b, BITS);
	int64_t w = (int64_t)cfg.work_window_s;
	now_s += 2 * w; /* so that now - w is after the start */
	uint8_t work[WORK_LEN];

	solve(&b, 1, now_s - w - 1, BITS, work);
	send_work(sender, &b, 40, 1, work);
	expect_error(sender, 40, CAIRN_EWORK);
	solve(&b, 1, now_s + w + 1, BITS, work);
	send_work(sender, &b, 41, 1, work);
	expect_error(sender, 41, CAIRN_EWORK);
	solve(&b, 1, (int64_t)1 << 62, BITS, work);
	send_work(sender, &b, 42, 1, work);
	expect_error(sender, 42, CAIRN_EWORK);
	expect_unchanged(&b, 0, 0);

	solve(&b, 2, now_s - w, BITS, work);
	send_work(sender, &b, 43, 2, work);
	solve(&b, 3, now_s + w, BITS, work);
	send_work(sender, &b, 44, 3, work);
	settle();
	expect_ok(sender, 43);
	expect_ok(sender, 44);

	/* Within the window but before the relay started: stale, so a restart needs no table. */
	now_s = relay->started + 5;
	solve(&b, 4, relay->started - 1, BITS, work);
	send_work(sender, &b, 45, 4, work);
	expect_error(sender, 45, CAIRN_EWORK);
	solve(&b, 4, relay->started, BITS, work);
	send_work(sender, &b, 46, 4, work);
	settle();
	expect_ok(sender, 46);
	expect_unchanged(&b, 3, 3);
}

/* The relay's clock stepped back a day, to before the process started (issue 16): a sender
 * whose clock agrees with the relay's is served, not refused until the clock catches up;
 * work used before the step is still refused as reused once the clock is put right. */
static void test_send_work_clock_back(void **state)
{
	(void)state;
	struct conn *owner = open_conn(), *sender = open_conn();
	struct box b;
	make_intake(owner, &b, BITS);
	const int64_t right = relay->started + 5;
	now_s = right;
	uint8_t used[WORK_LEN], work[WORK_LEN];
	solve(&b, 1, right, BITS, used);
	send_work(sender, &b, 40, 1, used);
	settle();
	expect_ok(sender, 40);

	now_s = right - 86400; /* the step back */
	solve(&b, 2, now_s, BITS, work);
	send_work(sender, &b, 41, 2, work);
	settle();
	expect_ok(sender, 41);
	send_work(sender, &b, 42, 1, used); /* out of the window now */
	expect_error(sender, 42, CAIRN_EWORK);

	now_s = right + 1; /* put right */
	send_work(sender, &b, 43, 1, used);
	expect_error(sender, 43, CAIRN_EWORK);
	expect_unchanged(&b, 2, 2);
}

/* Check 3: work short of the mailbox's bits; work bound to another envelope or mailbox. */
static void test_send_work_weak(void **state)
{
	(void)state;
	struct conn *owner = open_conn(), *sender = open_conn();
	struct box b, c;
	make_intake(owner, &b, BITS);
	make_intake(owner, &c, BITS);
	uint8_t work[WORK_LEN];
	solve_weak(&b, 1, now_s, BITS, work);
	send_work(sender, &b, 50, 1, work);
	expect_error(sender, 50, CAIRN_EWORK);
	/* Work for env-1 to b that happens to pass neither for env-2 nor for c (a work passes
	 * elsewhere by chance once in 2^BITS): what binds it is the digest. */
	solve(&b, 1, now_s, BITS, work);
	while (suffices(&b, 2, work, BITS) || suffices(&c, 1, work, BITS))
		solve_from(&b, 1, now_s, BITS, nonce_of(work) + 1, work);
	send_work(sender, &b, 51, 2, work); /* another envelope */
	expect_error(sender, 51, CAIRN_EWORK);
	send_work(sender, &c, 52, 1, work); /* another mailbox */
	expect_error(sender, 52, CAIRN_EWORK);
	expect_unchanged(&b, 0, 0);
	expect_unchanged(&c, 0, 0);

	/* The mailbox's bits, not the sender's claim: raising them refuses work that passed. */
	struct cairn_msg m = {.type = CAIRN_CMD_INTAKE,
	                      .request_id = 5,
	                      .recipient_id = b.recipient_id,
	                      .work_bits = 30};
	command(owner, &m);
	settle();
	expect_ok(owner, 5);
	send_work(sender, &b, 53, 1, work); /* sufficient for BITS, not for 30 */
	expect_error(sender, 53, CAIRN_EWORK);
	expect_unchanged(&b, 0, 0);
}

/* Check 4: work accepted once is refused again for 2 x work_window, even when its store
 * failed; after that its time is stale anyway, and the tick forgets it. */
static void test_send_work_reused(void **state)
{
	(void)state;
	struct conn *owner = open_conn(), *sender = open_conn();
	struct box b;
	make_intake(owner, &b, BITS);
	int64_t t0 = now_s, w = (int64_t)cfg.work_window_s;
	uint8_t work[WORK_LEN], failed[WORK_LEN];
	solve(&b, 1, t0, BITS, work);
	send_work(sender, &b, 60, 1, work);
	settle();
	expect_ok(sender, 60);
	send_work(sender, &b, 61, 1, work);
	expect_error(sender, 61, CAIRN_EWORK);
	now_s = t0 + w; /* the work's time is still fresh, and it is remembered */
	commands_expire(relay, now_s);
	send_work(sender, &b, 62, 1, work);
	expect_error(sender, 62, CAIRN_EWORK);

	solve(&b, 2, now_s, BITS, failed);
	send_work(sender, &b, 63, 2, failed);
	assert_true(memstorage_run_batch(relay->storage, true) >= 1);
	expect_error(sender, 63, CAIRN_ESTORAGE);
	send_work(sender, &b, 64, 2, failed);
	expect_error(sender, 64, CAIRN_EWORK);
	expect_unchanged(&b, 1, 2);

	now_s = t0 + 2 * w; /* the first entry's last second */
	commands_expire(relay, now_s);
	assert_int_equal(relay->work.len, 2);
	now_s++;
	commands_expire(relay, now_s);
	assert_int_equal(relay->work.len, 1);
	send_work(sender, &b, 65, 1, work); /* forgotten, but stale */
	expect_error(sender, 65, CAIRN_EWORK);
	expect_unchanged(&b, 1, 1);
}

/* Check 1: the intake quotas, not the mailbox quotas; then the relay's limits (`full`);
 * both before the work is looked at, and neither remembers the work: the same work is
 * accepted once there is room. */
static void test_send_work_quota_and_full(void **state)
{
	(void)state;
	cfg.mailbox_max_envelopes = 1;
	cfg.intake_max_envelopes = 2;
	struct conn *owner = open_conn(), *sender = open_conn();
	struct box b;
	make_intake(owner, &b, BITS);
	uint8_t work[WORK_LEN], weak[WORK_LEN], stale[WORK_LEN];
	for (int i = 0; i < 2; i++) {
		solve(&b, i, now_s, BITS, work);
		send_work(sender, &b, 70 + (uint32_t)i, i, work);
	}
	settle();
	expect_ok(sender, 70);
	expect_ok(sender, 71);
	solve(&b, 2, now_s, BITS, work);
	solve_weak(&b, 2, now_s, BITS, weak);
	solve(&b, 2, now_s - 2 * (int64_t)cfg.work_window_s, BITS, stale);
	send_work(sender, &b, 72, 2, work);
	expect_error(sender, 72, CAIRN_EQUOTA);
	send_work(sender, &b, 73, 2, weak); /* quota comes first */
	expect_error(sender, 73, CAIRN_EQUOTA);
	send_work(sender, &b, 74, 2, stale);
	expect_error(sender, 74, CAIRN_EQUOTA);
	expect_unchanged(&b, 2, 2);

	/* The byte quota too. */
	cfg.intake_max_envelopes = 10;
	cfg.intake_max_bytes = 10; /* two of "env-N" */
	send_work(sender, &b, 75, 2, work);
	expect_error(sender, 75, CAIRN_EQUOTA);
	cfg.intake_max_bytes = 1 << 20;

	/* The relay's limits: below the disk floor, and at max_stored_bytes. */
	relay->disk_low = relay->disk_full = true; /* as admission.c sets them */
	send_work(sender, &b, 76, 2, stale);
	expect_error(sender, 76, CAIRN_ECAPACITY);
	send_work(sender, &b, 77, 2, work);
	expect_error(sender, 77, CAIRN_ECAPACITY);
	relay->disk_low = relay->disk_full = false;
	uint64_t max_stored = cfg.max_stored_bytes;
	cfg.max_stored_bytes = relay->mailboxes.bytes + 2 * CAIRN_ENVELOPE_OVERHEAD + 1;
	send_work(sender, &b, 78, 2, work);
	expect_error(sender, 78, CAIRN_ECAPACITY);
	cfg.max_stored_bytes = max_stored;
	expect_unchanged(&b, 2, 2);

	/* Room again: the same work, refused three ways, was never remembered. */
	send_work(sender, &b, 79, 2, work);
	settle();
	expect_ok(sender, 79);
	expect_unchanged(&b, 3, 3);
}

/* Check 4's table full: `full`, nothing stored; room again once entries expire (by the
 * relay's tick or an insert). */
static void test_send_work_table_full(void **state)
{
	(void)state;
	/* The table is made at start from the configuration; this test's is smaller. */
	worktable_free(&relay->work);
	worktable_init(&relay->work, 2, 2 * (int64_t)cfg.work_window_s);
	struct conn *owner = open_conn(), *sender = open_conn();
	struct box b;
	make_intake(owner, &b, BITS);
	uint8_t work[WORK_LEN];
	for (int i = 0; i < 2; i++) {
		solve(&b, i, now_s, BITS, work);
		send_work(sender, &b, 80 + (uint32_t)i, i, work);
	}
	solve(&b, 2, now_s, BITS, work);
	uint64_t refused = relay->stats.refused_full;
	send_work(sender, &b, 82, 2, work);
	expect_error(sender, 82, CAIRN_ECAPACITY);
	assert_int_equal(relay->stats.refused_full, refused + 1); /* counted, and warned */
	settle();
	expect_ok(sender, 80);
	expect_ok(sender, 81);
	expect_unchanged(&b, 2, 2);

	now_s += 2 * (int64_t)cfg.work_window_s + 1;
	commands_expire(relay, now_s);
	assert_int_equal(relay->work.len, 0);
	solve(&b, 2, now_s, BITS, work);
	send_work(sender, &b, 83, 2, work);
	settle();
	expect_ok(sender, 83);
}

/* The checks in 5.10's order: denied (no such or no intake mailbox) before too big, quota
 * and full, before stale or weak work, before reused. Each pair below passes the later check
 * only if the earlier did not stop it. */
static void test_send_work_order(void **state)
{
	(void)state;
	struct conn *owner = open_conn(), *sender = open_conn();
	struct box b, plain;
	make_intake(owner, &b, BITS);
	create(owner, &plain);
	uint8_t work[WORK_LEN], stale[WORK_LEN];
	solve(&b, 1, now_s, BITS, work);
	/* Denied before anything: good work for a mailbox that takes none. */
	send_work(sender, &plain, 90, 1, work);
	expect_error(sender, 90, CAIRN_EDENIED);
	/* Too big before the work. */
	static uint8_t big[CAIRN_ENVELOPE_MAX + 1];
	struct cairn_msg m = {.type = CAIRN_CMD_SEND_WORK,
	                      .request_id = 91,
	                      .sender_id = b.sender_id,
	                      .work = work,
	                      .envelope = big,
	                      .envelope_len = sizeof(big)};
	command(sender, &m);
	expect_error(sender, 91, CAIRN_ETOOBIG);
	/* Then a used work is `work`. */
	send_work(sender, &b, 92, 1, work);
	settle();
	expect_ok(sender, 92);
	send_work(sender, &b, 93, 1, work);
	expect_error(sender, 93, CAIRN_EWORK);
	/* Full before reused: the same used work at a full relay is `full`. */
	relay->disk_low = relay->disk_full = true; /* as admission.c sets them */
	send_work(sender, &b, 94, 1, work);
	expect_error(sender, 94, CAIRN_ECAPACITY);
	relay->disk_low = relay->disk_full = false;
	/* A stale work is not hashed into the table: moved back into the window it passes. */
	solve(&b, 2, now_s + 3 * (int64_t)cfg.work_window_s, BITS, stale);
	send_work(sender, &b, 95, 2, stale);
	expect_error(sender, 95, CAIRN_EWORK);
	now_s += 3 * (int64_t)cfg.work_window_s;
	send_work(sender, &b, 96, 2, stale);
	settle();
	expect_ok(sender, 96);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_intake_command, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_intake_budget, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_send_work_delivered, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_send_work_time, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_send_work_clock_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_send_work_weak, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_send_work_reused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_send_work_quota_and_full, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_send_work_table_full, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_send_work_order, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
