/* SPDX-License-Identifier: MIT */
/*
 * `cairn-bench nodes` (nodes.c): cross-node delivery latency and costs of two relay nodes on
 * one PostgreSQL, beside the same-node figures in the same run.
 */
#ifndef CAIRN_BENCH_NODES_H
#define CAIRN_BENCH_NODES_H

#include "bench.h"

/* Runs the scenario and prints its report (JSON with --json). Returns 0, or 1 on failure. */
int nodes_run(const struct bench_opts *o);

#endif
