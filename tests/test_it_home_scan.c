/* SPDX-License-Identifier: MIT */
/*
 * Nothing in a home is plaintext, after heavy use through the real `cairn` and `cairn-relay`:
 * three homes exchange 1:1 messages, make a group and talk in it, rename a contact and a group;
 * then every file under each home, and the temporary directory the clients were given (TMPDIR),
 * is scanned for every plaintext the test knows: message texts, contact and group names, the
 * relay's address (text) and key (raw and hex), the invite strings, the mailbox and group log
 * ids the relay holds (raw and hex). The temporary directory
 * must be left empty. Needles are at least 12 bytes, so random ciphertext cannot match one.
 */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>
#include <sqlite3.h>

#include "cairn/address.h"
#include "cliproc.h"
#include "relayproc.h"

#define NEEDLES_MAX 256
#define MESSAGES    24

struct needle {
	uint8_t *p;
	size_t len;
	char what[64];
};

struct world {
	char dir[64], tmp[96], home[3][96];
	struct relayproc relay;
	char addr[CAIRN_ADDRESS_MAX + 1];
	struct needle n[NEEDLES_MAX];
	size_t nn;
	size_t files, hits;
};

static struct world w;

static void need(const void *p, size_t len, const char *what)
{
	assert_true(w.nn < NEEDLES_MAX);
	assert_true(len >= 12);
	w.n[w.nn].p = malloc(len);
	assert_non_null(w.n[w.nn].p);
	memcpy(w.n[w.nn].p, p, len);
	w.n[w.nn].len = len;
	snprintf(w.n[w.nn].what, sizeof(w.n[w.nn].what), "%s", what);
	w.nn++;
}

static void need_str(const char *s, const char *what)
{
	need(s, strlen(s), what);
}

static int setup(void **state)
{
	memset(&w, 0, sizeof(w));
	strcpy(w.dir, "/tmp/cairn-scan-XXXXXX");
	if (mkdtemp(w.dir) == NULL)
		return -1;
	snprintf(w.tmp, sizeof(w.tmp), "%s/tmp", w.dir);
	if (mkdir(w.tmp, 0700) != 0)
		return -1;
	/* Every client started from here inherits it. */
	setenv("TMPDIR", w.tmp, 1);
	for (int i = 0; i < 3; i++)
		snprintf(w.home[i], sizeof(w.home[i]), "%s/home%d", w.dir, i);
	if (relayproc_init(&w.relay, NULL) != 0 || relayproc_start(&w.relay) != 0 ||
	    relayproc_address(&w.relay, "127.0.0.1", w.addr, sizeof(w.addr)) != 0)
		return -1;
	*state = &w;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	relayproc_cleanup(&w.relay);
	test_rm_tree(w.dir);
	for (size_t i = 0; i < w.nn; i++)
		free(w.n[i].p);
	return 0;
}

/* Makes A (who calls the other AN) and B (who calls A BN) contacts. */
static void befriend(const char *a, const char *b, const char *an, const char *bn)
{
	struct res inv =
	    cli_expect(0, CALL(.home = a), ARGS("invite", "--relay", w.addr, "--name", an));
	inv.out[strcspn(inv.out, "\n")] = '\0';
	need_str(inv.out, "an invite");
	cli_check(0, CALL(.home = b), ARGS("accept", inv.out, "--name", bn));
	res_free(&inv);
	cli_check(-1, CALL(.home = b), ARGS("send", bn, "first words from b to a, 0x5eed"));
	need_str("first words from b to a, 0x5eed", "a message");
	cli_check(-1, CALL(.home = a), ARGS("sync"));
	cli_check(-1, CALL(.home = a), ARGS("send", an, "first words from a to b, 0x5eed"));
	need_str("first words from a to b, 0x5eed", "a message");
	cli_check(-1, CALL(.home = b), ARGS("sync"));
}

/* Every id of SQL (one BLOB column) in the relay's store as needles, raw and hex: the mailbox
 * ids and group log ids the homes hold (sealed). Returns how many ids. */
static size_t relay_ids(const char *sql, const char *what)
{
	char path[400];
	snprintf(path, sizeof(path), "%s/data/relay.db", w.relay.dir);
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	size_t n = 0;
	while (sqlite3_step(st) == SQLITE_ROW && w.nn + 2 <= NEEDLES_MAX) {
		const void *id = sqlite3_column_blob(st, 0);
		size_t len = (size_t)sqlite3_column_bytes(st, 0);
		char hex[2 * 64 + 1];
		if (id == NULL || len < 12 || len > 64)
			continue;
		need(id, len, what);
		sodium_bin2hex(hex, sizeof(hex), id, len);
		need_str(hex, what);
		n++;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* nftw: every regular file under the tree, searched for every needle. */
static int scan_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type != FTW_F || !S_ISREG(sb->st_mode))
		return 0;
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	uint8_t *buf = malloc((size_t)sb->st_size + 1);
	assert_non_null(buf);
	size_t len = fread(buf, 1, (size_t)sb->st_size, fp);
	fclose(fp);
	w.files++;
	for (size_t i = 0; i < w.nn; i++)
		for (size_t at = 0; at + w.n[i].len <= len; at++)
			if (buf[at] == w.n[i].p[0] && memcmp(buf + at, w.n[i].p, w.n[i].len) == 0) {
				fprintf(stderr, "PLAINTEXT: %s in %s at %zu\n", w.n[i].what, path,
				        at);
				w.hits++;
				break;
			}
	free(buf);
	return 0;
}

static void scan(const char *dir)
{
	assert_int_equal(nftw(dir, scan_one, 16, FTW_PHYS), 0);
}

static void test_heavy_use_leaves_no_plaintext(void **state)
{
	(void)state;
	const char *a = w.home[0], *b = w.home[1], *c = w.home[2];
	struct cairn_address ra;
	char hex[2 * CAIRN_KEY_LEN + 1];
	assert_int_equal(cairn_address_parse(w.addr, &ra), 0);
	sodium_bin2hex(hex, sizeof(hex), ra.key, sizeof(ra.key));
	need_str(w.addr, "the relay's address");
	need(ra.key, sizeof(ra.key), "the relay's key (raw)");
	need_str(hex, "the relay's key (hex)");

	for (int i = 0; i < 3; i++)
		cli_check(0, CALL(.home = w.home[i]), ARGS("init"));
	befriend(a, b, "bob-the-contact-name", "alice-the-contact-name");
	befriend(a, c, "carol-the-contact-name", "alice-the-second-name");
	need_str("bob-the-contact-name", "a contact's name");
	need_str("alice-the-contact-name", "a contact's name");
	need_str("carol-the-contact-name", "a contact's name");
	need_str("alice-the-second-name", "a contact's name");

	/* Many messages both ways. */
	for (int i = 0; i < MESSAGES; i++) {
		char text[96];
		snprintf(text, sizeof(text), "evidence message number %03d, 0x5eed", i);
		cli_check(
		    -1, CALL(.home = i % 2 ? a : b),
		    ARGS("send", i % 2 ? "bob-the-contact-name" : "alice-the-contact-name", text));
		if (i < 8 || i % 5 == 0)
			need_str(text, "a message");
	}
	cli_check(-1, CALL(.home = a), ARGS("sync"));
	cli_check(-1, CALL(.home = b), ARGS("sync"));

	/* A group of three, a message in it. */
	cli_check(0, CALL(.home = a),
	          ARGS("group", "create", "the-group-name-0x5eed", "--relay", w.addr));
	need_str("the-group-name-0x5eed", "a group's name");
	cli_check(-1, CALL(.home = a),
	          ARGS("group", "add", "the-group-name-0x5eed", "bob-the-contact-name",
	               "carol-the-contact-name"));
	cli_check(-1, CALL(.home = b), ARGS("sync"));
	cli_check(-1, CALL(.home = c), ARGS("sync"));
	cli_check(-1, CALL(.home = a), ARGS("sync"));
	cli_check(-1, CALL(.home = a),
	          ARGS("send", "the-group-name-0x5eed", "a word to the whole group, 0x5eed"));
	need_str("a word to the whole group, 0x5eed", "a group message");
	cli_check(-1, CALL(.home = b), ARGS("sync"));
	cli_check(-1, CALL(.home = c), ARGS("sync"));

	/* Renames: the new names are needles too, and the old ones stay needles. */
	cli_check(0, CALL(.home = a),
	          ARGS("rename", "bob-the-contact-name", "robert-renamed-0x5eed"));
	need_str("robert-renamed-0x5eed", "a new name");
	cli_check(-1, CALL(.home = a),
	          ARGS("send", "robert-renamed-0x5eed", "after the rename 0x5eed"));
	need_str("after the rename 0x5eed", "a message");
	cli_check(-1, CALL(.home = b), ARGS("sync"));

	/* What the receivers show is what was sent (the use above really happened). */
	struct convo cv = read_convo(b, "alice-the-contact-name");
	assert_int_equal(count_text(&cv, 0, "after the rename 0x5eed"), 1);
	assert_int_equal(count_text(&cv, 0, "evidence message number 001, 0x5eed"), 1);
	convo_free(&cv);
	struct res r = cli_expect(0, CALL(.home = c), ARGS("read", "the-group-name-0x5eed"));
	assert_non_null(strstr(r.out, "a word to the whole group, 0x5eed"));
	res_free(&r);

	/* While a client has the home open (its WAL and shared memory beside the store), with a
	 * message arriving. */
	int out = -1;
	pid_t listener = cli_spawn_out(CALL(.home = b), ARGS("listen"), &out, NULL);
	cli_check(-1, CALL(.home = a),
	          ARGS("send", "robert-renamed-0x5eed", "while listening 0x5eed"));
	need_str("while listening 0x5eed", "a message");
	char got[4096];
	size_t len = 0;
	got[0] = '\0';
	while (len + 1 < sizeof(got)) {
		struct pollfd pfd = {.fd = out, .events = POLLIN};
		if (poll(&pfd, 1, 60000) != 1)
			break;
		ssize_t n = read(out, got + len, sizeof(got) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		got[len] = '\0';
		if (strstr(got, "while listening") != NULL)
			break;
	}
	assert_non_null(strstr(got, "while listening"));
	scan(b);
	size_t open_files = w.files;
	kill(listener, SIGTERM);
	(void)wait_status(listener);
	close(out);
	assert_true(open_files >= 2); /* cairn.db and its -wal at least */

	/* Files (PROTOCOL.md 11): one sent 1:1 and fetched, one sent to the group and left
	 * offered; their names and runs of their bytes are needles, and HOME/files/ (the spools)
	 * is scanned with the rest. The originals and the fetched copy live outside the homes. */
	char outside[160], in1[200], in2[200], got1[200];
	snprintf(outside, sizeof(outside), "%s/outside", w.dir);
	assert_int_equal(mkdir(outside, 0700), 0);
	snprintf(in1, sizeof(in1), "%s/testimony-0x5eed.txt", outside);
	snprintf(in2, sizeof(in2), "%s/group-minutes-0x5eed.txt", outside);
	snprintf(got1, sizeof(got1), "%s/fetched", outside);
	static const char *const runs[2] = {
	    "the file's own words, written in the clear 0x5eed ",
	    "the group file's own words, also in the clear 0x5eed "};
	const char *inputs[2] = {in1, in2};
	for (int f = 0; f < 2; f++) {
		FILE *fp = fopen(inputs[f], "wb");
		assert_non_null(fp);
		for (int i = 0; i < 4000; i++) /* about 200 KiB: several chunks */
			fputs(runs[f], fp);
		fclose(fp);
		need_str(runs[f], "a file's content");
	}
	need_str("testimony-0x5eed.txt", "a file's name");
	need_str("group-minutes-0x5eed.txt", "a file's name");
	cli_check(0, CALL(.home = a), ARGS("send", "robert-renamed-0x5eed", "--file", in1));
	cli_check(0, CALL(.home = a), ARGS("send", "the-group-name-0x5eed", "--file", in2));
	cli_check(-1, CALL(.home = b), ARGS("sync"));
	struct res fl = cli_expect(0, CALL(.home = b), ARGS("files", "--json"));
	const char *at = strstr(fl.out, "testimony-0x5eed.txt");
	assert_non_null(at);
	while (at > fl.out && at[-1] != '\n')
		at--;
	char id[33];
	assert_int_equal(sscanf(at, "{\"id\":\"%32[0-9a-f]\"", id), 1);
	res_free(&fl);
	cli_check(0, CALL(.home = b), ARGS("files", "get", id, "--output", got1, "--yes"));
	struct stat fst;
	assert_int_equal(stat(got1, &fst), 0);
	assert_int_equal(fst.st_size, 4000 * strlen(runs[0]));
	cli_check(-1, CALL(.home = c), ARGS("sync"));
	/* A send that cannot reach the relay keeps its spool for the next run: scanned too. The
	 * sender retries for minutes, so once its spool is whole (13 chunks: PROTOCOL.md 11.1) it
	 * is killed, as a seized phone's app would be. */
	assert_int_equal(relayproc_stop(&w.relay, SIGTERM), 0);
	int sout = -1;
	pid_t sender = cli_spawn_out(
	    CALL(.home = a), ARGS("send", "robert-renamed-0x5eed", "--file", in1), &sout, NULL);
	char spools[200];
	snprintf(spools, sizeof(spools), "%s/files", a);
	bool whole = false;
	for (int t = 0; t < 600 && !whole; t++) {
		DIR *sd = opendir(spools);
		for (struct dirent *de; sd != NULL && (de = readdir(sd)) != NULL;) {
			char sp[512];
			struct stat sst;
			snprintf(sp, sizeof(sp), "%s/%s", spools, de->d_name);
			whole |= de->d_name[0] != '.' && stat(sp, &sst) == 0 &&
			         sst.st_size == 13 * 16384;
		}
		if (sd != NULL)
			closedir(sd);
		if (!whole)
			(void)poll(NULL, 0, 100);
	}
	kill(sender, SIGKILL);
	(void)wait_status(sender);
	close(sout);
	assert_true(whole);

	/* INTAKE: an intake address (cairn intake create) and a request through it belong here
	 * too. */

	/* The mailboxes and the group's log, as the relay knows them. */
	size_t ids = relay_ids("SELECT recipient_id FROM mailboxes", "a mailbox id") +
	             relay_ids("SELECT sender_id FROM mailboxes", "a mailbox's sender id") +
	             relay_ids("SELECT log_id FROM logs", "a group log id");
	assert_true(ids >= 6);

	for (int i = 0; i < 3; i++)
		scan(w.home[i]);
	scan(w.tmp);
	fprintf(stderr, "# scanned %zu files for %zu plaintexts: %zu found\n", w.files, w.nn,
	        w.hits);
	assert_true(w.files >= 3);
	assert_int_equal(w.hits, 0);

	/* The scan works: a file holding one needle is found. */
	char p[160];
	snprintf(p, sizeof(p), "%s/control", w.tmp);
	FILE *fp = fopen(p, "wb");
	assert_non_null(fp);
	fwrite(ra.key, 1, sizeof(ra.key), fp);
	fclose(fp);
	scan(w.tmp);
	assert_int_equal(w.hits, 1);
	assert_int_equal(unlink(p), 0);

	/* Nothing was left in the temporary directory. */
	DIR *d = opendir(w.tmp);
	assert_non_null(d);
	struct dirent *e;
	int left = 0;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
			fprintf(stderr, "left in TMPDIR: %s\n", e->d_name);
			left++;
		}
	closedir(d);
	assert_int_equal(left, 0);
}

int main(void)
{
	if (sodium_init() < 0 || find_cli() != 0) {
		fprintf(stderr, "cannot find the cairn command\n");
		return 1;
	}
	setenv("CAIRN_PASSPHRASE", CLI_PASS, 1);
	setenv("CAIRN_PWHASH_FAST", "1", 1);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_heavy_use_leaves_no_plaintext, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
