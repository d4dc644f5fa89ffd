/* SPDX-License-Identifier: MIT */
/*
 * What the `cairn group` command tests share (test_it_group_cli and its siblings): a
 * directory of homes in test_it_client's world, pairing two homes as contacts, and reading a
 * group's members and messages back through `--json`, each field checked. Every step is a
 * separate `cairn` process, as a person or a script would run it.
 */
#ifndef CAIRN_TEST_IT_GROUP_CLI_COMMON_H
#define CAIRN_TEST_IT_GROUP_CLI_COMMON_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "cliproc.h"
#include "it_client_common.h"

#define HOMES_MAX 64
/* Sync rounds a change may take to reach everyone: offer, join, commit, welcome. */
#define ROUNDS 10

/* The homes of a test (make_homes): the world's directory holds them all (its own four are
 * not used). */
extern char hpath[HOMES_MAX][96];
void make_homes(const struct world *w);

/* Makes A (who calls the other BNAME) and B (who calls the other ANAME) contacts past the
 * first exchange. B's home is made here; A's must exist. */
void pair_as(struct world *w, const char *a, const char *bname, const char *b, const char *aname);

/* One line of `group members --json`. */
struct member {
	char name[65]; /* CAIRN_NAME_MAX and a NUL */
	char id[17];
	int contact, admin, self;
};

/* The next line of a command's --json output at *LINE as an object of FIELDS members, or NULL
 * at the end; *LINE moves past it. */
cJSON *next_object(char **line, int fields);

/* HOME's `group members GROUP --json`, every field of every line checked, into M (up to CAP);
 * returns the count. */
size_t members(const char *home, const char *group, struct member *m, size_t cap);
const struct member *find_member(const struct member *m, size_t n, const char *name);

/* How many messages of HOME's `read GROUP --json` have TEXT and sender SENDER (NULL: ours,
 * "sender":null; "": anyone else's). Every line of a group's conversation has the seven fields. */
size_t count_from(const char *home, const char *group, const char *sender, const char *text);

/* How many members HOME sees in GROUP (0: no such group there, yet). */
size_t seen(const char *home, const char *group);

/* Syncs each of the N homes in turn, ROUNDS times at most, until every home in WANT_HOMES
 * (NW of them) sees WANT members in GROUP. Returns the rounds it took. */
int settle(struct world *w, int n, const char *group, const int *want_homes, int nw, size_t want);

/* The start of every group command test's main: it_client_init, the fast KDF, the homes'
 * passphrase, no SOCKS proxy. Returns 0, or -1 when the command is not found. */
int group_cli_init(void);

/* Runs ARGS in HOME expecting EXPECT and WHAT in its standard error. */
void expect_err(int expect, const char *home, const char *const *args, const char *what);

#endif
