/* SPDX-License-Identifier: MIT */
/* Deadline-bounded blocking socket I/O (see fdio.h). */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include "cairn/error.h"
#include "fdio.h"

int64_t fdio_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int fdio_left_ms(int64_t deadline)
{
	int64_t left = deadline - fdio_now_ms();
	if (left < 0)
		return 0;
	return left > INT32_MAX ? INT32_MAX : (int)left;
}

int fdio_wait(int fd, short events, int64_t deadline)
{
	for (;;) {
		int wait = deadline < 0 ? -1 : fdio_left_ms(deadline);
		struct pollfd pfd = {.fd = fd, .events = events};
		int n = poll(&pfd, 1, wait);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return CAIRN_EIO;
		if (n == 0 && deadline >= 0 && fdio_left_ms(deadline) == 0)
			return CAIRN_ETIMEDOUT;
	}
}

int fdio_send_all(int fd, const uint8_t *buf, size_t len, int64_t deadline)
{
	while (len > 0) {
		int rc = fdio_wait(fd, POLLOUT, deadline);
		if (rc != 0)
			return rc;
		/* MSG_NOSIGNAL: a peer that closed must not kill the process with SIGPIPE. */
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			return CAIRN_EIO;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}
