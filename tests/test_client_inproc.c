/* SPDX-License-Identifier: MIT */
/*
 * libcairn used in-process against the real relay (issue 10, client finding 3): two struct
 * cairn used from two threads at once must not share any buffer, and a local storage failure
 * must come back as what it is (CAIRN_EIO), not as a protocol or network error. Homes are made
 * and paired with the real `cairn` command (tests/support/cliproc.h).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <sodium.h>
#include <sqlite3.h>

#include "cairn/address.h"
#include "cairn/cairn.h"
#include "cliproc.h"
#include "it_common.h"
#include "relayproc.h"

struct world {
	char dir[64];
	char home[4][96]; /* A, B, C, D */
	struct relayproc relay;
	char addr[CAIRN_ADDRESS_MAX + 1];
};

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -1;
	strcpy(w->dir, "/tmp/cairn-inproc-XXXXXX");
	if (mkdtemp(w->dir) == NULL)
		return -1;
	for (int i = 0; i < 4; i++)
		snprintf(w->home[i], sizeof(w->home[i]), "%s/%c", w->dir, 'A' + i);
	if (relayproc_init(&w->relay, NULL) != 0 || relayproc_start(&w->relay) != 0)
		return -1;
	struct cairn_address a = {.host_type = CAIRN_HOST_IPV4, .port = w->relay.port};
	memcpy(a.key, w->relay.pub, sizeof(a.key));
	strcpy(a.host, "127.0.0.1");
	if (cairn_address_format(&a, w->addr, sizeof(w->addr)) != 0)
		return -1;
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	if (w == NULL)
		return 0;
	relayproc_cleanup(&w->relay);
	test_rm_tree(w->dir);
	free(w);
	return 0;
}

/* ---- two handles, two threads -------------------------------------------------------- */

/* Fewer under ASan (IT_ASAN), where each seal is slower and so overlaps as often. */
#define THREAD_MESSAGES (IT_ASAN ? 8 : 12)
#define MESSAGE_BYTES   (120 * 1024) /* eight parts: eight seals per send */

struct sender {
	struct cairn *c;
	char tag; /* 'A' or 'C': every byte of its messages says whose they are */
	int failed;
};

static void message_text(char tag, int i, char *out)
{
	memset(out, tag + ('a' - 'A'), MESSAGE_BYTES);
	snprintf(out, 16, "%c%03d ", tag, i);
	out[5] = ' ';
	out[MESSAGE_BYTES] = '\0';
}

static void *send_all(void *arg)
{
	struct sender *s = arg;
	char *text = malloc(MESSAGE_BYTES + 1);
	if (text == NULL) {
		s->failed = THREAD_MESSAGES;
		return NULL;
	}
	for (int i = 0; i < THREAD_MESSAGES; i++) {
		message_text(s->tag, i, text);
		/* The relay is down: each send seals, queues and fails to connect at once. */
		int rc = cairn_send(s->c, "bob", (const uint8_t *)text, MESSAGE_BYTES, NULL);
		if (rc != CAIRN_ECONNECT)
			s->failed++;
	}
	free(text);
	return NULL;
}

static void expect_all(const char *home, char tag)
{
	struct convo cv = read_convo(home, "alice");
	char *text = malloc(MESSAGE_BYTES + 1);
	assert_non_null(text);
	size_t wrong = 0;
	for (int i = 0; i < THREAD_MESSAGES; i++) {
		message_text(tag, i, text);
		wrong += count_text(&cv, 0, text) != 1;
	}
	/* Nothing else arrived either (a message of the other thread's, a mixed one). */
	size_t in = count_dir(&cv, 0);
	print_message("%s: %zu of %d messages missing or wrong, %zu received\n", home, wrong,
	              THREAD_MESSAGES, in);
	free(text);
	convo_free(&cv);
	assert_int_equal(wrong, 0);
	assert_int_equal(in, THREAD_MESSAGES + 1); /* and the pairing message */
}

static void test_two_handles_two_threads(void **state)
{
	struct world *w = *state;
	pair(w->home[0], w->home[1], w->addr, NULL);
	pair(w->home[2], w->home[3], w->addr, NULL);
	struct sender s[2] = {{.tag = 'A'}, {.tag = 'C'}};
	assert_int_equal(cairn_open(w->home[0], CLI_PASS, &s[0].c), 0);
	assert_int_equal(cairn_open(w->home[2], CLI_PASS, &s[1].c), 0);
	assert_int_equal(relayproc_stop(&w->relay, SIGTERM), 0);
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, send_all, &s[i]), 0);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		cairn_close(s[i].c);
		assert_int_equal(s[i].failed, 0);
	}
	assert_int_equal(relayproc_start(&w->relay), 0);
	sync_expect(CALL(.home = w->home[0]), 0, 0);
	sync_expect(CALL(.home = w->home[2]), 0, 0);
	cli_check(0, CALL(.home = w->home[1]), ARGS("sync"));
	cli_check(0, CALL(.home = w->home[3]), ARGS("sync"));
	expect_all(w->home[1], 'A');
	expect_all(w->home[3], 'C');
}

/* ---- a storage failure is reported as one -------------------------------------------- */

/* Makes every insert of a message record (kind 3, client/records.h) in HOME's store fail,
 * as a full disk would (ON 1) or stop failing (ON 0). */
static void fail_message_inserts(const char *home, int on)
{
	char path[160];
	snprintf(path, sizeof(path), "%s/cairn.db", home);
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	const char *sql = on ? "CREATE TRIGGER full_disk BEFORE INSERT ON records WHEN NEW.kind = 3"
	                       " BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;"
	                     : "DROP TRIGGER full_disk;";
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void test_storage_failure_code(void **state)
{
	struct world *w = *state;
	const char *a = w->home[0], *b = w->home[1];
	pair(a, b, w->addr, NULL);
	fail_message_inserts(a, 1);
	struct cairn *c = NULL;
	assert_int_equal(cairn_open(a, CLI_PASS, &c), 0);
	/* Sending: our copy of the message cannot be stored, so nothing is sealed or sent. */
	int rc = cairn_send(c, "bob", (const uint8_t *)"not stored", 10, NULL);
	print_message("cairn_send with a failing store: %d (%s)\n", rc, cairn_strerror(rc));
	assert_int_equal(rc, CAIRN_EIO);
	/* Receiving: the delivery cannot be stored, so it is not acknowledged, and sync says
	 * why rather than blaming the relay. */
	cli_check(0, CALL(.home = b), ARGS("send", "alice", "kept on the relay"));
	struct cairn_sync_result res;
	rc = cairn_sync(c, &res, NULL, NULL);
	print_message("cairn_sync with a failing store: %d (%s)\n", rc, cairn_strerror(rc));
	assert_int_equal(rc, CAIRN_EIO);
	assert_int_equal(res.received, 0);
	cairn_close(c);
	/* Once the store works again, the message is there to fetch, and only it. */
	fail_message_inserts(a, 0);
	sync_expect(CALL(.home = a), 0, 1);
	sync_expect(CALL(.home = b), 0, 0);
	struct convo cv = read_convo(a, "bob");
	assert_int_equal(count_text(&cv, 0, "kept on the relay"), 1);
	assert_int_equal(count_text(&cv, 1, "not stored"), 0);
	convo_free(&cv);
}

int main(void)
{
	if (sodium_init() < 0 || find_cli() != 0) {
		fprintf(stderr, "cannot find the cairn command (%s); set CAIRN_CLI\n", cli_path);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_two_handles_two_threads, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_failure_code, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
