/* SPDX-License-Identifier: MIT */
/*
 * Integration: groups' local names and `cairn groups` through the real `cairn` command and
 * the real cairn-relay on loopback, each step a separate process. Alice makes a group called
 * "alice", which Bob, who calls Alice "alice", joins as "alice (2)"; `groups` and `groups --json`
 * list groups only (`contacts` lists contacts only); `rename` renames a group, which then sends and
 * reads under its new name while Bob sees no change; a name taken by a contact or a group is
 * refused; a name with a terminal escape is shown through termsafe.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cliproc.h"
#include "it_common.h"
#include "it_client_common.h"
#include "it_group_cli_common.h"

/* One line of `groups --json`. */
struct group_line {
	char name[65];
	int members, admin, removed, unread;
	double epoch;
};

/* HOME's `groups --json`, every field of every line checked, into G (up to CAP). */
static size_t groups(const char *home, struct group_line *g, size_t cap)
{
	struct res r = cli_expect(0, CALL(.home = home), ARGS("groups", "--json"));
	size_t n = 0;
	char *line = r.out;
	for (cJSON *o; (o = next_object(&line, 7)) != NULL; cJSON_Delete(o)) {
		cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
		cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "members");
		cJSON *ad = cJSON_GetObjectItemCaseSensitive(o, "admin");
		cJSON *rm = cJSON_GetObjectItemCaseSensitive(o, "removed");
		cJSON *ep = cJSON_GetObjectItemCaseSensitive(o, "epoch");
		cJSON *un = cJSON_GetObjectItemCaseSensitive(o, "unread");
		cJSON *wa = cJSON_GetObjectItemCaseSensitive(o, "warnings");
		assert_true(cJSON_IsString(name) && cJSON_IsNumber(m) && cJSON_IsBool(ad) &&
		            cJSON_IsBool(rm) && cJSON_IsNumber(ep) && cJSON_IsNumber(un));
		/* Nothing here tampers: no warning (test_client_group_attack has them). */
		assert_true(cJSON_IsArray(wa) && cJSON_GetArraySize(wa) == 0);
		assert_true(n < cap);
		snprintf(g[n].name, sizeof(g[n].name), "%s", name->valuestring);
		g[n].members = m->valueint;
		g[n].admin = cJSON_IsTrue(ad);
		g[n].removed = cJSON_IsTrue(rm);
		g[n].epoch = ep->valuedouble;
		g[n].unread = un->valueint;
		n++;
	}
	res_free(&r);
	return n;
}

/* HOME's `contacts` lists one line, contact NAME's (and no group). */
static void one_contact(const char *home, const char *name)
{
	struct res r = cli_expect(0, CALL(.home = home), ARGS("contacts"));
	char *nl = strchr(r.out, '\n');
	assert_non_null(nl);
	assert_string_equal(nl + 1, "");
	assert_int_equal(strncmp(r.out, name, strlen(name)), 0);
	assert_true(r.out[strlen(name)] == '\n' || r.out[strlen(name)] == ' ');
	res_free(&r);
}

static void test_group_names(void **state)
{
	struct world *w = *state;
	make_homes(w);
	const char *a = hpath[0], *b = hpath[1];
	struct group_line g[4];
	cli_check(0, CALL(.home = a), ARGS("init"));
	pair_as(w, a, "bob", b, "alice");
	assert_int_equal(groups(a, g, 4), 0);

	/* Alice's group is called what Bob calls Alice: Bob's client names it "alice (2)". */
	cli_check(0, CALL(.home = a), ARGS("group", "create", "alice", "--relay", w->addr));
	cli_check(0, CALL(.home = a), ARGS("group", "add", "alice", "bob"));
	int round = 0;
	for (; round < ROUNDS && (groups(b, g, 4) != 1 || g[0].members != 2); round++) {
		cli_check(-1, CALL(.home = a), ARGS("sync"));
		cli_check(-1, CALL(.home = b), ARGS("sync"));
	}
	assert_true(round < ROUNDS);
	assert_int_equal(groups(b, g, 4), 1);
	assert_string_equal(g[0].name, "alice (2)");
	assert_int_equal(g[0].admin, 0);
	assert_int_equal(g[0].removed, 0);
	/* The contact is still "alice", the only one `contacts` lists. */
	one_contact(b, "alice");

	/* Alice renames her group; Bob sees no change. The old name is free, the new one taken. */
	expect_err(1, a, ARGS("rename", "bob", "alice"), "is taken");
	expect_err(1, a, ARGS("rename", "alice", "bob"), "is taken");
	cli_check(0, CALL(.home = a), ARGS("rename", "alice", "circle"));
	expect_err(1, a, ARGS("group", "members", "alice"), "no group called 'alice'");
	expect_err(1, b, ARGS("group", "create", "alice", "--relay", w->addr), "is taken");
	cli_check(0, CALL(.home = a), ARGS("send", "circle", "under a new name"));
	cli_check(0, CALL(.home = b), ARGS("sync"));
	assert_int_equal(count_from(b, "alice (2)", "alice", "under a new name"), 1);
	cli_check(0, CALL(.home = b), ARGS("send", "alice (2)", "same to me"));
	cli_check(0, CALL(.home = a), ARGS("sync"));
	assert_int_equal(groups(a, g, 4), 1);
	assert_string_equal(g[0].name, "circle");
	assert_int_equal(g[0].members, 2);
	assert_int_equal(g[0].admin, 1);
	assert_int_equal(g[0].unread, 1);
	assert_int_equal(count_from(a, "circle", "bob", "same to me"), 1);
	assert_int_equal(groups(a, g, 4), 1);
	assert_int_equal(g[0].unread, 0);

	/* The people's view: one line per group; a name is shown through termsafe. */
	cli_check(0, CALL(.home = a), ARGS("rename", "circle", "red\x1b[31mcircle"));
	struct res r = cli_expect(0, CALL(.home = a), ARGS("groups"));
	assert_null(strchr(r.out, '\x1b'));
	assert_non_null(strstr(r.out, "2 members, admin"));
	res_free(&r);
	one_contact(a, "bob");
}

int main(void)
{
	if (group_cli_init() != 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_group_names, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
