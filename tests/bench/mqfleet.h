/* SPDX-License-Identifier: MIT */
/*
 * The load generator for the online and durable scenarios against mosquitto, built on
 * libmosquitto to match fleet.h: N publishers and N subscribers on one libuv loop, subscriber i
 * alone on the topic publisher i publishes to. Every message carries its send time and a
 * sequence number, so subscribers measure latency and notice loss, duplicates and reordering.
 *
 * Online is QoS 0, which has no acknowledgement: the generator itself holds the window, a
 * publisher having at most WINDOW messages published and not yet received by its subscriber.
 * Durable is QoS 1 with persistent sessions: the window is WINDOW PUBLISHes awaiting PUBACK.
 */
#ifndef CAIRN_BENCH_MQFLEET_H
#define CAIRN_BENCH_MQFLEET_H

#include <stdint.h>

#include "bench.h"

struct mqfleet;

/*
 * Connects N subscribers and N publishers to the broker on 127.0.0.1:PORT (over TLS when
 * CAFILE, the certificate to trust, is not NULL), messages SIZE bytes, WINDOW in flight per
 * publisher. Without DURABLE the subscribers are clean sessions
 * subscribed at QoS 0 and stay; with DURABLE they are persistent sessions (clean_session
 * false) that subscribe at QoS 1 and disconnect. Returns NULL on failure (after a note).
 */
struct mqfleet *mqfleet_open(uint16_t port, pid_t broker_pid, const char *cafile, uint32_t n,
                             uint32_t size, uint32_t window, bool durable);

/* The group scenario's shape: one publisher, MEMBERS subscribers on its topic at QoS 0, the
 * window counting messages not yet with every subscriber. */
struct mqfleet *mqfleet_open_fanout(uint16_t port, pid_t broker_pid, uint32_t members,
                                    uint32_t size, uint32_t window);

/* One online run: see bench_peer.online_run (for a fan-out, OUT->rate counts deliveries). */
int mqfleet_run(struct mqfleet *f, double target_rate, double warmup_s, double duration_s,
                struct online_run *out);

/* Durable: publishers push COUNT messages at QoS 1 (split evenly; answered = PUBACK), then
 * the subscribers reconnect to their sessions and receive, acknowledging, everything. */
int mqfleet_durable(struct mqfleet *f, uint64_t count, struct durable_result *out);

void mqfleet_close(struct mqfleet *f);

/* The loopback port of S, a server of bench_peer_mosquitto or bench_peer_mosquitto_tls (for
 * tests). */
uint16_t peer_mosquitto_port(const struct bench_server *s);

#endif
