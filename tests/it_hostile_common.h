/* SPDX-License-Identifier: MIT */
/*
 * What test_it_hostile (handshakes, broken frames, slowloris) and test_it_hostile_resources
 * (peers that never read, the connection limit, idle connections) share: the relays' limits,
 * the relays themselves, and a few helpers (it_hostile_common.c). See test_it_hostile.c.
 */
#ifndef CAIRN_TEST_IT_HOSTILE_COMMON_H
#define CAIRN_TEST_IT_HOSTILE_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "it_common.h"

/* The shared relay's limits: short deadlines so that the test runs in seconds. */
#define HS_TIMEOUT_S 2
#define IDLE_S       12
#define OUTPUT_MAX   131072
#define WINDOW       256

/*
 * Under AddressSanitizer (the relay is then built with it too) every allocation carries
 * redzones and freed memory waits in a quarantine of up to 256 MiB, so RSS follows the bytes
 * that went through, not what is held: memory bounds are checked in the plain build only,
 * and the figures are printed either way.
 */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

/* setup_limited's max_connections. */
#define LIMITED 8

/* A connection watched until the relay closes it (watch_until_closed). */
struct watch {
	int fd;
	const char *what;
	int64_t start_ms;  /* just before connect */
	int64_t closed_ms; /* 0 while open */
	size_t bytes;      /* received from the relay */
};

/* Contracts: at each function in it_hostile_common.c. setup is the group's relay, setup_own
 * and setup_limited a test's own; it_relay_teardown (it_common.h) stops any of them. */
bool under_wrapper(void);
void check_growth(const char *what, long grew_kb, long bound_kb);
int setup(void **state);
int setup_own(void **state);
int setup_limited(void **state);
int raw_dial(uint16_t port);
size_t make_msg1(const uint8_t pub[32], uint64_t now, uint8_t out[2 + CAIRN_HANDSHAKE1_MAX],
                 struct noise_handshake *hs);
void write_all(int fd, const void *buf, size_t len);
void ping_ok(struct tclient *c);
void watch_until_closed(struct watch *w, size_t n, int timeout_ms, bool junk);

#endif
