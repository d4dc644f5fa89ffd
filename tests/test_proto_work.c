/* SPDX-License-Identifier: MIT */
/* Proof of work for intake mailboxes (PROTOCOL.md 5.10): the work/digest vector, solving and
 * checking, and what a verifier refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "mdvec.h"
#include "work.h"

static uint8_t sid[CAIRN_MAILBOX_ID_LEN], env[CAIRN_ENVELOPE_MAX], work[WORK_LEN];
static size_t env_len;

static void load(void)
{
	assert_int_equal(mdvec_hex("work/digest", "sender_id", sid, sizeof(sid)), sizeof(sid));
	env_len = mdvec_hex("work/digest", "envelope", env, sizeof(env));
	assert_int_equal(env_len, 896);
	assert_int_equal(mdvec_hex("work/digest", "work", work, sizeof(work)), WORK_LEN);
}

static void test_vector(void **state)
{
	(void)state;
	load();
	uint8_t h[WORK_HASH_LEN], want[WORK_HASH_LEN], d[WORK_HASH_LEN], w[WORK_LEN];
	work_envelope_hash(env, env_len, h);
	mdvec_hex("work/digest", "envelope_hash", want, sizeof(want));
	assert_memory_equal(h, want, WORK_HASH_LEN);
	work_digest(sid, h, work, d);
	mdvec_hex("work/digest", "work_digest", want, sizeof(want));
	assert_memory_equal(d, want, WORK_HASH_LEN);
	assert_int_equal(work_time(work), 1767225600);
	/* The smallest sufficient nonce from 0 is the vector's. */
	assert_int_equal(work_solve(sid, env, env_len, 1767225600, 12, 0, w, d), 0);
	assert_memory_equal(w, work, WORK_LEN);
	assert_memory_equal(d, want, WORK_HASH_LEN);
	assert_true(work_verify(sid, env, env_len, work, 12, d));
}

static void test_refusals(void **state)
{
	(void)state;
	load();
	uint8_t d[WORK_HASH_LEN], other[CAIRN_MAILBOX_ID_LEN];
	/* Its digest (0x0002...) has 14 leading zero bits: 15 are not there. */
	assert_false(work_verify(sid, env, env_len, work, 15, d));
	/* Bound to the envelope, the mailbox and the time. */
	env[100] ^= 1;
	assert_false(work_verify(sid, env, env_len, work, 12, d));
	env[100] ^= 1;
	memcpy(other, sid, sizeof(other));
	other[0] ^= 1;
	assert_false(work_verify(other, env, env_len, work, 12, d));
	work[7] ^= 1;
	assert_false(work_verify(sid, env, env_len, work, 12, d));
	work[7] ^= 1;
	assert_true(work_verify(sid, env, env_len, work, 12, d));
	uint8_t w[WORK_LEN];
	assert_int_equal(work_solve(sid, env, env_len, 1, 0, 0, w, NULL), CAIRN_EINVAL);
	assert_int_equal(work_solve(sid, env, env_len, 1, WORK_BITS_MAX + 1, 0, w, NULL),
	                 CAIRN_EINVAL);
}

static void test_sufficient_bits(void **state)
{
	(void)state;
	uint8_t d[WORK_HASH_LEN] = {0};
	d[2] = 0x10; /* 19 leading zero bits */
	assert_true(work_sufficient(d, 0));
	assert_true(work_sufficient(d, 19));
	assert_false(work_sufficient(d, 20));
	memset(d, 0, sizeof(d));
	assert_true(work_sufficient(d, 256));
	assert_false(work_sufficient(d, 257));
	d[0] = 0x80;
	assert_false(work_sufficient(d, 1));
}

/* Solutions found from random nonces verify, and cost about 2^bits tries: over 64 solves at
 * 8 bits the mean is within a factor of 2 of 256 (the test fails only by bad luck, with
 * probability far below 1e-9, or if the solver checked fewer bits than asked). */
static void test_solve_cost(void **state)
{
	(void)state;
	load();
	uint64_t tries = 0;
	for (int i = 0; i < 64; i++) {
		uint64_t start = randombytes_random();
		uint8_t w[WORK_LEN], d[WORK_HASH_LEN];
		assert_int_equal(work_solve(sid, env, env_len, 1767225600 + i, 8, start, w, d), 0);
		assert_true(work_verify(sid, env, env_len, w, 8, d));
		assert_int_equal(work_time(w), 1767225600 + i);
		uint64_t nonce = 0;
		for (int j = 8; j < 16; j++)
			nonce = nonce << 8 | w[j];
		tries += nonce - start + 1;
	}
	assert_in_range(tries / 64, 128, 512);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vector),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_sufficient_bits),
	    cmocka_unit_test(test_solve_cost),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
