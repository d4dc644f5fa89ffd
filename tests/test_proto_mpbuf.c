/* SPDX-License-Identifier: MIT */
/*
 * The bounded msgpack writer and reader that codec.c and policy.c share (proto/mpbuf.h): the
 * shortest forms at each width's edge, a write past the capacity that fails and stays failed,
 * every cut of a value read as truncated, and the other types refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mpbuf.h"

#define BYTES(...) (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})

static void assert_bytes(const struct mpbuf_out *w, const uint8_t *want, size_t n)
{
	assert_false(w->overflow);
	assert_int_equal(w->len, n);
	assert_memory_equal(w->out, want, n);
}

static void test_shortest_forms(void **state)
{
	(void)state;
	uint8_t buf[80];
	char s32[32];
	memset(s32, 'x', sizeof(s32));
	struct mpbuf_out w;

	mpbuf_out_init(&w, buf, sizeof(buf));
	assert_int_equal(msgpack_pack_uint32(&w.pk, 0x7f), 0);
	assert_int_equal(msgpack_pack_uint32(&w.pk, 0x80), 0);
	assert_int_equal(msgpack_pack_uint32(&w.pk, 0x100), 0);
	assert_int_equal(msgpack_pack_uint32(&w.pk, 0x10000), 0);
	assert_bytes(&w, BYTES(0x7f, 0xcc, 0x80, 0xcd, 0x01, 0x00, 0xce, 0x00, 0x01, 0x00, 0x00));

	mpbuf_out_init(&w, buf, sizeof(buf));
	assert_int_equal(mpbuf_put_str(&w, "ab", 2), 0);
	assert_int_equal(mpbuf_put_bin(&w, "ab", 2), 0);
	assert_int_equal(mpbuf_put_bin(&w, NULL, 0), 0);
	assert_int_equal(mpbuf_put_str(&w, "", 0), 0);
	assert_bytes(&w, BYTES(0xa2, 'a', 'b', 0xc4, 2, 'a', 'b', 0xc4, 0, 0xa0));

	/* 32 bytes is the first str that needs str8 */
	mpbuf_out_init(&w, buf, sizeof(buf));
	assert_int_equal(mpbuf_put_str(&w, s32, 31), 0);
	assert_int_equal(w.len, 32);
	assert_int_equal(buf[0], 0xbf);
	mpbuf_out_init(&w, buf, sizeof(buf));
	assert_int_equal(mpbuf_put_str(&w, s32, 32), 0);
	assert_int_equal(w.len, 34);
	assert_int_equal(buf[0], 0xd9);
	assert_int_equal(buf[1], 32);
}

static void test_writer_bounded(void **state)
{
	(void)state;
	uint8_t buf[8];
	memset(buf, 0xee, sizeof(buf));
	struct mpbuf_out w;

	/* 4 bytes of room: a 3-byte bin's header fits and its body does not; then a write that
	 * would fit in what is left fails too */
	mpbuf_out_init(&w, buf, 4);
	assert_int_not_equal(mpbuf_put_bin(&w, "abc", 3), 0);
	assert_true(w.overflow);
	assert_int_not_equal(msgpack_pack_uint32(&w.pk, 1), 0);
	assert_true(w.overflow);
	assert_int_equal(w.len, 2);
	assert_int_equal(buf[2], 0xee); /* nothing after the failed write */
	assert_int_equal(buf[4], 0xee); /* nothing past the capacity */

	/* exactly full is no overflow */
	mpbuf_out_init(&w, buf, 5);
	assert_int_equal(mpbuf_put_bin(&w, "abc", 3), 0);
	assert_int_equal(w.len, 5);
	assert_false(w.overflow);

	mpbuf_out_init(&w, NULL, 100);
	assert_int_not_equal(msgpack_pack_nil(&w.pk), 0);
	assert_true(w.overflow);
}

/* Every proper prefix of a value reads as CAIRN_ETRUNCATED (the empty one too). */
static void assert_cuts_truncated(const uint8_t *v, size_t n, int kind)
{
	for (size_t cut = 0; cut < n; cut++) {
		struct mpbuf_in r = {v, cut, 0};
		uint64_t x;
		uint32_t count;
		const uint8_t *d;
		size_t dn;
		int rc = kind == 0   ? mpbuf_read_uint(&r, &x)
		         : kind == 1 ? mpbuf_read_array(&r, &count)
		         : kind == 2 ? mpbuf_read_bin(&r, &d, &dn)
		                     : mpbuf_read_str(&r, &d, &dn);
		assert_int_equal(rc, CAIRN_ETRUNCATED);
		assert_true(r.pos <= cut);
	}
}

static void test_reader(void **state)
{
	(void)state;
	const uint8_t v[] = {0xcf, 0,    0,    0,   1,   0, 0, 0, 2, /* uint64 */
	                     0xd1, 0x01, 0x00,                       /* int16 256 */
	                     0xdc, 0x00, 0x03,                       /* array16 of 3 */
	                     0xc5, 0x00, 0x02, 'h', 'i',             /* bin16 */
	                     0xd9, 0x01, 'z',                        /* str8 */
	                     0xc0};
	struct mpbuf_in r = {v, sizeof(v), 0};
	uint64_t x;
	uint32_t count;
	const uint8_t *d;
	size_t n;
	assert_int_equal(mpbuf_read_uint(&r, &x), 0);
	assert_true(x == 0x100000002ull);
	assert_int_equal(mpbuf_read_uint(&r, &x), 0);
	assert_int_equal(x, 256);
	assert_int_equal(mpbuf_read_array(&r, &count), 0);
	assert_int_equal(count, 3);
	assert_int_equal(mpbuf_read_bin(&r, &d, &n), 0);
	assert_int_equal(n, 2);
	assert_memory_equal(d, "hi", 2);
	assert_int_equal(mpbuf_take_nil(&r), 0); /* a str is next: not taken */
	assert_int_equal(mpbuf_read_str(&r, &d, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(d[0], 'z');
	assert_int_equal(mpbuf_take_nil(&r), 1);
	assert_int_equal(r.pos, sizeof(v));
	assert_int_equal(mpbuf_take_nil(&r), 0); /* at the end */
	assert_null(mpbuf_take(&r, 1));

	assert_cuts_truncated(BYTES(0xcf, 0, 0, 0, 0, 0, 0, 0, 9), 0);
	assert_cuts_truncated(BYTES(0xdd, 0, 0, 0, 1), 1);
	assert_cuts_truncated(BYTES(0xc6, 0, 0, 0, 2, 'a', 'b'), 2);
	assert_cuts_truncated(BYTES(0xda, 0, 2, 'a', 'b'), 3);
	assert_cuts_truncated(BYTES(0xa2, 'a', 'b'), 3);

	/* A length that claims more than is there: truncated, never read past the end. */
	const uint8_t huge[] = {0xc6, 0xff, 0xff, 0xff, 0xff, 0};
	r = (struct mpbuf_in){huge, sizeof(huge), 0};
	assert_int_equal(mpbuf_read_bin(&r, &d, &n), CAIRN_ETRUNCATED);
}

static void test_reader_types(void **state)
{
	(void)state;
	const uint8_t *d;
	size_t n;
	uint64_t x;
	uint32_t count;
	/* negative fixint, negative int8, float, nil, str: not a uint */
	const uint8_t neg[][2] = {{0xe0, 0}, {0xd0, 0x80}, {0xca, 0}, {0xc0, 0}, {0xa0, 0}};
	for (size_t i = 0; i < sizeof(neg) / sizeof(neg[0]); i++) {
		struct mpbuf_in r = {neg[i], 2, 0};
		assert_int_equal(mpbuf_read_uint(&r, &x), CAIRN_ETYPE);
	}
	/* a str is not a bin, a bin is not a str, a map is not an array */
	struct mpbuf_in r = {(const uint8_t[]){0xa1, 'a'}, 2, 0};
	assert_int_equal(mpbuf_read_bin(&r, &d, &n), CAIRN_ETYPE);
	r = (struct mpbuf_in){(const uint8_t[]){0xc4, 0}, 2, 0};
	assert_int_equal(mpbuf_read_str(&r, &d, &n), CAIRN_ETYPE);
	r = (struct mpbuf_in){(const uint8_t[]){0x81, 1, 1}, 3, 0};
	assert_int_equal(mpbuf_read_array(&r, &count), CAIRN_ETYPE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_shortest_forms),
	    cmocka_unit_test(test_writer_bounded),
	    cmocka_unit_test(test_reader),
	    cmocka_unit_test(test_reader_types),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
