/* SPDX-License-Identifier: MIT */
/*
 * The metrics client (metrics_client.h): connect, send one request, read until the server
 * closes, all under one deadline (poll on a non-blocking socket).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cairn/error.h"
#include "metrics_client.h"

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for EVENTS on FD until DEADLINE. Returns 0 or CAIRN_ETIMEDOUT. */
static int wait_fd(int fd, short events, long long deadline)
{
	for (;;) {
		long long left = deadline - now_ms();
		if (left <= 0)
			return CAIRN_ETIMEDOUT;
		struct pollfd p = {.fd = fd, .events = events};
		int n = poll(&p, 1, (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return CAIRN_EIO;
	}
}

/* A non-blocking socket connected (or connecting) to A. Returns the fd or a CAIRN_E code. */
static int dial(const struct metrics_addr *a, long long deadline, char *err, size_t errcap)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	int family;
	if (a->unix_socket) {
		struct sockaddr_un *un = (struct sockaddr_un *)&ss;
		memset(un, 0, sizeof(*un));
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, a->path, strlen(a->path) + 1);
		sslen = sizeof(*un);
		family = AF_UNIX;
	} else {
		char port[8];
		snprintf(port, sizeof(port), "%u", a->port);
		struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
		struct addrinfo *res = NULL;
		if (getaddrinfo(a->host, port, &hints, &res) != 0 || res == NULL) {
			snprintf(err, errcap, "cannot resolve %s", a->host);
			return CAIRN_EIO;
		}
		memcpy(&ss, res->ai_addr, res->ai_addrlen);
		sslen = res->ai_addrlen;
		family = res->ai_family;
		freeaddrinfo(res);
	}
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errcap, "socket: %s", strerror(errno));
		return CAIRN_EIO;
	}
	int rc = connect(fd, (struct sockaddr *)&ss, sslen);
	if (rc != 0 && errno == EINPROGRESS) {
		rc = wait_fd(fd, POLLOUT, deadline);
		int soerr = 0;
		socklen_t len = sizeof(soerr);
		if (rc == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 &&
		    soerr != 0) {
			errno = soerr;
			rc = -1;
		} else if (rc != 0) {
			close(fd);
			snprintf(err, errcap, "connecting timed out");
			return CAIRN_ETIMEDOUT;
		}
	}
	if (rc != 0) {
		int e = errno;
		close(fd);
		snprintf(err, errcap, "nothing answers (%s)", strerror(e));
		return CAIRN_ECONNECT;
	}
	return fd;
}

int metrics_fetch(const struct metrics_addr *a, int timeout_ms, char **body, char *err,
                  size_t errcap)
{
	*body = NULL;
	long long deadline = now_ms() + timeout_ms;
	int fd = dial(a, deadline, err, errcap);
	if (fd < 0)
		return fd;
	static const char req[] = "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n";
	size_t off = 0;
	int rc = 0;
	while (rc == 0 && off < sizeof(req) - 1) {
		ssize_t n = send(fd, req + off, sizeof(req) - 1 - off, MSG_NOSIGNAL);
		if (n > 0)
			off += (size_t)n;
		else if (n < 0 && (errno == EAGAIN || errno == EINTR))
			rc = wait_fd(fd, POLLOUT, deadline);
		else
			rc = CAIRN_EIO;
	}
	char *buf = rc == 0 ? malloc(METRICS_CLIENT_MAX + 1) : NULL;
	size_t len = 0;
	if (rc == 0 && buf == NULL)
		rc = CAIRN_ENOMEM;
	while (rc == 0) {
		ssize_t n = recv(fd, buf + len, METRICS_CLIENT_MAX - len, 0);
		if (n > 0) {
			len += (size_t)n;
			if (len == METRICS_CLIENT_MAX)
				rc = CAIRN_EIO;
		} else if (n == 0) {
			break;
		} else if (errno == EAGAIN || errno == EINTR) {
			rc = wait_fd(fd, POLLIN, deadline);
		} else {
			rc = CAIRN_EIO;
		}
	}
	close(fd);
	if (rc != 0) {
		free(buf);
		snprintf(err, errcap, "%s",
		         rc == CAIRN_ETIMEDOUT ? "no answer in time"
		                               : "the answer could not be read");
		return rc;
	}
	buf[len] = '\0';
	char *sep = strstr(buf, "\r\n\r\n");
	if (strncmp(buf, "HTTP/1.", 7) != 0 || strlen(buf) < 12 ||
	    strncmp(buf + 9, "200", 3) != 0 || sep == NULL) {
		/* Whatever answered is not ours: show its first bytes, printable only. */
		buf[strcspn(buf, "\r\n")] = '\0';
		for (char *p = buf; *p != '\0'; p++)
			if (*p < 0x20 || *p > 0x7e)
				*p = '?';
		snprintf(err, errcap, "unexpected answer: %.40s", buf);
		free(buf);
		return CAIRN_EIO;
	}
	sep += 4;
	memmove(buf, sep, strlen(sep) + 1);
	*body = buf;
	return 0;
}
