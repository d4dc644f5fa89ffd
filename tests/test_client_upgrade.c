/* SPDX-License-Identifier: MIT */
/*
 * Conversations (issue 11 item 4): homes written before ids upgrade in place on first open and
 * lose nothing; names are labels (rename); one conversation's messages are one store scope,
 * listed without touching any other's.
 *
 * The old homes are tests/fixtures/home-v1, made by the `cairn` and `cairn-relay` binaries of
 * the client as it was before (tests/fixtures/make-home-v1.sh says what they hold). Each test
 * works on a fresh copy.
 */
#define _GNU_SOURCE /* memmem */
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
#include <sodium.h>
#include <sqlite3.h>

#include "cairn/cairn.h"
#include "client.h"
#include "fixture_relay.h"
#include "records_v1.h"

#define PASS "fixture"

struct world {
	char dir[64];
	char a[96], b[96], relay[96];
	pid_t relay_pid;
};

#define FIXTURE_PORT      47311 /* where make-home-v1.sh ran the relay: the homes name it */
#define FIXTURE_PORT_LOCK "/tmp/cairn-test-port-47311.lock"

/* Held for each test: the homes name the fixture's fixed port, and make test runs this file in
 * two builds side by side. A test that starts the relay needs the port free; one that expects
 * the relay gone (test_rename) must not reach the other build's. Whichever comes second waits
 * here until the first's teardown has stopped its relay and released the lock. */
static int fixture_port_lock = -1;

static int setup(void **state)
{
	fixture_port_lock = open(FIXTURE_PORT_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (fixture_port_lock < 0 || flock(fixture_port_lock, LOCK_EX) != 0)
		return -1;
	struct world *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -1;
	strcpy(w->dir, "/tmp/cairn-upgrade-XXXXXX");
	if (mkdtemp(w->dir) == NULL)
		return -1;
	char cmd[640];
	/* git keeps no modes: the copies get the 0700/0600 the relay and the client expect. */
	snprintf(
	    cmd, sizeof(cmd),
	    "cp -r '%s/home-v1/A' '%s/home-v1/B' '%s/home-v1/relay' '%s/' && chmod -R go-rwx '%s'",
	    CAIRN_FIXTURES, CAIRN_FIXTURES, CAIRN_FIXTURES, w->dir, w->dir);
	if (system(cmd) != 0)
		return -1;
	snprintf(w->a, sizeof(w->a), "%s/A", w->dir);
	snprintf(w->b, sizeof(w->b), "%s/B", w->dir);
	snprintf(w->relay, sizeof(w->relay), "%s/relay", w->dir);
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	char cmd[128];
	if (w->relay_pid > 0) {
		kill(w->relay_pid, SIGTERM);
		waitpid(w->relay_pid, NULL, 0);
	}
	if (fixture_port_lock >= 0) {
		close(fixture_port_lock); /* the port is free again for the other build's run */
		fixture_port_lock = -1;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", w->dir);
	int rc = system(cmd);
	free(w);
	return rc == 0 ? 0 : -1;
}

/* ---- what a home shows -------------------------------------------------------------- */

#define SHOWN_MAX 16

struct shown {
	size_t n;
	struct {
		char contact[CAIRN_NAME_MAX + 1];
		int outgoing;
		char text[64];
		size_t len;
		int64_t received_at;
		uint8_t id[CAIRN_MESSAGE_ID_LEN];
	} m[SHOWN_MAX];
};

static int on_message(void *ctx, const struct cairn_message *m)
{
	struct shown *s = ctx;
	assert_true(s->n < SHOWN_MAX);
	snprintf(s->m[s->n].contact, sizeof(s->m[s->n].contact), "%s", m->contact);
	s->m[s->n].outgoing = m->outgoing;
	snprintf(s->m[s->n].text, sizeof(s->m[s->n].text), "%.*s", (int)(m->len < 63 ? m->len : 63),
	         (const char *)m->text);
	s->m[s->n].len = m->len;
	s->m[s->n].received_at = m->received_at;
	memcpy(s->m[s->n].id, m->id, CAIRN_MESSAGE_ID_LEN);
	s->n++;
	return 0;
}

struct contacts {
	size_t n;
	char name[8][CAIRN_NAME_MAX + 1];
	unsigned unread[8];
	int established[8];
};

static int on_contact(void *ctx, const struct cairn_contact *k)
{
	struct contacts *x = ctx;
	assert_true(x->n < 8);
	strcpy(x->name[x->n], k->name);
	x->unread[x->n] = k->unread;
	x->established[x->n++] = k->established;
	return 0;
}

static void list_contacts(struct cairn *c, struct contacts *x)
{
	memset(x, 0, sizeof(*x));
	assert_int_equal(cairn_contacts(c, on_contact, x), 0);
}

/* Alice's conversation with bob as the old client left it (make-home-v1.sh). */
static void check_alice_bob(const struct shown *s, const char *label)
{
	static const struct {
		int outgoing;
		const char *text;
		int sent;
	} want[] = {
	    {1, "hello bob", 1},
	    {0, "hi alice", 1},
	    {0, "second line from bob", 1},
	    {1, "are you there?", 1},
	    {1, "still here", 1},
	    {1, "queued while the relay is down", 0},
	    {1, "xxxxxxxxxxxxxxxx", 0},
	};
	assert_int_equal(s->n, 7);
	for (size_t i = 0; i < 7; i++) {
		assert_string_equal(s->m[i].contact, label);
		assert_int_equal(s->m[i].outgoing, want[i].outgoing);
		assert_int_equal(strncmp(s->m[i].text, want[i].text, strlen(want[i].text)), 0);
		assert_int_equal(s->m[i].received_at != 0, want[i].sent);
	}
	assert_int_equal(s->m[6].len, 150000);
}

/* How many outbox entries the message with id ID has. */
static unsigned outbox_of(struct cairn *c, const uint8_t *id)
{
	unsigned n = 0;
	assert_int_equal(client_outbox_count(c, id, &n), 0);
	return n;
}

#define LONG_PARTS ((150000 + APPMSG_PART_MAX - 1) / APPMSG_PART_MAX)

/* ---- the upgrade ---------------------------------------------------------------------- */

static void test_upgrade_keeps_everything(void **state)
{
	struct world *w = *state;
	struct cairn *c;
	struct contacts x;
	struct shown s = {0};
	/* Twice: the first open upgrades, the second finds the current model. */
	for (int round = 0; round < 2; round++) {
		assert_int_equal(cairn_open(w->a, PASS, &c), 0);
		list_contacts(c, &x);
		assert_int_equal(x.n, 2);
		assert_string_equal(x.name[0], "bob");
		assert_int_equal(x.unread[0], round == 0 ? 2 : 0);
		assert_int_equal(x.established[0], 1);
		assert_string_equal(x.name[1], "carol");
		assert_int_equal(x.established[1], 0);
		assert_int_equal(x.unread[1], 0);
		memset(&s, 0, sizeof(s));
		assert_int_equal(cairn_read(c, "bob", on_message, &s), 0);
		check_alice_bob(&s, "bob");
		/* The outbox kept both messages sent while the relay was down, every part. */
		assert_int_equal(outbox_of(c, s.m[5].id), 1);
		assert_int_equal(outbox_of(c, s.m[6].id), LONG_PARTS);
		assert_int_equal(outbox_of(c, s.m[4].id), 0);
		unsigned all = 0;
		assert_int_equal(client_outbox_count(c, NULL, &all), 0);
		assert_int_equal(all, 1 + LONG_PARTS);
		struct shown none = {0};
		assert_int_equal(cairn_read(c, "carol", on_message, &none), 0);
		assert_int_equal(none.n, 0);
		char number[CAIRN_SAFETY_NUMBER_LEN + 1];
		assert_int_equal(cairn_safety_number(c, "bob", number), 0);
		assert_int_equal(cairn_safety_number(c, "carol", number), CAIRN_ESTATE);
		cairn_close(c);
	}

	/* The other side: its unread count and its history. */
	assert_int_equal(cairn_open(w->b, PASS, &c), 0);
	list_contacts(c, &x);
	assert_int_equal(x.n, 1);
	assert_string_equal(x.name[0], "alice");
	assert_int_equal(x.unread[0], 2);
	memset(&s, 0, sizeof(s));
	assert_int_equal(cairn_read(c, "alice", on_message, &s), 0);
	assert_int_equal(s.n, 5);
	assert_string_equal(s.m[0].text, "hello bob");
	assert_int_equal(s.m[0].outgoing, 0);
	assert_string_equal(s.m[2].text, "second line from bob");
	assert_int_equal(s.m[2].outgoing, 1);
	assert_string_equal(s.m[4].text, "still here");
	list_contacts(c, &x);
	assert_int_equal(x.unread[0], 0);
	cairn_close(c);
}

/* Runs SQL on a home's store file directly (what a damaged or tampered disk could hold). */
static void raw_sql(const char *home, const char *sql, int *out)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/cairn.db", home);
	sqlite3 *db;
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	int src = sqlite3_step(st);
	assert_true(src == SQLITE_ROW || src == SQLITE_DONE);
	if (out != NULL)
		*out = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* An upgrade that fails half-way (here: the outbox, rewritten last, cannot be written) leaves
 * the home as it was; the next open upgrades it whole. */
static void test_upgrade_all_or_nothing(void **state)
{
	struct world *w = *state;
	struct cairn *c;
	int n = -1;
	raw_sql(w->a,
	        "CREATE TRIGGER no_outbox BEFORE UPDATE ON records WHEN NEW.kind = 4"
	        " BEGIN SELECT RAISE(ABORT, 'full'); END",
	        NULL);
	assert_int_equal(cairn_open(w->a, PASS, &c), CAIRN_EIO);
	assert_null(c);
	raw_sql(w->a, "SELECT count(*) FROM records WHERE kind IN (6, 7, 8)", &n);
	assert_int_equal(n, 0); /* no conversation, no name, no model record */
	raw_sql(w->a, "SELECT count(*) FROM records WHERE kind = 3 AND scope IS NULL", &n);
	assert_int_equal(n, 7); /* every message still in the old layout */
	raw_sql(w->a, "DROP TRIGGER no_outbox", NULL);
	assert_int_equal(cairn_open(w->a, PASS, &c), 0);
	struct contacts x;
	struct shown s = {0};
	list_contacts(c, &x);
	assert_int_equal(x.n, 2);
	assert_int_equal(x.unread[0], 2);
	assert_int_equal(cairn_read(c, "bob", on_message, &s), 0);
	check_alice_bob(&s, "bob");
	assert_int_equal(outbox_of(c, s.m[6].id), LONG_PARTS);
	cairn_close(c);
}

/* Two processes opening the same old home at once: one upgrades, the other waits and finds
 * it done; nothing is doubled. */
static void test_upgrade_two_at_once(void **state)
{
	struct world *w = *state;
	pid_t pid[2];
	for (int i = 0; i < 2; i++) {
		pid[i] = fork();
		assert_true(pid[i] >= 0);
		if (pid[i] == 0) {
			struct cairn *c;
			_exit(cairn_open(w->a, PASS, &c) == 0 ? (cairn_close(c), 0) : 1);
		}
	}
	for (int i = 0; i < 2; i++) {
		int status = 0;
		assert_int_equal(waitpid(pid[i], &status, 0), pid[i]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	int n = -1;
	raw_sql(w->a, "SELECT count(*) FROM records WHERE kind = 2", &n);
	assert_int_equal(n, 2);
	raw_sql(w->a, "SELECT count(*) FROM records WHERE kind = 3", &n);
	assert_int_equal(n, 7);
	raw_sql(w->a, "SELECT count(*) FROM records WHERE kind = 4", &n);
	assert_int_equal(n, 1 + LONG_PARTS);
	raw_sql(w->a, "SELECT count(*) FROM records WHERE kind IN (6, 7)", &n);
	assert_int_equal(n, 4);
	struct cairn *c;
	struct shown s = {0};
	assert_int_equal(cairn_open(w->a, PASS, &c), 0);
	assert_int_equal(cairn_read(c, "bob", on_message, &s), 0);
	check_alice_bob(&s, "bob");
	cairn_close(c);
}

/* What is on disk after the upgrade: schema 2, every message in a scope, nothing plaintext. */
static void test_upgrade_on_disk(void **state)
{
	struct world *w = *state;
	struct cairn *c;
	assert_int_equal(cairn_open(w->a, PASS, &c), 0);
	cairn_close(c);
	char path[128];
	snprintf(path, sizeof(path), "%s/cairn.db", w->a);
	sqlite3 *db;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_stmt *st;
	assert_int_equal(
	    sqlite3_prepare_v2(db,
	                       "SELECT (SELECT user_version FROM pragma_user_version),"
	                       " (SELECT count(*) FROM records WHERE kind = 3),"
	                       " (SELECT count(*) FROM records WHERE kind = 3 AND"
	                       "  length(scope) = 32),"
	                       " (SELECT count(DISTINCT scope) FROM records WHERE kind = 3),"
	                       " (SELECT count(*) FROM records WHERE kind IN (6, 7))",
	                       -1, &st, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 2);
	assert_int_equal(sqlite3_column_int(st, 1), 7);
	assert_int_equal(sqlite3_column_int(st, 2), 7);
	assert_int_equal(sqlite3_column_int(st, 3), 1);
	assert_int_equal(sqlite3_column_int(st, 4), 4); /* two conversations, two names */
	sqlite3_finalize(st);
	sqlite3_close(db);
	/* The file holds no name any more than it did. */
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	static uint8_t buf[1 << 20];
	size_t n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	assert_null(memmem(buf, n, "carol", 5));
	assert_null(memmem(buf, n, "hello bob", 9));
}

/* A message half received (one part of two) upgrades with its part, under its conversation. */
static void test_upgrade_keeps_parts(void **state)
{
	struct world *w = *state;
	uint8_t id[APPMSG_ID_LEN], raw[256], data[40];
	size_t rawlen = 0;
	randombytes_buf(id, sizeof(id));
	memset(data, 'p', sizeof(data));
	struct appmsg am = {.kind = APPMSG_TEXT,
	                    .sent_at = 1700000000,
	                    .part_index = 0,
	                    .part_count = 2,
	                    .data = data,
	                    .data_len = sizeof(data)};
	memcpy(am.id, id, sizeof(id));
	assert_int_equal(appmsg_encode(&am, raw, sizeof(raw), &rawlen), 0);
	/* Written the way the old client stored a part: keyed by the contact's name. */
	struct cstate *st;
	uint8_t key[RECORD_V1_KEY_MAX];
	assert_int_equal(cstate_open(w->b, PASS, &st), 0);
	size_t klen = part_v1_key(key, "alice", id, 0);
	assert_int_equal(cstate_put(st, REC_PART, key, klen, raw, rawlen), 0);
	cstate_close(st);

	struct cairn *c;
	struct contact k;
	assert_int_equal(cairn_open(w->b, PASS, &c), 0);
	assert_int_equal(client_load_contact(c, "alice", &k), 0);
	uint8_t nkey[RECORD_KEY_MAX], *v = NULL;
	size_t nklen = part_key(nkey, k.conv, id, 0), vlen = 0;
	assert_int_equal(cstate_get(c->st, REC_PART, nkey, nklen, &v, &vlen), 0);
	assert_int_equal(vlen, rawlen);
	assert_memory_equal(v, raw, rawlen);
	cstate_free_value(v, vlen);
	assert_int_equal(cstate_get(c->st, REC_PART, key, klen, &v, &vlen), CAIRN_ENOTFOUND);
	contact_wipe(&k);
	cairn_close(c);
}

/* ---- the upgraded homes go on talking -------------------------------------------------- */

static int relay_up(void)
{
	return fixture_relay_up(FIXTURE_PORT);
}

/* Starts the fixture's relay again, with its key and store, on its port (setup holds the
 * port's lock). */
static void start_relay(struct world *w)
{
	assert_false(relay_up()); /* the port must be ours */
	char conf[128];
	snprintf(conf, sizeof(conf), "%s/test.conf", w->dir);
	FILE *f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "[relay]\nlisten = 127.0.0.1:%d\nlog_level = error\n", FIXTURE_PORT);
	fclose(f);
	w->relay_pid = fork();
	assert_true(w->relay_pid >= 0);
	if (w->relay_pid == 0) {
		execl(CAIRN_RELAY_BIN, CAIRN_RELAY_BIN, "run", "--data", w->relay, "--config", conf,
		      (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500 && !relay_up(); i++)
		usleep(10000);
	assert_true(relay_up());
}

/* Everything the old client had queued goes out from the upgraded home, the other upgraded
 * home receives it on the sessions and mailboxes the old client made, and answers. */
static void test_upgrade_then_talk(void **state)
{
	struct world *w = *state;
	start_relay(w);
	struct cairn *a, *b;
	struct cairn_sync_result r;
	struct shown s = {0};
	struct contacts x;
	assert_int_equal(cairn_open(w->a, PASS, &a), 0);
	assert_int_equal(cairn_rename(a, "bob", "robert"), 0);
	assert_int_equal(cairn_sync(a, &r, NULL, NULL), 0);
	unsigned left = 9;
	assert_int_equal(client_outbox_count(a, NULL, &left), 0);
	assert_int_equal(left, 0);

	assert_int_equal(cairn_open(w->b, PASS, &b), 0);
	assert_int_equal(cairn_sync(b, &r, NULL, NULL), 0);
	assert_int_equal(r.received, 2);
	list_contacts(b, &x);
	assert_int_equal(x.unread[0], 4);
	assert_int_equal(cairn_read(b, "alice", on_message, &s), 0);
	assert_int_equal(s.n, 7);
	assert_string_equal(s.m[5].text, "queued while the relay is down");
	assert_int_equal(s.m[6].len, 150000);
	assert_int_equal(s.m[6].outgoing, 0);
	uint8_t id[CAIRN_MESSAGE_ID_LEN];
	assert_int_equal(cairn_send(b, "alice", (const uint8_t *)"got both", 8, id), 0);
	cairn_close(b);

	assert_int_equal(cairn_sync(a, &r, NULL, NULL), 0);
	assert_int_equal(r.received, 1);
	memset(&s, 0, sizeof(s));
	assert_int_equal(cairn_read(a, "robert", on_message, &s), 0);
	assert_int_equal(s.n, 8);
	assert_string_equal(s.m[7].text, "got both");
	assert_string_equal(s.m[7].contact, "robert");
	assert_int_equal(s.m[7].outgoing, 0);
	assert_true(s.m[5].received_at != 0); /* sent now */
	list_contacts(a, &x);
	assert_int_equal(x.unread[0], 0);
	cairn_close(a);
}

/* ---- names are labels ------------------------------------------------------------------ */

static void test_rename(void **state)
{
	struct world *w = *state;
	struct cairn *c;
	struct contacts x;
	struct shown s = {0};
	assert_int_equal(cairn_open(w->a, PASS, &c), 0);
	assert_int_equal(cairn_rename(c, "bob", "carol"), CAIRN_EEXIST);
	assert_int_equal(cairn_rename(c, "nobody", "dave"), CAIRN_ENOTFOUND);
	assert_int_equal(cairn_rename(c, "bob", ""), CAIRN_EINVAL);
	assert_int_equal(cairn_rename(c, "bob", "bob"), 0);
	assert_int_equal(cairn_rename(c, "bob", "robert"), 0);
	/* History, unread count and outbox followed. */
	list_contacts(c, &x);
	assert_int_equal(x.n, 2);
	assert_string_equal(x.name[0], "robert");
	assert_int_equal(x.unread[0], 2);
	assert_int_equal(cairn_read(c, "bob", on_message, &s), CAIRN_ENOTFOUND);
	assert_int_equal(cairn_read(c, "robert", on_message, &s), 0);
	check_alice_bob(&s, "robert");
	assert_int_equal(outbox_of(c, s.m[6].id), LONG_PARTS);
	/* The old name is free again; the new one sends on the same session. */
	assert_int_equal(cairn_rename(c, "carol", "bob"), 0);
	uint8_t id[CAIRN_MESSAGE_ID_LEN];
	cairn_set_timeout(c, 1000);
	assert_false(relay_up());
	int rc = cairn_send(c, "robert", (const uint8_t *)"after the rename", 16, id);
	assert_true(rc == CAIRN_ECONNECT || rc == CAIRN_ETIMEDOUT); /* the relay is gone */
	assert_int_equal(outbox_of(c, id), 1);
	cairn_close(c);

	assert_int_equal(cairn_open(w->a, PASS, &c), 0);
	memset(&s, 0, sizeof(s));
	assert_int_equal(cairn_read(c, "robert", on_message, &s), 0);
	assert_int_equal(s.n, 8);
	assert_string_equal(s.m[7].text, "after the rename");
	struct shown none = {0};
	assert_int_equal(cairn_read(c, "bob", on_message, &none), 0);
	assert_int_equal(none.n, 0); /* carol's (empty) conversation under her new name */
	list_contacts(c, &x);
	assert_string_equal(x.name[1], "bob");
	assert_int_equal(x.established[1], 0);
	cairn_close(c);
}

/* ---- scopes --------------------------------------------------------------------------- */

struct seen {
	size_t n;
	char v[8][8];
};

static int on_value(void *ctx, const uint8_t *v, size_t vlen)
{
	struct seen *s = ctx;
	assert_true(s->n < 8 && vlen < 8);
	memcpy(s->v[s->n], v, vlen);
	s->v[s->n++][vlen] = '\0';
	return 0;
}

static void test_scope_lists_only_its_own(void **state)
{
	struct world *w = *state;
	char dir[128];
	snprintf(dir, sizeof(dir), "%s/S", w->dir);
	setenv("CAIRN_PWHASH_FAST", "1", 1);
	struct cstate *st;
	assert_int_equal(cstate_create(dir, "s", CSTATE_KDF_INTERACTIVE, &st), 0);
	static const char *const vals[] = {"a1", "b1", "a2", "n1", "b2", "a3"};
	for (int i = 0; i < 6; i++) {
		const char *scope = vals[i][0] == 'n' ? NULL : vals[i][0] == 'a' ? "AAAA" : "BBBB";
		assert_int_equal(
		    cstate_put_scoped(st, 3, vals[i], 2, scope, scope ? 4 : 0, vals[i], 2), 0);
	}
	struct seen s = {0};
	assert_int_equal(cstate_list_scope(st, 3, "AAAA", 4, on_value, &s), 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.v[0], "a1");
	assert_string_equal(s.v[1], "a2");
	assert_string_equal(s.v[2], "a3");
	memset(&s, 0, sizeof(s));
	assert_int_equal(cstate_list_scope(st, 3, "BBBB", 4, on_value, &s), 0);
	assert_int_equal(s.n, 2);
	memset(&s, 0, sizeof(s));
	assert_int_equal(cstate_list_scope(st, 4, "AAAA", 4, on_value, &s), 0);
	assert_int_equal(s.n, 0); /* scopes are per kind */
	memset(&s, 0, sizeof(s));
	assert_int_equal(cstate_list(st, 3, on_value, &s), 0);
	assert_int_equal(s.n, 6);
	assert_string_equal(s.v[3], "n1");
	/* A replace keeps the order and may move the record to another scope. */
	assert_int_equal(cstate_put_scoped(st, 3, "a2", 2, "BBBB", 4, "a2", 2), 0);
	memset(&s, 0, sizeof(s));
	assert_int_equal(cstate_list_scope(st, 3, "BBBB", 4, on_value, &s), 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.v[1], "a2");
	cstate_close(st);

	/* The listing reads only the scope's rows (the plan uses the scope index), and a row
	 * moved to another scope on disk no longer opens. */
	char path[160];
	snprintf(path, sizeof(path), "%s/cairn.db", dir);
	sqlite3 *db;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_stmt *q;
	assert_int_equal(
	    sqlite3_prepare_v2(db,
	                       "EXPLAIN QUERY PLAN SELECT lookup, seq, scope, value FROM"
	                       " records WHERE kind = 3 AND"
	                       " scope = x'00' AND scope IS NOT NULL ORDER BY seq",
	                       -1, &q, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_non_null(strstr((const char *)sqlite3_column_text(q, 3), "records_scope"));
	sqlite3_finalize(q);
	assert_int_equal(sqlite3_exec(db,
	                              "UPDATE records SET scope = (SELECT scope FROM records WHERE"
	                              " kind = 3 AND seq = 1) WHERE kind = 3 AND seq = 2",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(cstate_open(dir, "s", &st), 0);
	memset(&s, 0, sizeof(s));
	assert_int_equal(cstate_list_scope(st, 3, "AAAA", 4, on_value, &s), CAIRN_ECORRUPT);
	uint8_t *v = NULL;
	size_t vlen = 0;
	assert_int_equal(cstate_get(st, 3, "b1", 2, &v, &vlen), CAIRN_ECORRUPT);
	assert_int_equal(cstate_get(st, 3, "a1", 2, &v, &vlen), 0);
	cstate_free_value(v, vlen);
	cstate_close(st);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_upgrade_keeps_everything, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_upgrade_on_disk, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_upgrade_keeps_parts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_upgrade_all_or_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_upgrade_two_at_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rename, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_upgrade_then_talk, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_scope_lists_only_its_own, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
