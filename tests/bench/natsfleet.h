/* SPDX-License-Identifier: MIT */
/*
 * The load generator for the online and durable scenarios against nats-server, built on
 * libnats (Debian: libnats-dev) to match mqfleet.h: N publishers and N subscribers, each on a
 * connection of its own, subscriber i alone on the subject publisher i publishes to. Every
 * message carries its send time and a sequence number, so subscribers measure latency and
 * notice loss, duplicates and reordering.
 *
 * Online is core NATS, which has no acknowledgement: the generator itself holds the window, a
 * publisher having at most WINDOW messages published and not yet received by its subscriber.
 * Durable is JetStream: one stream with file storage and interest retention over every
 * subject, one durable pull consumer per subscriber made before anything is published (the
 * subscriber is "offline"), acknowledged asynchronous publishes with WINDOW awaiting their
 * acknowledgement per publisher, then a drain in which each subscriber fetches and
 * acknowledges everything.
 *
 * libnats runs its own threads (a reader and a flusher per connection, a delivery thread per
 * subscription); the publishers are pumped by the calling thread, the drain by one thread per
 * subscriber.
 */
#ifndef CAIRN_BENCH_NATSFLEET_H
#define CAIRN_BENCH_NATSFLEET_H

#include <stdbool.h>
#include <stdint.h>

#include "bench.h"

struct natsfleet;

/* Connects to the server on 127.0.0.1:PORT (TLS when CAFILE, the certificate to trust, is not
 * NULL): N publishers, and for online N subscribers; for DURABLE the stream and N consumers.
 * Returns NULL on failure (after a note). */
struct natsfleet *natsfleet_open(uint16_t port, pid_t server_pid, const char *cafile, uint32_t n,
                                 uint32_t size, uint32_t window, bool durable);

/* One online run: see bench_peer.online_run. */
int natsfleet_run(struct natsfleet *f, double target_rate, double warmup_s, double duration_s,
                  struct online_run *out);

/* Durable: publishers push COUNT messages to JetStream (split evenly; answered = the stream's
 * acknowledgement), then the subscribers connect, fetch and acknowledge everything. */
int natsfleet_durable(struct natsfleet *f, uint64_t count, struct durable_result *out);

void natsfleet_close(struct natsfleet *f);

/* The loopback port of S, a server of bench_peer_nats or bench_peer_nats_tls (for tests). */
uint16_t peer_nats_port(const struct bench_server *s);

#endif
