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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "procscan.h"
#include "relayctl.h"

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

static const char *mark_cmd; /* --mark */

void bench_mark_set(const char *cmd)
{
	mark_cmd = cmd;
}

void bench_mark(pid_t server, uint64_t envelopes, const char *fmt, ...)
{
	if (mark_cmd == NULL)
		return;
	char label[64], pid[24], count[24];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(label, sizeof(label), fmt, ap);
	va_end(ap);
	snprintf(pid, sizeof(pid), "%d", (int)server);
	snprintf(count, sizeof(count), "%llu", (unsigned long long)envelopes);
	char *argv[] = {(char *)mark_cmd, label, pid, count, NULL};
	pid_t child = relayctl_exec(argv, NULL);
	int status;
	if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		bench_note("--mark %s failed", label);
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

void lat_fill(struct lat_samples *s, struct online_run *out)
{
	out->p50_us = lat_percentile_us(s, 0.50);
	out->p99_us = lat_percentile_us(s, 0.99);
	out->p999_us = lat_percentile_us(s, 0.999);
	out->max_us = lat_percentile_us(s, 1.0);
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

void durable_times(struct durable_result *out, uint64_t sent, uint64_t t0, uint64_t t1, uint64_t t2,
                   double cpu0, double cpu1, double cpu2)
{
	out->send_s = (double)(t1 - t0) / 1e9;
	out->send_rate = (double)sent / out->send_s;
	out->send_relay_cpu = (cpu1 - cpu0) / out->send_s;
	out->drain_s = (double)(t2 - t1) / 1e9;
	out->drain_rate = (double)sent / out->drain_s;
	out->drain_relay_cpu = (cpu2 - cpu1) / out->drain_s;
}

void phase_begin(struct bench_phase *ph, pid_t server, double warmup_s, double duration_s)
{
	memset(ph, 0, sizeof(*ph));
	ph->server = server;
	ph->from = bench_now_ns() + (uint64_t)(warmup_s * 1e9);
	ph->to = ph->from + (uint64_t)(duration_s * 1e9);
}

bool phase_tick(struct bench_phase *ph, uint64_t now)
{
	if (!ph->measuring && now >= ph->from && now < ph->to) {
		ph->measuring = true;
		ph->server_cpu0 = proc_cpu_s(ph->server);
		ph->gen_cpu0 = bench_self_cpu_s();
	}
	if (now < ph->to)
		return true;
	if (ph->measuring) {
		ph->server_cpu1 = proc_cpu_s(ph->server);
		ph->gen_cpu1 = bench_self_cpu_s();
		ph->measuring = false;
	}
	return false;
}

bool phase_counts(const struct bench_phase *ph, uint64_t now)
{
	return ph->measuring && now >= ph->from && now < ph->to;
}

void phase_cpu(const struct bench_phase *ph, struct online_run *out)
{
	double s = (double)(ph->to - ph->from) / 1e9;
	out->relay_cpu = (ph->server_cpu1 - ph->server_cpu0) / s;
	out->gen_cpu = (ph->gen_cpu1 - ph->gen_cpu0) / s;
}

int fan_init(struct fan_window *w, uint32_t cap, uint32_t members)
{
	memset(w, 0, sizeof(*w));
	w->count = calloc(cap, sizeof(*w->count));
	if (w->count == NULL)
		return -1;
	w->cap = cap;
	w->members = members;
	return 0;
}

void fan_got(struct fan_window *w, uint64_t seq)
{
	if (seq < w->done || seq - w->done >= w->cap)
		return;
	w->count[seq % w->cap]++;
	/* Receivers go in order, so the oldest message is the one to complete first. */
	while (w->count[w->done % w->cap] == w->members) {
		w->count[w->done % w->cap] = 0;
		w->done++;
	}
}

void fan_free(struct fan_window *w)
{
	free(w->count);
	memset(w, 0, sizeof(*w));
}

void bench_put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

uint64_t bench_get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}
