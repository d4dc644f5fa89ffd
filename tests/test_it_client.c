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
 *
 * This program has the basics (the walk-through, offline backlogs, restarts, kills, a relay
 * that is down); test_it_client_adverse has a proxy, a wrong passphrase, bad invites and a
 * misbehaving relay; test_it_client_relays has several relays. Their shared world and helpers
 * are it_client_common.[ch]. `ctest -R test_it_client` runs all of them.
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
#include "it_client_common.h"

/* Fewer under ASan (IT_ASAN): what they test does not depend on the count once it exceeds
 * the relay's delivery window of 64. */
#define OFFLINE_MESSAGES (IT_ASAN ? 100 : 300)
#define KILL_MESSAGES    (IT_ASAN ? 60 : 80)
#define KILL_ROUNDS      8

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

/* ---- main -------------------------------------------------------------------------------- */

int main(void)
{
	if (it_client_init() != 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_walkthrough, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_offline_hundreds, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_sends, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_relay_restart, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_killed_during_sync, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_send_while_relay_down, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_accept_other_relay_down, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
