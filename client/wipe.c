/* SPDX-License-Identifier: MIT */
/*
 * Destroying a home (state.h: cstate_wipe), with no passphrase, fast on any size of home: only
 * what could let the master key M be recovered is overwritten, the rest is removed.
 *
 * Step 1, the keys. Everything in the home is sealed under keys derived from M, and M exists on
 * disk only in the keyslot row, which lives in page 2 of the database (the keyslot table is the
 * first the schema creates; a row of 160 bytes never leaves its page). So: page 2 of cairn.db
 * and of any store left half-made by a crashed create (cairn.db.XXXXXX), every frame of page 2
 * in a -wal (an UPDATE of the row not yet checkpointed, or an older image of it), and any
 * rollback -journal whole, are overwritten with random bytes and fsynced. After that the salt
 * and both slots are gone from the files, and no passphrase opens the store again: a wipe
 * interrupted here has already done what matters. The cost is a few pages and one read of each
 * WAL frame header, whatever the size of the home.
 *
 * Step 2, the files: HOME/files/ (the spools of file transfers, encrypted under keys kept in
 * the store), HOME/obfs4/ (obfs4proxy's state), every cairn.db* file, then HOME itself unless
 * it holds files that are not the client's, which are left alone.
 *
 * What this cannot reach: copies the storage keeps by itself. A flash device's wear levelling
 * or a copy-on-write filesystem may keep an old block of page 2 where the overwrite does not
 * land, readable with the chip or the filesystem's history; with the passphrase, such a block
 * opens the old store's records wherever they survive too. A process that has the store open
 * (a `cairn listen`) keeps M in memory and writes to files no longer in any directory: its
 * writes fail (SQLite notices that the database was unlinked) and nothing reappears in HOME.
 */
/* nftw() is XSI. */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "state.h"

#define WIPE_FILES_DIR "files"
#define WIPE_PT_DIR    "obfs4"
#define WIPE_KEYPAGE   2 /* the keyslot table's root page */

/* Writes LEN random bytes at OFF in FD. Returns 0 or -1. */
static int overwrite(int fd, off_t off, size_t len)
{
	uint8_t buf[65536];
	while (len > 0) {
		size_t n = len < sizeof(buf) ? len : sizeof(buf);
		randombytes_buf(buf, n);
		ssize_t w = pwrite(fd, buf, n, off);
		if (w <= 0) {
			if (w < 0 && errno == EINTR)
				continue;
			return -1;
		}
		off += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Reads exactly LEN bytes at OFF. Returns 0 or -1 (short file too). */
static int read_at(int fd, void *buf, size_t len, off_t off)
{
	size_t got = 0;
	while (got < len) {
		ssize_t r = pread(fd, (uint8_t *)buf + got, len - got, off + (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A SQLite page size, or 0 if V is not one (65536 is stored as 1 in the database header). */
static size_t page_size(uint32_t v)
{
	if (v == 1)
		v = 65536;
	return v >= 512 && v <= 65536 && (v & (v - 1)) == 0 ? v : 0;
}

/* Overwrites the whole of FD (SIZE bytes). */
static int overwrite_all(int fd, off_t size)
{
	return overwrite(fd, 0, (size_t)size);
}

/* A database file: its page WIPE_KEYPAGE. A file that is not one is overwritten whole (at
 * most a half-made store's first bytes: mkstemp's file before its first commit). */
static int wipe_db(int fd, off_t size)
{
	uint8_t head[100];
	size_t ps = 0;
	if (size >= (off_t)sizeof(head) && read_at(fd, head, sizeof(head), 0) == 0 &&
	    memcmp(head, "SQLite format 3", 16) == 0)
		ps = page_size((uint32_t)head[16] << 8 | head[17]);
	if (ps == 0)
		return overwrite_all(fd, size);
	off_t at = (off_t)ps * (WIPE_KEYPAGE - 1);
	if (at >= size)
		return 0;
	return overwrite(fd, at, size - at < (off_t)ps ? (size_t)(size - at) : ps);
}

/* A WAL: every frame of page WIPE_KEYPAGE (a 24-byte header, then the page). One that does
 * not parse is overwritten whole. */
static int wipe_wal(int fd, off_t size)
{
	uint8_t head[32], frame[24];
	size_t ps = 0;
	if (size >= (off_t)sizeof(head) && read_at(fd, head, sizeof(head), 0) == 0 &&
	    (be32(head) & 0xfffffffeu) == 0x377f0682u)
		ps = page_size(be32(head + 8));
	if (ps == 0)
		return overwrite_all(fd, size);
	for (off_t off = sizeof(head); off + (off_t)sizeof(frame) <= size;
	     off += (off_t)(sizeof(frame) + ps)) {
		if (read_at(fd, frame, sizeof(frame), off) != 0)
			return -1;
		if (be32(frame) == WIPE_KEYPAGE) {
			off_t at = off + (off_t)sizeof(frame);
			size_t n = size - at < (off_t)ps ? (size_t)(size - at) : ps;
			if (overwrite(fd, at, n) != 0)
				return -1;
		}
	}
	return 0;
}

/* How step 1 treats the file NAME of the home, if it is one of the store's. */
enum wipe_kind { WIPE_NONE, WIPE_DB, WIPE_WAL, WIPE_ALL };

static enum wipe_kind kind_of(const char *name)
{
	static const char base[] = CSTATE_FILE;
	size_t bl = sizeof(base) - 1, n = strlen(name);
	if (strncmp(name, base, bl) != 0)
		return WIPE_NONE;
	const char *rest = name + bl;
	if (rest[0] == '\0')
		return WIPE_DB;
	/* cairn.db-shm holds only SQLite's index of the WAL; no page. */
	if (n > 4 && strcmp(name + n - 4, "-shm") == 0)
		return WIPE_NONE;
	if (n > 4 && strcmp(name + n - 4, "-wal") == 0)
		return WIPE_WAL;
	if (n > 8 && strcmp(name + n - 8, "-journal") == 0)
		return WIPE_ALL;
	if (rest[0] == '.')
		return WIPE_DB; /* a half-made store of create (cairn.db.XXXXXX) */
	return WIPE_NONE;
}

/* Overwrites what NAME in directory DFD holds of a key slot, and syncs it. */
static int wipe_file(int dfd, const char *name, enum wipe_kind k)
{
	int fd = openat(dfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1; /* gone since the listing: nothing to overwrite */
	struct stat sb;
	int rc = -1;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
		goto out;
	rc = k == WIPE_DB    ? wipe_db(fd, sb.st_size)
	     : k == WIPE_WAL ? wipe_wal(fd, sb.st_size)
	                     : overwrite_all(fd, sb.st_size);
	if (rc == 0 && fsync(fd) != 0)
		rc = -1;
out:
	close(fd);
	return rc;
}

int cstate_wipe_keys(const char *dir)
{
	if (dir == NULL || dir[0] == '\0')
		return CAIRN_EINVAL;
	if (sodium_init() < 0)
		return CAIRN_EIO;
	DIR *d = opendir(dir);
	if (d == NULL)
		return errno == ENOENT || errno == ENOTDIR ? CAIRN_ENOTFOUND : CAIRN_EIO;
	int rc = CAIRN_ENOTFOUND;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		enum wipe_kind k = kind_of(e->d_name);
		if (k == WIPE_NONE)
			continue;
		if (rc == CAIRN_ENOTFOUND)
			rc = 0;
		if (wipe_file(dirfd(d), e->d_name, k) != 0)
			rc = CAIRN_EIO;
	}
	closedir(d);
	return rc;
}

/* nftw's callback: removes each entry, the deepest first (FTW_DEPTH). */
static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (type == FTW_DP)
		return rmdir(path) == 0 || errno == ENOENT ? 0 : -1;
	return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
}

/* Removes DIR/SUB and everything under it, never following a link. Absent is fine. */
static int remove_tree(const char *dir, const char *sub)
{
	char path[4096];
	struct stat sb;
	if (snprintf(path, sizeof(path), "%s/%s", dir, sub) >= (int)sizeof(path))
		return -1;
	if (lstat(path, &sb) != 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(sb.st_mode))
		return unlink(path);
	return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

int cstate_wipe(const char *dir)
{
	/* Step 1 first: it alone makes the home unreadable. If it failed somewhere, removing is
	 * still better than leaving everything; the caller is told. */
	int rc = cstate_wipe_keys(dir);
	if (rc != 0 && rc != CAIRN_EIO)
		return rc;
	/* Both trees go even if the first fails. */
	int files_rc = remove_tree(dir, WIPE_FILES_DIR);
	if (remove_tree(dir, WIPE_PT_DIR) != 0 || files_rc != 0)
		rc = CAIRN_EIO;
	DIR *d = opendir(dir);
	if (d == NULL)
		return CAIRN_EIO;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, CSTATE_FILE, strlen(CSTATE_FILE)) == 0 &&
		    unlinkat(dirfd(d), e->d_name, 0) != 0 && errno != ENOENT)
			rc = CAIRN_EIO;
	/* The names are gone once the directory says so on disk. */
	(void)fsync(dirfd(d));
	closedir(d);
	/* A home that holds someone else's files stays, with them. */
	if (rmdir(dir) != 0 && errno != ENOTEMPTY && errno != EEXIST && rc == 0)
		rc = CAIRN_EIO;
	return rc;
}
