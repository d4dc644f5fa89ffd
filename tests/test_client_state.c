/* SPDX-License-Identifier: MIT */
/*
 * The client's sealed state store, on a fresh directory per test: records round-trip through
 * close and open, a wrong passphrase changes not one byte, transactions nest (inner levels are
 * savepoints), rekey keeps the data, files are private, no key or value reaches the disk in
 * plaintext, and a value that is altered or moved by someone with the file (through SQLite
 * directly) fails to open.
 */
#include <dirent.h>
#include <errno.h>
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

#include "state.h"

#define PASS     "correct horse battery staple"
#define MARKER   "CAIRN-PLAINTEXT-MARKER-alice"
#define MAX_SEEN 16

struct fixture {
	char root[64];  /* mkdtemp directory */
	char home[96];  /* ROOT/home: not created, so cstate_create must make it */
	char path[128]; /* HOME/cairn.db */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -1;
	strcpy(f->root, "/tmp/cairn-state-XXXXXX");
	if (mkdtemp(f->root) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->home, sizeof(f->home), "%s/home", f->root);
	snprintf(f->path, sizeof(f->path), "%s/%s", f->home, CSTATE_FILE);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	DIR *d = opendir(f->home);
	if (d != NULL) {
		struct dirent *e;
		char p[512];
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			snprintf(p, sizeof(p), "%s/%s", f->home, e->d_name);
			unlink(p);
		}
		closedir(d);
		rmdir(f->home);
	}
	rmdir(f->root);
	free(f);
	return 0;
}

static struct cstate *create_store(const struct fixture *f)
{
	struct cstate *st = NULL;
	assert_int_equal(cstate_create(f->home, PASS, CSTATE_KDF_INTERACTIVE, &st), 0);
	assert_non_null(st);
	return st;
}

static struct cstate *open_store(const struct fixture *f, const char *pass)
{
	struct cstate *st = NULL;
	assert_int_equal(cstate_open(f->home, pass, &st), 0);
	assert_non_null(st);
	return st;
}

static void put_str(struct cstate *st, uint32_t kind, const char *key, const char *value)
{
	assert_int_equal(cstate_put(st, kind, key, strlen(key), value, strlen(value)), 0);
}

static void assert_value(struct cstate *st, uint32_t kind, const char *key, const char *want)
{
	uint8_t *v = NULL;
	size_t len = 0;
	assert_int_equal(cstate_get(st, kind, key, strlen(key), &v, &len), 0);
	assert_non_null(v);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(v, want, len);
	cstate_free_value(v, len);
}

static void assert_get_fails(struct cstate *st, uint32_t kind, const char *key, int want)
{
	uint8_t *v = (uint8_t *)"dangling";
	size_t len = 99;
	assert_int_equal(cstate_get(st, kind, key, strlen(key), &v, &len), want);
	assert_null(v);
	assert_int_equal(len, 0);
}

/* What cstate_list reported, in order. */
struct seen {
	size_t n;
	char values[MAX_SEEN][64];
	size_t stop_after; /* return 7 once this many were seen; 0 = never */
};

static int collect(void *ctx, const uint8_t *value, size_t vlen)
{
	struct seen *s = ctx;
	assert_true(s->n < MAX_SEEN);
	assert_true(vlen < sizeof(s->values[0]));
	memcpy(s->values[s->n], value, vlen);
	s->values[s->n][vlen] = '\0';
	s->n++;
	return s->stop_after != 0 && s->n == s->stop_after ? 7 : 0;
}

/* Lists KIND and checks the values are exactly the NUL-terminated list WANT, in order. */
static void assert_list(struct cstate *st, uint32_t kind, const char *const *want)
{
	struct seen s = {0};
	assert_int_equal(cstate_list(st, kind, collect, &s), 0);
	size_t n = 0;
	while (want[n] != NULL) {
		assert_true(n < s.n);
		assert_string_equal(s.values[n], want[n]);
		n++;
	}
	assert_int_equal(s.n, n);
}

/* Reads a whole file into owned memory. */
static uint8_t *read_all(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	size_t cap = 4096, n = 0;
	uint8_t *buf = malloc(cap);
	assert_non_null(buf);
	size_t got;
	while ((got = fread(buf + n, 1, cap - n, fp)) > 0) {
		n += got;
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
	}
	fclose(fp);
	*len = n;
	return buf;
}

static int contains(const uint8_t *hay, size_t n, const char *needle)
{
	size_t m = strlen(needle);
	for (size_t i = 0; i + m <= n; i++) {
		if (memcmp(hay + i, needle, m) == 0)
			return 1;
	}
	return 0;
}

/* Counts the files in DIR, and how many of them hold NEEDLE anywhere in their bytes. */
static int files_containing(const char *dir, const char *needle, int *nfiles)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *e;
	int found = 0;
	*nfiles = 0;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char p[512];
		size_t len;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		uint8_t *buf = read_all(p, &len);
		found += contains(buf, len, needle);
		free(buf);
		(*nfiles)++;
	}
	closedir(d);
	return found;
}

/* A plain SQLite connection to the store, as someone holding the file but not the
 * passphrase would use. */
static sqlite3 *raw_open(const struct fixture *f)
{
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 2000);
	return db;
}

static void raw_exec(sqlite3 *db, const char *sql)
{
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
}

/* The one integer SQL (a query of one row and column) reads from the store in F. */
static int64_t raw_int(const struct fixture *f, const char *sql)
{
	sqlite3 *db = raw_open(f);
	sqlite3_stmt *s;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	int64_t n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return n;
}

static int64_t raw_count(const struct fixture *f)
{
	return raw_int(f, "SELECT count(*) FROM records");
}

static mode_t mode_of(const char *path)
{
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	return sb.st_mode & 07777;
}

static void test_create_open_round_trip(void **state)
{
	struct fixture *f = *state;
	struct cstate *st = create_store(f);
	put_str(st, 1, "alice", "hello");
	cstate_close(st);

	st = open_store(f, PASS);
	assert_value(st, 1, "alice", "hello");
	cstate_close(st);

	/* A second create neither succeeds nor touches the first store. */
	struct cstate *other = (struct cstate *)f;
	assert_int_equal(
	    cstate_create(f->home, "another passphrase", CSTATE_KDF_INTERACTIVE, &other),
	    CAIRN_EEXIST);
	assert_null(other);
	st = open_store(f, PASS);
	assert_value(st, 1, "alice", "hello");
	cstate_close(st);
	cstate_close(NULL);
}

static void test_open_without_store(void **state)
{
	struct fixture *f = *state;
	struct cstate *st = (struct cstate *)f;
	/* Neither the directory nor the file exists, then only the directory. */
	assert_int_equal(cstate_open(f->home, PASS, &st), CAIRN_ENOTFOUND);
	assert_null(st);
	assert_int_equal(mkdir(f->home, 0700), 0);
	assert_int_equal(cstate_open(f->home, PASS, &st), CAIRN_ENOTFOUND);

	assert_int_equal(cstate_open(NULL, PASS, &st), CAIRN_EINVAL);
	assert_int_equal(cstate_open(f->home, NULL, &st), CAIRN_EINVAL);
	assert_int_equal(cstate_create(f->home, "", CSTATE_KDF_INTERACTIVE, &st), CAIRN_EINVAL);
	assert_int_equal(cstate_create(f->home, PASS, CSTATE_KDF_INTERACTIVE, NULL), CAIRN_EINVAL);
}

static void test_wrong_passphrase_changes_nothing(void **state)
{
	struct fixture *f = *state;
	struct cstate *st = create_store(f);
	put_str(st, 1, "alice", "hello");
	put_str(st, 2, "bob", "world");
	cstate_close(st);

	size_t before_len, after_len;
	uint8_t *before = read_all(f->path, &before_len);
	st = (struct cstate *)f;
	assert_int_equal(cstate_open(f->home, "wrong passphrase", &st), CAIRN_EPASSPHRASE);
	assert_null(st);
	assert_int_equal(cstate_open(f->home, "", &st), CAIRN_EPASSPHRASE);
	uint8_t *after = read_all(f->path, &after_len);
	assert_int_equal(before_len, after_len);
	assert_memory_equal(before, after, before_len);
	free(before);
	free(after);

	/* Nothing left beside it either: no WAL, no temporary files. */
	int nfiles;
	(void)files_containing(f->home, MARKER, &nfiles);
	assert_int_equal(nfiles, 1);

	st = open_store(f, PASS);
	assert_value(st, 2, "bob", "world");
	cstate_close(st);
}

static void test_put_get_replace_del_list(void **state)
{
	struct fixture *f = *state;
	struct cstate *st = create_store(f);
	put_str(st, 5, "a", "one");
	put_str(st, 5, "b", "two");
	put_str(st, 5, "c", "three");
	assert_list(st, 5, (const char *const[]){"one", "two", "three", NULL});

	/* Replacing keeps the record's place. */
	put_str(st, 5, "b", "TWO");
	assert_value(st, 5, "b", "TWO");
	assert_list(st, 5, (const char *const[]){"one", "TWO", "three", NULL});

	/* Deleting, deleting what is absent, and inserting again at the end. */
	assert_int_equal(cstate_del(st, 5, "b", 1), 0);
	assert_int_equal(cstate_del(st, 5, "b", 1), 0);
	assert_get_fails(st, 5, "b", CAIRN_ENOTFOUND);
	put_str(st, 5, "d", "four");
	put_str(st, 5, "b", "two again");
	assert_list(st, 5, (const char *const[]){"one", "three", "four", "two again", NULL});

	/* The order survives closing. */
	cstate_close(st);
	st = open_store(f, PASS);
	assert_list(st, 5, (const char *const[]){"one", "three", "four", "two again", NULL});

	/* A callback may stop the listing (its value is returned) and may use the store. */
	struct seen s = {.stop_after = 2};
	assert_int_equal(cstate_list(st, 5, collect, &s), 7);
	assert_int_equal(s.n, 2);
	assert_int_equal(cstate_list(st, 5, NULL, NULL), CAIRN_EINVAL);
	cstate_close(st);
}

static void test_kinds_are_separate(void **state)
{
	struct fixture *f = *state;
	struct cstate *st = create_store(f);
	put_str(st, 1, "k", "in kind 1");
	put_str(st, 2, "k", "in kind 2");
	put_str(st, 0xffffffffu, "k", "in the last kind");
	assert_value(st, 1, "k", "in kind 1");
	assert_value(st, 2, "k", "in kind 2");
	assert_value(st, 0xffffffffu, "k", "in the last kind");
	assert_int_equal(cstate_del(st, 1, "k", 1), 0);
	assert_get_fails(st, 1, "k", CAIRN_ENOTFOUND);
	assert_value(st, 2, "k", "in kind 2");
	assert_list(st, 2, (const char *const[]){"in kind 2", NULL});
	assert_list(st, 3, (const char *const[]){NULL});
	cstate_close(st);
}

static void test_sizes(void **state)
{
	struct fixture *f = *state;
	struct cstate *st = create_store(f);
	uint8_t *big = malloc(CSTATE_VALUE_MAX + 1);
	uint8_t key[CSTATE_KEY_MAX + 1];
	assert_non_null(big);
	for (size_t i = 0; i < CSTATE_VALUE_MAX + 1; i++)
		big[i] = (uint8_t)(i * 131 + 7);
	memset(key, 'k', sizeof(key));

	assert_int_equal(cstate_put(st, 1, key, CSTATE_KEY_MAX, big, CSTATE_VALUE_MAX), 0);
	assert_int_equal(cstate_put(st, 1, key, CSTATE_KEY_MAX + 1, "x", 1), CAIRN_EINVAL);
	assert_int_equal(cstate_put(st, 1, "x", 1, big, CSTATE_VALUE_MAX + 1), CAIRN_EINVAL);
	assert_int_equal(cstate_put(st, 1, NULL, 1, "x", 1), CAIRN_EINVAL);
	assert_int_equal(cstate_put(st, 1, "x", 1, NULL, 1), CAIRN_EINVAL);
	/* An empty value, under an empty key. */
	assert_int_equal(cstate_put(st, 1, NULL, 0, NULL, 0), 0);
	cstate_close(st);

	st = open_store(f, PASS);
	uint8_t *v = NULL;
	size_t len = 0;
	assert_int_equal(cstate_get(st, 1, key, CSTATE_KEY_MAX, &v, &len), 0);
	assert_int_equal(len, CSTATE_VALUE_MAX);
	assert_memory_equal(v, big, len);
	cstate_free_value(v, len);
	assert_int_equal(cstate_get(st, 1, "", 0, &v, &len), 0);
	assert_non_null(v);
	assert_int_equal(len, 0);
	cstate_free_value(v, len);
	assert_int_equal(cstate_get(st, 1, key, CSTATE_KEY_MAX + 1, &v, &len), CAIRN_EINVAL);
	assert_int_equal(cstate_get(st, 1, "x", 1, NULL, &len), CAIRN_EINVAL);
	cstate_free_value(NULL, 0);
	cstate_close(st);
	free(big);
}

static void test_transactions(void **state)
{
	struct fixture *f = *state;
	struct cstate *st = create_store(f);
	put_str(st, 1, "kept", "before");

	/* A rollback discards inserts, replaces and deletes alike. */
	assert_int_equal(cstate_begin(st), 0);
	put_str(st, 1, "new", "gone");
	put_str(st, 1, "kept", "changed");
	assert_value(st, 1, "new", "gone");
	cstate_rollback(st);
	assert_get_fails(st, 1, "new", CAIRN_ENOTFOUND);
	assert_value(st, 1, "kept", "before");
	assert_int_equal(cstate_begin(st), 0);
	assert_int_equal(cstate_del(st, 1, "kept", 4), 0);
	cstate_rollback(st);
	assert_value(st, 1, "kept", "before");

	/* Nested: only the outermost commit writes, as another connection sees. */
	assert_int_equal(cstate_begin(st), 0);
	assert_int_equal(cstate_begin(st), 0);
	put_str(st, 1, "a", "1");
	put_str(st, 1, "b", "2");
	assert_int_equal(cstate_commit(st), 0);
	assert_int_equal(raw_count(f), 1);
	assert_int_equal(cstate_commit(st), 0);
	assert_int_equal(raw_count(f), 3);
	assert_int_equal(cstate_commit(st), CAIRN_ESTATE);

	/* An outer rollback undoes the inner level's committed work too. */
	assert_int_equal(cstate_begin(st), 0);
	assert_int_equal(cstate_begin(st), 0);
	put_str(st, 1, "c", "3");
	assert_int_equal(cstate_commit(st), 0);
	assert_value(st, 1, "c", "3");
	cstate_rollback(st);
	assert_get_fails(st, 1, "c", CAIRN_ENOTFOUND);
	assert_int_equal(cstate_commit(st), CAIRN_ESTATE);

	/* Back in autocommit, a put is durable at once. */
	put_str(st, 1, "d", "4");
	assert_int_equal(raw_count(f), 4);

	/* An open transaction is rolled back by close. */
	assert_int_equal(cstate_begin(st), 0);
	put_str(st, 1, "e", "5");
	cstate_close(st);
	st = open_store(f, PASS);
	assert_get_fails(st, 1, "e", CAIRN_ENOTFOUND);
	assert_list(st, 1, (const char *const[]){"before", "1", "2", "4", NULL});
	cstate_close(st);
}

/* Count of records of KIND as another connection sees them (what is committed). */
static int64_t raw_count_kind(const struct fixture *f, uint32_t kind)
{
	char sql[96];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM records WHERE kind = %u", (unsigned)kind);
	return raw_int(f, sql);
}

/* Inner levels are savepoints: an inner rollback undoes only that level, at any depth, and
 * the outer work still commits. */
static void test_savepoints(void **state)
{
	struct fixture *f = *state;
	struct cstate *st = create_store(f);

	/* Inner rollback keeps the outer work, before and after it. */
	assert_int_equal(cstate_begin(st), 0);
	put_str(st, 2, "outer-before", "o1");
	put_str(st, 2, "shared", "outer");
	assert_int_equal(cstate_begin(st), 0);
	put_str(st, 2, "inner", "i1");
	put_str(st, 2, "shared", "inner");
	assert_int_equal(cstate_del(st, 2, "outer-before", 12), 0);
	cstate_rollback(st);
	assert_get_fails(st, 2, "inner", CAIRN_ENOTFOUND);
	assert_value(st, 2, "shared", "outer");
	assert_value(st, 2, "outer-before", "o1");
	put_str(st, 2, "outer-after", "o2");
	assert_int_equal(raw_count_kind(f, 2), 0);
	assert_int_equal(cstate_commit(st), 0);
	assert_int_equal(raw_count_kind(f, 2), 3);
	assert_int_equal(cstate_commit(st), CAIRN_ESTATE);

	/* Depth 4: the level-3 rollback undoes levels 3 and 4 (4 was committed into 3), and
	 * keeps levels 1 and 2; a sibling level 3 begun after it commits. */
	assert_int_equal(cstate_begin(st), 0);
	put_str(st, 3, "l1", "1");
	assert_int_equal(cstate_begin(st), 0);
	put_str(st, 3, "l2", "2");
	assert_int_equal(cstate_begin(st), 0);
	put_str(st, 3, "l3", "3");
	assert_int_equal(cstate_begin(st), 0);
	put_str(st, 3, "l4", "4");
	assert_int_equal(cstate_commit(st), 0);
	assert_value(st, 3, "l4", "4");
	cstate_rollback(st);
	assert_get_fails(st, 3, "l3", CAIRN_ENOTFOUND);
	assert_get_fails(st, 3, "l4", CAIRN_ENOTFOUND);
	assert_int_equal(cstate_begin(st), 0);
	put_str(st, 3, "l3b", "3b");
	assert_int_equal(cstate_commit(st), 0);
	assert_int_equal(cstate_commit(st), 0);
	assert_int_equal(raw_count_kind(f, 3), 0);
	assert_int_equal(cstate_commit(st), 0);
	assert_int_equal(raw_count_kind(f, 3), 3);
	assert_list(st, 3, (const char *const[]){"1", "2", "3b", NULL});

	/* A failure inside an inner level: a write the file refuses (a trigger that someone
	 * with the file added stands for a full disk) fails that put only; the caller rolls
	 * the inner level back and the outer level's work commits. */
	cstate_close(st);
	sqlite3 *db = raw_open(f);
	raw_exec(db, "CREATE TRIGGER refuse BEFORE INSERT ON records WHEN NEW.kind = 9"
	             " BEGIN SELECT RAISE(ABORT, 'refused'); END");
	sqlite3_close(db);
	st = open_store(f, PASS);
	assert_int_equal(cstate_begin(st), 0);
	put_str(st, 4, "outer", "kept");
	assert_int_equal(cstate_begin(st), 0);
	put_str(st, 4, "inner", "undone");
	assert_int_not_equal(cstate_put(st, 9, "x", 1, "v", 1), 0);
	cstate_rollback(st);
	assert_get_fails(st, 4, "inner", CAIRN_ENOTFOUND);
	assert_int_equal(cstate_commit(st), 0);
	assert_int_equal(raw_count_kind(f, 4), 1);
	assert_int_equal(raw_count_kind(f, 9), 0);
	assert_value(st, 4, "outer", "kept");

	/* A put failing inside a transaction (no savepoint of its own) leaves it open. */
	assert_int_equal(cstate_begin(st), 0);
	put_str(st, 5, "a", "1");
	assert_int_not_equal(cstate_put(st, 9, "x", 1, "v", 1), 0);
	put_str(st, 5, "b", "2");
	assert_int_equal(cstate_commit(st), 0);
	assert_int_equal(raw_count_kind(f, 5), 2);
	cstate_close(st);
}

static void test_rekey(void **state)
{
	struct fixture *f = *state;
	struct cstate *st = create_store(f);
	put_str(st, 1, "alice", "hello");
	assert_int_equal(cstate_rekey(st, ""), CAIRN_EINVAL);
	assert_int_equal(cstate_rekey(st, "new passphrase"), 0);
	assert_value(st, 1, "alice", "hello");
	put_str(st, 1, "bob", "after rekey");
	cstate_close(st);

	assert_int_equal(cstate_open(f->home, PASS, &st), CAIRN_EPASSPHRASE);
	st = open_store(f, "new passphrase");
	assert_value(st, 1, "alice", "hello");
	assert_value(st, 1, "bob", "after rekey");
	cstate_close(st);
}

static void test_file_modes(void **state)
{
	struct fixture *f = *state;
	struct cstate *st = create_store(f);
	/* 0700 unless the umask takes even more away. */
	assert_int_equal(mode_of(f->home) & 077, 0);
	assert_int_equal(mode_of(f->home) & 0700, 0700);
	put_str(st, 1, "alice", "hello");

	char p[192];
	assert_int_equal(mode_of(f->path), 0600);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	assert_int_equal(mode_of(p), 0600);
	snprintf(p, sizeof(p), "%s-shm", f->path);
	assert_int_equal(mode_of(p), 0600);
	cstate_close(st);

	/* Closed, the store is one file: no WAL, and no temporary file from create. */
	int nfiles;
	(void)files_containing(f->home, MARKER, &nfiles);
	assert_int_equal(nfiles, 1);
	assert_int_equal(mode_of(f->path), 0600);
}

static void test_no_plaintext_on_disk(void **state)
{
	struct fixture *f = *state;
	struct cstate *st = create_store(f);
	char big[4096];
	size_t n = 0;
	while (n + sizeof(MARKER) < sizeof(big)) {
		memcpy(big + n, MARKER, sizeof(MARKER) - 1);
		n += sizeof(MARKER) - 1;
	}
	big[n] = '\0';
	put_str(st, 1, MARKER "-contact", MARKER "-value");
	put_str(st, 2, "key", big);
	put_str(st, 3, MARKER "-replaced", "first " MARKER);
	put_str(st, 3, MARKER "-replaced", "second " MARKER);
	put_str(st, 3, MARKER "-deleted", "deleted " MARKER);
	assert_int_equal(cstate_del(st, 3, MARKER "-deleted", strlen(MARKER "-deleted")), 0);
	assert_int_equal(cstate_rekey(st, MARKER), 0);

	/* While open (the WAL holds the recent pages) and after close. */
	int nfiles;
	assert_int_equal(files_containing(f->home, MARKER, &nfiles), 0);
	assert_true(nfiles >= 2);
	cstate_close(st);
	assert_int_equal(files_containing(f->home, MARKER, &nfiles), 0);
	assert_int_equal(nfiles, 1);

	/* The scan itself works: a plaintext row written through SQLite is found. */
	sqlite3 *db = raw_open(f);
	raw_exec(db, "CREATE TABLE control (x TEXT); INSERT INTO control VALUES ('" MARKER "')");
	sqlite3_close(db);
	assert_int_equal(files_containing(f->home, MARKER, &nfiles), 1);
}

/* Replaces the value of the record of KIND at SEQ with BYTES, through SQLite. */
static void raw_set_value(const struct fixture *f, int64_t kind, int64_t seq, const void *bytes,
                          size_t len)
{
	sqlite3 *db = raw_open(f);
	sqlite3_stmt *s;
	assert_int_equal(sqlite3_prepare_v2(db,
	                                    "UPDATE records SET value = ?3 WHERE kind = ?1 AND "
	                                    "seq = ?2",
	                                    -1, &s, NULL),
	                 SQLITE_OK);
	sqlite3_bind_int64(s, 1, kind);
	sqlite3_bind_int64(s, 2, seq);
	sqlite3_bind_blob(s, 3, bytes, (int)len, SQLITE_TRANSIENT);
	assert_int_equal(sqlite3_step(s), SQLITE_DONE);
	assert_int_equal(sqlite3_changes(db), 1);
	sqlite3_finalize(s);
	sqlite3_close(db);
}

/* Returns the stored (sealed) value of the record of KIND at SEQ, in owned memory. */
static uint8_t *raw_get_value(const struct fixture *f, int64_t kind, int64_t seq, size_t *len)
{
	sqlite3 *db = raw_open(f);
	sqlite3_stmt *s;
	assert_int_equal(
	    sqlite3_prepare_v2(db, "SELECT value FROM records WHERE kind = ?1 AND seq = ?2", -1, &s,
	                       NULL),
	    SQLITE_OK);
	sqlite3_bind_int64(s, 1, kind);
	sqlite3_bind_int64(s, 2, seq);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	*len = (size_t)sqlite3_column_bytes(s, 0);
	uint8_t *v = malloc(*len);
	assert_non_null(v);
	memcpy(v, sqlite3_column_blob(s, 0), *len);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

static void test_tampered_value(void **state)
{
	struct fixture *f = *state;
	struct cstate *st = create_store(f);
	put_str(st, 1, "a", "the first value");
	put_str(st, 1, "b", "the second value");
	cstate_close(st);

	/* One bit flipped in each of the nonce, the ciphertext and the tag. */
	size_t len;
	uint8_t *v = raw_get_value(f, 1, 1, &len);
	size_t where[] = {3, 30, len - 1};
	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		v[where[i]] ^= 0x04;
		raw_set_value(f, 1, 1, v, len);
		v[where[i]] ^= 0x04;
		st = open_store(f, PASS);
		assert_get_fails(st, 1, "a", CAIRN_ECORRUPT);
		assert_value(st, 1, "b", "the second value");
		struct seen s = {0};
		assert_int_equal(cstate_list(st, 1, collect, &s), CAIRN_ECORRUPT);
		cstate_close(st);
	}
	/* Truncated, then restored: the original opens again. */
	raw_set_value(f, 1, 1, v, 10);
	st = open_store(f, PASS);
	assert_get_fails(st, 1, "a", CAIRN_ECORRUPT);
	cstate_close(st);
	raw_set_value(f, 1, 1, v, len);
	st = open_store(f, PASS);
	assert_value(st, 1, "a", "the first value");
	cstate_close(st);
	free(v);
}

static void test_moved_value(void **state)
{
	struct fixture *f = *state;
	struct cstate *st = create_store(f);
	put_str(st, 1, "a", "value of a");
	put_str(st, 1, "b", "value of b");
	put_str(st, 2, "a", "value of a in kind 2");
	cstate_close(st);

	/* a's sealed value copied over b's, and over (kind 2, a). */
	size_t len;
	uint8_t *a = raw_get_value(f, 1, 1, &len);
	raw_set_value(f, 1, 2, a, len);
	raw_set_value(f, 2, 1, a, len);
	free(a);
	st = open_store(f, PASS);
	assert_value(st, 1, "a", "value of a");
	assert_get_fails(st, 1, "b", CAIRN_ECORRUPT);
	assert_get_fails(st, 2, "a", CAIRN_ECORRUPT);
	cstate_close(st);
}

static void test_reordered_records(void **state)
{
	struct fixture *f = *state;
	struct cstate *st = create_store(f);
	put_str(st, 1, "a", "first");
	put_str(st, 1, "b", "second");
	cstate_close(st);

	/* Swapping the sequence numbers would reverse the listing; it must not go unnoticed. */
	sqlite3 *db = raw_open(f);
	raw_exec(db, "UPDATE records SET seq = 100 WHERE seq = 1;"
	             "UPDATE records SET seq = 1 WHERE seq = 2;"
	             "UPDATE records SET seq = 2 WHERE seq = 100");
	sqlite3_close(db);
	st = open_store(f, PASS);
	struct seen s = {0};
	assert_int_equal(cstate_list(st, 1, collect, &s), CAIRN_ECORRUPT);
	assert_get_fails(st, 1, "a", CAIRN_ECORRUPT);
	cstate_close(st);
}

static void test_not_a_store(void **state)
{
	struct fixture *f = *state;
	struct cstate *st = NULL;
	assert_int_equal(mkdir(f->home, 0700), 0);

	/* An empty file, then one that is not a database at all. */
	FILE *fp = fopen(f->path, "wb");
	assert_non_null(fp);
	fclose(fp);
	assert_int_equal(cstate_open(f->home, PASS, &st), CAIRN_ECORRUPT);
	assert_int_equal(cstate_create(f->home, PASS, CSTATE_KDF_INTERACTIVE, &st), CAIRN_EEXIST);
	fp = fopen(f->path, "wb");
	assert_non_null(fp);
	for (int i = 0; i < 400; i++)
		fputs("this is not a database. ", fp);
	fclose(fp);
	assert_int_equal(cstate_open(f->home, PASS, &st), CAIRN_ECORRUPT);
	assert_null(st);
	assert_int_equal(unlink(f->path), 0);

	/* A keyslot whose limits were raised past any sane cost is refused, not run. */
	st = create_store(f);
	cstate_close(st);
	sqlite3 *db = raw_open(f);
	raw_exec(db, "UPDATE keyslot SET memlimit = 1099511627776");
	sqlite3_close(db);
	assert_int_equal(cstate_open(f->home, PASS, &st), CAIRN_ECORRUPT);
}

/* A WAL left behind by a deleted store must not be replayed into a new one. */
static void test_stale_wal_is_not_replayed(void **state)
{
	struct fixture *f = *state;
	struct cstate *st = create_store(f);
	put_str(st, 1, "old", "from the old store");
	char wal[192];
	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	size_t len;
	uint8_t *copy = read_all(wal, &len);
	assert_true(len > 0);
	cstate_close(st);

	assert_int_equal(unlink(f->path), 0);
	FILE *fp = fopen(wal, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(copy, 1, len, fp), len);
	fclose(fp);
	free(copy);

	st = create_store(f);
	cstate_close(st);
	assert_int_equal(raw_count(f), 0);
	st = open_store(f, PASS);
	assert_get_fails(st, 1, "old", CAIRN_ENOTFOUND);
	assert_list(st, 1, (const char *const[]){NULL});
	cstate_close(st);
}

/* The stretch is the creator's explicit choice (no environment variable inside the library),
 * and a new passphrase keeps it. */
static void test_kdf_choice(void **state)
{
	struct fixture *f = *state;
	struct cstate *st = NULL;
	assert_int_equal(cstate_create(f->home, PASS, (enum cstate_kdf)7, &st), CAIRN_EINVAL);
	assert_null(st);
	assert_int_equal(cstate_create(f->home, PASS, CSTATE_KDF_MODERATE, &st), 0);
	cstate_close(st);
	assert_int_equal(raw_int(f, "SELECT memlimit FROM keyslot"),
	                 (int64_t)crypto_pwhash_MEMLIMIT_MODERATE);
	assert_int_equal(unlink(f->path), 0);

	st = create_store(f);
	assert_int_equal(raw_int(f, "SELECT memlimit FROM keyslot"),
	                 (int64_t)crypto_pwhash_MEMLIMIT_INTERACTIVE);
	assert_int_equal(cstate_rekey(st, "a new passphrase"), 0);
	cstate_close(st);
	assert_int_equal(raw_int(f, "SELECT memlimit FROM keyslot"),
	                 (int64_t)crypto_pwhash_MEMLIMIT_INTERACTIVE);
	st = open_store(f, "a new passphrase");
	cstate_close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_create_open_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_without_store, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_passphrase_changes_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_put_get_replace_del_list, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_kinds_are_separate, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sizes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_savepoints, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rekey, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_file_modes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_plaintext_on_disk, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tampered_value, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_moved_value, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reordered_records, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_a_store, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stale_wal_is_not_replayed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_kdf_choice, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
