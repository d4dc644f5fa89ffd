/* SPDX-License-Identifier: MIT */
/*
 * The relay's wall clock jumping (issue 16 part 4), in-process on the command rig
 * (support/cmdrig.h: the relay's clock injected, storage batches run when the test says):
 *   - forward: expiry takes exactly what the new time says is past its TTL, and the time
 *     marks go on working after the jump;
 *   - back a day, then put right: nothing stored or touched while the clock was behind
 *     expires early once it is right again (relay_stamp never goes back), and it does expire
 *     a TTL after the latest time the relay had read.
 * The handshake window and the replay cache across jumps: test_proto_handshake's
 * test_clock_jumps (the relay hands its clock to them as it is).
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

#define GRAIN (TTL_S / 1000 + 1) /* expiry_grain at the rig's TTL */
#define DAY   86400

/* Runs the expiry pass at the rig's time and settles its store work. */
static void expire_now(void)
{
	commands_expire(relay, now_s);
	settle();
}

/* Sends envelope N to B from SENDER, durable. */
static void stored(struct conn *sender, const struct box *b, uint32_t rid, int n)
{
	send_env(sender, b, rid, n, NULL);
	settle();
	expect_ok(sender, rid);
}

/* A step forward expires what the new time says is past the TTL and nothing else; envelopes
 * stored after the step expire a TTL after it, by the marks made after it. */
static void test_forward_jump(void **state)
{
	(void)state;
	struct conn *owner = open_conn(), *sender = open_conn();
	struct box b;
	create(owner, &b);
	stored(sender, &b, 10, 1);
	now_s += TTL_S / 2;
	stored(sender, &b, 11, 2);
	expire_now();
	assert_int_equal(relay->stats.envelopes_expired, 0);

	/* Forward to just past envelope 1's TTL (and its grain): only it goes. */
	now_s = START_TIME + TTL_S + 2 * GRAIN;
	expire_now();
	assert_int_equal(relay->stats.envelopes_expired, 1);
	assert_int_equal(relay->stats.mailboxes_expired, 0); /* touched by envelope 2's SEND */
	assert_int_equal(memstorage_envelopes(relay->storage), 1);

	/* Forward a day: envelope 2 and the idle mailbox are past their TTL now. A mailbox
	 * made after the jump and an envelope stored after it stay. */
	now_s += DAY;
	struct box fresh;
	create(owner, &fresh);
	stored(sender, &fresh, 12, 3);
	expire_now();
	assert_int_equal(relay->stats.mailboxes_expired, 1);
	assert_int_equal(memstorage_envelopes(relay->storage), 1);
	now_s += TTL_S - 2 * GRAIN;
	expire_now();
	assert_int_equal(memstorage_envelopes(relay->storage), 1);
	now_s += 4 * GRAIN;
	expire_now();
	assert_int_equal(memstorage_envelopes(relay->storage), 0);
}

/* Back a day, then put right: what was stored and made while the clock was behind is dated
 * by the latest time the relay had read, so it neither expires when the clock is put right
 * nor outlives that time's TTL. */
static void test_back_then_forward(void **state)
{
	(void)state;
	struct conn *owner = open_conn(), *sender = open_conn();
	struct box b;
	create(owner, &b);
	stored(sender, &b, 10, 1);
	/* Envelope 1 and its mailbox expire by the clock: no mark is left to date what follows
	 * by. */
	now_s += TTL_S + 2 * GRAIN;
	expire_now();
	assert_int_equal(memstorage_envelopes(relay->storage), 0);
	assert_int_equal(relay->stats.mailboxes_expired, 1);
	const int64_t right = now_s;

	now_s = right - DAY; /* the step back */
	expire_now();
	struct box made;
	create(owner, &made);
	stored(sender, &made, 11, 2);
	now_s += 60;
	expire_now();
	assert_int_equal(memstorage_envelopes(relay->storage), 1);

	now_s = right + 60; /* put right: a minute has passed */
	expire_now();
	assert_int_equal(relay->stats.mailboxes_expired, 1);
	assert_int_equal(memstorage_envelopes(relay->storage), 1);
	now_s = right + TTL_S - 2 * GRAIN;
	expire_now();
	assert_int_equal(memstorage_envelopes(relay->storage), 1);
	assert_int_equal(relay->stats.mailboxes_expired, 1);

	/* A TTL after the time read before the step, the envelope goes, and the mailbox (idle
	 * since) with it. */
	now_s = right + TTL_S + 2 * GRAIN;
	expire_now();
	assert_int_equal(memstorage_envelopes(relay->storage), 0);
	assert_int_equal(relay->stats.mailboxes_expired, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_forward_jump, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_back_then_forward, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
