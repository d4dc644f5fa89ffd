/* SPDX-License-Identifier: MIT */
/*
 * The censor's passive test (tests/tools/fet.c, the rules of Wu et al., USENIX Security 2023)
 * on the paper's kinds of first packets: uniformly random bytes and Cairn's direct message 1
 * (a Noise message, framed) are blocked; a TLS ClientHello, an HTTP GET and a printable prefix
 * are exempt; and each exemption at and just past its threshold. Randomness is deterministic
 * (a fixed seed), so a verdict never depends on the run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "cairn/limits.h"
#include "fet.h"
#include "handshake.h"

static void fill(uint8_t *p, size_t n, uint8_t tag)
{
	uint8_t seed[randombytes_SEEDBYTES] = {tag};
	randombytes_buf_deterministic(p, n, seed);
}

/* Uniformly random bytes of the sizes a fully encrypted protocol sends first: the paper's
 * blocked class. A random buffer can start with six printable bytes ((95/256)^6, 0.26%): the
 * GFW lets those through too, and so does the censor. */
static void test_random_blocked(void **state)
{
	(void)state;
	unsigned blocked = 0, prefix = 0;
	for (unsigned i = 0; i < 1000; i++) {
		uint8_t buf[1000];
		size_t n = 50 + (i * 37) % 950;
		fill(buf, n, (uint8_t)i);
		buf[0] = (uint8_t)i; /* the seeds differ only in their first byte */
		enum fet_verdict v = fet_classify(buf, n);
		blocked += v == FET_BLOCK;
		prefix += v == FET_EX2_PREFIX;
	}
	assert_true(blocked >= 990);
	assert_int_equal(blocked + prefix, 1000);
}

/* Cairn's direct transport: a frame (u16 length) holding message 1, for the shortest, a
 * middling and the longest padding. */
static void test_noise_message1_blocked(void **state)
{
	(void)state;
	uint8_t relay_sk[CAIRN_KEY_LEN], relay_pk[CAIRN_KEY_LEN], eph[CAIRN_KEY_LEN];
	fill(relay_sk, sizeof(relay_sk), 200);
	crypto_scalarmult_base(relay_pk, relay_sk);
	static const size_t pads[] = {0, 100, 255};
	for (size_t i = 0; i < 3; i++) {
		fill(eph, sizeof(eph), (uint8_t)(210 + i));
		struct noise_handshake hs;
		uint8_t frame[2 + CAIRN_HANDSHAKE1_MAX];
		size_t len = 0;
		assert_int_equal(cairn_handshake_client_start(&hs, relay_pk, eph, 1764900000u,
		                                              pads[i], frame + 2, sizeof(frame) - 2,
		                                              &len),
		                 0);
		frame[0] = (uint8_t)(len >> 8);
		frame[1] = (uint8_t)len;
		assert_int_equal(fet_classify(frame, len + 2), FET_BLOCK);
		sodium_memzero(&hs, sizeof(hs));
	}
}

/* A TLS 1.3 ClientHello as browsers send it: record header 16 03 01, random, session id, key
 * share (all random), cipher suites, SNI. */
static void test_tls_client_hello_exempt(void **state)
{
	(void)state;
	uint8_t ch[512];
	size_t n = 0;
	static const uint8_t head[] = {0x16, 0x03, 0x01, 0x01, 0x00, 0x01,
	                               0x00, 0x00, 0xfc, 0x03, 0x03};
	memcpy(ch, head, sizeof(head));
	n = sizeof(head);
	fill(ch + n, 32, 1); /* random */
	n += 32;
	ch[n++] = 32;
	fill(ch + n, 32, 2); /* legacy session id */
	n += 32;
	static const uint8_t suites[] = {0x00, 0x06, 0x13, 0x01, 0x13, 0x02, 0x13,
	                                 0x03, 0x01, 0x00, 0x00, 0xcd, 0x00, 0x00,
	                                 0x00, 0x10, 0x00, 0x0e, 0x00, 0x00, 0x0b};
	memcpy(ch + n, suites, sizeof(suites));
	n += sizeof(suites);
	memcpy(ch + n, "example.org", 11);
	n += 11;
	static const uint8_t ks[] = {0x00, 0x33, 0x00, 0x26, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20};
	memcpy(ch + n, ks, sizeof(ks));
	n += sizeof(ks);
	fill(ch + n, 32, 3); /* X25519 key share */
	n += 32;
	memset(ch + n, 0, 120); /* padding extension */
	n += 120;
	assert_int_not_equal(fet_classify(ch, n), FET_BLOCK);

	/* The fingerprint alone exempts: a TLS record header before random bytes. */
	uint8_t rec[300] = {0x16, 0x03, 0x03, 0x01, 0x29};
	fill(rec + 5, sizeof(rec) - 5, 4);
	rec[5] = 0x80;
	assert_int_equal(fet_classify(rec, sizeof(rec)), FET_EX5_PROTOCOL);
	rec[2] = 0x04; /* 3.4 is not a TLS record version */
	assert_int_equal(fet_classify(rec, sizeof(rec)), FET_BLOCK);
}

static void test_http_exempt(void **state)
{
	(void)state;
	static const char get[] = "GET / HTTP/1.1\r\nHost: example.org\r\n\r\n";
	assert_int_not_equal(fet_classify((const uint8_t *)get, strlen(get)), FET_BLOCK);
	/* A method word before random bytes: the HTTP fingerprint. */
	uint8_t buf[300];
	static const char *const methods[] = {"GET ", "PUT ", "POST "}; /* under 6 bytes: not Ex2 */
	for (size_t i = 0; i < 3; i++) {
		size_t m = strlen(methods[i]);
		memcpy(buf, methods[i], m);
		fill(buf + m, sizeof(buf) - m, (uint8_t)(5 + i));
		buf[m] = 0x81; /* so the first six bytes are not all printable */
		buf[m + 1] = 0x02;
		assert_int_equal(fet_classify(buf, sizeof(buf)), FET_EX5_PROTOCOL);
		buf[0] = 'X';
		assert_int_equal(fet_classify(buf, sizeof(buf)), FET_BLOCK);
	}
}

/* Shadowsocks' countermeasure: six printable bytes before the random ones. */
static void test_printable_prefix_exempt(void **state)
{
	(void)state;
	uint8_t buf[300];
	fill(buf, sizeof(buf), 9);
	buf[0] = 0x80;
	assert_int_equal(fet_classify(buf, sizeof(buf)), FET_BLOCK);
	memcpy(buf, "HTTP/1", 6);
	assert_int_equal(fet_classify(buf, sizeof(buf)), FET_EX2_PREFIX);
	buf[5] = 0x7f; /* DEL is not printable */
	assert_int_equal(fet_classify(buf, sizeof(buf)), FET_BLOCK);
}

/* Each remaining rule at its threshold, and just past it. */
static void test_thresholds(void **state)
{
	(void)state;
	/* Ex1: 34 bits in 10 bytes is 3.4 per byte (exempt), 35 is 3.5 (blocked); 46 is 4.6
	 * (exempt), 45 is 4.5 (blocked). No byte is printable. */
	uint8_t low[10] = {0x0f, 0x0f, 0x0f, 0x0f, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07};
	assert_int_equal(fet_classify(low, 10), FET_EX1_POPCOUNT);
	low[4] = 0x0f;
	assert_int_equal(fet_classify(low, 10), FET_BLOCK);
	uint8_t high[10] = {0xff, 0xff, 0xff, 0xff, 0x1f, 0x1f, 0x03, 0x03, 0x00, 0x00};
	assert_int_equal(fet_classify(high, 10), FET_EX1_POPCOUNT);
	high[7] = 0x01;
	assert_int_equal(fet_classify(high, 10), FET_BLOCK);

	/* Ex3: more than half printable, in runs of three (so neither Ex2 nor Ex4). */
	uint8_t mix[300];
	fill(mix, sizeof(mix), 10);
	for (size_t i = 0; i < sizeof(mix); i++)
		mix[i] = i % 5 < 3 ? (uint8_t)(0x20 + mix[i] % 95) : (uint8_t)(0x80 | mix[i]);
	assert_int_equal(fet_classify(mix, sizeof(mix)), FET_EX3_FRACTION);
	for (size_t i = 0; i < sizeof(mix); i++)
		if (i % 10 == 2)
			mix[i] = 0x80 | mix[i]; /* now exactly half printable */
	assert_int_equal(fet_classify(mix, sizeof(mix)), FET_BLOCK);

	/* Ex4: 21 contiguous printable bytes in random ones; 20 are not enough. */
	uint8_t run[300];
	fill(run, sizeof(run), 11);
	for (size_t i = 0; i < sizeof(run); i++)
		if (run[i] >= 0x20 && run[i] <= 0x7e)
			run[i] |= 0x80; /* no accidental runs */
	assert_int_equal(fet_classify(run, sizeof(run)), FET_BLOCK);
	memset(run + 100, 'a' + 3, 20);
	run[110] = '5';
	assert_int_equal(fet_classify(run, sizeof(run)), FET_BLOCK);
	run[120] = 'z';
	assert_int_equal(fet_classify(run, sizeof(run)), FET_EX4_RUN);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(fet_name(FET_BLOCK), "blocked");
	assert_string_equal(fet_name(FET_EX5_PROTOCOL), "ex5-protocol");
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_random_blocked),
	    cmocka_unit_test(test_noise_message1_blocked),
	    cmocka_unit_test(test_tls_client_hello_exempt),
	    cmocka_unit_test(test_http_exempt),
	    cmocka_unit_test(test_printable_prefix_exempt),
	    cmocka_unit_test(test_thresholds),
	    cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
