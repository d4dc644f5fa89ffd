/* SPDX-License-Identifier: MIT */
/*
 * Noise CipherState: ChaCha20-Poly1305 IETF with the Noise nonce layout (32 zero bits, then
 * the 64-bit counter little-endian). The counter value 2^64-1 is reserved by Noise, so the
 * last usable nonce is 2^64-2 and anything after it is an error rather than a wrap.
 */
#include <string.h>

#include <sodium.h>

#include "cipher.h"

#define NONCE_MAX UINT64_MAX /* reserved: never used to encrypt or decrypt */

static void nonce_bytes(uint64_t n, uint8_t out[static crypto_aead_chacha20poly1305_IETF_NPUBBYTES])
{
	memset(out, 0, 4);
	for (int i = 0; i < 8; i++)
		out[4 + i] = (uint8_t)(n >> (8 * i));
}

void noise_cipher_init(struct noise_cipher *cs, const uint8_t k[static CAIRN_KEY_LEN])
{
	memcpy(cs->k, k, CAIRN_KEY_LEN);
	cs->n = 0;
	cs->has_key = true;
}

int noise_cipher_encrypt(struct noise_cipher *cs, const uint8_t *ad, size_t adlen,
			 const uint8_t *pt, size_t ptlen, uint8_t *out, size_t outcap,
			 size_t *outlen)
{
	*outlen = 0;
	if (!cs->has_key) {
		if (outcap < ptlen)
			return CAIRN_ENOBUFS;
		if (ptlen > 0)
			memmove(out, pt, ptlen);
		*outlen = ptlen;
		return 0;
	}
	if (ptlen > outcap || outcap - ptlen < CAIRN_AEAD_TAG_LEN)
		return CAIRN_ENOBUFS;
	if (cs->n == NONCE_MAX)
		return CAIRN_ENONCE;
	uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];
	nonce_bytes(cs->n, nonce);
	unsigned long long clen = 0;
	crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen, pt, ptlen, ad, adlen, NULL, nonce,
						  cs->k);
	cs->n++;
	*outlen = (size_t)clen;
	return 0;
}

int noise_cipher_decrypt(struct noise_cipher *cs, const uint8_t *ad, size_t adlen,
			 const uint8_t *ct, size_t ctlen, uint8_t *out, size_t outcap,
			 size_t *outlen)
{
	*outlen = 0;
	if (!cs->has_key) {
		if (outcap < ctlen)
			return CAIRN_ENOBUFS;
		if (ctlen > 0)
			memmove(out, ct, ctlen);
		*outlen = ctlen;
		return 0;
	}
	if (ctlen < CAIRN_AEAD_TAG_LEN)
		return CAIRN_EAUTH;
	if (outcap < ctlen - CAIRN_AEAD_TAG_LEN)
		return CAIRN_ENOBUFS;
	if (cs->n == NONCE_MAX)
		return CAIRN_ENONCE;
	uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];
	nonce_bytes(cs->n, nonce);
	unsigned long long mlen = 0;
	if (crypto_aead_chacha20poly1305_ietf_decrypt(out, &mlen, NULL, ct, ctlen, ad, adlen,
						      nonce, cs->k) != 0) {
		sodium_memzero(out, ctlen - CAIRN_AEAD_TAG_LEN);
		return CAIRN_EAUTH;
	}
	cs->n++;
	*outlen = (size_t)mlen;
	return 0;
}

void noise_cipher_wipe(struct noise_cipher *cs)
{
	sodium_memzero(cs, sizeof(*cs));
}
