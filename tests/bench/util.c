/* SPDX-License-Identifier: MIT */
/*
 * Small helpers for cairn-bench: the clock, progress notes, a process's memory and CPU time
 * from /proc, and latency samples with percentiles.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_note(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("cairn-bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

uint64_t bench_proc_rss(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	long kb = -1;
	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	if (f != NULL)
		fclose(f);
	return kb < 0 ? 0 : (uint64_t)kb * 1024;
}

double bench_proc_cpu_s(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold spaces: fields are counted after its closing parenthesis. */
	const char *p = strrchr(buf, ')');
	unsigned long utime = 0, stime = 0;
	if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
	                        &utime, &stime) != 2)
		return -1;
	return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

double bench_self_cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

void lat_add(struct lat_samples *s, uint64_t ns)
{
	if (s->len == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 65536;
		uint32_t *p = realloc(s->v, ncap * sizeof(*p));
		if (p == NULL)
			return; /* a lost sample only thins the distribution */
		s->v = p;
		s->cap = ncap;
	}
	s->v[s->len++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

double lat_percentile_us(struct lat_samples *s, double q)
{
	if (s->len == 0)
		return 0;
	qsort(s->v, s->len, sizeof(*s->v), cmp_u32);
	size_t i = (size_t)(q * (double)(s->len - 1) + 0.5);
	return (double)s->v[i] / 1000.0;
}

void lat_reset(struct lat_samples *s)
{
	s->len = 0;
}

void lat_free(struct lat_samples *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}
