/* SPDX-License-Identifier: MIT */
/*
 * The load generator for the group scenario against a Cairn relay: one sender appending to one
 * group log (docs/PROTOCOL.md 5.9) and N members, each following the log (LOG_READ follow 1)
 * over its own connection, all on one libuv loop. The sender keeps a window of entries that
 * not every member has yet, many LOG_APPENDs per frame; every entry carries its append time
 * and a sequence number, so members measure latency and notice loss and reordering.
 */
#ifndef CAIRN_BENCH_GFLEET_H
#define CAIRN_BENCH_GFLEET_H

#include <netinet/in.h>

#include "bench.h"

struct gfleet;

/*
 * Connects the sender (which creates a fresh log) and SHAPE->members followers of it.
 * Returns NULL on failure (after a note on stderr).
 */
struct gfleet *gfleet_open(const struct sockaddr_in *relay, const uint8_t relay_public[32],
                           pid_t relay_pid, const struct group_shape *shape);

/* One run as fast as the window allows: see bench_peer.group_run. */
int gfleet_run(struct gfleet *f, double warmup_s, double duration_s, struct online_run *out);

void gfleet_close(struct gfleet *f);

#endif
