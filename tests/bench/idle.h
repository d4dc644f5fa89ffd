/* SPDX-License-Identifier: MIT */
/*
 * Idle connections against a Cairn relay: worker processes (each within the per-process file
 * limit, each from its own 127.0.0.x source address) open connections that complete the
 * handshake, create a mailbox and subscribe to it, then stay silent. The parent steers them
 * through pipes and times each step across all workers.
 */
#ifndef CAIRN_BENCH_IDLE_H
#define CAIRN_BENCH_IDLE_H

#include <stdint.h>

#include <netinet/in.h>

#include "bench.h"

struct idle_pool;

/* Forks WORKERS generator processes for at most MAX_TOTAL connections. NULL on failure. */
struct idle_pool *idle_pool_open(const struct sockaddr_in *relay, const uint8_t relay_public[32],
                                 pid_t relay_pid, uint32_t workers, uint32_t max_total);

/*
 * Grows to TOTAL connections: first every new handshake (timed across workers), then every
 * new connection's CREATE and SUBSCRIBE (timed separately). Fills STEP except the RSS fields.
 */
int idle_pool_grow(struct idle_pool *p, uint32_t total, struct idle_step *step);

/* Low-rate traffic to the subscribed connections (cairn-bench loaded): each worker adds one
 * sending connection that sends 1 KiB envelopes round-robin to its subscribed mailboxes, RATE
 * envelopes/s over all workers, for WARMUP_S and then DURATION_S measured; the receivers ACK
 * each one. _begin starts it and returns at once; _end waits for every worker and fills OUT
 * (its latencies: envelopes received while measuring, send to receipt). 0 or -1. */
struct idle_load {
	uint64_t sent, received, errors;
	double gen_cpu;         /* cores the workers used, summed, over the phase */
	struct lat_samples lat; /* the caller's: reset, then filled */
};
int idle_pool_load_begin(struct idle_pool *p, double rate, double warmup_s, double duration_s);
int idle_pool_load_end(struct idle_pool *p, struct idle_load *out);

/* Tells the workers to close everything and exit, and reaps them. */
void idle_pool_close(struct idle_pool *p);

#endif
