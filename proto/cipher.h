/* SPDX-License-Identifier: MIT */
/*
 * Noise CipherState over ChaCha20-Poly1305 IETF (Noise spec rev 34, section 5.1). Used by the
 * handshake while it runs and, after Split(), once per direction for transport messages.
 */
#ifndef CAIRN_PROTO_CIPHER_H
#define CAIRN_PROTO_CIPHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cairn/error.h"
#include "cairn/limits.h"

struct noise_cipher {
	uint8_t k[CAIRN_KEY_LEN];
	uint64_t n;
	bool has_key;
};

/* InitializeKey(k): sets the key (copied) and resets the nonce to 0. */
void noise_cipher_init(struct noise_cipher *cs, const uint8_t k[static CAIRN_KEY_LEN]);

/*
 * EncryptWithAd. Writes ptlen + 16 bytes to OUT (capacity OUTCAP; OUT may equal PT) and sets
 * *OUTLEN. Without a key, copies the plaintext unchanged (as Noise specifies). Returns 0,
 * CAIRN_ENOBUFS, or CAIRN_ENONCE once the nonce 2^64-1 would be used.
 */
CAIRN_WARN_UNUSED int noise_cipher_encrypt(struct noise_cipher *cs, const uint8_t *ad,
					   size_t adlen, const uint8_t *pt, size_t ptlen,
					   uint8_t *out, size_t outcap, size_t *outlen);

/*
 * DecryptWithAd. Writes ctlen - 16 bytes to OUT (OUT may equal CT). On authentication failure
 * returns CAIRN_EAUTH, leaves the nonce unchanged and zeroes OUT's first ctlen - 16 bytes.
 * Returns CAIRN_EAUTH too for a ciphertext shorter than the tag.
 */
CAIRN_WARN_UNUSED int noise_cipher_decrypt(struct noise_cipher *cs, const uint8_t *ad,
					   size_t adlen, const uint8_t *ct, size_t ctlen,
					   uint8_t *out, size_t outcap, size_t *outlen);

/* Wipes the key and nonce. */
void noise_cipher_wipe(struct noise_cipher *cs);

#endif
