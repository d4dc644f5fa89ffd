/* SPDX-License-Identifier: MIT */
/* Small file helpers shared by the relay's operator-facing modules (config, key file). */
#ifndef CAIRN_RELAY_FSUTIL_H
#define CAIRN_RELAY_FSUTIL_H

#include <stddef.h>

/* Writes all N bytes of P to FD, retrying on EINTR and short writes. Returns 0 or -1 (errno
 * set). */
int fs_write_all(int fd, const void *p, size_t n);

#endif
