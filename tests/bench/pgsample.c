/* SPDX-License-Identifier: MIT */
/* A PostgreSQL server's CPU and WAL, read from outside (see pgsample.h). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "pgsample.h"
#include "procscan.h"

double pgsample_cpu_s(pid_t pm)
{
	pid_t ppid;
	unsigned long long own, children;
	if (pm <= 0 || proc_stat(pm, &ppid, &own, &children) != 0)
		return -1;
	unsigned long long ticks = own + children;
	DIR *d = opendir("/proc");
	if (d == NULL)
		return -1;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		unsigned long long c_own, c_children;
		/* A child's own reaped children (none in PostgreSQL) would be in its cutime. */
		if (*end == '\0' && pid > 0 && pid != pm &&
		    proc_stat((pid_t)pid, &ppid, &c_own, &c_children) == 0 && ppid == pm)
			ticks += c_own + c_children;
	}
	closedir(d);
	return (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

int pgsample_wal(const struct pgproc *p, uint64_t *out)
{
	char text[64];
	if (pgproc_sql(p, "SELECT pg_current_wal_lsn() - '0/0'", text, sizeof(text)) != 0)
		return -1;
	char *end;
	unsigned long long v = strtoull(text, &end, 10);
	/* numeric, printed without a fraction */
	if (end == text || *end != '\0')
		return -1;
	*out = v;
	return 0;
}
