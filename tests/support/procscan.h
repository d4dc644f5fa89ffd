/* SPDX-License-Identifier: MIT */
/*
 * A process's parent and CPU time, and its children, from /proc: for harnesses whose servers
 * fork workers the harness must reach too (PostgreSQL's backends, nginx's workers), and for
 * the benchmarks that read what a server costs.
 */
#ifndef CAIRN_TEST_PROCSCAN_H
#define CAIRN_TEST_PROCSCAN_H

#include <stddef.h>
#include <sys/types.h>

/* From /proc/PID/stat: the parent, and user + system clock ticks of the process (and, in
 * *CHILDREN, of its reaped children). Returns 0 or -1 (the process is gone). */
int proc_stat(pid_t pid, pid_t *ppid, unsigned long long *own, unsigned long long *children);

/* CPU seconds (user + system) PID has used itself, or -1 (the process is gone). */
double proc_cpu_s(pid_t pid);

/* Puts the pids of PARENT's children into OUT (at most CAP). Returns how many. */
size_t proc_children(pid_t parent, pid_t *out, size_t cap);

#endif
