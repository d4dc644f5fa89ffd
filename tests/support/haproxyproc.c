/* SPDX-License-Identifier: MIT */
/*
 * The haproxy harness (haproxyproc.h): the config written by haproxyproc_config, haproxy run
 * with -db (foreground, a child of the test), and its stats socket read with `show stat`.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "haproxyproc.h"
#include "relayproc.h"

#define HAPROXY_BIN "/usr/sbin/haproxy"

/* The balancers running (copies: a failed test's own struct is gone by the exit), stopped at
 * the exit of the process that started them. */
static struct haproxyproc running[8];
static pid_t running_owner;

static void stop_forgotten(void)
{
	if (getpid() != running_owner)
		return;
	for (size_t i = 0; i < sizeof(running) / sizeof(running[0]); i++)
		if (running[i].pid > 0) {
			struct haproxyproc h = running[i];
			haproxyproc_stop(&h);
		}
}

/* Records H as running (ON) or stopped. */
static void track(const struct haproxyproc *h, bool on)
{
	static bool registered;
	if (!registered) {
		registered = true;
		running_owner = getpid();
		atexit(stop_forgotten);
	}
	for (size_t i = 0; i < sizeof(running) / sizeof(running[0]); i++) {
		if (on && running[i].pid <= 0) {
			running[i] = *h;
			return;
		}
		if (!on && running[i].pid == h->pid && h->pid > 0)
			running[i].pid = 0;
	}
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

int haproxyproc_config(char *out, size_t cap, uint16_t port, const uint16_t *ports, size_t n,
                       const char *balance, const char *sock)
{
	/* No maxconn: haproxy derives it from its file limit (LimitNOFILE). Timeouts: a
	 * subscribed owner may be silent for long (the relay's own keepalives cut the dead), so
	 * client/server are an hour; connect is short so a dead node costs a client little. The
	 * check is a TCP connect: a node accepts as soon as it serves. A client connecting to a
	 * node that died before the checks marked it down is retried on another (redispatch). */
	int len = snprintf(out, cap,
	                   "global\n"
	                   "    stats socket %s mode 600 level admin\n"
	                   "defaults\n"
	                   "    mode tcp\n"
	                   "    timeout connect 2s\n"
	                   "    timeout client 1h\n"
	                   "    timeout server 1h\n"
	                   "    retries 2\n"
	                   "    option redispatch 1\n"
	                   "listen cairn\n"
	                   "    bind 127.0.0.1:%u\n"
	                   "    balance %s\n"
	                   "    default-server check inter %dms fall 2 rise 2 "
	                   "on-marked-down shutdown-sessions\n",
	                   sock, port, balance, HAPROXYPROC_INTER_MS);
	for (size_t i = 0; i < n && len >= 0 && (size_t)len < cap; i++)
		len += snprintf(out + len, cap - (size_t)len, "    server n%zu 127.0.0.1:%u\n",
		                i + 1, ports[i]);
	return len >= 0 && (size_t)len < cap ? len : -1;
}

static void show_log(const struct haproxyproc *h)
{
	char path[300], buf[4096];
	snprintf(path, sizeof(path), "%s/haproxy.log", h->dir);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return;
	size_t len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';
	fprintf(stderr, "haproxy's log:\n%s\n", buf);
}

/* Sends CMD to the stats socket and reads the whole answer into OUT. Returns its length or
 * -1. */
static long admin(const struct haproxyproc *h, const char *cmd, char *out, size_t cap)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/admin.sock", h->dir) >=
	    sizeof(sa.sun_path))
		return -1;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct timeval tv = {2, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	size_t len = 0;
	long rc = -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    write(fd, cmd, strlen(cmd)) == (ssize_t)strlen(cmd)) {
		ssize_t got;
		while (len + 1 < cap && (got = read(fd, out + len, cap - 1 - len)) > 0)
			len += (size_t)got;
		out[len] = '\0';
		rc = (long)len;
	}
	close(fd);
	return rc;
}

int haproxyproc_up(const struct haproxyproc *h, bool up[HAPROXYPROC_MAX])
{
	static char text[65536];
	if (h->pid <= 0 || admin(h, "show stat\n", text, sizeof(text)) <= 0 ||
	    strncmp(text, "# ", 2) != 0)
		return -1;
	/* The header names the columns: find "status". */
	int status_col = -1, col = 0;
	for (const char *p = text + 2; *p != '\n' && *p != '\0'; col++) {
		size_t fl = strcspn(p, ",\n");
		if (fl == 6 && strncmp(p, "status", 6) == 0)
			status_col = col;
		p += fl;
		if (*p == ',')
			p++;
	}
	if (status_col < 0)
		return -1;
	int count = 0;
	for (size_t i = 0; i < h->n; i++)
		up[i] = false;
	for (char *line = strchr(text, '\n'); line != NULL && line[1] != '\0';
	     line = strchr(line + 1, '\n')) {
		const char *p = line + 1;
		unsigned idx;
		int used = 0;
		if (sscanf(p, "cairn,n%u,%n", &idx, &used) != 1 || used == 0 || idx < 1 ||
		    idx > h->n)
			continue;
		for (col = 0; col < status_col && p != NULL; col++) {
			p = strpbrk(p, ",\n");
			p = p != NULL && *p == ',' ? p + 1 : NULL;
		}
		if (p != NULL && strncmp(p, "UP", 2) == 0) {
			up[idx - 1] = true;
			count++;
		}
	}
	return count;
}

long haproxyproc_wait(const struct haproxyproc *h, size_t i, bool want, int timeout_ms)
{
	int64_t start = mono_ms();
	for (;;) {
		bool up[HAPROXYPROC_MAX];
		if (haproxyproc_up(h, up) >= 0 && up[i] == want)
			return (long)(mono_ms() - start);
		if (mono_ms() - start > timeout_ms)
			return -1;
		sleep_ms(20);
	}
}

static bool port_open(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

int haproxyproc_start(struct haproxyproc *h, const uint16_t *ports, size_t n, const char *balance)
{
	memset(h, 0, sizeof(*h));
	if (access(HAPROXY_BIN, X_OK) != 0) {
		fprintf(stderr, "haproxyproc: %s is missing (apt-get install haproxy)\n",
		        HAPROXY_BIN);
		return 1;
	}
	if (n < 1 || n > HAPROXYPROC_MAX)
		return -1;
	h->n = n;
	snprintf(h->dir, sizeof(h->dir), "/tmp/cairn-haproxy-XXXXXX");
	if (mkdtemp(h->dir) == NULL) {
		h->dir[0] = '\0';
		return -1;
	}
	h->port = loopback_free_port();
	char sock[300], cfg[300], log[300], text[4096];
	snprintf(sock, sizeof(sock), "%s/admin.sock", h->dir);
	snprintf(cfg, sizeof(cfg), "%s/haproxy.cfg", h->dir);
	snprintf(log, sizeof(log), "%s/haproxy.log", h->dir);
	if (h->port == 0 ||
	    haproxyproc_config(text, sizeof(text), h->port, ports, n, balance, sock) < 0)
		return -1;
	FILE *f = fopen(cfg, "w");
	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(HAPROXY_BIN, HAPROXY_BIN, "-db", "-f", cfg, (char *)NULL);
		_exit(127);
	}
	h->pid = pid;
	track(h, true);
	char probe[256];
	for (int64_t start = mono_ms(); mono_ms() - start < 10000; sleep_ms(20)) {
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			track(h, false);
			h->pid = 0;
			fprintf(stderr, "haproxyproc: haproxy exited at start\n");
			show_log(h);
			return -1;
		}
		if (port_open(h->port) && admin(h, "show info\n", probe, sizeof(probe)) > 0)
			return 0;
	}
	fprintf(stderr, "haproxyproc: haproxy did not start within 10 s\n");
	show_log(h);
	return -1;
}

void haproxyproc_stop(struct haproxyproc *h)
{
	track(h, false);
	if (h->pid > 0) {
		kill(h->pid, SIGTERM);
		int status;
		int64_t start = mono_ms();
		while (waitpid(h->pid, &status, WNOHANG) != h->pid) {
			if (mono_ms() - start > 5000) {
				kill(h->pid, SIGKILL);
				waitpid(h->pid, &status, 0);
				break;
			}
			sleep_ms(10);
		}
		h->pid = 0;
	}
	if (h->dir[0] != '\0') {
		test_rm_tree(h->dir);
		h->dir[0] = '\0';
	}
}
