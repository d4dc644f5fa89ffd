/* SPDX-License-Identifier: MIT */
/* The cutfs harness (see cutfsproc.h). CAIRN_CUTFS_BIN names the file system binary. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cutfsproc.h"

static void nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Whether cutfs's stderr says that the kernel refused the mount itself. */
static int log_says_refused(const char *log)
{
	char text[2048] = {0};
	FILE *f = fopen(log, "r");
	if (f == NULL)
		return 0;
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	return strstr(text, "ermission denied") != NULL ||
	       strstr(text, "peration not permitted") != NULL;
}

int cutfsproc_mount(struct cutfsproc *c, const char *backing, const char *mnt)
{
	memset(c, 0, sizeof(*c));
	if (strlen(mnt) >= sizeof(c->mnt))
		return -1;
	strcpy(c->mnt, mnt);
	snprintf(c->log, sizeof(c->log), "%s.cutfs-log", backing);
	int probe = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (probe < 0) {
		fprintf(stderr, "cutfs: FUSE is not available here (/dev/fuse: %s)\n",
		        strerror(errno));
		return 1;
	}
	close(probe);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(c->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd >= 0)
			dup2(fd, 2);
		/* Foreground and single-threaded; allow_other for a relay that drops root. */
		char *argv[] = {CAIRN_CUTFS_BIN,
		                (char *)backing,
		                (char *)mnt,
		                "-f",
		                "-s",
		                "-o",
		                "allow_other,default_permissions,fsname=cutfs",
		                NULL};
		execv(argv[0], argv);
		_exit(127);
	}
	c->pid = pid;
	char ctl[300];
	snprintf(ctl, sizeof(ctl), "%s/.cutfs-ctl", mnt);
	for (int waited = 0; waited < 20000; waited += 10) {
		struct stat st;
		if (stat(ctl, &st) == 0)
			return 0;
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			c->pid = 0;
			if (log_says_refused(c->log)) {
				fprintf(stderr,
				        "cutfs: the kernel refuses the FUSE mount here (see %s)\n",
				        c->log);
				return 1;
			}
			fprintf(stderr, "cutfs: exited before mounting (see %s)\n", c->log);
			return -1;
		}
		nap_ms(10);
	}
	cutfsproc_unmount(c);
	return -1;
}

int cutfsproc_cut(struct cutfsproc *c)
{
	char ctl[300];
	snprintf(ctl, sizeof(ctl), "%s/.cutfs-ctl", c->mnt);
	int dir = open(c->mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return -1;
	/* Dirty pages of shared mappings (SQLite's -shm) reach cutfs as writes now, not after
	 * the cut. */
	int rc = syncfs(dir);
	close(dir);
	int fd = open(ctl, O_RDWR | O_CLOEXEC);
	if (rc != 0 || fd < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	char out[160] = {0};
	unsigned long errors = 1;
	if (write(fd, "cut", 3) == 3 && pread(fd, out, sizeof(out) - 1, 0) > 0) {
		const char *e = strstr(out, "errors=");
		if (e != NULL)
			errors = strtoul(e + 7, NULL, 10);
	}
	close(fd);
	return errors == 0 ? 0 : -1;
}

void cutfsproc_unmount(struct cutfsproc *c)
{
	if (c->pid <= 0)
		return;
	/* The processes that used it are dead; a lazy unmount in case a release is late. */
	if (umount2(c->mnt, 0) != 0)
		umount2(c->mnt, MNT_DETACH);
	for (int waited = 0; waited < 10000; waited += 10) {
		int status;
		if (waitpid(c->pid, &status, WNOHANG) == c->pid) {
			c->pid = 0;
			return;
		}
		nap_ms(10);
	}
	kill(c->pid, SIGKILL);
	waitpid(c->pid, NULL, 0);
	umount2(c->mnt, MNT_DETACH);
	c->pid = 0;
}
