/* SPDX-License-Identifier: MIT */
/*
 * Runs the power-cut file system (tests/tools/cutfs.c, CAIRN_CUTFS_BIN) for a test: mounts a
 * backing directory on a mount point, cuts the power on command, and unmounts, also when the
 * test fails (the caller's teardown calls cutfsproc_unmount).
 */
#ifndef CAIRN_TEST_CUTFSPROC_H
#define CAIRN_TEST_CUTFSPROC_H

#include <sys/types.h>

struct cutfsproc {
	pid_t pid;     /* the cutfs process, 0 when not mounted */
	char mnt[256]; /* the mount point */
	char log[280]; /* cutfs's stderr, beside the backing directory */
};

/*
 * Mounts BACKING (an existing directory) on MNT (an existing empty directory) and waits until
 * the mount answers. Returns 0; 1 if the kernel refuses FUSE here (no /dev/fuse, or mounting
 * not permitted: the reason is on stderr, the caller skips); -1 on any other failure.
 */
int cutfsproc_mount(struct cutfsproc *c, const char *backing, const char *mnt);
/*
 * The power cut: flushes the kernel's dirty pages of the mount into cutfs (they were never
 * fsynced, so they go with the rest), then discards everything not made durable by an fsync.
 * The processes using the mount must be dead. Returns 0, or -1 if cutfs could not undo
 * something (its stderr says what).
 */
int cutfsproc_cut(struct cutfsproc *c);
/* Unmounts and waits for cutfs to exit; does nothing if not mounted. */
void cutfsproc_unmount(struct cutfsproc *c);

#endif
