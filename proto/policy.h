/* SPDX-License-Identifier: MIT */
/*
 * The relay's signed policy (docs/PROTOCOL.md 5.13): the body (a msgpack array of nine
 * fields, shortest forms, one encoding per policy), its BLAKE2b-256 digest, and the XEdDSA
 * signature by the relay's X25519 static key that a client checks as a plain Ed25519
 * signature by the key's Edwards form A. Pure: no files, sockets or clocks; the only
 * randomness is XEdDSA's Z, which a caller may fix (vectors).
 */
#ifndef CAIRN_PROTO_POLICY_H
#define CAIRN_PROTO_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/error.h"

#define POLICY_VERSION    1
#define POLICY_BODY_MAX   4096
#define POLICY_TEXT_MAX   1024 /* bytes of each string, without its NUL */
#define POLICY_SIG_LEN    64
#define POLICY_DIGEST_LEN 32
#define POLICY_Z_LEN      64

/* A decoded (or to-be-encoded) body. The strings are NUL-terminated UTF-8 without U+0000,
 * each at most POLICY_TEXT_MAX bytes. About 5 KiB: callers keep it off small stacks if they
 * must. */
struct policy {
	uint8_t edwards[32]; /* A: the relay key's Edwards form, sign bit 0 */
	char jurisdiction[POLICY_TEXT_MAX + 1];
	char contact[POLICY_TEXT_MAX + 1];
	uint32_t ttl_s;
	char logging[POLICY_TEXT_MAX + 1];
	char retention[POLICY_TEXT_MAX + 1];
	uint8_t forwarding; /* 0 or 1 */
	char statement[POLICY_TEXT_MAX + 1];
};

/* 1 if S (LEN bytes) is valid UTF-8 (RFC 3629) without U+0000, else 0. */
int policy_text_valid(const char *s, size_t len);

/*
 * Encodes P into OUT (capacity CAP) and sets *LEN. Returns 0; CAIRN_EINVAL if a string is
 * too long or not valid UTF-8, or forwarding > 1; CAIRN_ENOBUFS if the body would not fit CAP
 * or POLICY_BODY_MAX.
 */
CAIRN_WARN_UNUSED int policy_encode(const struct policy *p, uint8_t *out, size_t cap, size_t *len);

/*
 * Decodes BODY (LEN bytes) into P with every check of 5.13: exactly one array of the nine
 * fields, version 1, strings <= POLICY_TEXT_MAX bytes of UTF-8, forwarding 0/1, at most
 * POLICY_BODY_MAX bytes, and the shortest forms (it re-encodes and compares). Returns 0 or
 * a CAIRN_E* code (the msgcheck codes, CAIRN_ETYPE for the rest). Does not check A.
 */
CAIRN_WARN_UNUSED int policy_decode(const uint8_t *body, size_t len, struct policy *p);

/* The BLAKE2b-256 of BODY: what POLICY's `have` carries. */
void policy_digest(const uint8_t *body, size_t len, uint8_t out[POLICY_DIGEST_LEN]);

/* A for the X25519 private key SECRET (clamped here, as X25519 does). Returns 0 or
 * CAIRN_ECRYPTO. */
CAIRN_WARN_UNUSED int policy_edwards(const uint8_t secret[32], uint8_t edwards[32]);

/*
 * XEdDSA-signs "cairn/1 policy" || BODY with the X25519 private key SECRET. Z is XEdDSA's
 * 64 random bytes: NULL draws them (always, outside tests). Returns 0, CAIRN_EINVAL for a
 * body over POLICY_BODY_MAX, or CAIRN_ECRYPTO. Secret scalars are wiped.
 */
CAIRN_WARN_UNUSED int policy_sign(const uint8_t secret[32], const uint8_t *body, size_t len,
                                  const uint8_t *z, uint8_t sig[POLICY_SIG_LEN]);

/*
 * The verifier of 5.13 for the relay whose address key is RELAY_KEY: decodes BODY into P
 * (when P is non-NULL; a scratch is used otherwise), checks A's sign bit and that A maps to
 * RELAY_KEY, and verifies SIG by A. Returns 0, a decode code, or CAIRN_EAUTH (key mismatch,
 * sign bit, or bad signature).
 */
CAIRN_WARN_UNUSED int policy_verify(const uint8_t relay_key[32], const uint8_t *body, size_t len,
                                    const uint8_t sig[POLICY_SIG_LEN], struct policy *p);

#endif
