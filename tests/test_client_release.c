/* SPDX-License-Identifier: MIT */
/*
 * Upgrades from the previous release (issue 16 part 4): a relay data directory and client
 * homes written by commit 1c016ed (tests/fixtures/release-1c016ed.tar.xz, made by
 * tests/fixtures/make-prev-release.sh, which says what they hold) open with this build and
 * lose nothing: the new relay starts on the old store (adding the bundle_seen table, schema
 * still 4) with its address, delivers what it held exactly once, keeps the group log and the
 * intake mailbox; the old homes (one key slot each, rewritten with two on first open) read,
 * send their outbox, talk in their group, and use what the old release lacked (a timer, a
 * file). A store from a newer schema is refused with a message that says so.
 *
 * Each test works on a fresh copy of the archive.
 */
#define _GNU_SOURCE /* usleep */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "cairn/cairn.h"
#include "client.h"
#include "fixture_relay.h"

#define PASS         "fixture"
#define FIXTURE      "release-1c016ed"
#define FIXTURE_PORT 47312 /* where make-prev-release.sh ran the relay: the homes name it */
#define PORT_LOCK    "/tmp/cairn-test-port-47312.lock"

struct world {
	char dir[64];
	char root[128]; /* DIR/release-1c016ed */
	char a[160], b[160], c[160], relay[160];
	pid_t relay_pid;
	int port_lock;
};

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -1;
	w->port_lock = -1;
	strcpy(w->dir, "/tmp/cairn-release-XXXXXX");
	if (mkdtemp(w->dir) == NULL)
		return -1;
	char cmd[512];
	/* tar keeps the modes the old binaries set (0700/0600); chmod makes sure of it. */
	snprintf(cmd, sizeof(cmd), "tar -C '%s' -xJf '%s/%s.tar.xz' && chmod -R go-rwx '%s'",
	         w->dir, CAIRN_FIXTURES, FIXTURE, w->dir);
	if (system(cmd) != 0)
		return -1;
	snprintf(w->root, sizeof(w->root), "%s/%s", w->dir, FIXTURE);
	snprintf(w->a, sizeof(w->a), "%s/A", w->root);
	snprintf(w->b, sizeof(w->b), "%s/B", w->root);
	snprintf(w->c, sizeof(w->c), "%s/C", w->root);
	snprintf(w->relay, sizeof(w->relay), "%s/relay", w->root);
	*state = w;
	return 0;
}

static void stop_relay(struct world *w, int *status)
{
	if (w->relay_pid <= 0)
		return;
	kill(w->relay_pid, SIGTERM);
	int st = 0;
	waitpid(w->relay_pid, &st, 0);
	w->relay_pid = 0;
	if (status != NULL)
		*status = st;
}

static int teardown(void **state)
{
	struct world *w = *state;
	stop_relay(w, NULL);
	if (w->port_lock >= 0)
		close(w->port_lock); /* the port is free again for the other build's run */
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", w->dir);
	int rc = system(cmd);
	free(w);
	return rc == 0 ? 0 : -1;
}

/* ---- the relay -------------------------------------------------------------------------- */

static int relay_up(void)
{
	return fixture_relay_up(FIXTURE_PORT);
}

/* Runs `cairn-relay run` on the fixture's data directory and config, stderr to LOG. Takes the
 * port's lock first: make test runs this file in two builds side by side. */
static pid_t spawn_relay(struct world *w, const char *log)
{
	if (w->port_lock < 0) {
		w->port_lock = open(PORT_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
		assert_true(w->port_lock >= 0);
		assert_int_equal(flock(w->port_lock, LOCK_EX), 0);
	}
	assert_false(relay_up()); /* the port must be ours */
	char conf[192];
	snprintf(conf, sizeof(conf), "%s/relay.conf", w->relay);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0)
			dup2(fd, 2);
		execl(CAIRN_RELAY_BIN, CAIRN_RELAY_BIN, "run", "--data", w->relay, "--config", conf,
		      (char *)NULL);
		_exit(127);
	}
	return pid;
}

static void start_relay(struct world *w)
{
	char log[192];
	snprintf(log, sizeof(log), "%s/relay.log", w->dir);
	w->relay_pid = spawn_relay(w, log);
	/* Generous: a loaded 2-core machine under ASan. */
	for (int i = 0; i < 3000 && !relay_up(); i++)
		usleep(10000);
	assert_true(relay_up());
}

/* Runs SQL on the SQLite file PATH; *OUT (may be NULL) gets the first column of the first
 * row, or -1 if there is none. */
static void sql(const char *path, const char *q, int64_t *out)
{
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
	int rc = sqlite3_step(st);
	assert_true(rc == SQLITE_ROW || rc == SQLITE_DONE);
	if (out != NULL)
		*out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void relay_db(const struct world *w, char *path, size_t cap)
{
	snprintf(path, cap, "%s/relay.db", w->relay);
}

/* Reads the whole of PATH (text) into BUF. */
static void slurp(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	fclose(f);
}

/* The new relay opens the old store: the schema stays 4, bundle_seen is added, the address
 * (its key and listen address) is the one the old relay printed, and it stops cleanly. */
static void test_relay_store_upgrades(void **state)
{
	struct world *w = *state;
	char db[192], want[256], got[256], cmd[512];
	relay_db(w, db, sizeof(db));
	int64_t v = 0, n = 0;
	sql(db, "PRAGMA user_version", &v);
	assert_int_equal(v, 4);
	sql(db, "SELECT count(*) FROM sqlite_master WHERE name = 'bundle_seen'", &n);
	assert_int_equal(n, 0);
	sql(db, "SELECT count(*) FROM envelopes", &n);
	assert_int_equal(n, 5); /* 3 for B, 2 in A's intake mailbox (make-prev-release.sh) */
	sql(db, "SELECT count(*) FROM log_entries", &n);
	assert_true(n >= 4);

	start_relay(w);
	/* A sync from an old home: the relay serves under the key the home pinned (and is past
	 * its start, so the stop below is its clean one). */
	struct cairn *c = NULL;
	struct cairn_sync_result r;
	assert_int_equal(cairn_open(w->c, PASS, &c), 0);
	assert_int_equal(cairn_sync(c, &r, NULL, NULL), 0);
	assert_int_equal(r.relays_failed, 0);
	cairn_close(c);
	int st = -1;
	stop_relay(w, &st);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	sql(db, "PRAGMA user_version", &v);
	assert_int_equal(v, 4);
	sql(db, "SELECT count(*) FROM sqlite_master WHERE name = 'bundle_seen'", &n);
	assert_int_equal(n, 1);
	sql(db, "SELECT count(*) FROM envelopes", &n);
	assert_int_equal(n, 5); /* nothing expired or lost on the way */

	snprintf(want, sizeof(want), "%s/address", w->root);
	slurp(want, want, sizeof(want));
	snprintf(cmd, sizeof(cmd), "'%s' address --data '%s' --config '%s/relay.conf' > '%s/addr'",
	         CAIRN_RELAY_BIN, w->relay, w->relay, w->dir);
	assert_int_equal(system(cmd), 0);
	snprintf(got, sizeof(got), "%s/addr", w->dir);
	slurp(got, got, sizeof(got));
	assert_string_equal(got, want);
}

/* A store written by a newer schema (user_version 5) is refused, with a message that says
 * what happened; the store is left as it was. */
static void test_newer_store_refused(void **state)
{
	struct world *w = *state;
	char db[192], log[192], text[4096];
	relay_db(w, db, sizeof(db));
	sql(db, "PRAGMA user_version = 5", NULL);
	snprintf(log, sizeof(log), "%s/newer.log", w->dir);
	pid_t pid = spawn_relay(w, log);
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_not_equal(WEXITSTATUS(st), 0);
	slurp(log, text, sizeof(text));
	assert_non_null(strstr(text, "written by a newer cairn-relay"));
	int64_t v = 0;
	sql(db, "PRAGMA user_version", &v);
	assert_int_equal(v, 5);

	/* The client's home likewise: a newer schema is not opened (nor changed). */
	char home_db[192];
	snprintf(home_db, sizeof(home_db), "%s/cairn.db", w->a);
	sql(home_db, "PRAGMA user_version = 3", NULL);
	struct cairn *c = NULL;
	assert_int_not_equal(cairn_open(w->a, PASS, &c), 0);
	assert_null(c);
	sql(home_db, "PRAGMA user_version", &v);
	assert_int_equal(v, 3);
}

/* ---- the homes ------------------------------------------------------------------------ */

#define SHOWN_MAX 16

struct shown {
	size_t n;
	struct {
		int outgoing;
		char text[64];
	} m[SHOWN_MAX];
};

static int on_message(void *ctx, const struct cairn_message *m)
{
	struct shown *s = ctx;
	assert_true(s->n < SHOWN_MAX);
	s->m[s->n].outgoing = m->outgoing;
	snprintf(s->m[s->n].text, sizeof(s->m[s->n].text), "%.*s", (int)(m->len < 63 ? m->len : 63),
	         (const char *)m->text);
	s->n++;
	return 0;
}

static void read_conv(struct cairn *c, const char *name, struct shown *s)
{
	memset(s, 0, sizeof(*s));
	assert_int_equal(cairn_read(c, name, on_message, s), 0);
}

/* How many times TEXT is in S. */
static int count_text(const struct shown *s, const char *text)
{
	int n = 0;
	for (size_t i = 0; i < s->n; i++)
		n += strcmp(s->m[i].text, text) == 0;
	return n;
}

struct contacts {
	size_t n;
	char name[8][CAIRN_NAME_MAX + 1];
	unsigned unread[8];
};

static int on_contact(void *ctx, const struct cairn_contact *k)
{
	struct contacts *x = ctx;
	assert_true(x->n < 8);
	strcpy(x->name[x->n], k->name);
	x->unread[x->n++] = k->unread;
	return 0;
}

static int on_request(void *ctx, const struct cairn_request *r)
{
	char *id = ctx;
	snprintf(id, CAIRN_REQUEST_ID_LEN + 1, "%s", r->id);
	return 0;
}

static int on_file(void *ctx, const struct cairn_file *f)
{
	uint8_t *id = ctx;
	if (!f->outgoing)
		memcpy(id, f->id, CAIRN_FILE_ID_LEN);
	return 0;
}

static void sync_ok(struct cairn *c, struct cairn_sync_result *r)
{
	memset(r, 0, sizeof(*r));
	assert_int_equal(cairn_sync(c, r, NULL, NULL), 0);
}

/* The old homes on the new relay: everything they and the relay held is there, and works. */
static void test_homes_upgrade_and_talk(void **state)
{
	struct world *w = *state;
	struct cairn *a = NULL, *b = NULL, *c = NULL;
	struct cairn_sync_result r;
	struct shown s;
	struct contacts x = {0};
	char a_db[192];
	int64_t slot = 0;
	snprintf(a_db, sizeof(a_db), "%s/cairn.db", w->a);
	sql(a_db, "SELECT length(sealed) FROM keyslot", &slot);
	assert_int_equal(slot, 72); /* one slot: the previous release's */
	start_relay(w);

	/* A, before any network: contacts, unread, the group, the outbox. */
	assert_int_equal(cairn_open(w->a, PASS, &a), 0);
	sql(a_db, "SELECT length(sealed) FROM keyslot", &slot);
	assert_int_equal(slot, 144); /* rewritten with the duress slot beside it */
	assert_int_equal(cairn_contacts(a, on_contact, &x), 0);
	assert_int_equal(x.n, 1);
	assert_string_equal(x.name[0], "bob");
	assert_int_equal(x.unread[0], 2);
	read_conv(a, "bob", &s);
	assert_int_equal(count_text(&s, "hi alice"), 1);
	assert_int_equal(count_text(&s, "stored three"), 1);
	assert_int_equal(count_text(&s, "queued while the relay is down"), 1);
	read_conv(a, "team", &s);
	assert_int_equal(count_text(&s, "team: from alice"), 1);
	assert_int_equal(count_text(&s, "team: from bob"), 1);
	unsigned left = 0;
	assert_int_equal(client_outbox_count(a, NULL, &left), 0);
	assert_int_equal(left, 1);

	/* A's sync: the queued message goes out, carol's request comes in from the intake
	 * mailbox the old relay kept. */
	sync_ok(a, &r);
	assert_int_equal(client_outbox_count(a, NULL, &left), 0);
	assert_int_equal(left, 0);
	char req[CAIRN_REQUEST_ID_LEN + 1] = "";
	assert_int_equal(cairn_requests(a, on_request, req), 0);
	assert_int_equal(strlen(req), CAIRN_REQUEST_ID_LEN);
	assert_int_equal(cairn_request_accept(a, req, "carol"), 0);
	sync_ok(a, &r);

	/* B: the three envelopes stored for it by the old relay, then the queued one, each
	 * exactly once; a second sync finds nothing. */
	assert_int_equal(cairn_open(w->b, PASS, &b), 0);
	sync_ok(b, &r);
	assert_int_equal(r.received, 4);
	sync_ok(b, &r);
	assert_int_equal(r.received, 0);
	read_conv(b, "alice", &s);
	assert_int_equal(count_text(&s, "stored one"), 1);
	assert_int_equal(count_text(&s, "stored two"), 1);
	assert_int_equal(count_text(&s, "stored three"), 1);
	assert_int_equal(count_text(&s, "queued while the relay is down"), 1);

	/* The group, both ways, on the log the old relay kept. */
	uint8_t id[CAIRN_MESSAGE_ID_LEN];
	assert_int_equal(cairn_send(a, "team", (const uint8_t *)"team: after", 11, id), 0);
	sync_ok(b, &r);
	read_conv(b, "team", &s);
	assert_int_equal(count_text(&s, "team: after"), 1);
	assert_int_equal(count_text(&s, "team: from alice"), 1);
	assert_int_equal(cairn_send(b, "team", (const uint8_t *)"team: answer", 12, id), 0);
	sync_ok(a, &r);
	read_conv(a, "team", &s);
	assert_int_equal(count_text(&s, "team: answer"), 1);

	/* C, accepted: its first message reached A, and A's answer reaches C. */
	read_conv(a, "carol", &s);
	assert_int_equal(count_text(&s, "hello from carol"), 1);
	assert_int_equal(cairn_send(a, "carol", (const uint8_t *)"welcome", 7, id), 0);
	assert_int_equal(cairn_open(w->c, PASS, &c), 0);
	sync_ok(c, &r);
	read_conv(c, "alice", &s);
	assert_int_equal(count_text(&s, "welcome"), 1);
	cairn_close(c);

	/* What the previous release lacked: a timer and a file, in the upgraded homes. */
	assert_int_equal(cairn_timer_set(a, "bob", 3600), 0);
	char path[192], out[192], got[64];
	snprintf(path, sizeof(path), "%s/small.txt", w->dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("a small file after the upgrade\n", f);
	fclose(f);
	assert_int_equal(cairn_file_send(a, "bob", path, NULL, NULL, NULL), 0);
	sync_ok(b, &r);
	uint32_t secs = 0;
	assert_int_equal(cairn_timer_get(b, "alice", &secs), 0);
	assert_int_equal(secs, 3600);
	uint8_t fid[CAIRN_FILE_ID_LEN] = {0}, zero[CAIRN_FILE_ID_LEN] = {0};
	assert_int_equal(cairn_files(b, on_file, fid), 0);
	assert_memory_not_equal(fid, zero, sizeof(fid));
	snprintf(out, sizeof(out), "%s/got.txt", w->dir);
	assert_int_equal(cairn_file_get(b, fid, out, NULL, NULL), 0);
	slurp(out, got, sizeof(got));
	assert_string_equal(got, "a small file after the upgrade\n");
	cairn_close(b);
	cairn_close(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_relay_store_upgrades, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_newer_store_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_homes_upgrade_and_talk, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
