/* SPDX-License-Identifier: MIT */
/* Shared pieces of the integration tests: includes and small helpers over tclient. */
#ifndef CAIRN_TEST_IT_COMMON_H
#define CAIRN_TEST_IT_COMMON_H

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <sodium.h>

#include "cairn/error.h"
#include "relayproc.h"
#include "tclient.h"

/* 1 in the ASan+UBSan build (make test runs the suite again there), where the long tests
 * use fewer messages or shorter runs to keep the total within budget. */
#if defined(__SANITIZE_ADDRESS__)
#define IT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define IT_ASAN 1
#endif
#endif
#ifndef IT_ASAN
#define IT_ASAN 0
#endif

/* A mailbox as its owner knows it. */
struct owner {
	uint8_t rid[24], sid[24], pk[32], sk[64];
};

/* A cmocka setup of one relay: R started with LIMITS (config lines, NULL for none) and set as
 * *STATE; -1 (and *STATE NULL) if it cannot start, the reason on stderr. */
static inline int it_relay_setup(void **state, struct relayproc *r, const char *limits)
{
	if (relayproc_init(r, limits) != 0 || relayproc_start(r) != 0) {
		fprintf(stderr, "setup: cannot start the relay in %s\n", r->dir);
		relayproc_cleanup(r);
		*state = NULL;
		return -1;
	}
	*state = r;
	return 0;
}

/* Its teardown: the relay stopped with SIGTERM must exit 0 (a clean shutdown, no sanitizer
 * report), and its files are removed either way. */
static inline int it_relay_teardown(void **state)
{
	struct relayproc *r = *state;
	if (r == NULL)
		return -1;
	int rc = relayproc_stop(r, SIGTERM);
	relayproc_cleanup(r);
	assert_int_equal(rc, 0);
	return 0;
}

/* The monotonic clock, for deadlines and latencies. */
static inline int64_t it_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int64_t it_mono_ms(void)
{
	return it_mono_us() / 1000;
}

static inline double it_mono_s(void)
{
	return (double)it_mono_us() / 1e6;
}

static inline void it_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Envelope I's body of LEN (at least 4) bytes: its number first, then bytes that depend on it,
 * so that a body out of order, twice, cut or shifted is seen. */
static inline void it_numbered_body(uint8_t *body, size_t len, uint32_t i)
{
	body[0] = (uint8_t)(i >> 24);
	body[1] = (uint8_t)(i >> 16);
	body[2] = (uint8_t)(i >> 8);
	body[3] = (uint8_t)i;
	for (size_t k = 4; k < len; k++)
		body[k] = (uint8_t)(i * 131u + k * 7u);
}

/* The number it_numbered_body put first in BODY. */
static inline uint32_t it_body_number(const uint8_t *body)
{
	return (uint32_t)body[0] << 24 | (uint32_t)body[1] << 16 | (uint32_t)body[2] << 8 | body[3];
}

/* Sends ENVELOPE (LEN bytes) to SID with CRED (or NULL); returns 0 or the error code. */
static inline int it_send(struct tclient *c, const uint8_t sid[24], const uint8_t *cred,
                          const void *envelope, size_t len)
{
	struct cairn_msg m = {.type = CAIRN_CMD_SEND,
	                      .sender_id = sid,
	                      .credential = cred,
	                      .envelope = envelope,
	                      .envelope_len = len},
	                 r;
	return tclient_call(c, &m, &r);
}

static inline int it_simple(struct tclient *c, int type, const uint8_t rid[24])
{
	struct cairn_msg m = {.type = (uint8_t)type, .recipient_id = rid}, r;
	return tclient_call(c, &m, &r);
}

static inline int it_ack(struct tclient *c, const uint8_t rid[24], uint64_t id)
{
	struct cairn_msg m = {.type = CAIRN_CMD_ACK, .recipient_id = rid, .envelope_id = id}, r;
	return tclient_call(c, &m, &r);
}

#endif
