/* SPDX-License-Identifier: MIT */
/*
 * Bundles with the real binaries (docs/PROTOCOL.md 12, 5.12): an outage (the relay stopped),
 * alice `cairn send`s 20 messages to bob (queued) and exports them with `cairn bundle
 * export`; the relay starts; carol, who knows neither, delivers the bundle twice with `cairn
 * bundle deliver`, and the operator once with `cairn-relay import` after a relay restart: the
 * relay's store holds each envelope once (its envelopes table and its seen rows, read with
 * SQLite) and bob reads each message once. A tampered bundle (one flipped byte): that item
 * refused, the others taken; an expired one refused item by item; a bundle of the wrong length
 * refused whole by both tools. Then alice comes online and sends her outbox herself: bob still
 * reads each message once.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "cairn/address.h"
#include "cairn/limits.h"
#include "cliproc.h"
#include "relayproc.h"

#define MESSAGES 20

struct world {
	char dir[64], alice[96], bob[96], carol[96];
	struct relayproc r;
	char addr[CAIRN_ADDRESS_MAX + 1];
};

static int setup(void **state)
{
	static struct world w;
	memset(&w, 0, sizeof(w));
	strcpy(w.dir, "/tmp/cairn-bundle-XXXXXX");
	if (mkdtemp(w.dir) == NULL || find_cli() != 0)
		return -1;
	snprintf(w.alice, sizeof(w.alice), "%s/alice", w.dir);
	snprintf(w.bob, sizeof(w.bob), "%s/bob", w.dir);
	snprintf(w.carol, sizeof(w.carol), "%s/carol", w.dir);
	if (relayproc_init(&w.r, NULL) != 0 || relayproc_start(&w.r) != 0 ||
	    relayproc_address(&w.r, "127.0.0.1", w.addr, sizeof(w.addr)) != 0)
		return -1;
	*state = &w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	relayproc_cleanup(&w->r);
	test_rm_tree(w->dir);
	return 0;
}

/* Runs `cairn-relay import FILE` against W's relay; returns its exit status and output. */
static struct res relay_import(const struct world *w, const char *file)
{
	char data[300], out[400], err[400];
	snprintf(data, sizeof(data), "%s/data", w->r.dir);
	snprintf(out, sizeof(out), "%s/import.out", w->dir);
	snprintf(err, sizeof(err), "%s/import.err", w->dir);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
			_exit(127);
		execl(CAIRN_RELAY_BIN, CAIRN_RELAY_BIN, "import", file, "--data", data, "--config",
		      w->r.conf, (char *)NULL);
		_exit(127);
	}
	struct res r = {.status = wait_status(pid)};
	size_t cap = 0;
	char buf[4096];
	FILE *f = fopen(out, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	buf_append(&r.out, &r.outlen, &cap, buf, n);
	buf_append(&r.out, &r.outlen, &cap, "", 1);
	cap = 0;
	f = fopen(err, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	buf_append(&r.err, &r.errlen, &cap, buf, n);
	buf_append(&r.err, &r.errlen, &cap, "", 1);
	return r;
}

/* Runs SQL (one integer) on W's relay store, read-only beside the running relay. */
static long store_count(const struct world *w, const char *sql)
{
	char path[400];
	snprintf(path, sizeof(path), "%s/data/relay.db", w->r.dir);
	sqlite3 *db;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	long v = (long)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static long file_size(const char *path)
{
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	return (long)sb.st_size;
}

/* Bob's conversation with alice holds each of the messages exactly once. */
static void bob_reads_each_once(const struct world *w)
{
	struct convo c = read_convo(w->bob, "alice");
	for (int i = 0; i < MESSAGES; i++) {
		char text[64];
		snprintf(text, sizeof(text), "carried %d", i);
		size_t n = count_text(&c, 0, text);
		if (n != 1)
			fprintf(stderr, "'%s' read %zu times\n", text, n);
		assert_int_equal(n, 1);
	}
	convo_free(&c);
}

static void copy_file(const char *from, const char *to, long cut, long flip)
{
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	assert_non_null(in);
	assert_non_null(out);
	long pos = 0;
	int ch;
	while ((ch = fgetc(in)) != EOF) {
		if (cut >= 0 && pos >= cut)
			break;
		fputc(pos == flip ? ch ^ 0x01 : ch, out);
		pos++;
	}
	fclose(in);
	assert_int_equal(fclose(out), 0);
	assert_int_equal(chmod(to, 0600), 0);
}

static void test_bundle_across_outage(void **state)
{
	struct world *w = *state;
	pair(w->alice, w->bob, w->addr, NULL);
	cli_check(0, CALL(.home = w->carol), ARGS("init"));

	/* The outage: alice's messages wait in her outbox. */
	assert_int_equal(relayproc_stop(&w->r, SIGTERM), 0);
	for (int i = 0; i < MESSAGES; i++) {
		char text[64];
		snprintf(text, sizeof(text), "carried %d", i);
		cli_check(3, CALL(.home = w->alice), ARGS("send", "bob", text));
	}
	char bundle[128], tampered[128], cut[128], expired[128];
	snprintf(bundle, sizeof(bundle), "%s/stick.bundle", w->dir);
	snprintf(tampered, sizeof(tampered), "%s/tampered.bundle", w->dir);
	snprintf(cut, sizeof(cut), "%s/cut.bundle", w->dir);
	snprintf(expired, sizeof(expired), "%s/expired.bundle", w->dir);
	struct res r = cli_expect(0, CALL(.home = w->alice), ARGS("bundle", "export", bundle));
	assert_non_null(strstr(r.out, "20 items written"));
	res_free(&r);
	assert_int_equal(file_size(bundle), MESSAGES * CAIRN_BUNDLE_ITEM_LEN);
	struct stat sb;
	assert_int_equal(stat(bundle, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	/* Valid for one second only: refused once that second has passed. */
	int64_t exported = (int64_t)time(NULL);
	cli_check(0, CALL(.home = w->alice), ARGS("bundle", "export", expired, "--expires", "1s"));

	/* The relay is back; carol, a stranger to both, delivers the bundle twice. */
	assert_int_equal(relayproc_start(&w->r), 0);
	for (int round = 0; round < 2; round++) {
		r = cli_expect(0, CALL(.home = w->carol),
		               ARGS("bundle", "deliver", bundle, w->addr));
		if (strstr(r.out, "20 taken, 0 expired, 0 refused, 0 not delivered") == NULL)
			fprintf(stderr, "deliver: %s%s", r.out, r.err);
		assert_non_null(strstr(r.out, "20 taken, 0 expired, 0 refused, 0 not delivered"));
		res_free(&r);
	}
	/* A restart (the seen rows load from the store), then the operator's import. */
	assert_int_equal(relayproc_stop(&w->r, SIGTERM), 0);
	assert_int_equal(relayproc_start(&w->r), 0);
	r = relay_import(w, bundle);
	if (r.status != 0 || strstr(r.out, "20 items: 20 taken") == NULL)
		fprintf(stderr, "import: %d %s%s", r.status, r.out, r.err);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "20 items: 20 taken"));
	res_free(&r);
	/* Stored once each: 20 envelopes, 20 seen rows, whatever the routes. */
	assert_int_equal(store_count(w, "SELECT count(*) FROM envelopes"), MESSAGES);
	assert_int_equal(store_count(w, "SELECT count(*) FROM bundle_seen"), MESSAGES);
	sync_expect(CALL(.home = w->bob), 0, MESSAGES);
	bob_reads_each_once(w);

	/* A wrong length: refused whole, by both tools, nothing sent. */
	copy_file(bundle, cut, (long)file_size(bundle) - 1, -1);
	r = cli_expect(1, CALL(.home = w->carol), ARGS("bundle", "deliver", cut, w->addr));
	assert_non_null(strstr(r.err, "not a bundle"));
	res_free(&r);
	r = relay_import(w, cut);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "not a bundle"));
	res_free(&r);

	/* Expired: every item refused for good, nothing stored. */
	while ((int64_t)time(NULL) <= exported + 1) {
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	r = cli_expect(0, CALL(.home = w->carol), ARGS("bundle", "deliver", expired, w->addr));
	assert_non_null(strstr(r.out, "0 taken, 20 expired, 0 refused, 0 not delivered"));
	res_free(&r);

	/* One flipped byte in the third item: that item is refused, the others taken (a fresh
	 * export: new seals, so the relay stores them again and bob drops the copies). */
	struct res e = cli_expect(0, CALL(.home = w->alice), ARGS("bundle", "export", bundle));
	res_free(&e);
	copy_file(bundle, tampered, -1, 2L * CAIRN_BUNDLE_ITEM_LEN + 500);
	r = cli_expect(3, CALL(.home = w->carol), ARGS("bundle", "deliver", tampered, w->addr));
	assert_non_null(strstr(r.out, "19 taken (new or already there), 0 expired, 0 refused, "
	                              "1 not for this relay"));
	assert_non_null(strstr(r.out, "20 items: 19 taken, 0 expired, 0 refused, 1 not delivered"));
	res_free(&r);

	/* Alice online: her outbox goes as well; bob still reads each message once. */
	cli_check(0, CALL(.home = w->alice), ARGS("sync"));
	struct res s = cli_expect(0, CALL(.home = w->bob), ARGS("sync"));
	res_free(&s);
	bob_reads_each_once(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_bundle_across_outage, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
