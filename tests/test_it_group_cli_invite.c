/* SPDX-License-Identifier: MIT */
/*
 * Integration: the group invite (PROTOCOL.md 9.8) through the real `cairn` command and the
 * real cairn-relay on loopback, every step a separate process. Alice makes a group with her
 * contact Bob, then `group invite` prints an invite for Dave, who is nobody's contact; Dave
 * runs `accept` as for any invite; after syncs `members --json` lists all three everywhere,
 * with Dave a contact of Alice only, and a message each way is read with `read --json` naming
 * its sender. The invite opens once (Erin, accepting it too, gets nowhere). Usage errors exit
 * 2, refusals 1, as the other commands do.
 *
 * Homes use the fast KDF (CAIRN_PWHASH_FAST=1), as the other command tests do.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cliproc.h"
#include "it_common.h"
#include "it_client_common.h"
#include "it_group_cli_common.h"

static void test_group_invite(void **state)
{
	struct world *w = *state;
	make_homes(w);
	const char *a = hpath[0], *b = hpath[1], *d = hpath[2], *e = hpath[3];
	double t0 = it_mono_s();
	cli_check(0, CALL(.home = a), ARGS("init"));
	pair_as(w, a, "bob", b, "alice");
	cli_check(0, CALL(.home = d), ARGS("init"));
	cli_check(0, CALL(.home = e), ARGS("init"));

	/* Usage errors and refusals before there is a group. */
	expect_err(2, a, ARGS("group", "invite", "club"), "--name");
	expect_err(1, a, ARGS("group", "invite", "club", "--name", "dave"),
	           "no group called 'club'");
	cli_check(0, CALL(.home = a), ARGS("group", "create", "club", "--relay", w->addr));
	cli_check(0, CALL(.home = a), ARGS("group", "add", "club", "bob"));
	const int ab[] = {0, 1};
	settle(w, 2, "club", ab, 2, 2);
	expect_err(2, a, ARGS("group", "invite", "club", "--name", "dave", "--relay", "nonsense"),
	           "not a relay address");
	expect_err(1, a, ARGS("group", "invite", "club", "--name", "bob"), "is taken");
	expect_err(1, b, ARGS("group", "invite", "club", "--name", "dave"), "not an admin");
	expect_err(1, d, ARGS("accept", "cairn-invite:AAAA", "--name", "alice"), "accept:");

	/* The invite, alone on stdout; Dave accepts it as any invite. */
	struct res inv =
	    cli_expect(0, CALL(.home = a),
	               ARGS("group", "invite", "club", "--name", "dave", "--relay", w->addr));
	inv.out[strcspn(inv.out, "\n")] = '\0';
	assert_int_equal(strncmp(inv.out, "cairn-invite:", 13), 0);
	cli_check(0, CALL(.home = d), ARGS("accept", inv.out, "--name", "alice"));
	const int abd[] = {0, 1, 2};
	int rounds = settle(w, 3, "club", abd, 3, 3);
	print_message("joined by invite in %d sync rounds, %.1f s since init\n", rounds,
	              it_mono_s() - t0);

	struct member m[HOMES_MAX];
	assert_int_equal(members(a, "club", m, HOMES_MAX), 3);
	assert_true(find_member(m, 3, "dave")->contact);
	char dave_id[17];
	strcpy(dave_id, find_member(m, 3, "dave")->id);
	assert_int_equal(members(d, "club", m, HOMES_MAX), 3);
	assert_true(find_member(m, 3, "alice")->contact);
	assert_true(find_member(m, 3, "alice")->admin);
	char bob_at_d[17] = "";
	for (size_t i = 0; i < 3; i++)
		if (!m[i].self && !m[i].contact)
			strcpy(bob_at_d, m[i].id);
	assert_int_equal(strlen(bob_at_d), 16);
	/* Bob knows Dave by his short id only. */
	assert_int_equal(members(b, "club", m, HOMES_MAX), 3);
	assert_non_null(find_member(m, 3, dave_id));
	assert_false(find_member(m, 3, dave_id)->contact);

	/* A message each way, each read with its sender. */
	cli_check(0, CALL(.home = d), ARGS("send", "club", "dave says hi"));
	cli_check(0, CALL(.home = a), ARGS("send", "club", "alice says welcome"));
	cli_check(0, CALL(.home = b), ARGS("send", "club", "bob says hello"));
	for (int i = 0; i < 3; i++)
		cli_check(0, CALL(.home = hpath[i]), ARGS("sync"));
	assert_int_equal(count_from(a, "club", "dave", "dave says hi"), 1);
	assert_int_equal(count_from(b, "club", dave_id, "dave says hi"), 1);
	assert_int_equal(count_from(d, "club", "alice", "alice says welcome"), 1);
	assert_int_equal(count_from(d, "club", bob_at_d, "bob says hello"), 1);
	assert_int_equal(count_from(d, "club", NULL, "dave says hi"), 1);
	/* Dave is Alice's contact, as the invite named him; Bob's contacts are as they were. */
	struct res r = cli_expect(0, CALL(.home = a), ARGS("contacts"));
	assert_non_null(strstr(r.out, "dave"));
	res_free(&r);
	r = cli_expect(0, CALL(.home = b), ARGS("contacts"));
	assert_null(strstr(r.out, "dave"));
	res_free(&r);

	/* Single use: Erin accepts the same invite (exit 0, or 3 when its first message finds
	 * the invite mailbox gone) and never gets in. */
	r = cli_run(CALL(.home = e), ARGS("accept", inv.out, "--name", "alice"));
	assert_true(r.status == 0 || r.status == 3);
	res_free(&r);
	for (int round = 0; round < 2; round++) {
		cli_check(-1, CALL(.home = a), ARGS("sync"));
		cli_check(-1, CALL(.home = e), ARGS("sync"));
	}
	assert_int_equal(seen(e, "club"), 0);
	assert_int_equal(members(a, "club", m, HOMES_MAX), 3);
	res_free(&inv);
	print_message("whole test %.1f s\n", it_mono_s() - t0);
}

int main(void)
{
	if (group_cli_init() != 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_group_invite, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
