/* SPDX-License-Identifier: MIT */
/* Shared by the private routing tests (test_it_forward*.c, test_relay_forward.c): a FORWARD's
 * answer as the client reads it (docs/PROTOCOL.md 5.11). */
#ifndef CAIRN_TEST_IT_FORWARD_H
#define CAIRN_TEST_IT_FORWARD_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "codec.h"
#include "forward.h"

/* Opens SEALED (LEN bytes), a sealed reply, with K_REP into M, the command inside (which points
 * into INNER). Fails the test if it does not open or decode. */
static inline void it_open_sealed_reply(const uint8_t k_rep[32], const uint8_t *sealed, size_t len,
                                        uint8_t inner[FORWARD_REPLY_INNER], struct cairn_msg *m)
{
	const uint8_t *rep;
	size_t rlen;
	assert_int_equal(forward_reply_open(k_rep, sealed, len, inner, &rep, &rlen), 0);
	assert_int_equal(cairn_msg_decode(rep, rlen, NULL, m, NULL), 0);
}

/* R, the answer to a FORWARD whose reply key is K_REP: 0 (OK inside SEALED), the inner
 * ERROR's code, or the outer ERROR's code with *OUTER set. Fails the test on anything else. */
static inline int it_forward_answer(const struct cairn_msg *r, const uint8_t k_rep[32], bool *outer)
{
	*outer = r->type != CAIRN_REPLY_SEALED;
	if (r->type == CAIRN_REPLY_ERROR)
		return cairn_wire_error(r->code);
	assert_int_equal(r->type, CAIRN_REPLY_SEALED);
	uint8_t inner[FORWARD_REPLY_INNER];
	struct cairn_msg m;
	it_open_sealed_reply(k_rep, r->sealed, r->sealed_len, inner, &m);
	return m.type == CAIRN_REPLY_OK ? 0 : cairn_wire_error(m.code);
}

#endif
