/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "procscan.h"

size_t proc_children(pid_t parent, pid_t *out, size_t cap)
{
	DIR *d = opendir("/proc");
	if (d == NULL)
		return 0;
	size_t n = 0;
	for (struct dirent *e; n < cap && (e = readdir(d)) != NULL;) {
		pid_t pid = (pid_t)atoi(e->d_name);
		if (pid <= 0)
			continue;
		char path[64], stat[512];
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
		FILE *f = fopen(path, "r");
		if (f == NULL)
			continue;
		size_t len = fread(stat, 1, sizeof(stat) - 1, f);
		fclose(f);
		stat[len] = '\0';
		/* "pid (comm) state ppid ...": comm may hold anything but ends at the last ')'. */
		const char *rp = strrchr(stat, ')');
		char state;
		int ppid;
		if (rp != NULL && sscanf(rp + 1, " %c %d", &state, &ppid) == 2 && ppid == parent)
			out[n++] = pid;
	}
	closedir(d);
	return n;
}
