/* SPDX-License-Identifier: MIT */
/*
 * Relay logging. Each line is formatted into one buffer and written with a single write(), so
 * lines from the loop thread and the storage thread never interleave. A log file is replaced
 * under the same descriptor number with dup2(), which lets log_reopen() run while the other
 * thread logs, without a lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cairn/error.h"
#include "config.h"
#include "log.h"

/* A line longer than this is cut and marked; log lines are short sentences. */
#define LOG_LINE_MAX 1024

static _Atomic int log_level_now = LOG_INFO;
static _Atomic int log_fd = STDERR_FILENO;
static char log_path[RELAY_PATH_MAX]; /* "" while logging to stderr */

static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* Opens PATH for appending, private to the relay's user. Returns the descriptor or -1. */
static int log_file_open(const char *path)
{
	int fd;
	do {
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	} while (fd < 0 && errno == EINTR);
	return fd;
}

int log_open(enum log_level level, const char *path)
{
	atomic_store(&log_level_now, (int)level);
	if (path == NULL || path[0] == '\0') {
		log_close();
		return 0;
	}
	size_t len = strlen(path);
	if (len >= sizeof(log_path))
		return CAIRN_EIO;
	int fd = log_file_open(path);
	if (fd < 0)
		return CAIRN_EIO;
	int old = atomic_exchange(&log_fd, fd);
	if (old != STDERR_FILENO)
		close(old);
	memcpy(log_path, path, len + 1);
	return 0;
}

void log_reopen(void)
{
	int cur = atomic_load(&log_fd);
	if (cur == STDERR_FILENO || log_path[0] == '\0')
		return;
	int fd = log_file_open(log_path);
	if (fd < 0) {
		/* Keep writing to the old file: losing the log is worse than a stale name. */
		log_error("cannot reopen the log file: %s", strerror(errno));
		return;
	}
	/* dup2 swaps the file behind CUR atomically; a concurrent write goes to one or the other.
	 */
	if (dup2(fd, cur) < 0)
		log_error("cannot reopen the log file: %s", strerror(errno));
	close(fd);
}

void log_close(void)
{
	int old = atomic_exchange(&log_fd, STDERR_FILENO);
	if (old != STDERR_FILENO)
		close(old);
	log_path[0] = '\0';
}

enum log_level log_get_level(void)
{
	return (enum log_level)atomic_load(&log_level_now);
}

int log_level_parse(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcmp(name, "warning") == 0) {
		*out = LOG_WARN;
		return 0;
	}
	return CAIRN_EINVAL;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	if ((int)level > atomic_load(&log_level_now) || (int)level < 0)
		return;

	char line[LOG_LINE_MAX];
	/* To the minute, in UTC: precise times would help correlate traffic with users. */
	time_t now = time(NULL);
	struct tm tm;
	size_t n = 0;
	if (gmtime_r(&now, &tm) != NULL)
		n = strftime(line, sizeof(line), "%Y-%m-%d %H:%MZ ", &tm);
	int m = snprintf(line + n, sizeof(line) - n, "[%s] ", level_names[level]);
	if (m > 0)
		n += (size_t)m;

	size_t body = n;
	va_list ap;
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	if ((size_t)m >= sizeof(line) - n) {
		/* Truncated: mark it, keeping room for the newline. */
		n = sizeof(line) - 4;
		memcpy(line + n - 3, "...", 3);
	} else {
		n += (size_t)m;
	}
	/* One entry is one line: a control character in a message cannot forge another entry. */
	for (size_t i = body; i < n; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c < 0x20 || c == 0x7f)
			line[i] = '?';
	}
	line[n++] = '\n';

	int fd = atomic_load(&log_fd);
	const char *p = line;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* nowhere left to report it */
		p += w;
		n -= (size_t)w;
	}
}
