/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procscan.h"

int proc_stat(pid_t pid, pid_t *ppid, unsigned long long *own, unsigned long long *children)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* "pid (comm) state ppid ...": comm may hold anything but ends at the last ')'. */
	const char *p = strrchr(buf, ')');
	int parent = 0;
	unsigned long long ut = 0, st = 0;
	long long cut = 0, cst = 0;
	if (p == NULL ||
	    sscanf(p + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %lld %lld", &parent,
	           &ut, &st, &cut, &cst) != 5)
		return -1;
	*ppid = parent;
	*own = ut + st;
	*children = (unsigned long long)(cut + cst);
	return 0;
}

double proc_cpu_s(pid_t pid)
{
	pid_t ppid;
	unsigned long long own, children;
	if (proc_stat(pid, &ppid, &own, &children) != 0)
		return -1;
	return (double)own / (double)sysconf(_SC_CLK_TCK);
}

size_t proc_children(pid_t parent, pid_t *out, size_t cap)
{
	DIR *d = opendir("/proc");
	if (d == NULL)
		return 0;
	size_t n = 0;
	for (struct dirent *e; n < cap && (e = readdir(d)) != NULL;) {
		pid_t pid = (pid_t)atoi(e->d_name), ppid;
		unsigned long long own, children;
		if (pid > 0 && proc_stat(pid, &ppid, &own, &children) == 0 && ppid == parent)
			out[n++] = pid;
	}
	closedir(d);
	return n;
}
