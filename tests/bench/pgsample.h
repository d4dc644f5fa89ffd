/* SPDX-License-Identifier: MIT */
/*
 * What a PostgreSQL server costs while the relay writes to it, read from outside: the CPU time
 * of all its processes (/proc) and the WAL it wrote (pg_current_wal_lsn). cairn-bench durable
 * --store postgresql reads both before and after each phase; test_bench_pgsample proves them.
 */
#ifndef CAIRN_BENCH_PGSAMPLE_H
#define CAIRN_BENCH_PGSAMPLE_H

#include <stdint.h>
#include <sys/types.h>

#include "pgproc.h"

/*
 * CPU seconds (user + system) of postmaster PM and of every process it started: the live ones
 * from /proc (their parent is PM), the exited ones through PM's cutime and cstime (PM reaps
 * them, so a backend that came and went between two readings still counts). -1 if PM is gone.
 */
double pgsample_cpu_s(pid_t pm);

/* P's WAL insert position in bytes from the start (pg_current_wal_lsn() - '0/0'), into OUT.
 * Returns 0, or -1 if psql failed or answered something else. */
int pgsample_wal(const struct pgproc *p, uint64_t *out);

#endif
