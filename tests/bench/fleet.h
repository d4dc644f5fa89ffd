/* SPDX-License-Identifier: MIT */
/*
 * The load generator for the online and durable scenarios against a Cairn relay: N senders
 * and N owners on one libuv loop, owner i holding the secured mailbox that sender i sends to.
 * Senders keep a window of SENDs in flight, many per frame; owners acknowledge every envelope,
 * the ACKs of one read batched into one frame. Every envelope carries its send time and a
 * sequence number, so owners measure latency and notice loss, duplicates and reordering.
 */
#ifndef CAIRN_BENCH_FLEET_H
#define CAIRN_BENCH_FLEET_H

#include <stdint.h>

#include <netinet/in.h>

#include "bench.h"

struct fleet;

/*
 * Connects N owners (each creates and secures a mailbox, and subscribes when SUBSCRIBE is
 * true, else disconnects) and N senders, each envelope SIZE bytes, WINDOW SENDs in flight per
 * sender. Returns NULL on failure (after a note on stderr).
 */
struct fleet *fleet_open(const struct sockaddr_in *relay, const uint8_t relay_public[32],
                         pid_t relay_pid, uint32_t n, uint32_t size, uint32_t window,
                         bool subscribe);

/* The same with the owners on another relay OWNER_RELAY than the senders (nodes of one relay
 * sharing a database: cairn-bench nodes). */
struct fleet *fleet_open_split(const struct sockaddr_in *relay,
                               const struct sockaddr_in *owner_relay,
                               const uint8_t relay_public[32], pid_t relay_pid, uint32_t n,
                               uint32_t size, uint32_t window, bool subscribe);

/* One online run: see bench_peer.online_run. */
int fleet_run(struct fleet *f, double target_rate, double warmup_s, double duration_s,
              struct online_run *out);

/* Durable: senders push COUNT envelopes (split evenly), then the owners come back, prove
 * ownership (AUTH), subscribe and acknowledge everything. */
int fleet_durable(struct fleet *f, uint64_t count, struct durable_result *out);

/* Called by fleet_durable where it reads the relay's CPU time: PHASE 0 before the first SEND,
 * 1 when every SEND is answered, 2 when every envelope is drained (cairn-bench durable --store
 * reads the database's costs there too). */
void fleet_on_durable_phase(struct fleet *f, void (*fn)(void *ctx, int phase), void *ctx);

void fleet_close(struct fleet *f);

#endif
