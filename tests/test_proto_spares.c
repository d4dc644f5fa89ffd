/* SPDX-License-Identifier: MIT */
/*
 * Spare blocks kept for reuse (proto/spares.h): the last kept comes out first, nothing past
 * the caller's limit or SPARES_MAX, a tick keeps them after it was asked and drops them all
 * after a tick without, and spares_free drops every one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "spares.h"

static int dropped;

static void drop(void *block)
{
	dropped++;
	free(block);
}

static void *block(void)
{
	void *b = malloc(16);
	assert_non_null(b);
	return b;
}

static void test_take_keep(void **state)
{
	(void)state;
	struct spares s = {0};
	assert_null(spares_take(&s));
	void *a = block(), *b = block();
	assert_true(spares_keep(&s, a, 4));
	assert_true(spares_keep(&s, b, 4));
	assert_ptr_equal(spares_take(&s), b);
	assert_ptr_equal(spares_take(&s), a);
	assert_null(spares_take(&s));
	assert_null(s.slot[0]);
	free(a);
	free(b);
}

static void test_limits(void **state)
{
	(void)state;
	static struct spares s; /* 8 KiB */
	dropped = 0;
	void *extra = block();
	for (int i = 0; i < 3; i++)
		assert_true(spares_keep(&s, block(), 3));
	assert_false(spares_keep(&s, extra, 3));
	assert_int_equal(s.count, 3);
	while (s.count < SPARES_MAX)
		assert_true(spares_keep(&s, block(), SPARES_MAX + 5));
	assert_false(spares_keep(&s, extra, SPARES_MAX + 5));
	spares_free(&s, drop);
	assert_int_equal(dropped, SPARES_MAX);
	assert_int_equal(s.count, 0);
	assert_null(spares_take(&s));
	free(extra);
}

static void test_tick(void **state)
{
	(void)state;
	struct spares s = {0};
	dropped = 0;
	spares_tick(&s, drop); /* empty: nothing to drop */
	assert_true(spares_keep(&s, block(), 8));
	assert_true(spares_keep(&s, block(), 8));
	void *b = spares_take(&s); /* asked: the next tick keeps the rest */
	spares_tick(&s, drop);
	assert_int_equal(dropped, 0);
	assert_int_equal(s.count, 1);
	assert_true(spares_keep(&s, b, 8));
	spares_tick(&s, drop); /* none asked since: all dropped */
	assert_int_equal(dropped, 2);
	assert_int_equal(s.count, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_take_keep),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_tick),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
