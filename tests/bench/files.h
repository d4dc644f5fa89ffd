/* SPDX-License-Identifier: MIT */
/*
 * `cairn-bench files` (files.c measures and reports, filerun.c runs the processes): a file
 * sent and fetched through one real relay on loopback by the real `cairn` command, beside a
 * raw TCP copy of the same file in the same run (the limit).
 */
#ifndef CAIRN_BENCH_FILES_H
#define CAIRN_BENCH_FILES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "bench.h"

#define FILES_RUNS 3 /* per size; the report gives the median */

/* One command's cost: wall time, and the CPU of the process and its children. */
struct files_cost {
	double secs, cpu_s;
};

/* Runs the cairn binary CLI in HOME with ARGS (NULL-terminated), its standard output into
 * OUT (capacity CAP, may be NULL), its cost into *COST (may be NULL). Returns its exit
 * status, or -1 when it could not start. */
int files_cli(const char *cli, const char *home, const char *const *args, char *out, size_t cap,
              struct files_cost *cost);

/* Copies SRC to DST through a loopback TCP socket: a sender process reads the file and writes
 * the socket, a receiver process reads it and writes the file (as scp's two ends do, without
 * the cipher). Returns 0 with the cost (both processes' CPU), or -1. */
int files_raw_copy(const char *src, const char *dst, struct files_cost *cost);

/* Writes SIZE random bytes to PATH. Returns 0 or -1. */
int files_make(const char *path, uint64_t size);

/* Whether the files A and B hold the same bytes (BLAKE2b-256 of each). */
int files_same(const char *a, const char *b);

/* The scenario: starts a relay, pairs two homes, measures each size (median of FILES_RUNS),
 * prints the report (a table, or JSON with --json). Returns the process's exit status. */
int files_run(const struct bench_opts *o);

#endif
