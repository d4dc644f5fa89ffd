/* SPDX-License-Identifier: MIT */
/*
 * The processes of `cairn-bench files` (files.h): the real `cairn` command run as a person
 * would, with its wall time and CPU from wait4(); the raw TCP copy that is the limit beside
 * it; and the benchmark's files (random content, compared by digest).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "files.h"

#define COPY_BUF (256 * 1024)

static double tv_s(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static double ru_cpu_s(const struct rusage *ru)
{
	return tv_s(ru->ru_utime) + tv_s(ru->ru_stime);
}

/* Waits for PID; its exit status (or 128 + signal) and its CPU into *CPU_S. */
static int wait_cpu(pid_t pid, double *cpu_s)
{
	int st = 0;
	struct rusage ru;
	memset(&ru, 0, sizeof(ru));
	while (wait4(pid, &st, 0, &ru) < 0)
		if (errno != EINTR)
			return -1;
	*cpu_s = ru_cpu_s(&ru);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int files_cli(const char *cli, const char *home, const char *const *args, char *out, size_t cap,
              struct files_cost *cost)
{
	size_t n = 0;
	while (args[n] != NULL)
		n++;
	const char **argv = calloc(n + 4, sizeof(*argv));
	int p[2];
	if (argv == NULL || pipe(p) != 0) {
		free(argv);
		return -1;
	}
	argv[0] = cli;
	argv[1] = "--home";
	argv[2] = home;
	memcpy(argv + 3, args, n * sizeof(*argv));
	uint64_t t0 = bench_now_ns();
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(p[1], 1);
		close(p[0]);
		/* The benchmark's homes: a fixed passphrase, hashed cheaply (the cost measured is
		 * the transfer's, not Argon2id's at each start). */
		setenv("CAIRN_PASSPHRASE", "correct horse battery staple", 1);
		setenv("CAIRN_PWHASH_FAST", "1", 1);
		execv(cli, (char *const *)argv);
		_exit(127);
	}
	free(argv);
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return -1;
	}
	size_t len = 0;
	char buf[4096];
	ssize_t r;
	while ((r = read(p[0], buf, sizeof(buf))) > 0 || (r < 0 && errno == EINTR))
		for (ssize_t i = 0; i < r && out != NULL && len + 1 < cap; i++)
			out[len++] = buf[i];
	if (out != NULL && cap > 0)
		out[len] = '\0';
	close(p[0]);
	double cpu;
	int st = wait_cpu(pid, &cpu);
	if (cost != NULL)
		*cost = (struct files_cost){(double)(bench_now_ns() - t0) / 1e9, cpu};
	return st;
}

/* Writes all of LEN bytes at P to FD. Returns 0 or -1. */
static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Copies everything readable from IN to OUT. Returns 0 or -1. */
static int pump(int in, int out)
{
	static uint8_t buf[COPY_BUF];
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		if (write_all(out, buf, (size_t)n) != 0)
			return -1;
	}
}

int files_raw_copy(const char *src, const char *dst, struct files_cost *cost)
{
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t slen = sizeof(sa);
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(l, 1) != 0 ||
	    getsockname(l, (struct sockaddr *)&sa, &slen) != 0) {
		if (l >= 0)
			close(l);
		return -1;
	}
	uint64_t t0 = bench_now_ns();
	pid_t rx = fork();
	if (rx == 0) {
		int c = accept(l, NULL, NULL);
		int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		_exit(c >= 0 && out >= 0 && pump(c, out) == 0 && close(out) == 0 ? 0 : 1);
	}
	pid_t tx = rx > 0 ? fork() : -1;
	if (tx == 0) {
		int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int in = open(src, O_RDONLY | O_CLOEXEC);
		_exit(c >= 0 && in >= 0 && connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
		              pump(in, c) == 0 && close(c) == 0
		          ? 0
		          : 1);
	}
	close(l);
	double cpu_tx = 0, cpu_rx = 0;
	int st_tx = tx > 0 ? wait_cpu(tx, &cpu_tx) : -1;
	int st_rx = rx > 0 ? wait_cpu(rx, &cpu_rx) : -1;
	if (st_tx != 0 || st_rx != 0)
		return -1;
	cost->secs = (double)(bench_now_ns() - t0) / 1e9;
	cost->cpu_s = cpu_tx + cpu_rx;
	return 0;
}

int files_make(const char *path, uint64_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	uint8_t *buf = malloc(COPY_BUF);
	int rc = fd >= 0 && buf != NULL ? 0 : -1;
	for (uint64_t done = 0; rc == 0 && done < size;) {
		size_t n = size - done < COPY_BUF ? (size_t)(size - done) : COPY_BUF;
		randombytes_buf(buf, n);
		rc = write_all(fd, buf, n);
		done += n;
	}
	free(buf);
	if (fd >= 0 && close(fd) != 0)
		rc = -1;
	return rc;
}

static int digest(const char *path, uint8_t out[32])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint8_t *buf = malloc(COPY_BUF);
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, 32);
	ssize_t n = -1;
	while (fd >= 0 && buf != NULL && (n = read(fd, buf, COPY_BUF)) > 0)
		crypto_generichash_update(&st, buf, (size_t)n);
	crypto_generichash_final(&st, out, 32);
	free(buf);
	if (fd >= 0)
		close(fd);
	return n == 0 ? 0 : -1;
}

int files_same(const char *a, const char *b)
{
	uint8_t da[32], db[32];
	return digest(a, da) == 0 && digest(b, db) == 0 && sodium_memcmp(da, db, 32) == 0;
}
