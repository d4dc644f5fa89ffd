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

#include "mdvec.h"
#include "proto_e2e_common.h"

void script_fill(void *ctx, uint8_t *out, size_t len)
{
	struct script *s = ctx;
	assert_int_equal(len, 32);
	assert_true(s->next < s->n);
	memcpy(out, s->keys[s->next++], 32);
}

void x3dh_ikm_check(const char *vec, const struct identity *ii, const struct identity *ia,
                    const uint8_t ek[32], const uint8_t opk[32], uint8_t ikm[128])
{
	static const char *const names[3] = {"dh1", "dh2", "dh3"};
	uint8_t ax[32], ix[32], v[32];
	assert_int_equal(crypto_sign_ed25519_sk_to_curve25519(ax, ia->sk), 0);
	assert_int_equal(crypto_sign_ed25519_pk_to_curve25519(ix, ii->pk), 0);
	memset(ikm, 0xff, 32);
	assert_int_equal(crypto_scalarmult(ikm + 32, ax, opk), 0);
	assert_int_equal(crypto_scalarmult(ikm + 64, ek, ix), 0);
	assert_int_equal(crypto_scalarmult(ikm + 96, ek, opk), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(mdvec_hex(vec, names[i], v, 32), 32);
		assert_memory_equal(v, ikm + 32 * (i + 1), 32);
	}
}
