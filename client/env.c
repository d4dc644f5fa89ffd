/* SPDX-License-Identifier: MIT */
/*
 * The client's real environment (env.h): clocks, libsodium's generator, and TCP connects that
 * are non-blocking from the first moment and returned while still in progress, so the caller
 * (client/net.c) bounds the wait for the SYN's answer by its own deadline. Name resolution
 * (getaddrinfo) cannot be bounded; the system resolver's own timeouts apply, and with a proxy
 * only the proxy's own name is resolved.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
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

/* Starts a non-blocking connect to AI: 0 with *FD connected or connecting, or
 * CAIRN_ECONNECT when it fails at once. */
static int dial_one(const struct addrinfo *ai, int *fd)
{
	int s = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
	if (s < 0)
		return CAIRN_ECONNECT;
	if (prepare_fd(s) != 0 || (connect(s, ai->ai_addr, ai->ai_addrlen) != 0 &&
	                           errno != EINPROGRESS && errno != EINTR)) {
		close(s);
		return CAIRN_ECONNECT;
	}
	*fd = s;
	return 0;
}

/* Resolves HOST (each attempt anew: a second attempt follows only a failed one) and starts
 * connecting to its ATTEMPT-th address. */
static int env_connect(void *ctx, const char *host, uint16_t port, bool numeric, int attempt,
                       int *fd)
{
	(void)ctx;
	struct addrinfo hints, *res = NULL;
	char service[8];
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (numeric ? AI_NUMERICHOST : 0);
	snprintf(service, sizeof(service), "%u", (unsigned)port);
	if (attempt < 0 || getaddrinfo(host, service, &hints, &res) != 0 || res == NULL)
		return CAIRN_ENOTFOUND;
	const struct addrinfo *ai = res;
	for (int i = 0; ai != NULL && i < attempt; i++)
		ai = ai->ai_next;
	int rc = ai != NULL ? dial_one(ai, fd) : CAIRN_ENOTFOUND;
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
