/* SPDX-License-Identifier: MIT */
/*
 * The seized device through the real `cairn` and `cairn-relay`: `cairn wipe --yes` destroys a
 * home of 10,000 messages and a file being sent (its spool) in well under a second (printed),
 * leaving nothing, while a `cairn listen` of that home runs and brings nothing back; `wipe`
 * without --yes and no terminal refuses; `cairn duress set` then an open with the duress
 * passphrase answers exactly as a new home does, and the real passphrase opens nothing after.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "cairn/cairn.h"
#include "cliproc.h"
#include "client.h"
#include "relayproc.h"
#include "state.h"

#define MESSAGES  10000
#define BIG_BYTES (32u << 20)
#define DURESS    "the words I give at a checkpoint"

struct world {
	char dir[64], alice[96], bob[96], fresh[96];
	struct relayproc relay;
	char addr[CAIRN_ADDRESS_MAX + 1];
	pid_t listener;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int setup(void **state)
{
	static struct world w;
	memset(&w, 0, sizeof(w));
	strcpy(w.dir, "/tmp/cairn-wipecli-XXXXXX");
	if (mkdtemp(w.dir) == NULL)
		return -1;
	snprintf(w.alice, sizeof(w.alice), "%s/alice", w.dir);
	snprintf(w.bob, sizeof(w.bob), "%s/bob", w.dir);
	snprintf(w.fresh, sizeof(w.fresh), "%s/fresh", w.dir);
	if (relayproc_init(&w.relay, NULL) != 0 || relayproc_start(&w.relay) != 0 ||
	    relayproc_address(&w.relay, "127.0.0.1", w.addr, sizeof(w.addr)) != 0)
		return -1;
	*state = &w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	if (w->listener > 0) {
		kill(w->listener, SIGKILL);
		(void)wait_status(w->listener);
	}
	relayproc_cleanup(&w->relay);
	test_rm_tree(w->dir);
	return 0;
}

static int exists(const char *path)
{
	struct stat sb;
	return lstat(path, &sb) == 0;
}

/* Queues MESSAGES messages to "bob" in HOME, in-process and in one transaction (one fsync):
 * each is a real message, sealed for bob's session, in the outbox and the conversation. */
static void queue_many(const char *home)
{
	struct cairn *c = NULL;
	double t0 = now_s();
	assert_int_equal(cairn_open(home, CLI_PASS, &c), 0);
	assert_int_equal(cstate_begin(c->st), 0);
	for (int i = 0; i < MESSAGES; i++) {
		char text[96];
		int n = snprintf(text, sizeof(text), "message %d of the evidence log", i);
		assert_int_equal(cairn_queue(c, "bob", (const uint8_t *)text, (size_t)n, NULL), 0);
	}
	assert_int_equal(cstate_commit(c->st), 0);
	cairn_close(c);
	fprintf(stderr, "# %d messages queued in %.1f s\n", MESSAGES, now_s() - t0);
}

/* A real file transfer's spool in HOME/files/ (32 MiB: a wipe removes it whatever its size):
 * `cairn send bob --file` through a SOCKS proxy that is not there encrypts the whole file into
 * its spool (PROTOCOL.md 11.1: 2051 chunks, class 2176 entries of 16384 bytes), then keeps
 * trying to connect; it is killed once the spool is
 * whole, as a phone's app would be when the phone is taken. WORK is a directory outside the
 * home for the file itself (removed after). */
static void big_spool(const char *home, const char *work)
{
	char in[160], spools[160];
	snprintf(in, sizeof(in), "%s/evidence.bin", work);
	int fd = open(in, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	static uint8_t buf[1 << 20];
	for (unsigned done = 0; done < BIG_BYTES; done += sizeof(buf)) {
		randombytes_buf(buf, sizeof(buf));
		assert_int_equal(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	}
	close(fd);
	pid_t sender = cli_spawn(CALL(.home = home),
	                         ARGS("--socks", "127.0.0.1:1", "send", "bob", "--file", in));
	snprintf(spools, sizeof(spools), "%s/files", home);
	const off_t whole = (off_t)2176 * 16384;
	bool done = false;
	for (double end = now_s() + 300; !done && now_s() < end;) {
		DIR *d = opendir(spools);
		for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;) {
			char sp[512];
			struct stat sb;
			snprintf(sp, sizeof(sp), "%s/%s", spools, e->d_name);
			done |= e->d_name[0] != '.' && stat(sp, &sb) == 0 && sb.st_size == whole;
		}
		if (d != NULL)
			closedir(d);
		struct timespec pause = {0, 100 * 1000 * 1000};
		if (!done)
			nanosleep(&pause, NULL);
	}
	kill(sender, SIGKILL);
	(void)wait_status(sender);
	assert_true(done);
	assert_int_equal(unlink(in), 0);
}

/* Waits up to TIMEOUT_S for PID to exit; returns its status, or -1 (still running). */
static int wait_for(pid_t pid, double timeout_s)
{
	double end = now_s() + timeout_s;
	struct timespec pause = {0, 50 * 1000 * 1000};
	while (now_s() < end) {
		int st;
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		nanosleep(&pause, NULL);
	}
	return -1;
}

/* Reads FD until NEEDLE appears, for up to TIMEOUT_S. Returns true when it did. */
static bool wait_output(int fd, const char *needle, double timeout_s)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	double end = now_s() + timeout_s;
	bool found = false;
	int fl = fcntl(fd, F_GETFL);
	(void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	struct timespec pause = {0, 50 * 1000 * 1000};
	while (!found && now_s() < end) {
		char chunk[4096];
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n > 0)
			buf_append(&buf, &len, &cap, chunk, (size_t)n);
		else if (n == 0)
			break;
		else
			nanosleep(&pause, NULL);
		found = buf != NULL && strstr(buf, needle) != NULL;
	}
	free(buf);
	return found;
}

/* The command PID can never write a core (its texts and keys in the clear): RLIMIT_CORE 0, and
 * not dumpable, which on Linux makes its /proc directory root's. */
static void assert_no_core(pid_t pid)
{
	char p[64], line[256];
	struct stat sb;
	snprintf(p, sizeof(p), "/proc/%d", (int)pid);
	assert_int_equal(stat(p, &sb), 0);
	if (getuid() != 0)
		assert_int_equal(sb.st_uid, 0);
	snprintf(p, sizeof(p), "/proc/%d/limits", (int)pid);
	FILE *f = fopen(p, "r");
	if (f == NULL)
		return; /* not dumpable: unreadable, as it should be */
	bool seen = false;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "Max core file size", 18) == 0) {
			char soft[32], hard[32];
			assert_int_equal(sscanf(line + 18, "%31s %31s", soft, hard), 2);
			assert_string_equal(soft, "0");
			seen = true;
		}
	fclose(f);
	assert_true(seen);
}

/* Bob's home (whose contact alice is gone) is the real home here. */
static void duress_cli(struct world *w)
{
	const char *const duress_env[] = {"CAIRN_PASSPHRASE=" DURESS, NULL};
	const char *const set_env[] = {"CAIRN_DURESS_PASSPHRASE=" DURESS, NULL};
	const char *const same_env[] = {"CAIRN_DURESS_PASSPHRASE=" CLI_PASS, NULL};
	cli_check(0, CALL(.home = w->fresh), ARGS("init"));

	cli_check(1, CALL(.home = w->bob, .env = same_env), ARGS("duress", "set"));
	cli_check(2, CALL(.home = w->bob), ARGS("duress", "maybe"));
	cli_check(0, CALL(.home = w->bob, .env = set_env), ARGS("duress", "set"));
	struct res r = cli_expect(0, CALL(.home = w->bob), ARGS("contacts"));
	assert_non_null(strstr(r.out, "alice"));
	res_free(&r);

	/* Opened with the duress passphrase: exactly what a new home answers. */
	static const char *const cmds[][3] = {
	    {"contacts", NULL, NULL}, {"groups", "--json", NULL}, {"read", "bob", NULL}};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		const char *args[4] = {cmds[i][0], cmds[i][1], cmds[i][2], NULL};
		struct res want = cli_run(CALL(.home = w->fresh), args);
		struct res got = cli_run(CALL(.home = w->bob, .env = duress_env), args);
		assert_int_equal(got.status, want.status);
		assert_string_equal(got.out, want.out);
		/* stderr names the home, which differs; otherwise the same */
		assert_int_equal(got.errlen > 0, want.errlen > 0);
		res_free(&want);
		res_free(&got);
	}
	/* The real home is gone: its passphrase is a wrong one now. */
	r = cli_expect(1, CALL(.home = w->bob), ARGS("contacts"));
	assert_non_null(strstr(r.err, "passphrase"));
	res_free(&r);
}

static void test_wipe_big_home(void **state)
{
	struct world *w = *state;
	pair(w->alice, w->bob, w->addr, NULL);
	queue_many(w->alice);
	big_spool(w->alice, w->dir);

	/* No --yes and no terminal: refused, nothing touched. */
	struct res r = cli_expect(2, CALL(.home = w->alice), ARGS("wipe"));
	assert_non_null(strstr(r.err, "--yes"));
	res_free(&r);
	cli_check(0, CALL(.home = w->alice), ARGS("contacts"));

	/* A listener of the home, running (it has printed a message) when the wipe comes. */
	int out = -1;
	w->listener = cli_spawn_out(CALL(.home = w->alice), ARGS("listen"), &out, NULL);
	cli_check(-1, CALL(.home = w->bob), ARGS("send", "alice", "before the wipe"));
	assert_true(wait_output(out, "before the wipe", 60));
	assert_no_core(w->listener);

	/* What starting the command costs alone (under ASan about half a second of it). */
	double t0 = now_s();
	cli_check(0, CALL(.home = w->alice), ARGS("--help"));
	double start = now_s() - t0;
	t0 = now_s();
	r = cli_expect(0, CALL(.home = w->alice), ARGS("wipe", "--yes"));
	double took = now_s() - t0;
	res_free(&r);
	fprintf(stderr,
	        "# cairn wipe --yes: %.3f s for %d messages and %u MiB of files (the command's "
	        "start alone: %.3f s)\n",
	        took, MESSAGES, BIG_BYTES >> 20, start);
#if defined(__SANITIZE_ADDRESS__)
	assert_true(took - start < 1.0); /* the sanitizer's start is not the wipe's */
#else
	assert_true(took < 1.0);
#endif
	assert_false(exists(w->alice));

	/* Bob writes: the listener receives, cannot store (its store was wiped), and ends; the
	 * home does not come back. */
	cli_check(-1, CALL(.home = w->bob), ARGS("send", "alice", "after the wipe"));
	int st = wait_for(w->listener, 5);
	if (st < 0) {
		kill(w->listener, SIGTERM);
		st = wait_status(w->listener);
	}
	w->listener = 0;
	close(out);
	fprintf(stderr, "# the listener ended with status %d\n", st);
	assert_false(exists(w->alice));
	r = cli_expect(1, CALL(.home = w->alice), ARGS("contacts"));
	assert_non_null(strstr(r.err, "no client"));
	res_free(&r);
	assert_false(exists(w->alice));

	/* The same world (one pairing, one relay) serves the duress passphrase's test. */
	duress_cli(w);
}

int main(void)
{
	/* The children inherit the soft limit: raised as far as allowed, so that a command that
	 * failed to forbid its own cores would show it. */
	struct rlimit core;
	if (getrlimit(RLIMIT_CORE, &core) == 0 && core.rlim_cur != core.rlim_max) {
		core.rlim_cur = core.rlim_max;
		(void)setrlimit(RLIMIT_CORE, &core);
	}
	if (sodium_init() < 0 || find_cli() != 0) {
		fprintf(stderr, "cannot find the cairn command\n");
		return 1;
	}
	setenv("CAIRN_PASSPHRASE", CLI_PASS, 1);
	setenv("CAIRN_PWHASH_FAST", "1", 1);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_wipe_big_home, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
