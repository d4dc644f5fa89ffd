/* SPDX-License-Identifier: MIT */
/*
 * Blocking socket I/O with deadlines, for the client's relay and proxy connections: every
 * wait is bounded by a monotonic deadline, so a silent peer costs a timeout, never a hang.
 */
#ifndef CAIRN_CLIENT_FDIO_H
#define CAIRN_CLIENT_FDIO_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic milliseconds. */
int64_t fdio_now_ms(void);

/* Milliseconds left until DEADLINE, at least 0. */
int fdio_left_ms(int64_t deadline);

/*
 * Waits until FD is ready for EVENTS (poll flags) or DEADLINE (monotonic ms; -1 waits forever)
 * passes; polls at least once, so a zero timeout still sees what already arrived. Returns 0
 * (ready, or an error condition the next call on FD will report), CAIRN_ETIMEDOUT or
 * CAIRN_EIO.
 */
int fdio_wait(int fd, short events, int64_t deadline);

/* Writes all LEN bytes of BUF before DEADLINE, without SIGPIPE. Returns 0, CAIRN_ETIMEDOUT
 * or CAIRN_EIO. */
int fdio_send_all(int fd, const uint8_t *buf, size_t len, int64_t deadline);

#endif
