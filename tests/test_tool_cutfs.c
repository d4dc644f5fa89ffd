/* SPDX-License-Identifier: MIT */
/*
 * The power-cut file system (tests/tools/cutfs.c) mounted for real: after a cut, a file holds
 * what it held at its last fsync, a name created, linked, renamed or unlinked without an
 * fsync of its directory is as it was, a file fsynced but whose directory was not is gone,
 * and a shared
 * mapping (SQLite's -shm) writes through to the backing store. Skips where the kernel refuses
 * FUSE.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include <cmocka.h>

#include "cutfsproc.h"

static struct {
	char top[64], backing[96], mnt[96];
	struct cutfsproc fs;
	int refused; /* 1: the kernel refuses FUSE here */
} w;

static void rm_tree(const char *dir)
{
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

static int setup(void **state)
{
	(void)state;
	strcpy(w.top, "/tmp/cairn-cutfs-XXXXXX");
	if (mkdtemp(w.top) == NULL)
		return -1;
	snprintf(w.backing, sizeof(w.backing), "%s/backing", w.top);
	snprintf(w.mnt, sizeof(w.mnt), "%s/mnt", w.top);
	if (mkdir(w.backing, 0700) != 0 || mkdir(w.mnt, 0700) != 0)
		return -1;
	int rc = cutfsproc_mount(&w.fs, w.backing, w.mnt);
	w.refused = rc == 1;
	return rc < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	cutfsproc_unmount(&w.fs);
	rm_tree(w.top);
	return 0;
}

static void need_fuse(void)
{
	if (w.refused) {
		fprintf(stderr, "skipped: the kernel refuses FUSE mounts here\n");
		skip();
	}
}

static void path(char *out, const char *name)
{
	snprintf(out, 160, "%s/%s", w.mnt, name);
}

/* Writes LEN bytes of TEXT at OFF into NAME (created if need be), fsyncing if SYNC. */
static void put(const char *name, const char *text, off_t off, int sync)
{
	char p[160];
	path(p, name);
	int fd = open(p, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, text, strlen(text), off), (ssize_t)strlen(text));
	if (sync)
		assert_int_equal(fsync(fd), 0);
	assert_int_equal(close(fd), 0);
}

static void sync_dir(const char *name)
{
	char p[160];
	path(p, name);
	int fd = open(p, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	assert_int_equal(fsync(fd), 0);
	close(fd);
}

/* NAME's whole content, or "(none)" if it does not exist. */
static const char *content(const char *name)
{
	static char buf[256];
	char p[160];
	path(p, name);
	int fd = open(p, O_RDONLY);
	if (fd < 0)
		return "(none)";
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n < 0 ? 0 : n] = '\0';
	return buf;
}

static void test_unsynced_writes_are_lost(void **state)
{
	(void)state;
	need_fuse();
	put("data", "first version", 0, 1);
	sync_dir(".");
	put("data", "SECOND", 0, 0);
	put("data", " and a tail past the synced size", 13, 0);
	assert_string_equal(content("data"), "SECONDversion and a tail past the synced size");
	assert_int_equal(cutfsproc_cut(&w.fs), 0);
	assert_string_equal(content("data"), "first version");

	/* A truncate is undone too, and what an fsync made durable stays. */
	put("data", "third version", 0, 1);
	char p[160];
	path(p, "data");
	assert_int_equal(truncate(p, 2), 0);
	put("data", "+", 2, 0);
	assert_string_equal(content("data"), "th+");
	assert_int_equal(cutfsproc_cut(&w.fs), 0);
	assert_string_equal(content("data"), "third version");
}

static void test_unsynced_create_vanishes(void **state)
{
	(void)state;
	need_fuse();
	put("fresh", "never fsynced", 0, 0);
	put("synced-file", "fsynced, its directory not", 0, 1);
	assert_string_equal(content("synced-file"), "fsynced, its directory not");
	assert_int_equal(cutfsproc_cut(&w.fs), 0);
	assert_string_equal(content("fresh"), "(none)");
	assert_string_equal(content("synced-file"), "(none)");

	/* Both fsyncs: it stays. */
	put("kept", "file and directory fsynced", 0, 1);
	sync_dir(".");
	assert_int_equal(cutfsproc_cut(&w.fs), 0);
	assert_string_equal(content("kept"), "file and directory fsynced");

	/* A hard link (how the client publishes its store) likewise. */
	char p[160], q[160];
	path(p, "kept");
	path(q, "linked");
	assert_int_equal(link(p, q), 0);
	assert_int_equal(cutfsproc_cut(&w.fs), 0);
	assert_string_equal(content("linked"), "(none)");
	assert_string_equal(content("kept"), "file and directory fsynced");

	/* A directory made without an fsync of its parent goes with what is in it. */
	path(p, "newdir");
	assert_int_equal(mkdir(p, 0700), 0);
	put("newdir/inner", "in a new directory", 0, 1);
	sync_dir("newdir");
	assert_int_equal(cutfsproc_cut(&w.fs), 0);
	struct stat st;
	assert_int_equal(stat(p, &st), -1);
}

static void test_unsynced_rename_reverts(void **state)
{
	(void)state;
	need_fuse();
	put("old-name", "moved", 0, 1);
	put("target", "replaced", 0, 1);
	sync_dir(".");
	char from[160], to[160];
	path(from, "old-name");
	path(to, "target");
	assert_int_equal(rename(from, to), 0);
	assert_string_equal(content("target"), "moved");
	assert_int_equal(cutfsproc_cut(&w.fs), 0);
	assert_string_equal(content("old-name"), "moved");
	assert_string_equal(content("target"), "replaced");

	/* With the directory fsynced, the rename holds. */
	assert_int_equal(rename(from, to), 0);
	sync_dir(".");
	assert_int_equal(cutfsproc_cut(&w.fs), 0);
	assert_string_equal(content("old-name"), "(none)");
	assert_string_equal(content("target"), "moved");
}

static void test_unsynced_unlink_comes_back(void **state)
{
	(void)state;
	need_fuse();
	put("doomed", "still here", 0, 1);
	sync_dir(".");
	char p[160];
	path(p, "doomed");
	assert_int_equal(unlink(p), 0);
	assert_string_equal(content("doomed"), "(none)");
	assert_int_equal(cutfsproc_cut(&w.fs), 0);
	assert_string_equal(content("doomed"), "still here");
	assert_int_equal(unlink(p), 0);
	sync_dir(".");
	assert_int_equal(cutfsproc_cut(&w.fs), 0);
	assert_string_equal(content("doomed"), "(none)");
}

/* SQLite's WAL index (-shm) is a shared mapping: its stores must reach the file. */
static void test_shared_mapping_writes_through(void **state)
{
	(void)state;
	need_fuse();
	char p[160], b[200];
	path(p, "mapped");
	int fd = open(p, O_RDWR | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 8192), 0);
	char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(m != MAP_FAILED);
	memcpy(m + 4096, "mapped bytes", 12);
	assert_int_equal(msync(m, 8192, MS_SYNC), 0);
	munmap(m, 8192);
	close(fd);
	snprintf(b, sizeof(b), "%s/mapped", w.backing);
	fd = open(b, O_RDONLY);
	assert_true(fd >= 0);
	char got[12];
	assert_int_equal(pread(fd, got, 12, 4096), 12);
	close(fd);
	assert_memory_equal(got, "mapped bytes", 12);
}

/* The control file and the trash are not in the listing an application sees. */
static void test_hidden_names(void **state)
{
	(void)state;
	need_fuse();
	DIR *d = opendir(w.mnt);
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		assert_true(strncmp(e->d_name, ".cutfs", 6) != 0);
	closedir(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unsynced_writes_are_lost),
	    cmocka_unit_test(test_unsynced_create_vanishes),
	    cmocka_unit_test(test_unsynced_rename_reverts),
	    cmocka_unit_test(test_unsynced_unlink_comes_back),
	    cmocka_unit_test(test_shared_mapping_writes_through),
	    cmocka_unit_test(test_hidden_names),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
