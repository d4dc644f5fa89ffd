/* SPDX-License-Identifier: MIT */
/*
 * AES-256-GCM for long messages through OpenSSL's EVP interface. Frames of 4 KiB and more
 * (PROTOCOL.md 2.4's buckets) are most of what a busy relay seals and opens; libsodium
 * 1.0.18 (Debian 12's) takes about 0.55 ns a byte for them where OpenSSL 3.0's AES-NI code
 * takes about 0.25, while a short message costs OpenSSL more than libsodium in setting up
 * the key (docs/PERFORMANCE.md, session 18). Both give the same bytes: cipher.c picks by
 * length. Each call sets the key in a context of its own and frees it (OpenSSL wipes it), so
 * no key stays behind and any thread may call.
 */
#ifndef CAIRN_PROTO_AESGCM_H
#define CAIRN_PROTO_AESGCM_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/limits.h"

/* Messages from this many bytes of plaintext on go through OpenSSL (cipher.c). */
#define AESGCM_BULK_MIN 2048

/* Seals PT (LEN bytes) with key K, NONCE and AD into OUT (LEN + 16 bytes; OUT may be PT but
 * may not overlap it otherwise). 0, or CAIRN_ENOMEM when OpenSSL could not (nothing useful in
 * OUT: the caller seals with libsodium instead, which gives the same bytes). */
int aesgcm_bulk_seal(const uint8_t k[static CAIRN_KEY_LEN], const uint8_t nonce[static 12],
                     const uint8_t *ad, size_t adlen, const uint8_t *pt, size_t len, uint8_t *out);

/* Opens CT (LEN bytes, the last 16 its tag) into OUT (LEN - 16 bytes, not overlapping CT):
 * 0; CAIRN_EAUTH when the tag is wrong (OUT then holds unauthenticated bytes: the caller wipes
 * them); CAIRN_ENOMEM when OpenSSL could not (the caller opens with libsodium instead). */
int aesgcm_bulk_open(const uint8_t k[static CAIRN_KEY_LEN], const uint8_t nonce[static 12],
                     const uint8_t *ad, size_t adlen, const uint8_t *ct, size_t len, uint8_t *out);

#endif
