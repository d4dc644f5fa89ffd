/* SPDX-License-Identifier: MIT */
/*
 * `cairn-bench loaded` (loaded.c): latency of many subscribed low-rate receivers and of 4
 * senders' owners while the senders push at 50% of their peak.
 */
#ifndef CAIRN_BENCH_LOADED_H
#define CAIRN_BENCH_LOADED_H

#include "bench.h"

/* Runs the scenario and prints its report (JSON with --json). Returns 0, or 1 on failure. */
int loaded_run(const struct bench_opts *o);

#endif
