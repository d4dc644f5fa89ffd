/* SPDX-License-Identifier: MIT */
/*
 * The passive test the Great Firewall of China applies to the first data packet of a TCP
 * connection to decide whether it is "fully encrypted" (Wu et al., "How the Great Firewall of
 * China Detects and Blocks Fully Encrypted Traffic", USENIX Security 2023, section 4 and
 * Algorithm 1). A packet is exempt if any of five rules holds; otherwise it is blocked. The
 * censor test tool (tests/tools/censor.c) applies it; tests/test_tool_censor.c checks it on the
 * paper's examples. Pure functions on buffers: no state, no I/O.
 */
#ifndef CAIRN_TEST_FET_H
#define CAIRN_TEST_FET_H

#include <stddef.h>
#include <stdint.h>

/* The verdict: FET_BLOCK, or the first exemption (in the paper's order) that holds. */
enum fet_verdict {
	FET_BLOCK = 0,
	FET_EX1_POPCOUNT, /* average set bits per byte <= 3.4 or >= 4.6 */
	FET_EX2_PREFIX,   /* the first 6 bytes are printable ASCII */
	FET_EX3_FRACTION, /* more than half of the bytes are printable */
	FET_EX4_RUN,      /* more than 20 contiguous printable bytes */
	FET_EX5_PROTOCOL, /* the first bytes are a TLS record header or an HTTP method */
};

/* Classifies the N bytes at P (the first data a client sent; N > 0). */
enum fet_verdict fet_classify(const uint8_t *p, size_t n);

/* Average set bits per byte of the N > 0 bytes at P. */
double fet_popcount(const uint8_t *p, size_t n);

/* "blocked", "ex1-popcount", "ex2-prefix", "ex3-fraction", "ex4-run" or "ex5-protocol": a
 * static string. */
const char *fet_name(enum fet_verdict v);

#endif
