/* SPDX-License-Identifier: MIT */
/*
 * Integration, the third part of test_it_client (see its purpose block): the real `cairn`
 * command with several relays. Failover both ways between two relays with every message
 * exactly once, `cairn listen` on two relays, and invites and relay lists that are wrong.
 * Shares its world and helpers with the other parts (it_client_common.h).
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
	if (it_client_init() != 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_two_relays, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_listen_two_relays, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_relay_lists, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
