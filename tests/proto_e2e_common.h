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

/*
 * X3DH's input keying material F || DH1 || DH2 || DH3 (PROTOCOL.md 8.3, 10.4) into IKM, by
 * libsodium directly, from the inviter's (owner's) identity II, the accepter's (requester's)
 * identity IA, the ephemeral private key EK and the one-time key or prekey OPK; fails the test
 * unless DH1..DH3 are vector VEC's dh1, dh2 and dh3.
 */
void x3dh_ikm_check(const char *vec, const struct identity *ii, const struct identity *ia,
                    const uint8_t ek[32], const uint8_t opk[32], uint8_t ikm[128]);

#endif
