/* SPDX-License-Identifier: MIT */
/*
 * The fully-encrypted-traffic test of Wu et al. (USENIX Security 2023), Algorithm 1: see
 * fet.h. The thresholds are the paper's: 3.4 and 4.6 bits per byte, 6 printable leading bytes,
 * more than 50% printable, more than 20 contiguous printable bytes, and the TLS and HTTP
 * fingerprints it found exempted.
 */
#include "fet.h"

#include <stdbool.h>
#include <string.h>

static bool printable(uint8_t c)
{
	return c >= 0x20 && c <= 0x7e;
}

double fet_popcount(const uint8_t *p, size_t n)
{
	unsigned long bits = 0;
	for (size_t i = 0; i < n; i++)
		bits += (unsigned long)__builtin_popcount(p[i]);
	return n > 0 ? (double)bits / (double)n : 0.0;
}

/* Ex5: the paper saw the first bytes of TLS (a record of type handshake, change-cipher-spec,
 * alert or application data, version 3.0 to 3.3) and of HTTP (a method and a space) exempted. */
static bool known_protocol(const uint8_t *p, size_t n)
{
	if (n >= 3 && p[0] >= 0x14 && p[0] <= 0x17 && p[1] == 0x03 && p[2] <= 0x03)
		return true;
	static const char *const methods[] = {"GET ",     "POST ",    "HEAD ",  "PUT ",  "DELETE ",
	                                      "OPTIONS ", "CONNECT ", "PATCH ", "TRACE "};
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		size_t len = strlen(methods[i]);
		if (n >= len && memcmp(p, methods[i], len) == 0)
			return true;
	}
	return false;
}

enum fet_verdict fet_classify(const uint8_t *p, size_t n)
{
	double pc = fet_popcount(p, n);
	if (pc <= 3.4 || pc >= 4.6)
		return FET_EX1_POPCOUNT;
	if (n >= 6) {
		bool all = true;
		for (size_t i = 0; i < 6; i++)
			all = all && printable(p[i]);
		if (all)
			return FET_EX2_PREFIX;
	}
	size_t count = 0, run = 0, longest = 0;
	for (size_t i = 0; i < n; i++) {
		if (printable(p[i])) {
			count++;
			if (++run > longest)
				longest = run;
		} else {
			run = 0;
		}
	}
	if (count * 2 > n)
		return FET_EX3_FRACTION;
	if (longest > 20)
		return FET_EX4_RUN;
	if (known_protocol(p, n))
		return FET_EX5_PROTOCOL;
	return FET_BLOCK;
}

const char *fet_name(enum fet_verdict v)
{
	switch (v) {
	case FET_EX1_POPCOUNT:
		return "ex1-popcount";
	case FET_EX2_PREFIX:
		return "ex2-prefix";
	case FET_EX3_FRACTION:
		return "ex3-fraction";
	case FET_EX4_RUN:
		return "ex4-run";
	case FET_EX5_PROTOCOL:
		return "ex5-protocol";
	case FET_BLOCK:
		break;
	}
	return "blocked";
}
