/* SPDX-License-Identifier: MIT */
/*
 * Integration: what a hostile contact or a busy home must not get from the `cairn` command
 * (issue 10, client findings 1 and 2). Real cairn-relay and cairn processes on loopback.
 *
 * Key reuse: sends, reads and a listen run side by side on one home while the contact keeps
 * writing; no two envelopes the home sealed may share a message key (seen on the relay's disk:
 * the type byte and header nonce, PROTOCOL.md 8.4 and 8.6), and every message arrives once.
 * Terminal: a message full of escapes, carriage returns, C1 and bidi controls and a forged
 * header line reaches `read` and `listen` as visible text only, indented under its header.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cairn/address.h"
#include "cliproc.h"
#include "it_common.h"

/* How long the storm of processes runs on one home. */
#define STORM_MS (IT_ASAN ? 6000 : 8000)

struct world {
	char dir[64];
	char home[2][96]; /* A, B */
	struct relayproc relay;
	char addr[CAIRN_ADDRESS_MAX + 1];
	pid_t listener;
};

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -1;
	strcpy(w->dir, "/tmp/cairn-itsec-XXXXXX");
	if (mkdtemp(w->dir) == NULL)
		return -1;
	for (int i = 0; i < 2; i++)
		snprintf(w->home[i], sizeof(w->home[i]), "%s/%c", w->dir, 'A' + i);
	if (relayproc_init(&w->relay, NULL) != 0 || relayproc_start(&w->relay) != 0) {
		fprintf(stderr, "setup: cannot start the relay in %s\n", w->relay.dir);
		return -1;
	}
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
	if (w->listener > 0) {
		kill(w->listener, SIGKILL);
		wait_status(w->listener);
	}
	relayproc_cleanup(&w->relay);
	test_rm_tree(w->dir);
	free(w);
	return 0;
}

/* ---- 1. no message key twice --------------------------------------------------------- */

struct envelope {
	unsigned char *b;
	int len;
};

static int by_bytes(const void *pa, const void *pb)
{
	const struct envelope *a = pa, *b = pb;
	int n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->b, b->b, (size_t)n);
	return c != 0 ? c : a->len - b->len;
}

/*
 * Reads every envelope the relay holds (its SQLite store, read-only) and counts pairs that
 * share their first 25 bytes (type byte + header nonce, which the message key determines)
 * but differ after: two messages sealed under one key. *SAME counts byte-identical copies
 * (one envelope sent twice, by two processes that both saw it in the outbox: harmless, the
 * recipient drops the second). Returns the number of envelopes.
 */
static int relay_envelopes(const struct relayproc *r, int *reused, int *same)
{
	char path[400];
	snprintf(path, sizeof(path), "%s/data/relay.db", r->dir);
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	sqlite3_stmt *s = NULL;
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT body FROM envelopes", -1, &s, NULL),
	                 SQLITE_OK);
	struct envelope *e = NULL;
	int n = 0;
	while (sqlite3_step(s) == SQLITE_ROW) {
		e = realloc(e, (size_t)(n + 1) * sizeof(*e));
		assert_non_null(e);
		e[n].len = sqlite3_column_bytes(s, 0);
		e[n].b = malloc((size_t)e[n].len + 1);
		assert_non_null(e[n].b);
		memcpy(e[n].b, sqlite3_column_blob(s, 0), (size_t)e[n].len);
		n++;
	}
	sqlite3_finalize(s);
	sqlite3_close(db);
	if (n > 0)
		qsort(e, (size_t)n, sizeof(*e), by_bytes);
	*reused = *same = 0;
	for (int i = 1; i < n; i++) {
		if (e[i].len < 25 || e[i - 1].len < 25 || memcmp(e[i].b, e[i - 1].b, 25) != 0)
			continue;
		if (by_bytes(&e[i], &e[i - 1]) == 0)
			(*same)++;
		else
			(*reused)++;
	}
	for (int i = 0; i < n; i++)
		free(e[i].b);
	free(e);
	return n;
}

enum role { ROLE_SEND, ROLE_READ, ROLE_PEER };

struct slot {
	enum role role;
	pid_t pid;
	int out; /* a reader's standard output, drained slowly (a pager, a slow terminal) */
};

static void slot_start(struct world *w, struct slot *s, int *seq_a, int *seq_b)
{
	char text[48];
	s->out = -1;
	if (s->role == ROLE_SEND) {
		snprintf(text, sizeof(text), "storm a %04d", (*seq_a)++);
		s->pid = cli_spawn(CALL(.home = w->home[0]), ARGS("send", "bob", text));
	} else if (s->role == ROLE_PEER) {
		snprintf(text, sizeof(text), "storm b %04d", (*seq_b)++);
		s->pid = cli_spawn(CALL(.home = w->home[1]), ARGS("send", "alice", text));
	} else {
		s->pid =
		    cli_spawn_out(CALL(.home = w->home[0]), ARGS("read", "bob"), &s->out, NULL);
		(void)fcntl(s->out, F_SETFL, O_NONBLOCK);
	}
}

static void drain(int fd)
{
	char buf[65536];
	while (fd >= 0 && read(fd, buf, sizeof(buf)) > 0)
		;
}

/* Each process's exit status, by role: 0 sent or read, 3 queued (a busy relay path). */
struct tally {
	int ok[3], other[3];
};

static void slot_reap(struct slot *s, int st, struct tally *t)
{
	if (st == 0 || (st == 3 && s->role != ROLE_READ))
		t->ok[s->role]++;
	else
		t->other[s->role]++;
	if (s->out >= 0) {
		drain(s->out);
		close(s->out);
	}
	s->pid = 0;
	s->out = -1;
}

static void test_no_key_reuse(void **state)
{
	struct world *w = *state;
	const char *a = w->home[0], *b = w->home[1];
	pair(a, b, w->addr, NULL);
	/* A conversation long enough that `read` spends a while printing it: one message of
	 * 100 KB fills the pipe of a reader that is not drained at once. */
	size_t big = 100 * 1000;
	char *long_text = malloc(big + 1);
	assert_non_null(long_text);
	memset(long_text, 'x', big);
	long_text[big] = '\0';
	cli_check(0, CALL(.home = b), ARGS("send", "alice", long_text));
	free(long_text);
	cli_check(0, CALL(.home = b), ARGS("send", "alice", "unread 1"));
	sync_expect(CALL(.home = a), 0, 2);

	/* The storm: A's listen stores what B keeps sending (stepping A's ratchet and marking
	 * messages unread), while sends and reads run on A's home beside it. */
	w->listener = cli_spawn(CALL(.home = a), ARGS("listen"));
	struct slot slots[] = {{.role = ROLE_SEND}, {.role = ROLE_SEND}, {.role = ROLE_SEND},
	                       {.role = ROLE_READ}, {.role = ROLE_READ}, {.role = ROLE_PEER},
	                       {.role = ROLE_PEER}};
	enum { NSLOTS = sizeof(slots) / sizeof(slots[0]) };
	int seq_a = 0, seq_b = 0;
	struct tally t = {{0}, {0}};
	for (int i = 0; i < NSLOTS; i++)
		slot_start(w, &slots[i], &seq_a, &seq_b);
	double end = it_mono_s() + STORM_MS / 1000.0, next_drain = 0;
	for (;;) {
		double now = it_mono_s();
		int running = 0;
		for (int i = 0; i < NSLOTS; i++) {
			struct slot *s = &slots[i];
			if (s->pid == 0)
				continue;
			int status;
			pid_t p = waitpid(s->pid, &status, WNOHANG);
			if (p == s->pid) {
				int st = WIFEXITED(status) ? WEXITSTATUS(status)
				                           : 128 + WTERMSIG(status);
				slot_reap(s, st, &t);
				if (now < end)
					slot_start(w, s, &seq_a, &seq_b);
			}
			running += s->pid != 0;
		}
		if (running == 0)
			break;
		/* Readers' output is taken every 150 ms, as a terminal that is slow to scroll. */
		if (now >= next_drain) {
			next_drain = now + 0.15;
			for (int i = 0; i < NSLOTS; i++)
				drain(slots[i].out);
		}
		it_sleep_ms(5);
	}
	kill(w->listener, SIGTERM);
	assert_int_equal(wait_status(w->listener), 0);
	w->listener = 0;
	print_message("storm: %d sends (%d failed), %d reads (%d failed), %d sends by B "
	              "(%d failed)\n",
	              t.ok[ROLE_SEND], t.other[ROLE_SEND], t.ok[ROLE_READ], t.other[ROLE_READ],
	              t.ok[ROLE_PEER], t.other[ROLE_PEER]);
	/* Low floors: the suite also runs twice side by side and under ASan. */
	assert_true(t.ok[ROLE_SEND] >= 4 && t.ok[ROLE_READ] >= 2 && t.ok[ROLE_PEER] >= 2);

	/* Whatever is still in A's outbox goes out; B has not synced, so everything A ever
	 * sealed for B since pairing waits on the relay. */
	cli_check(0, CALL(.home = a), ARGS("sync"));
	int reused, same;
	int n = relay_envelopes(&w->relay, &reused, &same);
	print_message("relay holds %d envelopes: %d pairs share a message key, %d are the "
	              "same envelope sent twice\n",
	              n, reused, same);
	assert_true(n >= t.ok[ROLE_SEND]);
	assert_int_equal(reused, 0);

	/* Every message A wrote (its own copy is the record) arrives exactly once, intact. */
	sync_expect(CALL(.home = b), 0, -1);
	struct convo ca = read_convo(a, "bob"), cb = read_convo(b, "alice");
	size_t sent = 0, missing = 0;
	for (size_t i = 0; i < ca.n; i++) {
		if (!ca.m[i].out || strncmp(ca.m[i].text, "storm a ", 8) != 0)
			continue;
		sent++;
		size_t got = count_text(&cb, 0, ca.m[i].text);
		if (got != 1) {
			fprintf(stderr, "'%s' arrived %zu times\n", ca.m[i].text, got);
			missing++;
		}
	}
	print_message("A wrote %zu messages during the storm; %zu did not arrive once\n", sent,
	              missing);
	assert_true(sent >= (size_t)t.ok[ROLE_SEND]);
	assert_int_equal(missing, 0);
	/* And B's, stored by A's listen and syncs, each once too. */
	cli_check(0, CALL(.home = a), ARGS("sync"));
	convo_free(&ca);
	ca = read_convo(a, "bob");
	for (int i = 0; i < seq_b; i++) {
		char text[48];
		snprintf(text, sizeof(text), "storm b %04d", i);
		if (count_text(&cb, 1, text) == 1)
			assert_int_equal(count_text(&ca, 0, text), 1);
	}
	convo_free(&ca);
	convo_free(&cb);
}

/*
 * A contact is created after network calls (its mailboxes): several `invite` (or `accept`)
 * processes under one name at once must leave exactly one contact of that name, never one
 * overwriting another's keys (an invite handed out whose keys were lost opens nothing).
 */
static void test_same_name_at_once(void **state)
{
	struct world *w = *state;
	const char *a = w->home[0], *b = w->home[1];
	enum { N = 4 };
	cli_check(0, CALL(.home = a), ARGS("init"));
	cli_check(0, CALL(.home = b), ARGS("init"));
	pid_t pids[N];
	for (int i = 0; i < N; i++)
		pids[i] =
		    cli_spawn(CALL(.home = a), ARGS("invite", "--relay", w->addr, "--name", "bob"));
	int made = 0;
	for (int i = 0; i < N; i++)
		made += wait_status(pids[i]) == 0;
	print_message("%d of %d invites under one name were made\n", made, N);
	assert_int_equal(made, 1);
	/* The same for accept: invites of N contacts, all accepted at once as one name. */
	char *inv[N];
	for (int i = 0; i < N; i++) {
		char name[16];
		snprintf(name, sizeof(name), "bob%d", i);
		struct res r = cli_expect(0, CALL(.home = a),
		                          ARGS("invite", "--relay", w->addr, "--name", name));
		r.out[strcspn(r.out, "\n")] = '\0';
		inv[i] = strdup(r.out);
		res_free(&r);
	}
	for (int i = 0; i < N; i++)
		pids[i] = cli_spawn(CALL(.home = b), ARGS("accept", inv[i], "--name", "alice"));
	/* Added means exit 0, or 3 (added, its first message still queued). */
	int added = 0;
	for (int i = 0; i < N; i++) {
		int st = wait_status(pids[i]);
		added += st == 0 || st == 3;
	}
	for (int i = 0; i < N; i++)
		free(inv[i]);
	print_message("%d of %d accepts under one name were added\n", added, N);
	assert_int_equal(added, 1);
	/* The one kept works: B writes, A reads it from whichever invite it was. */
	cli_check(0, CALL(.home = b), ARGS("send", "alice", "the one kept"));
	sync_expect(CALL(.home = a), 0, 1);
}

/* ---- 2. a contact cannot write to our terminal ---------------------------------------- */

/* Erases the line, returns to its start, retitles the window, forges a line from someone
 * else after a newline, reverses the text and opens a C1 CSI. */
static const char hostile[] = "hi\x1b[2K\rerased\x1b]0;pwned\x07\n"
                              "alice: fake line\n"
                              "2026-12-04 12:00 <- carol: forged \xE2\x80\xAE"
                              "desrever\xE2\x80\xAC \xC2\x9B"
                              "31m c1 \x1b"
                              "c end";
/* Invalid UTF-8 (a lone C1 byte, 0xFF) before a marker the test waits for. */
static const char broken[] = "raw \x9B\xFF bytes, tail-marker";

/* S holds only what a terminal shows: valid UTF-8 of printable characters and newlines, no
 * C0 (ESC, CR, BEL...), DEL, C1 or bidirectional control. */
static void assert_inert(const char *s)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t i = 0, n = strlen(s);
	while (i < n) {
		uint32_t cp = p[i];
		size_t len = 1;
		if (cp >= 0x80) {
			len = cp >= 0xF0 ? 4 : cp >= 0xE0 ? 3 : 2;
			assert_true(cp >= 0xC2 && cp <= 0xF4 && i + len <= n);
			cp &= 0x3F >> (len - 1);
			for (size_t j = 1; j < len; j++) {
				assert_int_equal(p[i + j] & 0xC0, 0x80);
				cp = (cp << 6) | (p[i + j] & 0x3F);
			}
		}
		if (!(cp == '\n' ||
		      (cp >= 0x20 && cp != 0x7F && !(cp >= 0x80 && cp <= 0x9F) && cp != 0x061C &&
		       cp != 0x200E && cp != 0x200F && !(cp >= 0x202A && cp <= 0x202E) &&
		       !(cp >= 0x2066 && cp <= 0x2069)))) {
			fprintf(stderr, "U+%04X at byte %zu of:\n%s\n", (unsigned)cp, i, s);
			fail();
		}
		i += len;
	}
}

/* Every line of OUT is a header ("YYYY-MM-DD HH:MM <- bob" or "->") or indented under one;
 * returns the number of headers. The forged lines must be among the indented ones. */
static int check_lines(const char *out)
{
	int headers = 0, forged = 0;
	const char *line = out;
	while (*line != '\0') {
		size_t len = strcspn(line, "\n");
		if (strncmp(line, "    ", 4) == 0) {
			forged += strncmp(line + 4, "alice: fake line", 16) == 0 ||
			          strncmp(line + 4, "2026-12-04 12:00 <- carol", 25) == 0;
		} else {
			int y, mo, d, h, mi;
			char dir[3];
			if (sscanf(line, "%4d-%2d-%2d %2d:%2d %2s bob", &y, &mo, &d, &h, &mi,
			           dir) != 6 ||
			    (strcmp(dir, "<-") != 0 && strcmp(dir, "->") != 0) ||
			    strncmp(line + 20, "bob", 3) != 0) {
				fprintf(stderr, "not a header and not indented: %.*s\n", (int)len,
				        line);
				fail();
			}
			headers++;
		}
		line += len + (line[len] == '\n');
	}
	assert_int_equal(forged, 2);
	return headers;
}

static void test_hostile_text(void **state)
{
	struct world *w = *state;
	const char *a = w->home[0], *b = w->home[1];
	pair(a, b, w->addr, NULL);
	int fd = -1;
	w->listener = cli_spawn_out(CALL(.home = a), ARGS("listen"), &fd, NULL);
	it_sleep_ms(500);
	cli_check(0, CALL(.home = b), ARGS("send", "alice", hostile));
	cli_check(0, CALL(.home = b), ARGS("send", "alice", broken));
	/* What listen printed, up to the marker. */
	char *out = NULL;
	size_t len = 0, cap = 0;
	buf_append(&out, &len, &cap, "", 0);
	double give_up = it_mono_s() + 20;
	while (strstr(out, "tail-marker") == NULL && it_mono_s() < give_up) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 200) > 0) {
			char buf[4096];
			ssize_t n = read(fd, buf, sizeof(buf));
			if (n <= 0)
				break;
			buf_append(&out, &len, &cap, buf, (size_t)n);
		}
	}
	kill(w->listener, SIGTERM);
	assert_int_equal(wait_status(w->listener), 0);
	w->listener = 0;
	close(fd);
	assert_non_null(strstr(out, "tail-marker"));
	assert_inert(out);
	assert_int_equal(check_lines(out), 2);
	free(out);
	/* read: the whole conversation, the same way. */
	struct res r = cli_expect(0, CALL(.home = a), ARGS("read", "bob"));
	assert_inert(r.out);
	assert_int_equal(check_lines(r.out), 4); /* pairing both ways, and these two */
	print_message("read shows:\n%s", r.out);
	res_free(&r);
	/* --json: one line per message, inert too, and the text exact once parsed. */
	r = cli_expect(0, CALL(.home = a), ARGS("read", "bob", "--json"));
	assert_inert(r.out);
	struct convo cv = parse_convo(r.out, "bob");
	assert_int_equal(count_text(&cv, 0, hostile), 1);
	assert_int_equal(count_text(&cv, 0, "raw \xEF\xBF\xBD\xEF\xBF\xBD bytes, tail-marker"), 1);
	convo_free(&cv);
	res_free(&r);
}

int main(void)
{
	if (sodium_init() < 0 || find_cli() != 0) {
		fprintf(stderr, "cannot find the cairn command (%s); set CAIRN_CLI\n", cli_path);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	if (getenv("CAIRN_IT_ONLY") != NULL)
		cmocka_set_test_filter(getenv("CAIRN_IT_ONLY"));
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_no_key_reuse, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_same_name_at_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile_text, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
