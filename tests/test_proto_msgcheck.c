/* SPDX-License-Identifier: MIT */
/*
 * The bounded msgpack walker (proto/msgcheck.h): every first byte is classified right, each
 * check of PROTOCOL.md 5.1 fires with its own code and in its order, the caps sit exactly at
 * CAIRN_MSG_COUNT_MAX and CAIRN_MSG_DEPTH_MAX, and hostile counts or depths cost nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "msgcheck.h"

#include "cairn/limits.h"

/* Runs the check on a byte literal; returns the code and stores the object length. */
#define CHECK(objlen, ...)                                                                         \
	check_bytes((const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__}),        \
	            (objlen))

static int check_bytes(const uint8_t *buf, size_t len, size_t *objlen)
{
	size_t n = 12345;
	int rc = cairn_msgcheck(buf, len, &n);
	if (rc != 0)
		assert_int_equal(n, 0); /* the contract: 0 on failure */
	else
		assert_true(n >= 1 && n <= len);
	*objlen = n;
	return rc;
}

static void test_scalars_of_every_width(void **state)
{
	size_t n;
	assert_int_equal(CHECK(&n, 0xc0), 0); /* nil */
	assert_int_equal(n, 1);
	assert_int_equal(CHECK(&n, 0xc2), 0); /* false */
	assert_int_equal(CHECK(&n, 0xc3), 0); /* true */
	assert_int_equal(CHECK(&n, 0x7f), 0); /* positive fixint */
	assert_int_equal(CHECK(&n, 0xe0), 0); /* negative fixint */
	assert_int_equal(CHECK(&n, 0xcc, 0xff), 0);
	assert_int_equal(n, 2);
	assert_int_equal(CHECK(&n, 0xcd, 0xff, 0xff), 0);
	assert_int_equal(n, 3);
	assert_int_equal(CHECK(&n, 0xce, 1, 2, 3, 4), 0);
	assert_int_equal(n, 5);
	assert_int_equal(CHECK(&n, 0xcf, 1, 2, 3, 4, 5, 6, 7, 8), 0);
	assert_int_equal(n, 9);
	assert_int_equal(CHECK(&n, 0xd0, 0x80), 0);
	assert_int_equal(n, 2);
	assert_int_equal(CHECK(&n, 0xd1, 0x80, 0), 0);
	assert_int_equal(n, 3);
	assert_int_equal(CHECK(&n, 0xd2, 0x80, 0, 0, 0), 0);
	assert_int_equal(n, 5);
	assert_int_equal(CHECK(&n, 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0), 0);
	assert_int_equal(n, 9);
}

static void test_strings_and_bins(void **state)
{
	size_t n;
	assert_int_equal(CHECK(&n, 0xa3, 'a', 'b', 'c'), 0); /* fixstr */
	assert_int_equal(n, 4);
	assert_int_equal(CHECK(&n, 0xd9, 2, 'a', 'b'), 0); /* str 8 */
	assert_int_equal(n, 4);
	assert_int_equal(CHECK(&n, 0xda, 0, 1, 'a'), 0); /* str 16 */
	assert_int_equal(n, 4);
	assert_int_equal(CHECK(&n, 0xdb, 0, 0, 0, 1, 'a'), 0); /* str 32 */
	assert_int_equal(n, 6);
	assert_int_equal(CHECK(&n, 0xc4, 0), 0); /* empty bin 8 */
	assert_int_equal(n, 2);
	assert_int_equal(CHECK(&n, 0xc5, 0, 2, 9, 9), 0);
	assert_int_equal(n, 5);
	assert_int_equal(CHECK(&n, 0xc6, 0, 0, 0, 2, 9, 9), 0);
	assert_int_equal(n, 7);
}

static void test_containers_and_object_length(void **state)
{
	size_t n;
	assert_int_equal(CHECK(&n, 0x90), 0);
	assert_int_equal(n, 1);
	assert_int_equal(CHECK(&n, 0x80), 0);
	assert_int_equal(n, 1);
	/* {1: [nil, "x"], 2: {}} followed by bytes that are not part of it */
	assert_int_equal(CHECK(&n, 0x82, 0x01, 0x92, 0xc0, 0xa1, 'x', 0x02, 0x80, 0xc1, 0xc1), 0);
	assert_int_equal(n, 8);
	/* Long forms of the headers, and containers closing together. */
	assert_int_equal(CHECK(&n, 0xdc, 0, 2, 0xdd, 0, 0, 0, 1, 0xde, 0, 1, 1, 2, 3), 0);
	assert_int_equal(n, 14);
	assert_int_equal(CHECK(&n, 0xdf, 0, 0, 0, 0, 7), 0);
	assert_int_equal(n, 5);
}

/* Every possible first byte, alone: complete objects pass, the rest fail with their code. */
static void test_every_first_byte(void **state)
{
	for (unsigned b = 0; b < 256; b++) {
		uint8_t byte = (uint8_t)b;
		size_t n;
		int rc = check_bytes(&byte, 1, &n);
		int want;
		if (b == 0xc1 || (b >= 0xc7 && b <= 0xcb) || (b >= 0xd4 && b <= 0xd8))
			want = CAIRN_EMALFORMED;
		else if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3 ||
		         b == 0x80 || b == 0x90 || b == 0xa0)
			want = 0;
		else
			want = CAIRN_ETRUNCATED;
		if (rc != want)
			fail_msg("first byte 0x%02x: got %d, want %d", b, rc, want);
	}
}

static void test_malformed_anywhere(void **state)
{
	size_t n;
	assert_int_equal(CHECK(&n, 0xc1), CAIRN_EMALFORMED);
	assert_int_equal(CHECK(&n, 0xca, 0, 0, 0, 0), CAIRN_EMALFORMED); /* float 32 */
	assert_int_equal(CHECK(&n, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0), CAIRN_EMALFORMED);
	assert_int_equal(CHECK(&n, 0xd4, 1, 0), CAIRN_EMALFORMED);    /* fixext 1 */
	assert_int_equal(CHECK(&n, 0xc7, 1, 1, 0), CAIRN_EMALFORMED); /* ext 8 */
	assert_int_equal(CHECK(&n, 0x93, 0x01, 0x02, 0xc1), CAIRN_EMALFORMED);
	assert_int_equal(CHECK(&n, 0x81, 0xc1, 0xc0), CAIRN_EMALFORMED); /* as a map key */
}

static void test_truncated(void **state)
{
	size_t n;
	assert_int_equal(cairn_msgcheck(NULL, 0, &n), CAIRN_ETRUNCATED);
	assert_int_equal(CHECK(&n, 0xcd, 0x01), CAIRN_ETRUNCATED); /* header cut short */
	assert_int_equal(CHECK(&n, 0xcf, 1, 2, 3, 4, 5, 6, 7), CAIRN_ETRUNCATED);
	assert_int_equal(CHECK(&n, 0xc5, 0x00), CAIRN_ETRUNCATED);
	assert_int_equal(CHECK(&n, 0xa2, 'a'), CAIRN_ETRUNCATED);
	assert_int_equal(CHECK(&n, 0xc6, 0xff, 0xff, 0xff, 0xff, 0), CAIRN_ETRUNCATED);
	assert_int_equal(CHECK(&n, 0xdb, 0xff, 0xff, 0xff, 0xff, 0), CAIRN_ETRUNCATED);
	/* The pitfall of DESIGN.md: an array32 claiming 16777215 elements. */
	assert_int_equal(CHECK(&n, 0xdd, 0x00, 0xff, 0xff, 0xff), CAIRN_ETRUNCATED);
	assert_int_equal(CHECK(&n, 0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0), CAIRN_ETRUNCATED);
	assert_int_equal(CHECK(&n, 0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0, 0xc0), CAIRN_ETRUNCATED);
	/* N elements need N bytes: 3 elements, 2 bytes. */
	assert_int_equal(CHECK(&n, 0x93, 0xc0, 0xc0), CAIRN_ETRUNCATED);
	/* N pairs need 2N bytes: caught at the header, before the 0xc1 is reached. */
	assert_int_equal(CHECK(&n, 0x82, 0xc0, 0xc0, 0xc1), CAIRN_ETRUNCATED);
	assert_int_equal(CHECK(&n, 0x81, 0xc0), CAIRN_ETRUNCATED);
	assert_int_equal(CHECK(&n, 0x81, 0xc0, 0xc0), 0);
	/* A count that fits at its header, but the elements run out later. */
	assert_int_equal(CHECK(&n, 0x92, 0x92, 0xc0, 0xc0), CAIRN_ETRUNCATED);
}

/* Each proper prefix of a valid nested object is truncated, never accepted or misread. */
static void test_every_prefix_truncated(void **state)
{
	static const uint8_t msg[] = {0x94, 0x08, 0xce, 0xff, 0xff, 0xff, 0xff, 0x82,
	                              0xa1, 'k',  0xc4, 0x02, 0xaa, 0xbb, 0xcd, 0x01,
	                              0x00, 0x91, 0xc0, 0xd9, 0x03, 'a',  'b',  'c'};
	size_t n;
	assert_int_equal(cairn_msgcheck(msg, sizeof(msg), &n), 0);
	assert_int_equal(n, sizeof(msg));
	for (size_t len = 0; len < sizeof(msg); len++)
		assert_int_equal(cairn_msgcheck(msg, len, &n), CAIRN_ETRUNCATED);
}

static void test_count_cap(void **state)
{
	uint8_t buf[3 + 2 * (CAIRN_MSG_COUNT_MAX + 1)];
	size_t n;

	memset(buf, 0xc0, sizeof(buf));
	buf[0] = 0xdc; /* array 16 */
	buf[1] = 0;
	buf[2] = CAIRN_MSG_COUNT_MAX;
	assert_int_equal(cairn_msgcheck(buf, 3 + CAIRN_MSG_COUNT_MAX, &n), 0);
	buf[2] = CAIRN_MSG_COUNT_MAX + 1;
	assert_int_equal(cairn_msgcheck(buf, 3 + CAIRN_MSG_COUNT_MAX + 1, &n), CAIRN_ECOUNT);
	/* Truncation is checked first: 17 claimed, 16 there. */
	assert_int_equal(cairn_msgcheck(buf, 3 + CAIRN_MSG_COUNT_MAX, &n), CAIRN_ETRUNCATED);

	buf[0] = 0xde; /* map 16 */
	buf[2] = CAIRN_MSG_COUNT_MAX;
	assert_int_equal(cairn_msgcheck(buf, 3 + 2 * CAIRN_MSG_COUNT_MAX, &n), 0);
	buf[2] = CAIRN_MSG_COUNT_MAX + 1;
	assert_int_equal(cairn_msgcheck(buf, sizeof(buf), &n), CAIRN_ECOUNT);

	/* An array32 with a large count and enough bytes behind it is over the cap. */
	uint8_t big[5 + 1000];
	memset(big, 0xc0, sizeof(big));
	big[0] = 0xdd;
	big[1] = big[2] = 0;
	big[3] = 1000 >> 8;
	big[4] = 1000 & 0xff;
	assert_int_equal(cairn_msgcheck(big, sizeof(big), &n), CAIRN_ECOUNT);
}

static void test_depth_cap(void **state)
{
	size_t n;
	/* Four nested arrays, and maps mixed in: allowed. */
	assert_int_equal(CHECK(&n, 0x91, 0x91, 0x91, 0x91, 0xc0), 0);
	assert_int_equal(n, 5);
	assert_int_equal(CHECK(&n, 0x81, 0x01, 0x91, 0x81, 0x02, 0x90), 0);
	assert_int_equal(CHECK(&n, 0x91, 0x91, 0x91, 0x91, 0x91, 0xc0), CAIRN_EDEPTH);
	assert_int_equal(CHECK(&n, 0x91, 0x91, 0x91, 0x91, 0x90), CAIRN_EDEPTH); /* empty, too */
	assert_int_equal(CHECK(&n, 0x91, 0x91, 0x91, 0x91, 0x80), CAIRN_EDEPTH);
	/* Per element, count comes before depth; the walk stops at the first failing element. */
	assert_int_equal(CHECK(&n, 0x91, 0x91, 0x91, 0x91, 0xdc, 0, 17, 0xc0, 0xc0, 0xc0, 0xc0,
	                       0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0,
	                       0xc0, 0xc0),
	                 CAIRN_ECOUNT);
	assert_int_equal(CHECK(&n, 0x92, 0x91, 0x91, 0x91, 0x91, 0xc0, 0xc1), CAIRN_EDEPTH);
	/* Siblings do not add up: depth is nesting, not the number of containers. */
	assert_int_equal(
	    CHECK(&n, 0x93, 0x91, 0x91, 0x91, 0xc0, 0x91, 0x91, 0x91, 0xc0, 0x91, 0x91, 0x91, 0xc0),
	    0);

	/* Very deep nesting is refused at depth 5 without walking further. */
	uint8_t deep[100000];
	memset(deep, 0x91, sizeof(deep));
	assert_int_equal(cairn_msgcheck(deep, sizeof(deep), &n), CAIRN_EDEPTH);
}

/* Pseudo-random inputs: whatever the verdict, it is one of the five and stays in bounds. */
static void test_random_bytes_are_handled(void **state)
{
	uint32_t x = 0x12345678;
	uint8_t buf[64];
	unsigned accepted = 0;
	for (unsigned iter = 0; iter < 200000; iter++) {
		size_t len = 1 + (x >> 8) % sizeof(buf);
		for (size_t i = 0; i < len; i++) {
			x = x * 1103515245u + 12345u;
			/* Favour container and small headers so that deep shapes occur. */
			uint8_t b = (uint8_t)(x >> 16);
			buf[i] = (x & 0x10000000) ? (uint8_t)(0x90 | (b & 3)) : b;
		}
		size_t n;
		int rc = cairn_msgcheck(buf, len, &n);
		if (rc == 0) {
			accepted++;
			if (n == 0 || n > len)
				fail_msg("bad object length %zu of %zu", n, len);
		} else if (rc != CAIRN_EMALFORMED && rc != CAIRN_ETRUNCATED && rc != CAIRN_ECOUNT &&
		           rc != CAIRN_EDEPTH) {
			fail_msg("unexpected code %d", rc);
		}
	}
	assert_true(accepted > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_scalars_of_every_width),
	    cmocka_unit_test(test_strings_and_bins),
	    cmocka_unit_test(test_containers_and_object_length),
	    cmocka_unit_test(test_every_first_byte),
	    cmocka_unit_test(test_malformed_anywhere),
	    cmocka_unit_test(test_truncated),
	    cmocka_unit_test(test_every_prefix_truncated),
	    cmocka_unit_test(test_count_cap),
	    cmocka_unit_test(test_depth_cap),
	    cmocka_unit_test(test_random_bytes_are_handled),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
