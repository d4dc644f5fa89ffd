/* SPDX-License-Identifier: MIT */
/*
 * The children of a process, found in /proc: for harnesses whose servers fork workers the
 * harness must reach too (PostgreSQL's backends, nginx's workers).
 */
#ifndef CAIRN_TEST_PROCSCAN_H
#define CAIRN_TEST_PROCSCAN_H

#include <stddef.h>
#include <sys/types.h>

/* Puts the pids of PARENT's children into OUT (at most CAP). Returns how many. */
size_t proc_children(pid_t parent, pid_t *out, size_t cap);

#endif
