/* SPDX-License-Identifier: MIT */
/* Deadline-bounded blocking socket I/O (see fdio.h). */
#include <errno.h>
#include <poll.h>
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
