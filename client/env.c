/* SPDX-License-Identifier: MIT */
/*
 * The client's real environment (env.h): clocks, libsodium's generator, and TCP connects that
 * are non-blocking from the first moment, so a connect timeout bounds the wait for the SYN's
 * answer too. Name resolution (getaddrinfo) cannot be bounded; the system resolver's own
 * timeouts apply, and with a proxy only the proxy's own name is resolved.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "cairn/error.h"
#include "env.h"
#include "fdio.h"

static int64_t env_mono_ms(void *ctx)
{
	(void)ctx;
	return fdio_now_ms();
}

static int64_t env_wall_s(void *ctx)
{
	(void)ctx;
	return (int64_t)time(NULL);
}

static void env_random(void *ctx, void *buf, size_t len)
{
	(void)ctx;
	randombytes_buf(buf, len);
}

/* Sets O_NONBLOCK and FD_CLOEXEC (SOCK_CLOEXEC is not in POSIX.1-2008). */
static int prepare_fd(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
		return -1;
	int fdfl = fcntl(fd, F_GETFD);
	if (fdfl < 0 || fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) != 0)
		return -1;
	return 0;
}

/* One non-blocking connect to AI, bounded by DEADLINE. Returns 0 with *FD set, or an error. */
static int dial_one(const struct addrinfo *ai, int64_t deadline, int *fd)
{
	int s = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
	if (s < 0)
		return CAIRN_ECONNECT;
	int rc = CAIRN_ECONNECT;
	if (prepare_fd(s) != 0)
		goto fail;
	if (connect(s, ai->ai_addr, ai->ai_addrlen) != 0) {
		if (errno != EINPROGRESS && errno != EINTR)
			goto fail;
		if ((rc = fdio_wait(s, POLLOUT, deadline)) != 0)
			goto fail;
		int err = 0;
		socklen_t elen = sizeof(err);
		if (getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0) {
			rc = CAIRN_ECONNECT;
			goto fail;
		}
	}
	/* Commands are small and latency matters more than segment count. */
	int one = 1;
	(void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	*fd = s;
	return 0;
fail:
	close(s);
	return rc == CAIRN_ETIMEDOUT ? rc : CAIRN_ECONNECT;
}

/* Resolves HOST and tries each address in turn until one accepts or the time is up. */
static int env_connect(void *ctx, const char *host, uint16_t port, bool numeric, int timeout_ms,
                       int *fd)
{
	(void)ctx;
	int64_t deadline = fdio_now_ms() + timeout_ms;
	struct addrinfo hints, *res = NULL;
	char service[8];
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (numeric ? AI_NUMERICHOST : 0);
	snprintf(service, sizeof(service), "%u", (unsigned)port);
	if (getaddrinfo(host, service, &hints, &res) != 0 || res == NULL)
		return CAIRN_ECONNECT;
	int rc = CAIRN_ECONNECT;
	for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		rc = dial_one(ai, deadline, fd);
		if (rc == 0 || rc == CAIRN_ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	return rc;
}

const struct client_env *env_default(void)
{
	static const struct client_env real = {.mono_ms = env_mono_ms,
	                                       .wall_s = env_wall_s,
	                                       .random = env_random,
	                                       .connect = env_connect};
	return &real;
}
