/* SPDX-License-Identifier: MIT */
/*
 * Waiting on a socket with a deadline, for the client's blocking calls (cnet_connect,
 * cnet_recv, socks5_connect): every wait is bounded by a monotonic deadline, so a silent peer
 * costs a timeout, never a hang.
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

#endif
