/* SPDX-License-Identifier: MIT */
/* The small file system of the disk-full tests (smallfs.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "smallfs.h"

/* Every mount this process made, removed at exit should a test end it early. */
#define SMALLFS_MAX 4
static struct smallfs *live[SMALLFS_MAX];
static bool atexit_set;

static void umount_all(void)
{
	for (int i = 0; i < SMALLFS_MAX; i++)
		if (live[i] != NULL)
			smallfs_umount(live[i]);
}

/* Runs a shell command made from FMT; returns its exit status (or -1). */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int st = system(cmd);
	return st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

int smallfs_mount(struct smallfs *fs, const char *mnt, unsigned mib, char *why, size_t cap)
{
	memset(fs, 0, sizeof(*fs));
	char base[] = "/tmp/cairn-smallfs-XXXXXX";
	if (mkdtemp(base) == NULL || strlen(mnt) >= sizeof(fs->mnt)) {
		snprintf(why, cap, "cannot make a temporary directory");
		return -1;
	}
	snprintf(fs->img, sizeof(fs->img), "%s/fs.img", base);
	snprintf(fs->mnt, sizeof(fs->mnt), "%s", mnt);
	int fd = open(fs->img, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)mib << 20) != 0) {
		if (fd >= 0)
			close(fd);
		snprintf(why, cap, "cannot make the image file: %s", strerror(errno));
		return -1;
	}
	close(fd);
	/* A missing mkfs.ext4 is a failure (e2fsprogs is in scripts/install-deps.sh). */
	if (run("mkfs.ext4 -q -F -m 0 '%s' >/dev/null 2>&1", fs->img) != 0) {
		snprintf(why, cap, "mkfs.ext4 failed on %s", fs->img);
		return -1;
	}
	/* The directory's files go onto the new file system: copied aside, mounted, back. */
	char aside[340];
	snprintf(aside, sizeof(aside), "%s/aside", base);
	if (run("cp -a '%s' '%s'", mnt, aside) != 0) {
		snprintf(why, cap, "cannot copy %s aside", mnt);
		return -1;
	}
	if (run("mount -o loop '%s' '%s' 2>/dev/null", fs->img, mnt) != 0) {
		snprintf(why, cap,
		         "mount -o loop of an ext4 image was refused (not root, or no loop "
		         "devices here)");
		run("rm -rf '%s'", base);
		return 1;
	}
	fs->mounted = true;
	for (int i = 0; i < SMALLFS_MAX; i++) {
		if (live[i] == NULL) {
			live[i] = fs;
			break;
		}
	}
	if (!atexit_set) {
		atexit(umount_all);
		atexit_set = true;
	}
	if (run("cp -a '%s'/. '%s' && rm -rf '%s'/lost+found", aside, mnt, mnt) != 0 ||
	    run("chmod 0700 '%s' && rm -rf '%s'", mnt, aside) != 0) {
		snprintf(why, cap, "cannot copy the directory onto the new file system");
		return -1;
	}
	return 0;
}

void smallfs_umount(struct smallfs *fs)
{
	for (int i = 0; i < SMALLFS_MAX; i++)
		if (live[i] == fs)
			live[i] = NULL;
	if (fs->mounted) {
		/* mount -o loop set autoclear: the unmount frees the loop device; losetup -d is
		 * for one left behind by a lazy unmount. */
		if (run("umount '%s' 2>/dev/null", fs->mnt) != 0)
			run("umount -l '%s' 2>/dev/null", fs->mnt);
		run("for d in $(losetup -j '%s' -O NAME -n 2>/dev/null); do losetup -d $d; done",
		    fs->img);
		fs->mounted = false;
	}
	if (fs->img[0] != '\0') {
		char base[300];
		snprintf(base, sizeof(base), "%s", fs->img);
		char *slash = strrchr(base, '/');
		if (slash != NULL)
			*slash = '\0';
		run("rm -rf '%s'", base);
		fs->img[0] = '\0';
	}
}

uint64_t smallfs_fill(const char *path)
{
	static char block[1 << 20];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return 0;
	uint64_t total = 0;
	/* Large writes first, then smaller ones for the last blocks, down to one block. */
	for (size_t chunk = sizeof(block); chunk >= 4096; chunk /= 4) {
		ssize_t n;
		while ((n = write(fd, block, chunk)) > 0)
			total += (uint64_t)n;
	}
	(void)fsync(fd);
	close(fd);
	return total;
}

uint64_t smallfs_free(const char *dir)
{
	struct statvfs st;
	if (statvfs(dir, &st) != 0)
		return 0;
	return (uint64_t)st.f_bavail * st.f_frsize;
}
