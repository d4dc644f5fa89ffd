/* SPDX-License-Identifier: MIT */
/*
 * `cairn-bench transport` (transport.c measures, transport_run.c sets up and reports): the
 * cost of each way of reaching a relay, through the client's own connection code.
 */
#ifndef CAIRN_BENCH_TRANSPORT_H
#define CAIRN_BENCH_TRANSPORT_H

#define TRANSPORT_WINDOW 64 /* SENDs in flight */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bench.h"
#include "cairn/address.h"

#define TRANSPORT_SIZES     2 /* 1 KiB and 16 KiB envelopes */
#define TRANSPORT_FRONT_MAX 8

/* One way of reaching the relay: its address, the relay's pid, and the processes in front of
 * it whose CPU counts too (nginx's master and workers; none for direct). */
struct transport_target {
	const char *name;
	struct cairn_address addr;
	pid_t relay_pid;
	pid_t front[TRANSPORT_FRONT_MAX];
	size_t front_len;
};

struct transport_rate {
	uint32_t size;
	double env_per_s, mb_per_s;
	double client_cores, relay_cores, front_cores; /* CPU while it ran, in cores */
};

struct transport_result {
	char name[16];
	double hs_per_s;
	double hs_client_ms, hs_relay_ms, hs_front_ms; /* CPU ms per handshake */
	struct transport_rate rate[TRANSPORT_SIZES];
};

/* Measures T: handshakes, then each envelope size. Returns 0, or -1 (noted on stderr). */
int transport_measure(const struct bench_opts *o, const struct transport_target *t,
                      struct transport_result *r);

/* The scenario: starts a relay (and its fronts), measures every transport, prints the report
 * (a table, or JSON with --json). Returns the process's exit status. */
int transport_run(const struct bench_opts *o);

#endif
