/* SPDX-License-Identifier: MIT */
/* The shared part of the test_proto_e2e programs (proto_e2e_common.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "proto_e2e_common.h"

void script_fill(void *ctx, uint8_t *out, size_t len)
{
	struct script *s = ctx;
	assert_int_equal(len, 32);
	assert_true(s->next < s->n);
	memcpy(out, s->keys[s->next++], 32);
}
