/* SPDX-License-Identifier: MIT */
/*
 * Noise CipherState (Noise spec rev 34, section 5.1) over ChaCha20-Poly1305 IETF, or, for the
 * transport after Split() when both ends chose it (docs/PROTOCOL.md 2.5), AES-256-GCM. Used by
 * the handshake while it runs (always ChaChaPoly) and once per direction for transport
 * messages. AES-256-GCM takes the key on every call (libsodium's key-taking functions, or
 * OpenSSL's for long messages: aesgcm.h), not a precomputed 512-byte state: a relay holds two
 * of these per connection.
 */
#ifndef CAIRN_PROTO_CIPHER_H
#define CAIRN_PROTO_CIPHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cairn/error.h"
#include "cairn/limits.h"

/* The transport ciphers, as the bits of PROTOCOL.md 2.5's offer and choice bytes. */
enum noise_cipher_alg {
	NOISE_CIPHER_CHACHAPOLY = 0,
	NOISE_CIPHER_AESGCM = 1,
};

struct noise_cipher {
	uint8_t k[CAIRN_KEY_LEN];
	uint64_t n;
	bool has_key;
	uint8_t alg; /* enum noise_cipher_alg; in what was padding: the size is unchanged */
};

/* InitializeKey(k): sets the key (copied) and resets the nonce to 0; the cipher is
 * ChaCha20-Poly1305 until noise_cipher_set_alg. */
void noise_cipher_init(struct noise_cipher *cs, const uint8_t k[static CAIRN_KEY_LEN]);

/* Makes CS use ALG (a transport cipher state, before its first message). */
void noise_cipher_set_alg(struct noise_cipher *cs, enum noise_cipher_alg alg);

/*
 * Whether this CPU runs AES-256-GCM in hardware (libsodium's check: AES-NI and PCLMUL), which
 * is when a client offers it and a relay chooses it. Needs sodium_init(). Tests may override
 * the answer: noise_aesgcm_set_available(0 or 1), and -1 to ask the CPU again.
 */
bool noise_aesgcm_available(void);
void noise_aesgcm_set_available(int available);

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
