/* SPDX-License-Identifier: MIT */
/*
 * Integration: disappearing messages with the real `cairn` command and relay. Alice sets a
 * timer of 3 s (`cairn timer bob 3s`) while Bob's `cairn listen` runs; they exchange messages;
 * the sealed record of every message stored under the timer is read from each home's
 * database (SQLite, read-only) while it is there. Once their time has come (Bob's engine
 * deletes them while running, Alice's next open does), every file under both homes (cairn.db,
 * its -wal and -shm, anything else) is scanned for any 32-byte window of those records and for
 * the plaintexts: nothing may be found, and `cairn read` no longer shows them. Bob's files are
 * scanned while his listen still holds the store open (its log not removed by a close).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "cliproc.h"
#include "it_client_common.h"
#include "it_common.h"

#define REC_MESSAGE 3  /* client/records.h */
#define REC_EXPIRY  70 /* client/records.h */
#define WINDOW      32
#define VALUES_MAX  64

struct values {
	size_t n;
	uint8_t *v[VALUES_MAX];
	size_t len[VALUES_MAX];
};

static void values_free(struct values *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	s->n = 0;
}

/* The sealed values of HOME's records of KIND (read-only, beside whoever holds it open). */
static void read_values(const char *home, int kind, struct values *out)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/cairn.db", home);
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	sqlite3_stmt *st = NULL;
	assert_int_equal(
	    sqlite3_prepare_v2(db, "SELECT value FROM records WHERE kind = ?1", -1, &st, NULL),
	    SQLITE_OK);
	sqlite3_bind_int(st, 1, kind);
	out->n = 0;
	while (sqlite3_step(st) == SQLITE_ROW && out->n < VALUES_MAX) {
		size_t len = (size_t)sqlite3_column_bytes(st, 0);
		out->v[out->n] = malloc(len);
		assert_non_null(out->v[out->n]);
		memcpy(out->v[out->n], sqlite3_column_blob(st, 0), len);
		out->len[out->n++] = len;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static size_t count_kind(const char *home, int kind)
{
	struct values v;
	read_values(home, kind, &v);
	size_t n = v.n;
	values_free(&v);
	return n;
}

/* Adds to NEW the values of HOME's messages that are not in OLD. */
static void new_values(const char *home, const struct values *old, struct values *add)
{
	struct values now;
	read_values(home, REC_MESSAGE, &now);
	for (size_t i = 0; i < now.n; i++) {
		bool seen = false;
		for (size_t j = 0; j < old->n && !seen; j++)
			seen = old->len[j] == now.len[i] && memcmp(old->v[j], now.v[i], now.len[i]) == 0;
		for (size_t j = 0; j < add->n && !seen; j++)
			seen = add->len[j] == now.len[i] && memcmp(add->v[j], now.v[i], now.len[i]) == 0;
		if (!seen && add->n < VALUES_MAX) {
			add->v[add->n] = now.v[i];
			add->len[add->n++] = now.len[i];
			now.v[i] = NULL;
		}
	}
	values_free(&now);
}

/* ---- the scan -------------------------------------------------------------------------- */

struct scan {
	const struct values *sealed;
	const char *const *plain;
	bool quiet;
	unsigned found;
	unsigned files;
};
static struct scan *scanning;

static int scan_file(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)ftw;
	if (flag != FTW_F || !S_ISREG(sb->st_mode))
		return 0;
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	size_t cap = (size_t)sb->st_size + 1, len = 0;
	uint8_t *buf = malloc(cap);
	assert_non_null(buf);
	len = fread(buf, 1, cap, f);
	fclose(f);
	scanning->files++;
	const struct values *s = scanning->sealed;
	for (size_t i = 0; i < s->n; i++)
		for (size_t off = 0; off + WINDOW <= s->len[i]; off++)
			if (memmem(buf, len, s->v[i] + off, WINDOW) != NULL) {
				if (!scanning->quiet)
					print_message("%s holds 32 bytes of expired record %zu at "
					              "offset %zu\n",
					              path, i, off);
				scanning->found++;
				break;
			}
	for (size_t i = 0; scanning->plain[i] != NULL; i++)
		if (memmem(buf, len, scanning->plain[i], strlen(scanning->plain[i])) != NULL) {
			if (!scanning->quiet)
				print_message("%s holds the plaintext '%s'\n", path,
				              scanning->plain[i]);
			scanning->found++;
		}
	free(buf);
	return 0;
}

/* How many traces of SEALED and PLAIN every file under HOME holds. */
static unsigned scan_home_as(const char *home, const struct values *sealed,
                             const char *const *plain, bool quiet)
{
	struct scan s = {.sealed = sealed, .plain = plain, .quiet = quiet};
	scanning = &s;
	assert_int_equal(nftw(home, scan_file, 8, FTW_PHYS), 0);
	assert_true(s.files >= 1);
	return s.found;
}

static unsigned scan_home(const char *home, const struct values *sealed, const char *const *plain)
{
	return scan_home_as(home, sealed, plain, false);
}

/* The running engine's sweep commits, then truncates the log; a reader (this test's own
 * sqlite3 reads) can hold the truncation back until its next tick (2 s): wait for a clean
 * home, bounded, then scan once more aloud. */
static unsigned scan_home_settled(const char *home, const struct values *sealed,
                                  const char *const *plain)
{
	time_t end = time(NULL) + 15;
	while (scan_home_as(home, sealed, plain, true) != 0 && time(NULL) < end)
		usleep(100 * 1000);
	return scan_home(home, sealed, plain);
}

/* Waits (bounded) until PRED(HOME) holds. */
static void wait_for(const char *home, bool (*pred)(const char *home), const char *what)
{
	time_t end = time(NULL) + 60;
	while (!pred(home) && time(NULL) < end)
		usleep(50 * 1000);
	if (!pred(home))
		fail_msg("waited 60 s for %s", what);
}

static bool timer_is_3s(const char *home)
{
	struct res r = cli_run(CALL(.home = home), ARGS("timer", "alice"));
	bool ok = r.status == 0 && strcmp(r.out, "3 seconds\n") == 0;
	res_free(&r);
	return ok;
}

static size_t base_messages;
static bool one_more(const char *home)
{
	return count_kind(home, REC_MESSAGE) > base_messages;
}

static bool none_due(const char *home)
{
	return count_kind(home, REC_EXPIRY) == 0;
}

static bool shows(const char *home, const char *contact, const char *text)
{
	struct convo c = read_convo(home, contact);
	size_t n = count_text(&c, 0, text) + count_text(&c, 1, text);
	convo_free(&c);
	return n > 0;
}

static void test_expired_leave_nothing(void **state)
{
	struct world *w = *state;
	const char *a = w->home[0], *b = w->home[1];
	pair(a, b, w->addr, NULL);
	static const char *const plain[] = {"plaintext-one-for-bob-7f3a", "plaintext-two-for-alice-c91e",
	                                    NULL};
	struct values old_a, old_b, sealed_a = {0}, sealed_b = {0};
	read_values(a, REC_MESSAGE, &old_a);
	read_values(b, REC_MESSAGE, &old_b);

	w->listener = cli_spawn(CALL(.home = b), ARGS("listen"));
	/* Out of range and malformed durations are usage errors. */
	cli_check(2, CALL(.home = a), ARGS("timer", "bob", "2y"));
	cli_check(2, CALL(.home = a), ARGS("timer", "bob", "366d"));
	/* Each record is read as soon as the command that stored it is done: it has 3 s, and
	 * the next command's open may already delete it. */
	cli_check(0, CALL(.home = a), ARGS("timer", "bob", "3s"));
	new_values(a, &old_a, &sealed_a);
	wait_for(b, timer_is_3s, "Bob's listen to apply the timer");
	new_values(b, &old_b, &sealed_b);

	base_messages = count_kind(b, REC_MESSAGE);
	cli_check(0, CALL(.home = a), ARGS("send", "bob", plain[0]));
	new_values(a, &old_a, &sealed_a);
	wait_for(b, one_more, "Bob's listen to store the message");
	new_values(b, &old_b, &sealed_b);
	cli_check(0, CALL(.home = b), ARGS("send", "alice", plain[1]));
	new_values(b, &old_b, &sealed_b);
	/* The timer message and the texts: Alice two so far, Bob three. */
	assert_true(sealed_a.n >= 2);
	assert_true(sealed_b.n >= 3);

	/* Bob's engine deletes them while it runs; his store stays open meanwhile. */
	wait_for(b, none_due, "Bob's listen to expire the messages");
	assert_int_equal(scan_home_settled(b, &sealed_b, plain), 0);
	kill(w->listener, SIGTERM);
	assert_int_equal(wait_status(w->listener), 0);
	w->listener = 0;
	assert_int_equal(scan_home(b, &sealed_b, plain), 0);
	assert_false(shows(b, "alice", plain[0]));
	assert_false(shows(b, "alice", plain[1]));
	assert_true(shows(b, "alice", "pairing: a to b")); /* before the timer: kept */

	/* Alice's go at her next open, once 3 s have passed since she stored the last. */
	cli_check(0, CALL(.home = a), ARGS("sync"));
	new_values(a, &old_a, &sealed_a); /* Bob's reply, stored now: 3 s left */
	assert_true(sealed_a.n >= 3);
	time_t end = time(NULL) + 60;
	while ((shows(a, "bob", plain[0]) || shows(a, "bob", plain[1])) && time(NULL) < end)
		usleep(200 * 1000);
	assert_false(shows(a, "bob", plain[0]));
	assert_false(shows(a, "bob", plain[1]));
	assert_int_equal(count_kind(a, REC_EXPIRY), 0);
	assert_int_equal(scan_home(a, &sealed_a, plain), 0);
	/* Changes are shown in the conversation (the 3 s one went with its own time). */
	cli_check(0, CALL(.home = a), ARGS("timer", "bob", "off"));
	struct res r = cli_expect(0, CALL(.home = a), ARGS("timer", "bob"));
	assert_string_equal(r.out, "off\n");
	res_free(&r);
	cli_check(0, CALL(.home = a), ARGS("timer", "bob", "1d"));
	r = cli_expect(0, CALL(.home = a), ARGS("read", "bob"));
	assert_null(strstr(r.out, "3 seconds"));
	assert_non_null(strstr(r.out, "you turned disappearing messages off"));
	assert_non_null(strstr(r.out, "you set messages to disappear after 1 day"));
	res_free(&r);
	sync_expect(CALL(.home = b), 0, 2);
	r = cli_expect(0, CALL(.home = b), ARGS("read", "alice"));
	assert_non_null(strstr(r.out, "alice set messages to disappear after 1 day"));
	res_free(&r);
	r = cli_expect(0, CALL(.home = b), ARGS("timer", "alice"));
	assert_string_equal(r.out, "1 day\n");
	res_free(&r);
	values_free(&old_a);
	values_free(&old_b);
	values_free(&sealed_a);
	values_free(&sealed_b);
}

int main(void)
{
	if (it_client_init() != 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_expired_leave_nothing, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
