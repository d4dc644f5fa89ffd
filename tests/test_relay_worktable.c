/* SPDX-License-Identifier: MIT */
/*
 * The relay's table of used work (relay/worktable.c, docs/PROTOCOL.md 5.10 check 4): insert
 * and lookup, an entry's life to the second, a full table, bounded expiry, and, under churn
 * on a small table where clusters form and removals shift entries, no live entry ever lost.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "cairn/error.h"
#include "worktable.h"

#define LIFE 1200

/* A digest as the relay sees one: its first bytes zero (the work), the rest random. */
static void digest_of(uint8_t d[WORKTABLE_DIGEST_LEN])
{
	randombytes_buf(d, WORKTABLE_DIGEST_LEN);
	memset(d, 0, 2);
}

static void test_insert_and_lookup(void **state)
{
	(void)state;
	struct worktable t;
	worktable_init(&t, 1000, LIFE);
	assert_null(t.ring); /* nothing allocated before the first insert */
	uint8_t d[100][WORKTABLE_DIGEST_LEN], other[WORKTABLE_DIGEST_LEN];
	digest_of(other);
	assert_false(worktable_seen(&t, other, 0));
	for (int i = 0; i < 100; i++) {
		digest_of(d[i]);
		assert_int_equal(worktable_insert(&t, d[i], 1000 + i), 0);
	}
	assert_int_equal(t.len, 100);
	assert_true(t.mask + 1 >= 2 * 1000); /* at most half full */
	for (int i = 0; i < 100; i++)
		assert_true(worktable_seen(&t, d[i], 1100));
	for (int i = 0; i < 1000; i++) {
		digest_of(other);
		assert_false(worktable_seen(&t, other, 1100));
	}
	/* The key is the digest's tail: a digest differing only in its last byte is another. */
	memcpy(other, d[0], sizeof(other));
	other[WORKTABLE_DIGEST_LEN - 1] ^= 1;
	assert_false(worktable_seen(&t, other, 1100));
	worktable_free(&t);
	assert_null(t.ring);
	assert_false(worktable_seen(&t, d[0], 1100));
	/* Freed, it may be used again. */
	assert_int_equal(worktable_insert(&t, d[0], 1100), 0);
	assert_true(worktable_seen(&t, d[0], 1100));
	worktable_free(&t);
}

/* An entry is live through now + LIFE, and gone the second after, whether or not expiry
 * has removed it yet; expiry removes at most its steps, oldest first. */
static void test_expiry(void **state)
{
	(void)state;
	struct worktable t;
	worktable_init(&t, 100, LIFE);
	uint8_t d[10][WORKTABLE_DIGEST_LEN];
	for (int i = 0; i < 10; i++) {
		digest_of(d[i]);
		assert_int_equal(worktable_insert(&t, d[i], 5000 + i), 0);
	}
	assert_true(worktable_seen(&t, d[0], 5000 + LIFE));
	assert_false(worktable_seen(&t, d[0], 5000 + LIFE + 1));
	assert_int_equal(worktable_expire(&t, 5000 + LIFE, 100), 0);
	assert_int_equal(worktable_expire(&t, 5000 + LIFE + 5, 2), 2);
	assert_int_equal(t.len, 8);
	assert_int_equal(worktable_expire(&t, 5000 + LIFE + 5, 100), 3);
	assert_int_equal(t.len, 5);
	for (int i = 5; i < 10; i++)
		assert_true(worktable_seen(&t, d[i], 5000 + LIFE + 5));
	/* Inserted again after its entry expired: live again. */
	assert_int_equal(worktable_insert(&t, d[0], 7000), 0);
	assert_true(worktable_seen(&t, d[0], 7000));
	worktable_free(&t);
}

/* A full table refuses (nothing inserted) while its oldest entry lives; an insert expires
 * what it needs, with no separate expiry pass. */
static void test_full(void **state)
{
	(void)state;
	struct worktable t;
	worktable_init(&t, 16, LIFE);
	uint8_t d[WORKTABLE_DIGEST_LEN], extra[WORKTABLE_DIGEST_LEN];
	for (int i = 0; i < 16; i++) {
		digest_of(d);
		assert_int_equal(worktable_insert(&t, d, 100 + i), 0);
	}
	digest_of(extra);
	assert_int_equal(worktable_insert(&t, extra, 100 + LIFE), CAIRN_ECAPACITY);
	assert_false(worktable_seen(&t, extra, 100 + LIFE));
	assert_int_equal(t.len, 16);
	/* The oldest expired: room for one. */
	assert_int_equal(worktable_insert(&t, extra, 101 + LIFE), 0);
	assert_true(worktable_seen(&t, extra, 101 + LIFE));
	assert_int_equal(t.len, 16);
	/* Everything expired: each insert removes two, so the table empties as it fills. */
	for (int i = 0; i < 16; i++) {
		digest_of(d);
		assert_int_equal(worktable_insert(&t, d, 10000 + i), 0);
	}
	assert_int_equal(t.len, 16);
	worktable_free(&t);
}

/* Churn on a table of 64 entries (128 index slots, clusters and wrap-around common): at each
 * step every live entry is found, whatever removals shifted. */
static void test_no_lost_entries(void **state)
{
	(void)state;
	enum { MAX = 64, ROUNDS = 20000 };
	struct worktable t;
	worktable_init(&t, MAX, 50);
	static uint8_t keys[ROUNDS][WORKTABLE_DIGEST_LEN];
	static int64_t at[ROUNDS];
	int64_t now = 1;
	size_t inserted = 0, refused = 0;
	for (size_t r = 0; r < ROUNDS; r++) {
		now += randombytes_uniform(2); /* 0..1 s a step: the table often full */
		if (randombytes_uniform(4) == 0)
			(void)worktable_expire(&t, now, randombytes_uniform(4));
		digest_of(keys[inserted]);
		int rc = worktable_insert(&t, keys[inserted], now);
		if (rc == CAIRN_ECAPACITY) {
			refused++;
			assert_false(worktable_seen(&t, keys[inserted], now));
			continue;
		}
		assert_int_equal(rc, 0);
		at[inserted++] = now;
		/* Every entry inserted within LIFE is live and found. */
		for (size_t i = inserted; i-- > 0 && now <= at[i] + 50;)
			assert_true(worktable_seen(&t, keys[i], now));
		assert_true(t.len <= MAX);
	}
	assert_true(refused > 0); /* the full case was exercised */
	assert_true(inserted > 10 * MAX);
	worktable_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_insert_and_lookup),
	    cmocka_unit_test(test_expiry),
	    cmocka_unit_test(test_full),
	    cmocka_unit_test(test_no_lost_entries),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
