/* SPDX-License-Identifier: MIT */
/* The error table: every code has its own message and name, and wire codes stay put. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cairn/error.h"

static void test_every_code_has_distinct_text(void **state)
{
	static const int codes[] = {
#define XX(name, value, msg) CAIRN_##name,
		CAIRN_ERRNO_MAP(XX)
#undef XX
	};
	size_t n = sizeof(codes) / sizeof(codes[0]);
	for (size_t i = 0; i < n; i++) {
		assert_true(codes[i] < 0);
		assert_string_not_equal(cairn_strerror(codes[i]), "unknown error");
		for (size_t j = i + 1; j < n; j++) {
			assert_int_not_equal(codes[i], codes[j]);
			assert_string_not_equal(cairn_strerror(codes[i]), cairn_strerror(codes[j]));
		}
	}
	assert_string_equal(cairn_strerror(0), "success");
	assert_string_equal(cairn_strerror(-9999), "unknown error");
	assert_string_equal(cairn_strerror_name(CAIRN_EDENIED), "CAIRN_EDENIED");
}

static void test_wire_codes_are_stable(void **state)
{
	/* docs/PROTOCOL.md section 5.6 publishes these numbers. */
	assert_int_equal(CAIRN_EBADREQ, -1);
	assert_int_equal(CAIRN_EUNKNOWN, -2);
	assert_int_equal(CAIRN_EDENIED, -3);
	assert_int_equal(CAIRN_EQUOTA, -4);
	assert_int_equal(CAIRN_ETOOBIG, -5);
	assert_int_equal(CAIRN_ELIMIT, -6);
	assert_int_equal(CAIRN_ESTORAGE, -7);
	assert_int_equal(CAIRN_ESHUTDOWN, -8);
	assert_int_equal(CAIRN_ECAPACITY, -9);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_code_has_distinct_text),
		cmocka_unit_test(test_wire_codes_are_stable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
