/* SPDX-License-Identifier: MIT */
/*
 * What test_proto_e2e (HKDF, invites, mailbox lists, the X3DH vectors) and test_proto_e2e_session
 * (one-time keys, type confusion, identities, padding, safety numbers) share: a scripted random
 * source and an identity key pair (proto_e2e_common.c).
 */
#ifndef CAIRN_TEST_PROTO_E2E_COMMON_H
#define CAIRN_TEST_PROTO_E2E_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* A scripted random source: hands out the listed 32-byte keys in order. */
struct script {
	uint8_t keys[4][32];
	int n, next;
};

/* An e2e_rng fill function over a struct script (CTX): hands out its next key; LEN must be 32. */
void script_fill(void *ctx, uint8_t *out, size_t len);

struct identity {
	uint8_t pk[32], sk[64];
};

#endif
