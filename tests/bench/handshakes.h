/* SPDX-License-Identifier: MIT */
/*
 * `cairn-bench handshakes` (handshakes.c): handshakes per second and the relay's CPU per
 * handshake beside three X25519 operations timed in the same run.
 */
#ifndef CAIRN_BENCH_HANDSHAKES_H
#define CAIRN_BENCH_HANDSHAKES_H

#include "bench.h"

struct cJSON;

/* Runs the scenario and prints its report (JSON with --json). Returns 0, or 1 on failure. */
int handshakes_run(const struct bench_opts *o);

/* Prints ROOT on stdout and frees it (report.c). Returns 0, or -1. */
int report_print_json(struct cJSON *root);
/* An online run's figures as one JSON object, as the online report prints them (report.c). */
struct cJSON *report_run_json(const struct online_run *r);

#endif
