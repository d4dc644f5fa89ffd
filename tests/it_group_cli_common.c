/* SPDX-License-Identifier: MIT */
/* The `cairn group` command tests' homes and helpers (it_group_cli_common.h). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <cjson/cJSON.h>

#include "it_group_cli_common.h"

char hpath[HOMES_MAX][96];

void make_homes(const struct world *w)
{
	for (int i = 0; i < HOMES_MAX; i++)
		snprintf(hpath[i], sizeof(hpath[i]), "%s/h%02d", w->dir, i);
}

void pair_as(struct world *w, const char *a, const char *bname, const char *b, const char *aname)
{
	cli_check(0, CALL(.home = b), ARGS("init"));
	struct res inv =
	    cli_expect(0, CALL(.home = a), ARGS("invite", "--relay", w->addr, "--name", bname));
	inv.out[strcspn(inv.out, "\n")] = '\0';
	cli_check(0, CALL(.home = b), ARGS("accept", inv.out, "--name", aname));
	res_free(&inv);
	cli_check(0, CALL(.home = b), ARGS("send", aname, "hello"));
	sync_expect(CALL(.home = a), 0, -1);
	cli_check(0, CALL(.home = a), ARGS("send", bname, "hello"));
	sync_expect(CALL(.home = b), 0, -1);
}

cJSON *next_object(char **line, int fields)
{
	char *end = strchr(*line, '\n');
	if (end == NULL)
		return NULL;
	*end = '\0';
	cJSON *o = cJSON_Parse(*line);
	if (o == NULL)
		fprintf(stderr, "not JSON: %s\n", *line);
	assert_non_null(o);
	assert_int_equal(cJSON_GetArraySize(o), fields);
	*line = end + 1;
	return o;
}

size_t members(const char *home, const char *group, struct member *m, size_t cap)
{
	struct res r = cli_expect(0, CALL(.home = home), ARGS("group", "members", group, "--json"));
	size_t n = 0;
	char *line = r.out;
	for (cJSON *o; (o = next_object(&line, 5)) != NULL;) {
		cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
		cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
		cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "contact");
		cJSON *ad = cJSON_GetObjectItemCaseSensitive(o, "admin");
		cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "self");
		assert_true(cJSON_IsString(name) && cJSON_IsString(id) && cJSON_IsBool(k) &&
		            cJSON_IsBool(ad) && cJSON_IsBool(s));
		assert_int_equal(strlen(id->valuestring), 16);
		assert_int_equal(strspn(id->valuestring, "0123456789abcdef"), 16);
		/* Not a contact: named by its short id. */
		if (!cJSON_IsTrue(k))
			assert_string_equal(name->valuestring, id->valuestring);
		assert_true(n < cap);
		snprintf(m[n].name, sizeof(m[n].name), "%s", name->valuestring);
		strcpy(m[n].id, id->valuestring);
		m[n].contact = cJSON_IsTrue(k);
		m[n].admin = cJSON_IsTrue(ad);
		m[n].self = cJSON_IsTrue(s);
		n++;
		cJSON_Delete(o);
	}
	res_free(&r);
	return n;
}

const struct member *find_member(const struct member *m, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(m[i].name, name) == 0)
			return &m[i];
	return NULL;
}

size_t count_from(const char *home, const char *group, const char *sender, const char *text)
{
	struct res r = cli_expect(0, CALL(.home = home), ARGS("read", group, "--json"));
	size_t n = 0;
	char *line = r.out;
	for (cJSON *o; (o = next_object(&line, 7)) != NULL;) {
		cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "contact");
		cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "direction");
		cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "text");
		cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "sender");
		assert_true(cJSON_IsString(k) && cJSON_IsString(d) && cJSON_IsString(t));
		assert_string_equal(k->valuestring, group);
		int out = strcmp(d->valuestring, "out") == 0;
		/* Ours have no sender; every other message has one. */
		assert_true(out ? cJSON_IsNull(s) : cJSON_IsString(s));
		if (strcmp(t->valuestring, text) == 0 &&
		    (sender == NULL
		         ? out
		         : !out && (sender[0] == '\0' || strcmp(s->valuestring, sender) == 0)))
			n++;
		cJSON_Delete(o);
	}
	res_free(&r);
	return n;
}

size_t seen(const char *home, const char *group)
{
	struct res r = cli_run(CALL(.home = home), ARGS("group", "members", group, "--json"));
	size_t lines = 0;
	for (char *p = r.out; r.status == 0 && (p = strchr(p, '\n')) != NULL; p++)
		lines++;
	res_free(&r);
	return lines;
}

int settle(struct world *w, int n, const char *group, const int *want_homes, int nw, size_t want)
{
	for (int round = 1; round <= ROUNDS; round++) {
		for (int i = 0; i < n; i++)
			cli_check(-1, CALL(.home = hpath[i]), ARGS("sync"));
		int done = 1;
		for (int j = 0; j < nw && done; j++)
			done = seen(hpath[want_homes[j]], group) == want;
		if (done)
			return round;
	}
	for (int j = 0; j < nw; j++) {
		struct res r =
		    cli_run(CALL(.home = hpath[want_homes[j]]), ARGS("group", "members", group));
		fprintf(stderr, "home %d sees:\n%s%s", want_homes[j], r.out, r.err);
		res_free(&r);
	}
	fail_msg("group %s: not %zu members everywhere after %d rounds", group, want, ROUNDS);
	return -1;
}

int group_cli_init(void)
{
	if (it_client_init() != 0)
		return -1;
	setenv("CAIRN_PWHASH_FAST", "1", 1);
	setenv("CAIRN_PASSPHRASE", CLI_PASS, 1);
	unsetenv("CAIRN_SOCKS");
	return 0;
}

void expect_err(int expect, const char *home, const char *const *args, const char *what)
{
	struct res r = cli_expect(expect, CALL(.home = home), args);
	if (strstr(r.err, what) == NULL)
		fprintf(stderr, "wanted '%s' in: %s", what, r.err);
	assert_non_null(strstr(r.err, what));
	res_free(&r);
}
