/* SPDX-License-Identifier: MIT */
/*
 * Idle connections against mosquitto: each connects, says CONNECT (MQTT 3.1.1, clean
 * session) and SUBSCRIBE to a topic of its own, waits for CONNACK and SUBACK, then stays
 * silent. Written on plain sockets rather than libmosquitto, whose client object holds a
 * socket pair besides its connection: three descriptors a client would cap the count far
 * below the cairn side's.
 */
#ifndef CAIRN_BENCH_MQIDLE_H
#define CAIRN_BENCH_MQIDLE_H

#include <stdint.h>

#include "bench.h"

struct mqidle;

/* Room for at most MAX_TOTAL connections to 127.0.0.1:PORT. NULL on failure. */
struct mqidle *mqidle_open(uint16_t port, pid_t broker_pid, uint32_t max_total);

/*
 * Grows to TOTAL subscribed connections. STEP gets the connection count, the failures, and
 * in handshakes_per_s the rate of connect + CONNACK + SUBACK (no cryptography: not
 * comparable with cairn's handshakes); the RSS fields are the caller's.
 */
int mqidle_grow(struct mqidle *p, uint32_t total, struct idle_step *step);

/* Closes every connection. */
void mqidle_close(struct mqidle *p);

#endif
