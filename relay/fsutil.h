/* SPDX-License-Identifier: MIT */
/* Small file helpers shared by the relay's operator-facing modules (config, key file). */
#ifndef CAIRN_RELAY_FSUTIL_H
#define CAIRN_RELAY_FSUTIL_H

#include <stddef.h>

/* Writes all N bytes of P to FD, retrying on EINTR and short writes. Returns 0 or -1 (errno
 * set). */
int fs_write_all(int fd, const void *p, size_t n);

/* Makes the entries of directory PATH durable (fsync of the directory), so a power cut cannot
 * take back a file or directory made in it. Returns 0 or -1 (errno set); a file system that
 * refuses fsync on a directory (EINVAL) counts as done. */
int fs_sync_dir(const char *path);

/* fs_sync_dir of PATH's parent directory ("." for a bare name). */
int fs_sync_parent(const char *path);

#endif
