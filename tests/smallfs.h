/* SPDX-License-Identifier: MIT */
/*
 * A small real file system for the disk-full tests (test_it_diskfull*): an ext4 image on a
 * loop device, like a VPS's disk, mounted over a directory, and a filler file that takes its
 * free space from outside. Needs root (tests run as root in CI); where the kernel refuses the
 * mount, the caller skips with the reason. The mount is removed by smallfs_umount, by the
 * tests' teardown and, should a test end the process, at exit.
 */
#ifndef CAIRN_TEST_SMALLFS_H
#define CAIRN_TEST_SMALLFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct smallfs {
	char img[300]; /* the image file, outside the mount */
	char mnt[300]; /* where it is mounted */
	bool mounted;
};

/*
 * Makes an ext4 image of MIB MiB (no blocks kept for root, so root fills it like anyone) in a
 * fresh temporary directory and mounts it over MNT, an existing directory, whose contents are
 * copied onto it first (so a relay's data directory or a home keeps its files) and which is
 * left mode 0700. Returns 0, 1 if the kernel refused the mount (WHY says why: skip), or -1
 * (WHY says what failed: a failure).
 */
int smallfs_mount(struct smallfs *fs, const char *mnt, unsigned mib, char *why, size_t cap);
/* Unmounts (lazily if still busy), detaches the loop device and removes the image. Accepts an
 * unmounted one. */
void smallfs_umount(struct smallfs *fs);
/* Writes PATH until the file system is full (ENOSPC), synced. Returns the bytes written. */
uint64_t smallfs_fill(const char *path);
/* Free space of the file system holding DIR, for an unprivileged user, in bytes. */
uint64_t smallfs_free(const char *dir);

#endif
