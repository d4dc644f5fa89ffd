/* SPDX-License-Identifier: MIT */
/*
 * The seized device in-process (client/state_slots.c, client/wipe.c): each passphrase opens its
 * own slot, the duress passphrase wipes the home and opens a new, empty one as any open does,
 * a home with a duress passphrase looks on disk like one without, a wipe interrupted right
 * after its key step leaves a store no passphrase opens (the WAL's copies of the slot too), and
 * a whole wipe leaves nothing of the client behind.
 */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>
#include <sqlite3.h>

#include "cairn/cairn.h"
#include "client.h"
#include "state.h"

#define PASS   "correct horse battery staple"
#define DURESS "a quite different sentence"
#define MARKER "CAIRN-WIPE-MARKER"

struct fixture {
	char root[64];
	char home[96];
};

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -1;
	strcpy(f->root, "/tmp/cairn-wipe-XXXXXX");
	if (mkdtemp(f->root) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->home, sizeof(f->home), "%s/home", f->root);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	(void)nftw(f->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* A home under DIR with the marker record, through the public API and the store. */
static void make_home(const char *dir, uint8_t pk[32])
{
	struct cairn *c = NULL;
	assert_int_equal(cairn_init_kdf(dir, PASS, CAIRN_KDF_INTERACTIVE), 0);
	assert_int_equal(cairn_open(dir, PASS, &c), 0);
	assert_int_equal(cstate_put(c->st, 900, "k", 1, MARKER, strlen(MARKER)), 0);
	if (pk != NULL)
		memcpy(pk, c->identity_pk, 32);
	cairn_close(c);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int has_marker(struct cairn *c)
{
	uint8_t *v = NULL;
	size_t len = 0;
	int rc = cstate_get(c->st, 900, "k", 1, &v, &len);
	cstate_free_value(v, len);
	return rc == 0;
}

static int count_contact(void *ctx, const struct cairn_contact *k)
{
	(void)k;
	(*(int *)ctx)++;
	return 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static int exists(const char *path)
{
	struct stat sb;
	return lstat(path, &sb) == 0;
}

/* One SQL integer from the store in DIR, read through SQLite directly. */
static int64_t raw_int(const char *dir, const char *sql)
{
	char path[160];
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	snprintf(path, sizeof(path), "%s/%s", dir, CSTATE_FILE);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	int64_t v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

static void test_each_passphrase_opens_its_slot(void **state)
{
	struct fixture *f = *state;
	struct cairn *c = NULL;
	make_home(f->home, NULL);
	assert_int_equal(cairn_open(f->home, PASS, &c), 0);
	assert_int_equal(cairn_duress_set(c, PASS), CAIRN_EINVAL); /* the real one */
	assert_int_equal(cairn_duress_set(c, ""), CAIRN_EINVAL);
	assert_int_equal(cairn_duress_set(c, DURESS), 0);
	/* The other way round: the real passphrase cannot become the duress one. */
	assert_int_equal(cstate_rekey(c->st, DURESS), CAIRN_EINVAL);
	cairn_close(c);

	assert_int_equal(cairn_open(f->home, "wrong", &c), CAIRN_EPASSPHRASE);
	assert_null(c);
	assert_int_equal(cairn_open(f->home, PASS, &c), 0);
	assert_true(has_marker(c));
	/* A new passphrase keeps the duress one working (they share the salt). */
	assert_int_equal(cstate_rekey(c->st, "the new one"), 0);
	cairn_close(c);
	assert_int_equal(cairn_open(f->home, PASS, &c), CAIRN_EPASSPHRASE);
	assert_int_equal(cairn_open(f->home, "the new one", &c), 0);
	assert_true(has_marker(c));
	/* Cleared: the duress passphrase is now just a wrong one, and changes nothing. */
	assert_int_equal(cairn_duress_clear(c), 0);
	cairn_close(c);
	assert_int_equal(cairn_open(f->home, DURESS, &c), CAIRN_EPASSPHRASE);
	assert_int_equal(cairn_open(f->home, "the new one", &c), 0);
	assert_true(has_marker(c));
	cairn_close(c);
}

static void test_duress_wipes_and_opens_empty(void **state)
{
	struct fixture *f = *state;
	struct cairn *c = NULL;
	uint8_t real_pk[32], duress_pk[32];
	char p[192];
	make_home(f->home, real_pk);
	snprintf(p, sizeof(p), "%s/files", f->home);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/files/spool", f->home);
	write_file(p, MARKER);
	double t0 = now_s();
	assert_int_equal(cairn_open(f->home, PASS, &c), 0);
	double normal = now_s() - t0;
	assert_int_equal(cairn_duress_set(c, DURESS), 0);
	cairn_close(c);

	/* Opens as any open does: 0, a usable client with an identity and nothing else. */
	t0 = now_s();
	assert_int_equal(cairn_open(f->home, DURESS, &c), 0);
	fprintf(stderr, "# open: %.3f s with the passphrase, %.3f s with the duress one\n", normal,
	        now_s() - t0);
	assert_non_null(c);
	memcpy(duress_pk, c->identity_pk, 32);
	assert_memory_not_equal(duress_pk, real_pk, 32);
	assert_false(has_marker(c));
	int n = 0;
	assert_int_equal(cairn_contacts(c, count_contact, &n), 0);
	assert_int_equal(n, 0);
	cairn_close(c);
	assert_false(exists(p)); /* the spool went with the home */

	/* The real home is gone; the new one is an ordinary home under the duress passphrase,
	 * which does not wipe it again. */
	assert_int_equal(cairn_open(f->home, PASS, &c), CAIRN_EPASSPHRASE);
	assert_int_equal(cairn_open(f->home, DURESS, &c), 0);
	assert_memory_equal(c->identity_pk, duress_pk, 32);
	cairn_close(c);
	/* Its slots are what a new home's are. */
	assert_int_equal(raw_int(f->home, "SELECT length(sealed) FROM keyslot"), 2 * 72);
}

/* The names and sizes of the files in DIR, sorted, as one string. */
static void listing(const char *dir, char *out, size_t cap)
{
	struct dirent **ents;
	int n = scandir(dir, &ents, NULL, alphasort);
	assert_true(n >= 0);
	out[0] = '\0';
	for (int i = 0; i < n; i++) {
		char p[512];
		struct stat sb;
		snprintf(p, sizeof(p), "%s/%s", dir, ents[i]->d_name);
		assert_int_equal(lstat(p, &sb), 0);
		if (S_ISREG(sb.st_mode)) {
			size_t len = strlen(out);
			snprintf(out + len, cap - len, "%s:%lld:%o;", ents[i]->d_name,
			         (long long)sb.st_size, (unsigned)(sb.st_mode & 07777));
		}
		free(ents[i]);
	}
	free(ents);
}

static void test_duress_home_looks_like_any(void **state)
{
	struct fixture *f = *state;
	char plain[128], duress[128], cleared[128];
	snprintf(plain, sizeof(plain), "%s/plain", f->root);
	snprintf(duress, sizeof(duress), "%s/duress", f->root);
	snprintf(cleared, sizeof(cleared), "%s/cleared", f->root);
	make_home(plain, NULL);
	make_home(duress, NULL);
	make_home(cleared, NULL);
	struct cairn *c = NULL;
	assert_int_equal(cairn_open(duress, PASS, &c), 0);
	assert_int_equal(cairn_duress_set(c, DURESS), 0);
	cairn_close(c);
	assert_int_equal(cairn_open(cleared, PASS, &c), 0);
	assert_int_equal(cairn_duress_set(c, DURESS), 0);
	assert_int_equal(cairn_duress_clear(c), 0);
	cairn_close(c);

	char la[1024], lb[1024], lc[1024];
	listing(plain, la, sizeof(la));
	listing(duress, lb, sizeof(lb));
	listing(cleared, lc, sizeof(lc));
	assert_string_equal(la, lb);
	assert_string_equal(la, lc);
	static const char *const probes[] = {
	    "SELECT count(*) FROM keyslot",
	    "SELECT length(sealed) FROM keyslot",
	    "SELECT length(salt) FROM keyslot",
	    "SELECT opslimit FROM keyslot",
	    "SELECT memlimit FROM keyslot",
	    "SELECT count(*) FROM records",
	    "SELECT sum(length(value)) FROM records",
	    "SELECT count(*) FROM sqlite_master",
	    "SELECT rootpage FROM sqlite_master WHERE name = 'keyslot'",
	    "PRAGMA page_count",
	    "PRAGMA freelist_count",
	    "PRAGMA user_version",
	};
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		int64_t a = raw_int(plain, probes[i]);
		assert_int_equal(a, raw_int(duress, probes[i]));
		assert_int_equal(a, raw_int(cleared, probes[i]));
	}
	/* cstate_wipe overwrites page 2: that is where the keyslot row lives. */
	assert_int_equal(
	    raw_int(plain, "SELECT rootpage FROM sqlite_master WHERE name = 'keyslot'"), 2);
}

/* Copies file NAME from directory FROM to TO. */
static void copy_file(const char *from, const char *to, const char *name)
{
	char a[192], b[192], buf[65536];
	snprintf(a, sizeof(a), "%s/%s", from, name);
	snprintf(b, sizeof(b), "%s/%s", to, name);
	FILE *in = fopen(a, "rb"), *out = fopen(b, "wb");
	assert_non_null(in);
	assert_non_null(out);
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		assert_int_equal(fwrite(buf, 1, n, out), n);
	fclose(in);
	fclose(out);
}

static void test_interrupted_wipe_is_unreadable(void **state)
{
	struct fixture *f = *state;
	struct cairn *c = NULL;
	struct cstate *st = NULL;
	make_home(f->home, NULL);
	assert_int_equal(cstate_wipe_keys(f->home), 0);
	/* The files are all still there, and no passphrase opens them. */
	char p[192];
	snprintf(p, sizeof(p), "%s/%s", f->home, CSTATE_FILE);
	assert_true(exists(p));
	assert_int_not_equal(cairn_open(f->home, PASS, &c), 0);
	assert_null(c);

	/* With the slot's newest image still in the WAL: a reader holds back the checkpoint
	 * while the duress passphrase is set, so page 2 is both in the file (old) and in the WAL
	 * (new); the copy taken after the key step opens with neither passphrase. */
	char home2[128], copy[128];
	snprintf(home2, sizeof(home2), "%s/wal", f->root);
	snprintf(copy, sizeof(copy), "%s/copy", f->root);
	make_home(home2, NULL);
	assert_int_equal(cairn_open(home2, PASS, &c), 0);
	sqlite3 *reader = NULL;
	snprintf(p, sizeof(p), "%s/%s", home2, CSTATE_FILE);
	assert_int_equal(sqlite3_open_v2(p, &reader, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(reader, "BEGIN; SELECT count(*) FROM records;", NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(cairn_duress_set(c, DURESS), 0);
	snprintf(p, sizeof(p), "%s/%s-wal", home2, CSTATE_FILE);
	struct stat sb;
	assert_int_equal(stat(p, &sb), 0);
	assert_true(sb.st_size > 0);

	/* The control: a copy taken before the key step opens with each passphrase. */
	assert_int_equal(mkdir(copy, 0700), 0);
	copy_file(home2, copy, CSTATE_FILE);
	copy_file(home2, copy, CSTATE_FILE "-wal");
	assert_int_equal(cstate_open(copy, PASS, &st), 0);
	cstate_close(st);
	(void)nftw(copy, rm_one, 16, FTW_DEPTH | FTW_PHYS);

	assert_int_equal(cstate_wipe_keys(home2), 0);
	assert_int_equal(mkdir(copy, 0700), 0);
	copy_file(home2, copy, CSTATE_FILE);
	copy_file(home2, copy, CSTATE_FILE "-wal");
	assert_int_not_equal(cstate_open(copy, PASS, &st), 0);
	assert_int_not_equal(cstate_open(copy, DURESS, &st), 0);
	assert_null(st);
	sqlite3_exec(reader, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(reader);
	cairn_close(c);
}

static void test_wipe_removes_the_home(void **state)
{
	struct fixture *f = *state;
	char p[192];
	make_home(f->home, NULL);
	snprintf(p, sizeof(p), "%s/files", f->home);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/files/a", f->home);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/files/a/spool", f->home);
	write_file(p, MARKER);
	snprintf(p, sizeof(p), "%s/obfs4", f->home);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/obfs4/obfs4_state.json", f->home);
	write_file(p, MARKER);
	snprintf(p, sizeof(p), "%s/%s.Ab12Cd", f->home, CSTATE_FILE); /* a crashed create's */
	write_file(p, MARKER);
	assert_int_equal(cairn_wipe(f->home), 0);
	assert_false(exists(f->home));
	assert_int_equal(cairn_wipe(f->home), CAIRN_ENOTFOUND);
	assert_int_equal(cairn_wipe(NULL), CAIRN_EINVAL);

	/* A home that holds someone else's file keeps it, and only it. */
	make_home(f->home, NULL);
	snprintf(p, sizeof(p), "%s/notes.txt", f->home);
	write_file(p, "mine");
	assert_int_equal(cairn_wipe(f->home), 0);
	assert_true(exists(p));
	char l[256];
	listing(f->home, l, sizeof(l));
	assert_string_equal(l, "notes.txt:4:644;");
}

/* A client with the home open (a `cairn listen`) while it is wiped brings nothing back. */
static void test_wipe_under_an_open_client(void **state)
{
	struct fixture *f = *state;
	struct cairn *c = NULL;
	make_home(f->home, NULL);
	assert_int_equal(cairn_open(f->home, PASS, &c), 0);
	assert_int_equal(cstate_put(c->st, 901, "before", 6, "v", 1), 0);
	assert_int_equal(cairn_wipe(f->home), 0);
	assert_false(exists(f->home));
	/* Its writes fail (the store sees its file unlinked: nothing is stored, so a listener
	 * acknowledges nothing more), and closing recreates nothing. */
	assert_int_not_equal(cstate_put(c->st, 901, "after", 5, MARKER, strlen(MARKER)), 0);
	cairn_close(c);
	assert_false(exists(f->home));
}

/* A one-slot home of an older client opens, and gets both slots in the same open. */
static void test_one_slot_home_is_upgraded(void **state)
{
	struct fixture *f = *state;
	struct cairn *c = NULL;
	make_home(f->home, NULL);
	char path[160];
	sqlite3 *db = NULL;
	snprintf(path, sizeof(path), "%s/%s", f->home, CSTATE_FILE);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(db, "UPDATE keyslot SET sealed = substr(sealed, 1, 72)", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(raw_int(f->home, "SELECT length(sealed) FROM keyslot"), 72);
	assert_int_equal(cairn_open(f->home, "wrong", &c), CAIRN_EPASSPHRASE);
	assert_int_equal(raw_int(f->home, "SELECT length(sealed) FROM keyslot"), 72);
	assert_int_equal(cairn_open(f->home, PASS, &c), 0);
	assert_true(has_marker(c));
	cairn_close(c);
	assert_int_equal(raw_int(f->home, "SELECT length(sealed) FROM keyslot"), 144);
	assert_int_equal(cairn_open(f->home, PASS, &c), 0);
	assert_int_equal(cairn_duress_set(c, DURESS), 0);
	cairn_close(c);
	assert_int_equal(cairn_open(f->home, DURESS, &c), 0);
	assert_false(has_marker(c));
	cairn_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_each_passphrase_opens_its_slot, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_duress_wipes_and_opens_empty, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_duress_home_looks_like_any, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_interrupted_wipe_is_unreadable, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wipe_removes_the_home, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wipe_under_an_open_client, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_one_slot_home_is_upgraded, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
