/* SPDX-License-Identifier: MIT */
/*
 * Integration: a client home on a small real file system (an ext4 image on a loop device,
 * smallfs.h) that another process fills up, through the real `cairn` and `cairn-relay`.
 * `cairn send` fails with an error that names the cause, and the message is not half stored:
 * it is not sent, now or later. `cairn sync` on the full home stores nothing and acknowledges
 * nothing, so the relay keeps every envelope. Once the room is back, the home opens, the
 * messages that waited arrive, once each, and sending works again.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cairn/address.h"
#include "cliproc.h"
#include "relayproc.h"
#include "smallfs.h"

struct world {
	char dir[64], alice[96], bob[96], filler[400];
	struct relayproc relay;
	char addr[CAIRN_ADDRESS_MAX + 1];
	struct smallfs fs;
	pid_t listener;
};

static struct world w;

/* Reads FD until TEXT appears or SECONDS pass. */
static bool wait_output(int fd, const char *text, int seconds)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int64_t end = (int64_t)time(NULL) + seconds;
	bool found = false;
	while (!found && (int64_t)time(NULL) < end) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 500) <= 0)
			continue;
		char chunk[4096];
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n <= 0)
			break;
		buf_append(&buf, &len, &cap, chunk, (size_t)n);
		found = strstr(buf, text) != NULL;
	}
	free(buf);
	return found;
}

/* The whole file PATH, NUL-terminated (an empty string if unreadable). */
static char *slurp(const char *path)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	buf_append(&buf, &len, &cap, "", 0);
	FILE *f = fopen(path, "r");
	if (f != NULL) {
		char chunk[4096];
		size_t n;
		while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
			buf_append(&buf, &len, &cap, chunk, n);
		fclose(f);
	}
	return buf;
}

static int teardown(void **state)
{
	(void)state;
	if (w.listener > 0) {
		kill(w.listener, SIGKILL);
		(void)wait_status(w.listener);
		w.listener = 0;
	}
	smallfs_umount(&w.fs);
	relayproc_cleanup(&w.relay);
	if (w.dir[0] != '\0')
		test_rm_tree(w.dir);
	return 0;
}

static void test_full_home(void **state)
{
	(void)state;
	if (find_cli() != 0)
		fail_msg("the cairn binary is not built");
	strcpy(w.dir, "/tmp/cairn-dfcli-XXXXXX");
	assert_non_null(mkdtemp(w.dir));
	snprintf(w.alice, sizeof(w.alice), "%s/alice", w.dir);
	snprintf(w.bob, sizeof(w.bob), "%s/bob", w.dir);
	assert_int_equal(relayproc_init(&w.relay, NULL), 0);
	assert_int_equal(relayproc_start(&w.relay), 0);
	assert_int_equal(relayproc_address(&w.relay, "127.0.0.1", w.addr, sizeof(w.addr)), 0);
	pair(w.alice, w.bob, w.addr, NULL);

	/* Alice's home moves onto a file system of 32 MiB. */
	char why[256];
	int rc = smallfs_mount(&w.fs, w.alice, 32, why, sizeof(why));
	if (rc == 1) {
		fprintf(stderr, "test_it_diskfull_cli: skipped: %s\n", why);
		skip();
	}
	if (rc != 0)
		fail_msg("%s", why);
	cli_check(0, CALL(.home = w.alice), ARGS("send", "bob", "before the disk filled"));

	/* A listener of the home, running (it has printed a message) when the disk fills. */
	char errfile[128];
	snprintf(errfile, sizeof(errfile), "%s/listen.err", w.dir);
	int out = -1;
	w.listener = cli_spawn_out(CALL(.home = w.alice), ARGS("listen"), &out, errfile);
	cli_check(0, CALL(.home = w.bob), ARGS("send", "alice", "listening"));
	assert_true(wait_output(out, "listening", 60));

	/* Another process takes every free block. */
	snprintf(w.filler, sizeof(w.filler), "%s/filler", w.alice);
	uint64_t filled = smallfs_fill(w.filler);
	fprintf(stderr, "# a filler took %llu MiB of the home's file system; free %llu KiB\n",
	        (unsigned long long)filled >> 20, (unsigned long long)smallfs_free(w.alice) >> 10);

	/* Bob writes; the listener cannot store it, so it does not acknowledge it (the relay
	 * delivers it again: the listener keeps trying, and goes on running). */
	cli_check(0, CALL(.home = w.bob), ARGS("send", "alice", "while full 1"));
	cli_check(0, CALL(.home = w.bob), ARGS("send", "alice", "while full 2"));
	assert_false(wait_output(out, "while full", 5));
	assert_int_equal(waitpid(w.listener, NULL, WNOHANG), 0);

	/* Sending fails, saying why; the message is not queued for later either. */
	struct res r = cli_run(CALL(.home = w.alice), ARGS("send", "bob", "on the full disk"));
	fprintf(stderr, "# cairn send on a full home: status %d, stderr: %s", r.status, r.err);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "no space left on the device holding the home"));
	res_free(&r);

	/* A sync on the full home: the home does not open (SQLite's WAL files need room), and
	 * the error says why. */
	r = cli_run(CALL(.home = w.alice), ARGS("sync"));
	fprintf(stderr, "# cairn sync on a full home: status %d, stderr: %s", r.status, r.err);
	assert_int_not_equal(r.status, 0);
	assert_non_null(strstr(r.err, "no space left on the device holding the home"));
	res_free(&r);

	/* The room comes back: the listener stores what waited, by itself; the home opens. */
	assert_int_equal(unlink(w.filler), 0);
	int64_t t0 = (int64_t)time(NULL);
	assert_true(wait_output(out, "while full 2", 120));
	fprintf(stderr, "# the listener stored what waited %lld s after the room came back\n",
	        (long long)((int64_t)time(NULL) - t0));
	kill(w.listener, SIGTERM);
	int st = wait_status(w.listener);
	w.listener = 0;
	close(out);
	char *err = slurp(errfile);
	fprintf(stderr, "# cairn listen ended with %d; its stderr: %s\n", st, err);
	free(err);
	assert_int_equal(st, 0);
	cli_check(0, CALL(.home = w.alice), ARGS("sync"));
	cli_check(0, CALL(.home = w.alice), ARGS("send", "bob", "after the disk filled"));
	cli_check(0, CALL(.home = w.bob), ARGS("sync"));
	struct convo c = read_convo(w.alice, "bob");
	assert_int_equal(count_text(&c, 1, "before the disk filled"), 1);
	assert_int_equal(count_text(&c, 0, "listening"), 1);
	assert_int_equal(count_text(&c, 0, "while full 1"), 1);
	assert_int_equal(count_text(&c, 0, "while full 2"), 1);
	assert_int_equal(count_text(&c, 1, "on the full disk"), 0);
	assert_int_equal(count_text(&c, 1, "after the disk filled"), 1);
	convo_free(&c);
	c = read_convo(w.bob, "alice");
	assert_int_equal(count_text(&c, 0, "before the disk filled"), 1);
	assert_int_equal(count_text(&c, 0, "on the full disk"), 0);
	assert_int_equal(count_text(&c, 0, "after the disk filled"), 1);
	convo_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_full_home, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
