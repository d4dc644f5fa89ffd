/* SPDX-License-Identifier: MIT */
/*
 * HKDF-SHA-256 (RFC 5869) and HMAC-SHA-256 for the end-to-end layer (docs/PROTOCOL.md section
 * 8). The Noise transport keeps its own BLAKE2b-based HKDF inside noise.c; this one follows the
 * Signal X3DH and Double Ratchet specifications, which recommend HKDF and HMAC over SHA-256.
 */
#ifndef CAIRN_PROTO_KDF_H
#define CAIRN_PROTO_KDF_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/error.h"

#define KDF_HASH_LEN 32
#define KDF_OUT_MAX  (255 * KDF_HASH_LEN)

/* HMAC-SHA-256 of A || B (B may be NULL when BLEN is 0) under KEY (any length). */
void kdf_hmac_sha256(const uint8_t *key, size_t keylen, const uint8_t *a, size_t alen,
                     const uint8_t *b, size_t blen, uint8_t out[static KDF_HASH_LEN]);

/*
 * HKDF-SHA-256: extract with SALT (SALTLEN bytes; NULL/0 means 32 zero bytes, as RFC 5869
 * says) from IKM, then expand with INFO into OUT (OUTLEN bytes, 1..KDF_OUT_MAX). Returns 0 or
 * CAIRN_EINVAL for a bad OUTLEN (OUT untouched). Intermediate secrets are wiped.
 */
CAIRN_WARN_UNUSED int kdf_hkdf_sha256(uint8_t *out, size_t outlen, const uint8_t *salt,
                                      size_t saltlen, const uint8_t *ikm, size_t ikmlen,
                                      const uint8_t *info, size_t infolen);

#endif
