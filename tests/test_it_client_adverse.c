/* SPDX-License-Identifier: MIT */
/*
 * Integration, the second part of test_it_client (see its purpose block): the real `cairn`
 * command against the real cairn-relay when something is against it. Through a real SOCKS5
 * proxy, with a wrong passphrase (the home is left untouched), with corrupted, truncated and
 * reused invites, and against a relay that duplicates and reorders. Shares its world and
 * helpers with the other parts (it_client_common.h).
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

/* ---- 6. through a real SOCKS5 proxy ---------------------------------------------------- */

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

/* ---- main -------------------------------------------------------------------------------- */

int main(void)
{
	if (it_client_init() != 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_socks, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_passphrase, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_invites, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_duplicating_reordering_relay, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
