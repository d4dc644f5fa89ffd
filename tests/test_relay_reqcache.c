/* SPDX-License-Identifier: MIT */
/*
 * The relay's cache of finished storage requests (relay->requests, relay/relay.h; peer.c):
 * a connection's CREATE gives its request back to the cache, wiped, and the next command's
 * request is that memory, so that a request's 608-byte chunk is not freed to malloc and cut by
 * later connections' mailboxes (docs/PERFORMANCE.md, idle memory); a tick that took none
 * frees them all, the cache never grows past its bound, and the relay's end frees what it
 * holds (teardown, under ASan's leak check).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "command_layer.h"
#include "support/cmdrig.h"

/* A finished CREATE's request is kept, wiped; the next CREATE runs in the same memory and
 * gives it back again. */
static void test_create_reuses_its_request(void **state)
{
	(void)state;
	struct conn *a = open_conn(), *b = open_conn();
	struct box ba, bb;
	assert_int_equal(relay->requests.count, 0);
	create(a, &ba);
	assert_int_equal(relay->requests.count, 1);
	struct request *kept = relay->requests.slot[0];
	assert_non_null(kept);
	/* Wiped: the record (the mailbox's ids and key; a SECURE's credential digest) is gone. */
	assert_true(sodium_is_zero((const unsigned char *)kept, sizeof(*kept)));

	struct cairn_msg m = {.type = CAIRN_CMD_CREATE, .request_id = 2, .recipient_key = bb.pk};
	crypto_sign_keypair(bb.pk, bb.sk);
	command(b, &m);
	assert_int_equal(relay->requests.count, 0); /* taken by the write in flight */
	settle();
	struct reply *r = next_reply(b);
	assert_non_null(r);
	assert_int_equal(r->type, CAIRN_REPLY_CREATED);
	assert_int_equal(relay->requests.count, 1);
	assert_ptr_equal(relay->requests.slot[0], kept);
	assert_true(sodium_is_zero((const unsigned char *)kept, sizeof(*kept)));

	/* A plain request's (DELETE's) path gives it back too. */
	on_mailbox(a, CAIRN_CMD_DELETE, &ba, 3, 0);
	assert_int_equal(relay->requests.count, 0);
	settle();
	expect_ok(a, 3);
	assert_int_equal(relay->requests.count, 1);
	assert_ptr_equal(relay->requests.slot[0], kept);
}

/* The tick frees the cache once a whole tick took none: a relay that runs no command holds
 * none of them. */
static void test_tick_frees_when_unused(void **state)
{
	(void)state;
	struct conn *a = open_conn();
	struct box ba;
	create(a, &ba);
	assert_int_equal(relay->requests.count, 1);
	commands_expire(relay, now_s); /* took one since the last tick: kept */
	assert_int_equal(relay->requests.count, 1);
	commands_expire(relay, now_s); /* took none: freed */
	assert_int_equal(relay->requests.count, 0);
	assert_null(relay->requests.slot[0]);
	/* Empty, it works as before. */
	struct box bb;
	create(a, &bb);
	assert_int_equal(relay->requests.count, 1);
}

/* A full cache hands what comes back to malloc (ASan's leak check sees one dropped). */
static void test_bound(void **state)
{
	(void)state;
	for (uint32_t i = 0; i < REQUEST_CACHE_SLOTS; i++)
		request_free(relay, calloc(1, sizeof(struct request)));
	assert_int_equal(relay->requests.count, REQUEST_CACHE_SLOTS);
	struct request *extra = calloc(1, sizeof(*extra));
	assert_non_null(extra);
	request_free(relay, extra);
	assert_int_equal(relay->requests.count, REQUEST_CACHE_SLOTS);
	for (uint32_t i = 0; i < REQUEST_CACHE_SLOTS; i++)
		assert_ptr_not_equal(relay->requests.slot[i], extra);
	/* The relay's end (teardown, commands_shutdown) frees the 1,024. */
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_create_reuses_its_request, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tick_frees_when_unused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bound, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
