/* SPDX-License-Identifier: MIT */
/*
 * Integration: the real `cairn` command against the real cairn-relay on loopback (and, for one
 * test, against a relay that duplicates and reorders, and through a real SOCKS5 proxy). Every
 * step is a separate process, exactly as a person or a script would run it, so what is tested
 * includes argument parsing, exit statuses, the sealed store surviving between processes and
 * crash safety under SIGKILL. Covers the "Tests" list of the client issue.
 *
 * The cairn binary is found next to this test's build directory (../client/cairn from the
 * test executable) or in CAIRN_CLI. Homes live in a fresh /tmp directory per test.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cairn/address.h"
#include "cliproc.h"
#include "fakerelay.h"
#include "wrapper.h"
#include "it_common.h"

/* Fewer under ASan (IT_ASAN): what they test does not depend on the count once it exceeds
 * the relay's delivery window of 64. */
#define OFFLINE_MESSAGES (IT_ASAN ? 100 : 300)
#define KILL_MESSAGES    (IT_ASAN ? 60 : 80)
#define KILL_ROUNDS      8

#define PASS CLI_PASS

/* ---- per-test world: a directory of homes and a relay -------------------------------- */

struct world {
	char dir[64];
	char home[4][96]; /* A, B, C, D */
	struct relayproc relay;
	char addr[CAIRN_ADDRESS_MAX + 1];
	double started;
	/* What a test starts besides, stopped by teardown even when an assertion fails. */
	struct relayproc relay2;
	struct fakerelay fake;
	pid_t proxy;
	pid_t listener; /* a `cairn listen` */
};

static void relay_address(struct world *w)
{
	struct cairn_address a = {.host_type = CAIRN_HOST_IPV4, .port = w->relay.port};
	memcpy(a.key, w->relay.pub, sizeof(a.key));
	strcpy(a.host, "127.0.0.1");
	assert_int_equal(cairn_address_format(&a, w->addr, sizeof(w->addr)), 0);
}

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -1;
	strcpy(w->dir, "/tmp/cairn-itc-XXXXXX");
	if (mkdtemp(w->dir) == NULL)
		return -1;
	for (int i = 0; i < 4; i++)
		snprintf(w->home[i], sizeof(w->home[i]), "%s/%c", w->dir, 'A' + i);
	if (relayproc_init(&w->relay, NULL) != 0 || relayproc_start(&w->relay) != 0) {
		fprintf(stderr, "setup: cannot start the relay in %s\n", w->relay.dir);
		return -1;
	}
	relay_address(w);
	w->started = it_mono_s();
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	if (w == NULL)
		return 0;
	print_message("%.1f s\n", it_mono_s() - w->started);
	relayproc_cleanup(&w->relay);
	relayproc_cleanup(&w->relay2);
	if (w->fake.pid > 0)
		fakerelay_stop(&w->fake);
	if (w->proxy > 0) {
		kill(w->proxy, SIGTERM);
		wait_status(w->proxy);
	}
	if (w->listener > 0) {
		kill(w->listener, SIGKILL);
		wait_status(w->listener);
	}
	test_rm_tree(w->dir);
	free(w);
	return 0;
}

/* ---- 1. the walk-through ------------------------------------------------------------- */

static void test_walkthrough(void **state)
{
	struct world *w = *state;
	const char *a = w->home[0], *b = w->home[1];

	/* --help works anywhere in the line, and usage errors exit 2 with a hint on stderr. */
	struct res r = cli_expect(0, CALL(0), ARGS("--help"));
	assert_non_null(strstr(r.out, "usage: cairn"));
	assert_non_null(strstr(r.out, "exit status"));
	res_free(&r);
	cli_check(0, CALL(.home = a), ARGS("send", "-h"));
	const char *const *usage_errors[] = {
	    ARGS("--home", a),
	    ARGS("--home", a, "frobnicate"),
	    ARGS("--home", a, "--bogus", "contacts"),
	    ARGS("--home"),
	    ARGS("--home", a, "send", "bob"),
	    ARGS("--home", a, "send"),
	    ARGS("--home", a, "invite", "--name", "bob"),
	    ARGS("--home", a, "invite", "--relay", w->addr),
	    ARGS("--home", a, "accept", "--name", "x"),
	    ARGS("--home", a, "read"),
	    ARGS("--home", a, "verify"),
	    ARGS("--home", a, "--timeout", "0", "contacts"),
	    ARGS("--home", a, "--timeout", "soon", "contacts"),
	    ARGS("--home", a, "send", "bob", "one", "two"),
	};
	for (size_t i = 0; i < sizeof(usage_errors) / sizeof(usage_errors[0]); i++) {
		r = cli_expect(2, CALL(0), usage_errors[i]);
		assert_true(r.errlen > 0);
		res_free(&r);
	}
	/* No client yet: a clear error, exit 1. */
	r = cli_expect(1, CALL(.home = a), ARGS("contacts"));
	assert_non_null(strstr(r.err, "cairn init"));
	res_free(&r);

	cli_check(0, CALL(.home = a), ARGS("init"));
	cli_check(0, CALL(.home = b), ARGS("init"));
	r = cli_expect(1, CALL(.home = a), ARGS("init"));
	assert_non_null(strstr(r.err, "already"));
	res_free(&r);

	/* The invite alone on stdout, one line. */
	struct res inv =
	    cli_expect(0, CALL(.home = a), ARGS("invite", "--relay", w->addr, "--name", "bob"));
	assert_true(strncmp(inv.out, "cairn-invite:", 13) == 0);
	assert_int_equal(strchr(inv.out, '\n') - inv.out, (ptrdiff_t)inv.outlen - 1);
	inv.out[inv.outlen - 1] = '\0';
	r = cli_expect(0, CALL(.home = a), ARGS("contacts"));
	assert_string_equal(r.out, "bob  (waiting for the first exchange)\n");
	res_free(&r);
	cli_check(1, CALL(.home = a), ARGS("verify", "bob")); /* no identity to compare yet */
	cli_check(1, CALL(.home = a), ARGS("send", "bob", "too early"));

	cli_check(0, CALL(.home = b), ARGS("accept", inv.out, "--name", "alice"));
	res_free(&inv);
	cli_check(0, CALL(.home = b), ARGS("send", "alice", "hello alice"));
	r = cli_expect(1, CALL(.home = b), ARGS("send", "mallory", "who?"));
	assert_non_null(strstr(r.err, "mallory"));
	res_free(&r);

	sync_expect(CALL(.home = a), 0, 1);
	r = cli_expect(0, CALL(.home = a), ARGS("contacts"));
	assert_string_equal(r.out, "bob  1 unread\n");
	res_free(&r);
	struct convo ca = read_convo(a, "bob");
	assert_int_equal(ca.n, 1);
	assert_false(ca.m[0].out);
	assert_string_equal(ca.m[0].text, "hello alice");
	time_t now = time(NULL);
	assert_true(ca.m[0].sent > now - 120 && ca.m[0].sent <= now);
	assert_true(ca.m[0].received >= ca.m[0].sent && ca.m[0].received <= now);
	r = cli_expect(0, CALL(.home = a), ARGS("contacts"));
	assert_string_equal(r.out, "bob\n"); /* established, and read */
	res_free(&r);

	/* Back, with text that JSON must escape, and a second message from standard input. */
	const char *tricky = "hi \"bob\" \\ \xc3\xa9t\xc3\xa9 \xe2\x9c\x93\n\tsecond line";
	cli_check(0, CALL(.home = a), ARGS("send", "bob", tricky));
	cli_check(0, CALL(.home = a, .in = "from stdin\n"), ARGS("send", "bob", "-"));
	sync_expect(CALL(.home = b), 0, 2);
	struct convo cb = read_convo(b, "alice");
	assert_int_equal(cb.n, 3);
	assert_true(cb.m[0].out);
	assert_string_equal(cb.m[0].text, "hello alice");
	assert_true(cb.m[0].received > 0); /* the relay accepted it */
	assert_false(cb.m[1].out);
	assert_string_equal(cb.m[1].text, tricky);
	assert_false(cb.m[2].out);
	assert_string_equal(cb.m[2].text, "from stdin\n");
	/* One message, one id, on both sides. */
	assert_string_equal(cb.m[0].id, ca.m[0].id);
	struct convo ca2 = read_convo(a, "bob");
	assert_int_equal(ca2.n, 3);
	assert_string_equal(ca2.m[1].id, cb.m[1].id);
	assert_string_equal(ca2.m[2].id, cb.m[2].id);
	assert_true(ca2.m[1].out && ca2.m[1].received > 0);
	convo_free(&ca);
	convo_free(&ca2);
	convo_free(&cb);

	/* The plain form shows the same conversation for people. */
	r = cli_expect(0, CALL(.home = b), ARGS("read", "alice"));
	assert_non_null(strstr(r.out, "-> alice: hello alice"));
	assert_non_null(strstr(r.out, "<- alice: from stdin"));
	res_free(&r);
	r = cli_expect(0, CALL(.home = b), ARGS("contacts"));
	assert_string_equal(r.out, "alice\n");
	res_free(&r);

	/* The same safety number on both screens: 12 groups of 5 digits. */
	char *na = cli_safety_number(a, "bob"), *nb = cli_safety_number(b, "alice");
	assert_string_equal(na, nb);
	assert_int_equal(strlen(na), 71);
	for (size_t i = 0; i < 71; i++)
		assert_true(i % 6 == 5 ? na[i] == ' ' : (na[i] >= '0' && na[i] <= '9'));
	free(na);
	free(nb);
	cli_check(1, CALL(.home = a), ARGS("verify", "nobody"));
	cli_check(1, CALL(.home = a), ARGS("read", "nobody"));
}

/* ---- 2. hundreds of messages for an offline recipient --------------------------------- */

static void test_offline_hundreds(void **state)
{
	struct world *w = *state;
	const char *a = w->home[0], *b = w->home[1];
	pair(a, b, w->addr, NULL);
	double t0 = it_mono_s();
	char text[64];
	for (int i = 0; i < OFFLINE_MESSAGES; i++) {
		snprintf(text, sizeof(text), "offline message %03d", i);
		cli_check(0, CALL(.home = b), ARGS("send", "alice", text));
	}
	double t1 = it_mono_s();
	sync_expect(CALL(.home = a), 0, OFFLINE_MESSAGES);
	double t2 = it_mono_s();
	print_message("%d sends (one process each) took %.1f s, one sync %.2f s\n",
	              OFFLINE_MESSAGES, t1 - t0, t2 - t1);

	/* All present exactly once, in the order sent. */
	struct convo c = read_convo(a, "bob");
	assert_int_equal(count_dir(&c, 0), OFFLINE_MESSAGES + 1);
	size_t k = 0;
	for (size_t i = 0; i < c.n; i++) {
		if (c.m[i].out || strncmp(c.m[i].text, "offline", 7) != 0)
			continue;
		snprintf(text, sizeof(text), "offline message %03zu", k);
		assert_string_equal(c.m[i].text, text);
		k++;
	}
	assert_int_equal(k, OFFLINE_MESSAGES);
	convo_free(&c);
	/* Nothing left behind: a second sync finds nothing. */
	sync_expect(CALL(.home = a), 0, 0);
}

/* ---- 2b. several sends at once on one home ------------------------------------------- */

/* Each send steps the contact's ratchet inside one transaction: run side by side, they must
 * still seal each message under its own key, so every one arrives (two sharing a key would
 * make the second a forgery to the recipient, dropped after the sender was told "sent"). */
static void test_concurrent_sends(void **state)
{
	struct world *w = *state;
	const char *a = w->home[0], *b = w->home[1];
	enum { N = 12 };
	pair(a, b, w->addr, NULL);
	char texts[N][32];
	pid_t pids[N];
	for (int i = 0; i < N; i++) {
		snprintf(texts[i], sizeof(texts[i]), "concurrent %02d", i);
		pids[i] = cli_spawn(CALL(.home = b), ARGS("send", "alice", texts[i]));
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(wait_status(pids[i]), 0);
	sync_expect(CALL(.home = a), 0, N);
	struct convo c = read_convo(a, "bob");
	for (int i = 0; i < N; i++)
		assert_int_equal(count_text(&c, 0, texts[i]), 1);
	convo_free(&c);
}

/* ---- 3. the relay restarts (and crashes) between send and sync ------------------------- */

static void test_relay_restart(void **state)
{
	struct world *w = *state;
	const char *a = w->home[0], *b = w->home[1];
	pair(a, b, w->addr, NULL);
	cli_check(0, CALL(.home = b), ARGS("send", "alice", "sent before the restart"));
	assert_int_equal(relayproc_stop(&w->relay, SIGTERM), 0);
	assert_int_equal(relayproc_start(&w->relay), 0);
	sync_expect(CALL(.home = a), 0, 1);
	/* And the conversation carries on both ways through the restarted relay. */
	cli_check(0, CALL(.home = a), ARGS("send", "bob", "after the restart"));
	sync_expect(CALL(.home = b), 0, 1);
	struct convo c = read_convo(a, "bob");
	assert_int_equal(count_text(&c, 0, "sent before the restart"), 1);
	convo_free(&c);
	c = read_convo(b, "alice");
	assert_int_equal(count_text(&c, 0, "after the restart"), 1);
	convo_free(&c);
	/* A crash instead of a clean stop: OK to a SEND meant durable, so it survives too. */
	cli_check(0, CALL(.home = b), ARGS("send", "alice", "sent before the crash"));
	assert_int_equal(relayproc_stop(&w->relay, SIGKILL), 128 + SIGKILL);
	assert_int_equal(relayproc_start(&w->relay), 0);
	sync_expect(CALL(.home = a), 0, 1);
	c = read_convo(a, "bob");
	assert_int_equal(count_text(&c, 0, "sent before the crash"), 1);
	convo_free(&c);
}

/* ---- 4. the receiver killed at random moments while it syncs --------------------------- */

static void test_killed_during_sync(void **state)
{
	struct world *w = *state;
	const char *a = w->home[0], *b = w->home[1];
	pair(a, b, w->addr, NULL);
	char text[64];
	for (int i = 0; i < KILL_MESSAGES; i++) {
		snprintf(text, sizeof(text), "survivor %03d", i);
		cli_check(0, CALL(.home = b), ARGS("send", "alice", text));
	}
	/*
	 * SIGKILL the syncing receiver several times, at a random moment shortly after its first
	 * commit of the run (the WAL file changes): that is while envelopes arrive, are stored
	 * and acknowledged, so kills fall between an envelope's arrival, its store and its ACK.
	 */
	char wal[160];
	snprintf(wal, sizeof(wal), "%s/cairn.db-wal", a);
	int killed = 0, partial = 0;
	size_t stored = 1; /* the pairing message */
	for (int round = 0; round < KILL_ROUNDS && stored < KILL_MESSAGES + 1; round++) {
		struct stat before, now;
		int had = stat(wal, &before) == 0;
		pid_t pid = cli_spawn(CALL(.home = a), ARGS("sync"));
		double t0 = it_mono_s();
		siginfo_t si = {0};
		while (it_mono_s() - t0 < 20) {
			/* Exited already (nothing to store)? Look without reaping it. */
			if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
			    si.si_pid == pid)
				break;
			if (stat(wal, &now) == 0 &&
			    (had ? now.st_size != before.st_size ||
			               now.st_mtim.tv_nsec != before.st_mtim.tv_nsec ||
			               now.st_mtim.tv_sec != before.st_mtim.tv_sec
			         : now.st_size > 0))
				break;
			it_sleep_ms(1);
		}
		long delay = (long)randombytes_uniform(15);
		it_sleep_ms(delay);
		kill(pid, SIGKILL);
		int st = wait_status(pid);
		killed += st == 128 + SIGKILL;
		assert_true(st == 128 + SIGKILL || st == 0);
		struct convo c = read_convo(a, "bob");
		/* Never a duplicate, and never anything but progress. */
		assert_true(count_dir(&c, 0) >= stored);
		for (size_t i = 0; i < c.n; i++)
			assert_int_equal(count_text(&c, c.m[i].out, c.m[i].text), 1);
		size_t was = stored;
		stored = count_dir(&c, 0);
		partial += st != 0 && stored > was && stored < KILL_MESSAGES + 1;
		print_message("round %d: %s %ld ms after the first commit, %zu of %d stored\n",
		              round, st == 0 ? "had finished" : "killed", delay, stored - 1,
		              KILL_MESSAGES);
		convo_free(&c);
	}
	/* The kills really did interrupt deliveries half way. */
	assert_true(partial > 0);
	assert_true(killed > 0);
	sync_expect(CALL(.home = a), 0, -1);
	struct convo c = read_convo(a, "bob");
	assert_int_equal(count_dir(&c, 0), KILL_MESSAGES + 1);
	size_t k = 0;
	for (size_t i = 0; i < c.n; i++) {
		if (c.m[i].out || strncmp(c.m[i].text, "survivor", 8) != 0)
			continue;
		snprintf(text, sizeof(text), "survivor %03zu", k++);
		assert_string_equal(c.m[i].text, text);
	}
	assert_int_equal(k, KILL_MESSAGES);
	convo_free(&c);
	sync_expect(CALL(.home = a), 0, 0);
	/* The session survived the kills: it still works both ways. */
	cli_check(0, CALL(.home = a), ARGS("send", "bob", "still here"));
	sync_expect(CALL(.home = b), 0, 1);
}

/* ---- 5. sending while the relay is down ----------------------------------------------- */

static void assert_pending(const char *home, int n)
{
	struct res r = cli_expect(n > 0 ? 3 : 0, CALL(.home = home), ARGS("sync"));
	char want[64];
	snprintf(want, sizeof(want), "%d waiting in the outbox", n);
	assert_non_null(strstr(r.out, want));
	res_free(&r);
}

static void test_send_while_relay_down(void **state)
{
	struct world *w = *state;
	const char *a = w->home[0], *b = w->home[1], *c = w->home[2];
	pair(a, b, w->addr, NULL);

	/* Down: exit 3, said on stderr, and the message stays in the outbox. */
	assert_int_equal(relayproc_stop(&w->relay, SIGTERM), 0);
	struct res r = cli_expect(3, CALL(.home = b), ARGS("send", "alice", "queued one"));
	assert_non_null(strstr(r.err, "outbox"));
	res_free(&r);
	struct convo cv = read_convo(b, "alice");
	assert_int_equal(count_text(&cv, 1, "queued one"), 1);
	for (size_t i = 0; i < cv.n; i++)
		if (strcmp(cv.m[i].text, "queued one") == 0)
			assert_true(cv.m[i].received == 0); /* no relay has accepted it yet */
	convo_free(&cv);
	assert_pending(b, 1);
	r = cli_expect(0, CALL(.home = b), ARGS("read", "alice"));
	assert_non_null(strstr(r.out, "queued one  (not sent yet)"));
	res_free(&r);

	/* Up again: the next sync sends it; the receiver gets it once. */
	assert_int_equal(relayproc_start(&w->relay), 0);
	r = cli_expect(0, CALL(.home = b), ARGS("sync"));
	assert_non_null(strstr(r.out, "1 sent, 0 waiting"));
	res_free(&r);
	sync_expect(CALL(.home = a), 0, 1);

	/* Down again: this time the next send carries the queued one along. */
	assert_int_equal(relayproc_stop(&w->relay, SIGTERM), 0);
	cli_check(3, CALL(.home = b), ARGS("send", "alice", "queued two"));
	assert_int_equal(relayproc_start(&w->relay), 0);
	cli_check(0, CALL(.home = b), ARGS("send", "alice", "sent after"));
	assert_pending(b, 0);
	sync_expect(CALL(.home = a), 0, 2);
	sync_expect(CALL(.home = a), 0, 0);
	cv = read_convo(a, "bob");
	assert_int_equal(count_text(&cv, 0, "queued one"), 1);
	assert_int_equal(count_text(&cv, 0, "queued two"), 1);
	assert_int_equal(count_text(&cv, 0, "sent after"), 1);
	convo_free(&cv);
	cv = read_convo(b, "alice");
	for (size_t i = 0; i < cv.n; i++)
		assert_true(cv.m[i].received > 0); /* every copy shows it went out */
	convo_free(&cv);

	/* Accepting while the relay is down: nothing can be created, so nothing is added, it
	 * says so (not "queued"), and the same invite works once the relay is back. */
	cli_check(0, CALL(.home = c), ARGS("init"));
	struct res inv =
	    cli_expect(0, CALL(.home = a), ARGS("invite", "--relay", w->addr, "--name", "carol"));
	inv.out[strcspn(inv.out, "\n")] = '\0';
	assert_int_equal(relayproc_stop(&w->relay, SIGTERM), 0);
	r = cli_expect(1, CALL(.home = c), ARGS("accept", inv.out, "--name", "alice"));
	assert_non_null(strstr(r.err, "nothing was added"));
	res_free(&r);
	r = cli_expect(0, CALL(.home = c), ARGS("contacts"));
	assert_string_equal(r.out, "");
	res_free(&r);
	assert_int_equal(relayproc_start(&w->relay), 0);
	cli_check(0, CALL(.home = c), ARGS("accept", inv.out, "--name", "alice"));
	res_free(&inv);
	cli_check(0, CALL(.home = c), ARGS("send", "alice", "carol here"));
	sync_expect(CALL(.home = a), 0, 1);
}

/* Accepted through our own relay while the inviter's relay is down: the contact is added, the
 * first message waits (exit 3), and a later sync delivers it. Two relays, one identity. */
static void test_accept_other_relay_down(void **state)
{
	struct world *w = *state;
	const char *a = w->home[0], *b = w->home[1];
	struct relayproc *mine = &w->relay2;
	assert_int_equal(relayproc_init(mine, NULL), 0);
	assert_int_equal(relayproc_start(mine), 0);
	struct cairn_address ad = {.host_type = CAIRN_HOST_IPV4, .port = mine->port};
	memcpy(ad.key, mine->pub, sizeof(ad.key));
	strcpy(ad.host, "127.0.0.1");
	char addr2[CAIRN_ADDRESS_MAX + 1];
	assert_int_equal(cairn_address_format(&ad, addr2, sizeof(addr2)), 0);

	cli_check(0, CALL(.home = a), ARGS("init"));
	cli_check(0, CALL(.home = b), ARGS("init"));
	struct res inv =
	    cli_expect(0, CALL(.home = a), ARGS("invite", "--relay", w->addr, "--name", "bob"));
	inv.out[strcspn(inv.out, "\n")] = '\0';
	assert_int_equal(relayproc_stop(&w->relay, SIGTERM), 0);
	struct res r = cli_expect(3, CALL(.home = b),
	                          ARGS("accept", inv.out, "--name", "alice", "--relay", addr2));
	assert_non_null(strstr(r.err, "alice added"));
	res_free(&r);
	res_free(&inv);
	r = cli_expect(0, CALL(.home = b), ARGS("contacts"));
	assert_string_equal(r.out, "alice  (waiting for the first exchange)\n");
	res_free(&r);
	cli_check(3, CALL(.home = b), ARGS("send", "alice", "over two relays"));
	assert_int_equal(relayproc_start(&w->relay), 0);
	assert_pending(b, 0);
	sync_expect(CALL(.home = a), 0, 1);
	/* A answers through B's relay, which A learned from the first message. */
	cli_check(0, CALL(.home = a), ARGS("send", "bob", "answer via your relay"));
	sync_expect(CALL(.home = b), 0, 1);
	struct convo c = read_convo(b, "alice");
	assert_int_equal(count_text(&c, 0, "answer via your relay"), 1);
	convo_free(&c);
	c = read_convo(a, "bob");
	assert_int_equal(count_text(&c, 0, "over two relays"), 1);
	convo_free(&c);
}

/* ---- 6. through a real SOCKS5 proxy ---------------------------------------------------- */

static uint16_t free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(sa);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static const char *find_microsocks(void)
{
	static const char *const where[] = {"/usr/bin/microsocks", "/usr/local/bin/microsocks",
	                                    "/usr/sbin/microsocks"};
	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++)
		if (access(where[i], X_OK) == 0)
			return where[i];
	return NULL;
}

static pid_t start_microsocks(const char *bin, uint16_t port)
{
	char p[8];
	snprintf(p, sizeof(p), "%u", port);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlives the test */
		execl(bin, bin, "-i", "127.0.0.1", "-p", p, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		int ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		close(fd);
		if (ok)
			return pid;
		it_sleep_ms(10);
	}
	kill(pid, SIGKILL);
	wait_status(pid);
	fail_msg("microsocks did not start on port %u", port);
	return -1;
}

static void test_socks(void **state)
{
	struct world *w = *state;
	const char *a = w->home[0], *b = w->home[1];
	const char *bin = find_microsocks();
	if (bin == NULL) {
		print_message("microsocks is not installed (scripts/install-deps.sh): skipped\n");
		skip();
	}
	uint16_t port = free_port();
	char proxy[32], env_socks[48];
	snprintf(proxy, sizeof(proxy), "127.0.0.1:%u", port);
	snprintf(env_socks, sizeof(env_socks), "CAIRN_SOCKS=%s", proxy);
	w->proxy = start_microsocks(bin, port);

	/* The whole exchange with --socks: invite, accept, messages both ways. */
	pair(a, b, w->addr, proxy);
	/* And with CAIRN_SOCKS. */
	const char *const env[] = {env_socks, NULL};
	cli_check(0, CALL(.home = b, .env = env), ARGS("send", "alice", "via CAIRN_SOCKS"));
	sync_expect(CALL(.home = a, .env = env), 0, 1);
	struct convo c = read_convo(a, "bob");
	assert_int_equal(count_text(&c, 0, "via CAIRN_SOCKS"), 1);
	convo_free(&c);

	/* Proof that the proxy carried it: without the proxy, with the relay still up, both
	 * forms fail to connect and queue (exit 3), while a direct send works. */
	kill(w->proxy, SIGTERM);
	wait_status(w->proxy);
	w->proxy = 0;
	cli_check(3, CALL(.home = b, .socks = proxy), ARGS("send", "alice", "proxy gone 1"));
	cli_check(3, CALL(.home = b, .env = env), ARGS("send", "alice", "proxy gone 2"));
	cli_check(0, CALL(.home = b), ARGS("send", "alice", "direct"));
	sync_expect(CALL(.home = a), 0, 3);
}

/* ---- 7. wrong passphrase --------------------------------------------------------------- */

static int cmp_names(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* DIR (a home: flat) as one buffer: each entry's name, mode and size, then its bytes, in name
 * order. Two equal snapshots mean nothing was added, removed or changed. */
static char *snapshot(const char *dir, size_t *len)
{
	char *buf = NULL, *names[64];
	size_t cap = 0, n = 0;
	*len = 0;
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			assert_true(n < 64);
			names[n++] = strdup(de->d_name);
		}
	closedir(d);
	qsort(names, n, sizeof(names[0]), cmp_names);
	for (size_t i = 0; i < n; i++) {
		char path[1024], head[600];
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		struct stat sb;
		assert_int_equal(lstat(path, &sb), 0);
		int hl = snprintf(head, sizeof(head), "%s mode %o size %lld\n", names[i],
		                  (unsigned)sb.st_mode, (long long)sb.st_size);
		buf_append(&buf, len, &cap, head, (size_t)hl);
		if (S_ISREG(sb.st_mode)) {
			FILE *f = fopen(path, "rb");
			assert_non_null(f);
			char chunk[8192];
			size_t got;
			while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
				buf_append(&buf, len, &cap, chunk, got);
			fclose(f);
		}
		free(names[i]);
	}
	if (buf == NULL)
		buf_append(&buf, len, &cap, "", 0);
	return buf;
}

static void test_wrong_passphrase(void **state)
{
	struct world *w = *state;
	const char *a = w->home[0], *b = w->home[1];
	pair(a, b, w->addr, NULL);
	cli_check(0, CALL(.home = b), ARGS("send", "alice", "waiting on the relay"));
	struct res inv =
	    cli_expect(0, CALL(.home = b), ARGS("invite", "--relay", w->addr, "--name", "dave"));
	inv.out[strcspn(inv.out, "\n")] = '\0';

	size_t before_len, after_len;
	char *before = snapshot(a, &before_len);
	const char *const wrong[] = {"CAIRN_PASSPHRASE=correct horse battery stapler", NULL};
	const char *const *commands[] = {
	    ARGS("contacts"),
	    ARGS("sync"),
	    ARGS("send", "bob", "never"),
	    ARGS("read", "bob"),
	    ARGS("verify", "bob"),
	    ARGS("invite", "--relay", w->addr, "--name", "eve"),
	    ARGS("accept", inv.out, "--name", "dave"),
	};
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		struct res r = cli_expect(1, CALL(.home = a, .env = wrong), commands[i]);
		assert_non_null(strstr(r.err, "wrong passphrase"));
		assert_string_equal(r.out, "");
		res_free(&r);
	}
	char *after = snapshot(a, &after_len);
	assert_int_equal(before_len, after_len);
	assert_memory_equal(before, after, before_len);
	free(before);
	free(after);
	res_free(&inv);

	/* The right passphrase still opens it, and the waiting message was not consumed. */
	sync_expect(CALL(.home = a), 0, 1);
}

/* ---- 8. corrupted, truncated and reused invites ---------------------------------------- */

static size_t invite_decode(const char *text, uint8_t *bin, size_t cap)
{
	size_t len = 0;
	assert_int_equal(strncmp(text, "cairn-invite:", 13), 0);
	assert_int_equal(sodium_base642bin(bin, cap, text + 13, strlen(text + 13), NULL, &len, NULL,
	                                   sodium_base64_VARIANT_URLSAFE_NO_PADDING),
	                 0);
	return len;
}

static char *invite_encode_text(const uint8_t *bin, size_t len)
{
	size_t cap = 13 + sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	char *s = malloc(cap);
	strcpy(s, "cairn-invite:");
	sodium_bin2base64(s + 13, cap - 13, bin, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return s;
}

/* Accepting INVITE fails with a clear error and leaves HOME byte for byte as it was. */
static void expect_rejected(const char *home, const char *invite, const char *why)
{
	size_t before_len, after_len;
	char *before = snapshot(home, &before_len);
	struct res r = cli_expect(1, CALL(.home = home), ARGS("accept", invite, "--name", "alice"));
	if (strstr(r.err, "invalid invite") == NULL)
		fail_msg("%s: stderr was: %s", why, r.err);
	res_free(&r);
	char *after = snapshot(home, &after_len);
	if (before_len != after_len || memcmp(before, after, before_len) != 0)
		fail_msg("%s: the home directory changed", why);
	free(before);
	free(after);
}

static void test_bad_invites(void **state)
{
	struct world *w = *state;
	const char *a = w->home[0], *b = w->home[1], *c = w->home[2], *d = w->home[3];
	for (int i = 0; i < 4; i++)
		cli_check(0, CALL(.home = w->home[i]), ARGS("init"));
	struct res inv =
	    cli_expect(0, CALL(.home = a), ARGS("invite", "--relay", w->addr, "--name", "bob"));
	inv.out[strcspn(inv.out, "\n")] = '\0';
	const char *good = inv.out;
	size_t glen = strlen(good);

	/* Damage to the text: truncations anywhere, foreign characters, a wrong scheme. */
	size_t cuts[] = {glen - 1, glen - 2, glen - 4, glen - 5, glen / 2, 20, 14, 13, 5, 0};
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		char *t = strndup(good, cuts[i]);
		char why[64];
		snprintf(why, sizeof(why), "truncated to %zu characters", cuts[i]);
		expect_rejected(b, t, why);
		free(t);
	}
	char *t = strdup(good);
	t[glen / 2] = '*';
	expect_rejected(b, t, "a character outside base64url");
	t[glen / 2] = ' ';
	expect_rejected(b, t, "a blank inside");
	free(t);
	t = strdup(good);
	t[7] = 'X';
	expect_rejected(b, t, "wrong scheme");
	free(t);
	size_t alen = glen + 5;
	t = malloc(alen + 1);
	snprintf(t, alen + 1, "%sAAAAA", good);
	expect_rejected(b, t, "bytes appended");
	free(t);

	/* Damage to the payload, re-encoded so that only the parser can tell. */
	uint8_t bin[1024], bad[1024];
	size_t blen = invite_decode(good, bin, sizeof(bin));
	struct {
		const char *why;
		size_t off;
		uint8_t xor ;
	} flips[] = {
	    {"version", 0, 0x02},
	    {"mailbox count", 1 + 32 + 32, 0x03},
	    {"relay length", 1 + 32 + 32 + 1 + 24 + 32 + 1, 0x01},
	    {"relay text (scheme)", 1 + 32 + 32 + 1 + 24 + 32 + 2, 0x01},
	    {"relay text (a NUL)", 1 + 32 + 32 + 1 + 24 + 32 + 2 + 10, 0},
	};
	for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
		memcpy(bad, bin, blen);
		bad[flips[i].off] = flips[i].xor ? bad[flips[i].off] ^ flips[i].xor : 0;
		t = invite_encode_text(bad, blen);
		expect_rejected(b, t, flips[i].why);
		free(t);
	}
	/* An identity that is no curve point. */
	memcpy(bad, bin, blen);
	uint8_t x[32];
	for (int v = 0;; v++) {
		assert_true(v < 256);
		memset(bad + 1, v, 32);
		if (crypto_sign_ed25519_pk_to_curve25519(x, bad + 1) != 0)
			break;
	}
	t = invite_encode_text(bad, blen);
	expect_rejected(b, t, "identity not a point");
	free(t);
	/* Too short and too long payloads. */
	t = invite_encode_text(bin, 100);
	expect_rejected(b, t, "payload too short");
	free(t);
	memcpy(bad, bin, blen);
	memset(bad + blen, 'x', 400);
	t = invite_encode_text(bad, blen + 400);
	expect_rejected(b, t, "payload too long");
	free(t);
	struct res r = cli_expect(0, CALL(.home = b), ARGS("contacts"));
	assert_string_equal(r.out, ""); /* nothing added */
	res_free(&r);

	/*
	 * The invite is not authenticated (PROTOCOL.md 8.2): a changed one-time key parses, so
	 * accepting succeeds. The safe outcome: A cannot open that first message, shows
	 * nothing from it, and keeps waiting for the real accepter.
	 */
	memcpy(bad, bin, blen);
	bad[1 + 32 + 5] ^= 0x40;
	t = invite_encode_text(bad, blen);
	cli_check(0, CALL(.home = d), ARGS("accept", t, "--name", "alice"));
	free(t);
	cli_check(0, CALL(.home = d), ARGS("send", "alice", "from a damaged invite"));
	sync_expect(CALL(.home = a), 0, 0);
	r = cli_expect(0, CALL(.home = a), ARGS("contacts"));
	assert_string_equal(r.out, "bob  (waiting for the first exchange)\n");
	res_free(&r);

	/*
	 * One invite, two accepters. B accepts and writes, then C accepts the same invite and
	 * writes, before A syncs. The one-time key opens one session only: A gets B's first
	 * message (it arrived first) and never shows C's, now or later.
	 */
	cli_check(0, CALL(.home = b), ARGS("accept", good, "--name", "alice"));
	cli_check(0, CALL(.home = b), ARGS("send", "alice", "from the first accepter"));
	cli_check(0, CALL(.home = c), ARGS("accept", good, "--name", "alice"));
	cli_check(0, CALL(.home = c), ARGS("send", "alice", "from the second accepter"));
	sync_expect(CALL(.home = a), 0, 1);
	cli_check(0, CALL(.home = a), ARGS("send", "bob", "hello first accepter"));
	sync_expect(CALL(.home = b), 0, 1);
	sync_expect(CALL(.home = c), 0, 0); /* C's mailbox gets nothing */
	cli_check(0, CALL(.home = c), ARGS("send", "alice", "second accepter again"));
	cli_check(0, CALL(.home = b), ARGS("send", "alice", "first accepter again"));
	sync_expect(CALL(.home = a), 0, 1);
	struct convo cv = read_convo(a, "bob");
	for (size_t i = 0; i < cv.n; i++)
		assert_null(strstr(cv.m[i].text, "second"));
	assert_int_equal(count_text(&cv, 0, "from the first accepter"), 1);
	assert_int_equal(count_text(&cv, 0, "first accepter again"), 1);
	convo_free(&cv);
	char *na = cli_safety_number(a, "bob"), *nb = cli_safety_number(b, "alice");
	char *nc = cli_safety_number(c, "alice");
	assert_string_equal(na, nb);
	assert_string_not_equal(na, nc);
	free(na);
	free(nb);
	free(nc);
	res_free(&inv);
	r = cli_expect(0, CALL(.home = a), ARGS("contacts"));
	assert_string_equal(r.out, "bob\n");
	res_free(&r);
	/* The loser learns nothing and never gets a session: it waits for ever. */
	r = cli_expect(0, CALL(.home = c), ARGS("contacts"));
	assert_string_equal(r.out, "alice  (waiting for the first exchange)\n");
	res_free(&r);
}

/* ---- 9. a relay that duplicates and reorders -------------------------------------------- */

/* Runs `sync` (exit 0) and returns how many messages it reports received. */
static int sync_count(const char *home)
{
	struct res r = cli_expect(0, CALL(.home = home), ARGS("sync"));
	int n = -1;
	assert_int_equal(sscanf(r.out, "sync: %d received", &n), 1);
	res_free(&r);
	return n;
}

static void test_duplicating_reordering_relay(void **state)
{
	struct world *w = *state;
	const char *a = w->home[0], *b = w->home[1];
	struct fakerelay *f = &w->fake;
	assert_int_equal(
	    fakerelay_start(f, FAKERELAY_DUPLICATE | FAKERELAY_SHUFFLE | FAKERELAY_WITHHOLD), 0);
	/* Pairing itself goes through it: B's hello and first messages come twice, shuffled,
	 * some only with a later sync. */
	cli_check(0, CALL(.home = a), ARGS("init"));
	cli_check(0, CALL(.home = b), ARGS("init"));
	struct res inv =
	    cli_expect(0, CALL(.home = a), ARGS("invite", "--relay", f->address, "--name", "bob"));
	inv.out[strcspn(inv.out, "\n")] = '\0';
	cli_check(0, CALL(.home = b), ARGS("accept", inv.out, "--name", "alice"));
	res_free(&inv);
	char text[64];
	const int n1 = 12, n2 = 12, nback = 6;
	int got_a = 0, got_b = 0;
	/* Until A answers, B's messages all carry the X3DH prefix; any of them may come first. */
	for (int i = 0; i < n1; i++) {
		snprintf(text, sizeof(text), "chain one %02d", i);
		cli_check(0, CALL(.home = b), ARGS("send", "alice", text));
	}
	got_a += sync_count(a); /* at least one came, so A has a session and can answer */
	for (int i = 0; i < nback; i++) {
		snprintf(text, sizeof(text), "back %02d", i);
		cli_check(0, CALL(.home = a), ARGS("send", "bob", text));
	}
	got_b += sync_count(b);
	/*
	 * B has heard from A, so its next messages use a new ratchet chain. What the relay held
	 * back of the first chain now arrives mixed with the second: the receiver needs the
	 * skipped keys it kept, while every duplicate must still be dropped.
	 */
	for (int i = 0; i < n2; i++) {
		snprintf(text, sizeof(text), "chain two %02d", i);
		cli_check(0, CALL(.home = b), ARGS("send", "alice", text));
	}
	/* Two more queued through a proxy that is not there (exit 3), so that B's next sync
	 * both manages its mailbox and sends on this relay: on two connections. */
	const int nqueued = 2;
	for (int i = 0; i < nqueued; i++) {
		snprintf(text, sizeof(text), "queued %02d", i);
		cli_check(3, CALL(.home = b, .socks = "127.0.0.1:1"), ARGS("send", "alice", text));
	}
	for (int i = 0; i < 3; i++) {
		got_a += sync_count(a);
		got_b += sync_count(b);
	}
	assert_int_equal(got_a, n1 + n2 + nqueued);
	assert_int_equal(got_b, nback);
	assert_int_equal(fakerelay_stop(f), 0);
	print_message("fake relay: %lu sends, %lu deliveries, %lu duplicates, %lu replayed after "
	              "an ACK, %lu reordered, %lu withheld\n",
	              f->stats.sends, f->stats.deliveries, f->stats.duplicates, f->stats.replayed,
	              f->stats.reordered, f->stats.withheld);
	/* It really did misbehave. */
	assert_true(f->stats.duplicates >= f->stats.sends);
	assert_true(f->stats.replayed > 0);
	assert_true(f->stats.reordered > 0);
	assert_true(f->stats.withheld > 0);
	/* No connection both managed a mailbox and sent: the relay cannot link sender to
	 * recipient mailbox through a connection (docs/SECURITY.md). */
	assert_int_equal(f->stats.mixed_connections, 0);

	/* Exactly once each, every text intact (order may follow arrival). */
	struct convo c = read_convo(a, "bob");
	assert_int_equal(count_dir(&c, 0), n1 + n2 + nqueued);
	for (int i = 0; i < nqueued; i++) {
		snprintf(text, sizeof(text), "queued %02d", i);
		assert_int_equal(count_text(&c, 0, text), 1);
	}
	for (int i = 0; i < n1; i++) {
		snprintf(text, sizeof(text), "chain one %02d", i);
		assert_int_equal(count_text(&c, 0, text), 1);
	}
	for (int i = 0; i < n2; i++) {
		snprintf(text, sizeof(text), "chain two %02d", i);
		assert_int_equal(count_text(&c, 0, text), 1);
	}
	convo_free(&c);
	c = read_convo(b, "alice");
	assert_int_equal(count_dir(&c, 0), nback);
	for (int i = 0; i < nback; i++) {
		snprintf(text, sizeof(text), "back %02d", i);
		assert_int_equal(count_text(&c, 0, text), 1);
	}
	convo_free(&c);
}

/* ---- 10. two relays: failover both ways, exactly once ---------------------------------- */

static void address_of(const struct relayproc *r, char out[CAIRN_ADDRESS_MAX + 1])
{
	struct cairn_address a = {.host_type = CAIRN_HOST_IPV4, .port = r->port};
	memcpy(a.key, r->pub, sizeof(a.key));
	strcpy(a.host, "127.0.0.1");
	assert_int_equal(cairn_address_format(&a, out, CAIRN_ADDRESS_MAX + 1), 0);
}

/* An invite's payload taken apart: the header, then each mailbox (PROTOCOL.md 8.2). */
struct tinvite {
	uint8_t head[65];
	int count;
	struct {
		uint8_t sid[24], cred[32];
		char relay[CAIRN_ADDRESS_MAX + 1];
	} m[6];
};

static void tinvite_read(const char *text, struct tinvite *t)
{
	uint8_t bin[2048];
	size_t len = invite_decode(text, bin, sizeof(bin)), off = 66;
	memset(t, 0, sizeof(*t));
	memcpy(t->head, bin, 65);
	t->count = bin[65];
	assert_true(t->count >= 1 && t->count <= 4);
	for (int i = 0; i < t->count; i++) {
		memcpy(t->m[i].sid, bin + off, 24);
		memcpy(t->m[i].cred, bin + off + 24, 32);
		size_t rl = ((size_t)bin[off + 56] << 8) | bin[off + 57];
		memcpy(t->m[i].relay, bin + off + 58, rl);
		off += 58 + rl;
	}
	assert_int_equal(off, len);
}

/* Writes T back as invite text, with COUNT (which may disagree with the entries) in front. */
static char *tinvite_text(const struct tinvite *t, int count)
{
	uint8_t bin[4096];
	size_t off = 66;
	memcpy(bin, t->head, 65);
	bin[65] = (uint8_t)count;
	for (int i = 0; i < 6 && t->m[i].relay[0] != '\0'; i++) {
		size_t rl = strlen(t->m[i].relay);
		memcpy(bin + off, t->m[i].sid, 24);
		memcpy(bin + off + 24, t->m[i].cred, 32);
		bin[off + 56] = (uint8_t)(rl >> 8);
		bin[off + 57] = (uint8_t)rl;
		memcpy(bin + off + 58, t->m[i].relay, rl);
		off += 58 + rl;
	}
	return invite_encode_text(bin, off);
}

/* SEND to a mailbox an invite named, as anyone holding the invite could: returns 0 or the
 * relay's error. */
static int probe_mailbox(const struct relayproc *r, const uint8_t sid[24], const uint8_t cred[32])
{
	struct tclient t;
	assert_int_equal(tclient_connect(&t, r->port, r->pub), 0);
	int rc = it_send(&t, sid, cred, "probe", 5);
	tclient_close(&t);
	return rc;
}

/* Copies the files of home FROM over those of home TO (both flat, no process running). */
static void copy_home(const char *from, const char *to)
{
	static const char *const files[] = {"cairn.db", "cairn.db-wal", "cairn.db-shm"};
	assert_true(mkdir(to, 0700) == 0 || errno == EEXIST);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char src[256], dst[256];
		snprintf(src, sizeof(src), "%s/%s", from, files[i]);
		snprintf(dst, sizeof(dst), "%s/%s", to, files[i]);
		unlink(dst);
		FILE *in = fopen(src, "rb");
		if (in == NULL)
			continue;
		FILE *out = fopen(dst, "wb");
		assert_non_null(out);
		char buf[65536];
		size_t n;
		while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
			assert_int_equal(fwrite(buf, 1, n, out), n);
		fclose(in);
		assert_int_equal(fclose(out), 0);
		assert_int_equal(chmod(dst, 0600), 0);
	}
}

/* `sync` with some relay down: exit EXPECT, RECEIVED received, and it says so. */
static void sync_partial(const char *home, int expect, int received)
{
	struct res r = cli_expect(expect, CALL(.home = home), ARGS("sync"));
	char want[64];
	snprintf(want, sizeof(want), "sync: %d received,", received);
	if (strstr(r.out, want) == NULL || strstr(r.out, "some relays unreachable") == NULL)
		fail_msg("%s: wanted '%s' and unreachable relays, got: %s%s", home, want, r.out,
		         r.err);
	res_free(&r);
}

/*
 * A and B each keep their mailboxes for the other on two relays. Pairing moves B out of A's
 * invite mailboxes (which are then gone). Then: relay 1 down, messages both ways go through
 * relay 2; relay 1 back and relay 2 down, through relay 1; both down, messages queue (exit 3)
 * and go out once a relay is back. A message whose relay OK was lost is sent again through the
 * other relay: stored on both, shown once.
 */
static void test_two_relays(void **state)
{
	struct world *w = *state;
	const char *a = w->home[0], *b = w->home[1];
	struct relayproc *r1 = &w->relay, *r2 = &w->relay2;
	assert_int_equal(relayproc_init(r2, NULL), 0);
	assert_int_equal(relayproc_start(r2), 0);
	char addr1[CAIRN_ADDRESS_MAX + 1], addr2[CAIRN_ADDRESS_MAX + 1];
	address_of(r1, addr1);
	address_of(r2, addr2);

	cli_check(0, CALL(.home = a), ARGS("init"));
	cli_check(0, CALL(.home = b), ARGS("init"));
	struct res inv =
	    cli_expect(0, CALL(.home = a),
	               ARGS("invite", "--relay", addr1, "--relay", addr2, "--name", "bob"));
	inv.out[strcspn(inv.out, "\n")] = '\0';
	struct tinvite ti;
	tinvite_read(inv.out, &ti);
	assert_int_equal(ti.count, 2);
	assert_string_equal(ti.m[0].relay, addr1);
	assert_string_equal(ti.m[1].relay, addr2);
	/* B's own mailboxes go on the invite's relays. */
	cli_check(0, CALL(.home = b), ARGS("accept", inv.out, "--name", "alice"));
	res_free(&inv);
	/* Anyone with the invite can write to its mailboxes, for now (A drops what does not
	 * open). */
	assert_int_equal(probe_mailbox(r2, ti.m[1].sid, ti.m[1].cred), 0);
	cli_check(0, CALL(.home = b), ARGS("send", "alice", "hello over two relays"));
	/* A learns of B and moves B to fresh mailboxes; B applies that silently. */
	sync_expect(CALL(.home = a), 0, 1);
	sync_expect(CALL(.home = b), 0, 0);
	struct res r = cli_expect(0, CALL(.home = b), ARGS("contacts"));
	assert_string_equal(r.out, "alice\n"); /* heard from A: established */
	res_free(&r);
	/* B writes to a fresh mailbox: A sees it moved and deletes the invite's mailboxes. */
	cli_check(0, CALL(.home = b), ARGS("send", "alice", "after the move"));
	sync_expect(CALL(.home = a), 0, 1);
	assert_int_equal(probe_mailbox(r1, ti.m[0].sid, ti.m[0].cred), CAIRN_EDENIED);
	assert_int_equal(probe_mailbox(r2, ti.m[1].sid, ti.m[1].cred), CAIRN_EDENIED);
	cli_check(0, CALL(.home = a), ARGS("send", "bob", "both relays up"));
	sync_expect(CALL(.home = b), 0, 1);

	/* Relay 1 down: both ways through relay 2, and a send counts as sent (exit 0). */
	assert_int_equal(relayproc_stop(r1, SIGTERM), 0);
	cli_check(0, CALL(.home = b), ARGS("send", "alice", "relay 1 down, b to a"));
	sync_partial(a, 0, 1);
	cli_check(0, CALL(.home = a), ARGS("send", "bob", "relay 1 down, a to b"));
	sync_partial(b, 0, 1);

	/* Relay 1 back, relay 2 down: through relay 1. */
	assert_int_equal(relayproc_start(r1), 0);
	assert_int_equal(relayproc_stop(r2, SIGTERM), 0);
	cli_check(0, CALL(.home = b), ARGS("send", "alice", "relay 2 down, b to a"));
	sync_partial(a, 0, 1);
	cli_check(0, CALL(.home = a), ARGS("send", "bob", "relay 2 down, a to b"));
	sync_partial(b, 0, 1);

	/* Both down: queued (exit 3), and sync says so. */
	assert_int_equal(relayproc_stop(r1, SIGTERM), 0);
	r = cli_expect(3, CALL(.home = b), ARGS("send", "alice", "both down, b to a"));
	assert_non_null(strstr(r.err, "outbox"));
	res_free(&r);
	cli_check(3, CALL(.home = a), ARGS("send", "bob", "both down, a to b"));
	r = cli_expect(3, CALL(.home = b), ARGS("sync"));
	assert_non_null(strstr(r.out, "0 sent, 1 waiting in the outbox"));
	res_free(&r);

	/*
	 * B's copy as it is now stands for a B whose relay OK was lost: B sends through relay 2
	 * and is then put back to this copy, with relay 2 gone, so the same envelope goes out
	 * again through relay 1. A finds it in both relays and shows it once.
	 */
	char saved[128];
	snprintf(saved, sizeof(saved), "%s/B-saved", w->dir);
	copy_home(b, saved);
	assert_int_equal(relayproc_start(r2), 0);
	r = cli_expect(0, CALL(.home = b), ARGS("sync"));
	assert_non_null(strstr(r.out, "1 sent, 0 waiting"));
	res_free(&r);
	assert_int_equal(relayproc_stop(r2, SIGTERM), 0);
	copy_home(saved, b);
	assert_int_equal(relayproc_start(r1), 0);
	r = cli_expect(0, CALL(.home = b), ARGS("sync"));
	assert_non_null(strstr(r.out, "1 sent, 0 waiting"));
	res_free(&r);
	assert_int_equal(relayproc_start(r2), 0);
	sync_expect(CALL(.home = a), 0, 1); /* also sends A's queued message */
	sync_expect(CALL(.home = a), 0, 0);
	sync_expect(CALL(.home = b), 0, 1);
	sync_expect(CALL(.home = b), 0, 0);

	/* Every message exactly once, on both sides, every copy of ours sent. */
	const char *b_to_a[] = {"hello over two relays", "after the move", "relay 1 down, b to a",
	                        "relay 2 down, b to a", "both down, b to a"};
	const char *a_to_b[] = {"both relays up", "relay 1 down, a to b", "relay 2 down, a to b",
	                        "both down, a to b"};
	struct convo ca = read_convo(a, "bob"), cb = read_convo(b, "alice");
	assert_int_equal(count_dir(&ca, 0), 5);
	assert_int_equal(count_dir(&cb, 0), 4);
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(count_text(&ca, 0, b_to_a[i]), 1);
		assert_int_equal(count_text(&cb, 1, b_to_a[i]), 1);
	}
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(count_text(&cb, 0, a_to_b[i]), 1);
		assert_int_equal(count_text(&ca, 1, a_to_b[i]), 1);
	}
	for (size_t i = 0; i < ca.n; i++)
		assert_true(!ca.m[i].out || ca.m[i].received > 0);
	for (size_t i = 0; i < cb.n; i++)
		assert_true(!cb.m[i].out || cb.m[i].received > 0);
	convo_free(&ca);
	convo_free(&cb);
	char *na = cli_safety_number(a, "bob"), *nb = cli_safety_number(b, "alice");
	assert_string_equal(na, nb);
	free(na);
	free(nb);
}

/* ---- 11. listening on two relays ------------------------------------------------------ */

/* Starts `cairn --home HOME listen --json` with its standard output going to the file OUT. */
static pid_t spawn_listen(const char *home, const char *out)
{
	char *argv[8 + TEST_WRAPPER_MAX];
	size_t i = test_wrapper_argv(argv);
	argv[i++] = cli_path;
	argv[i++] = "--home";
	argv[i++] = (char *)home;
	argv[i++] = "listen";
	argv[i++] = "--json";
	argv[i] = NULL;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(fd, 1);
		dup2(null, 2);
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives the test */
		setenv("CAIRN_PWHASH_FAST", "1", 1);
		setenv("CAIRN_PASSPHRASE", PASS, 1);
		unsetenv("CAIRN_SOCKS");
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* How many lines of the file PATH hold TEXT, once WANT of them do or TIMEOUT_MS passed. */
static int wait_lines(const char *path, const char *text, int want, int timeout_ms)
{
	double end = it_mono_s() + timeout_ms / 1000.0;
	int n = 0;
	do {
		FILE *f = fopen(path, "r");
		char line[4096];
		n = 0;
		while (f != NULL && fgets(line, sizeof(line), f) != NULL)
			n += strstr(line, text) != NULL;
		if (f != NULL)
			fclose(f);
		if (n >= want)
			break;
		it_sleep_ms(50);
	} while (it_mono_s() < end);
	return n;
}

/* Waits until a SEND to the invite mailbox M on R is denied: the mailbox was deleted. Each
 * probe that gets through is one more envelope for A to drop, and A deletes a mailbox only
 * once it has been quiet for a moment, so the probes are a second apart. */
static void wait_deleted(const struct relayproc *r, const uint8_t sid[24], const uint8_t cred[32])
{
	double end = it_mono_s() + 15;
	while (probe_mailbox(r, sid, cred) != CAIRN_EDENIED) {
		if (it_mono_s() > end)
			fail_msg("the invite mailbox on port %u was not deleted", r->port);
		it_sleep_ms(1000);
	}
}

/*
 * A listens the whole time: it hears B's first message on an invite mailbox, moves B to fresh
 * mailboxes and subscribes them while listening, deletes the invite mailboxes once B writes
 * to the fresh ones, and keeps hearing B through whichever relay is up, reconnecting to one
 * that comes back. Each message is printed once.
 */
static void test_listen_two_relays(void **state)
{
	struct world *w = *state;
	const char *a = w->home[0], *b = w->home[1];
	struct relayproc *r1 = &w->relay, *r2 = &w->relay2;
	assert_int_equal(relayproc_init(r2, NULL), 0);
	assert_int_equal(relayproc_start(r2), 0);
	char addr1[CAIRN_ADDRESS_MAX + 1], addr2[CAIRN_ADDRESS_MAX + 1], out[128];
	address_of(r1, addr1);
	address_of(r2, addr2);
	snprintf(out, sizeof(out), "%s/listen.out", w->dir);
	cli_check(0, CALL(.home = a), ARGS("init"));
	cli_check(0, CALL(.home = b), ARGS("init"));
	struct res inv =
	    cli_expect(0, CALL(.home = a),
	               ARGS("invite", "--relay", addr1, "--relay", addr2, "--name", "bob"));
	inv.out[strcspn(inv.out, "\n")] = '\0';
	struct tinvite ti;
	tinvite_read(inv.out, &ti);
	w->listener = spawn_listen(a, out);

	cli_check(0, CALL(.home = b), ARGS("accept", inv.out, "--name", "alice"));
	res_free(&inv);
	cli_check(0, CALL(.home = b), ARGS("send", "alice", "one"));
	assert_int_equal(wait_lines(out, "\"text\":\"one\"", 1, 10000), 1);
	/* The listening A moves B within a tick or two; B learns it at its next sync. */
	double end = it_mono_s() + 15;
	for (;;) {
		sync_expect(CALL(.home = b), 0, 0);
		struct res r = cli_expect(0, CALL(.home = b), ARGS("contacts"));
		int moved = strcmp(r.out, "alice\n") == 0;
		res_free(&r);
		if (moved)
			break;
		if (it_mono_s() > end)
			fail_msg("B never heard from the listening A");
		it_sleep_ms(300);
	}
	cli_check(0, CALL(.home = b), ARGS("send", "alice", "two"));
	assert_int_equal(wait_lines(out, "\"text\":\"two\"", 1, 10000), 1);
	wait_deleted(r1, ti.m[0].sid, ti.m[0].cred);
	wait_deleted(r2, ti.m[1].sid, ti.m[1].cred);

	assert_int_equal(relayproc_stop(r1, SIGTERM), 0);
	cli_check(0, CALL(.home = b), ARGS("send", "alice", "three"));
	assert_int_equal(wait_lines(out, "\"text\":\"three\"", 1, 10000), 1);
	assert_int_equal(relayproc_start(r1), 0);
	assert_int_equal(relayproc_stop(r2, SIGTERM), 0);
	cli_check(0, CALL(.home = b), ARGS("send", "alice", "four"));
	/* A reconnects to relay 1 after its backoff (a few seconds at most here). */
	assert_int_equal(wait_lines(out, "\"text\":\"four\"", 1, 20000), 1);

	kill(w->listener, SIGTERM);
	assert_int_equal(wait_status(w->listener), 0);
	w->listener = 0;
	const char *texts[] = {"one", "two", "three", "four"};
	for (size_t i = 0; i < 4; i++) {
		char want[32];
		snprintf(want, sizeof(want), "\"text\":\"%s\"", texts[i]);
		assert_int_equal(wait_lines(out, want, 2, 0), 1);
	}
	struct convo c = read_convo(a, "bob");
	assert_int_equal(count_dir(&c, 0), 4);
	convo_free(&c);
}

/* ---- 12. invites and relay lists that are wrong ---------------------------------------- */

static void test_bad_relay_lists(void **state)
{
	struct world *w = *state;
	const char *a = w->home[0], *b = w->home[1];
	struct relayproc *r2 = &w->relay2;
	assert_int_equal(relayproc_init(r2, NULL), 0);
	assert_int_equal(relayproc_start(r2), 0);
	char addr1[CAIRN_ADDRESS_MAX + 1], addr2[CAIRN_ADDRESS_MAX + 1],
	    other[CAIRN_ADDRESS_MAX + 1];
	address_of(&w->relay, addr1);
	address_of(r2, addr2);
	cli_check(0, CALL(.home = a), ARGS("init"));
	cli_check(0, CALL(.home = b), ARGS("init"));

	/* The same relay under another host name is the same relay. */
	struct cairn_address ad;
	assert_int_equal(cairn_address_parse(addr1, &ad), 0);
	strcpy(ad.host, "localhost");
	ad.host_type = CAIRN_HOST_NAME;
	assert_int_equal(cairn_address_format(&ad, other, sizeof(other)), 0);
	/* Four fake relays: well-formed addresses, distinct keys. */
	char fake[3][CAIRN_ADDRESS_MAX + 1];
	for (int i = 0; i < 3; i++) {
		struct cairn_address f = {.host_type = CAIRN_HOST_IPV4, .port = 9};
		memset(f.key, 0x70 + i, sizeof(f.key));
		strcpy(f.host, "127.0.0.1");
		assert_int_equal(cairn_address_format(&f, fake[i], sizeof(fake[i])), 0);
	}
	struct {
		const char *const *args;
		const char *says;
	} usage[] = {
	    {ARGS("invite", "--relay", addr1, "--relay", addr2, "--relay", fake[0], "--relay",
	          fake[1], "--relay", fake[2], "--name", "bob"),
	     "at most 4"},
	    {ARGS("invite", "--relay", addr1, "--relay", addr1, "--name", "bob"), "same relay"},
	    {ARGS("invite", "--relay", addr1, "--relay", other, "--name", "bob"), "same relay"},
	    {ARGS("invite", "--relay", addr1, "--relay", "cairn://nope@127.0.0.1:1", "--name",
	          "bob"),
	     "not a relay address"},
	    {ARGS("accept", "cairn-invite:AAAA", "--name", "alice", "--relay", addr2, "--relay",
	          addr2),
	     "same relay"},
	};
	for (size_t i = 0; i < sizeof(usage) / sizeof(usage[0]); i++) {
		struct res r = cli_expect(2, CALL(.home = a), usage[i].args);
		if (strstr(r.err, usage[i].says) == NULL)
			fail_msg("case %zu: stderr was: %s", i, r.err);
		res_free(&r);
	}
	/* An invite needs all its relays: one down (fake[0]), nothing is kept. */
	struct res r =
	    cli_expect(1, CALL(.home = a),
	               ARGS("invite", "--relay", addr1, "--relay", fake[0], "--name", "bob"));
	assert_non_null(strstr(r.err, "nothing was made"));
	res_free(&r);
	r = cli_expect(0, CALL(.home = a), ARGS("contacts"));
	assert_string_equal(r.out, "");
	res_free(&r);

	/* Invites whose mailbox list is wrong: refused, and B's home is left as it was. */
	struct res inv =
	    cli_expect(0, CALL(.home = a),
	               ARGS("invite", "--relay", addr1, "--relay", addr2, "--name", "bob"));
	inv.out[strcspn(inv.out, "\n")] = '\0';
	struct tinvite good, t;
	tinvite_read(inv.out, &good);
	char *text;
	/* Five mailboxes: the two real ones and three more on other relays. */
	t = good;
	for (int i = 0; i < 3; i++) {
		t.m[2 + i] = good.m[0];
		strcpy(t.m[2 + i].relay, fake[i]);
	}
	text = tinvite_text(&t, 5);
	expect_rejected(b, text, "five mailboxes");
	free(text);
	/* The same relay twice, as the same text and under another host name. */
	t = good;
	strcpy(t.m[1].relay, addr1);
	text = tinvite_text(&t, 2);
	expect_rejected(b, text, "the same relay twice");
	free(text);
	strcpy(t.m[1].relay, other);
	text = tinvite_text(&t, 2);
	expect_rejected(b, text, "the same relay under two names");
	free(text);
	/* Malformed entries: a second relay that is no address, counts that disagree with the
	 * mailboxes present, and a second mailbox cut short. */
	t = good;
	strcpy(t.m[1].relay, "cairn://not-an-address");
	text = tinvite_text(&t, 2);
	expect_rejected(b, text, "a relay that is no address");
	free(text);
	const int counts[] = {0, 1, 3};
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		text = tinvite_text(&good, counts[i]);
		expect_rejected(b, text, "a count that disagrees");
		free(text);
	}
	uint8_t bin[2048];
	size_t blen = invite_decode(inv.out, bin, sizeof(bin));
	text = invite_encode_text(bin, blen - strlen(addr2) - 10);
	expect_rejected(b, text, "a mailbox cut short");
	free(text);

	/* The good one still works, and our mailboxes go where we say: relay 2 only. */
	r = cli_expect(0, CALL(.home = b),
	               ARGS("accept", inv.out, "--name", "alice", "--relay", addr2));
	res_free(&r);
	res_free(&inv);
	assert_int_equal(relayproc_stop(&w->relay, SIGTERM), 0);
	cli_check(0, CALL(.home = b), ARGS("send", "alice", "through relay 2 only"));
	sync_partial(a, 0, 1);
	cli_check(0, CALL(.home = a), ARGS("send", "bob", "answered through relay 2"));
	sync_expect(CALL(.home = b), 0, 1);
}

/* ---- main -------------------------------------------------------------------------------- */

int main(void)
{
	if (sodium_init() < 0 || find_cli() != 0) {
		fprintf(stderr, "cannot find the cairn command (%s); set CAIRN_CLI\n", cli_path);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	/* CAIRN_IT_ONLY=test_socks (a cmocka pattern) runs a subset while working on one. */
	if (getenv("CAIRN_IT_ONLY") != NULL)
		cmocka_set_test_filter(getenv("CAIRN_IT_ONLY"));
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_walkthrough, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_offline_hundreds, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_sends, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_relay_restart, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_killed_during_sync, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_send_while_relay_down, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_accept_other_relay_down, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_socks, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_passphrase, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_invites, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_duplicating_reordering_relay, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_two_relays, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_listen_two_relays, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_relay_lists, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
