/* SPDX-License-Identifier: MIT */
/*
 * Noise CipherState: ChaCha20-Poly1305 IETF with the Noise nonce layout (32 zero bits, then
 * the 64-bit counter little-endian), or AES-256-GCM with Noise's AESGCM layout (32 zero bits,
 * then the counter big-endian). The counter value 2^64-1 is reserved by Noise, so the last
 * usable nonce is 2^64-2 and anything after it is an error rather than a wrap.
 */
#include <string.h>

#include <sodium.h>

#include "aesgcm.h"
#include "cipher.h"

#define NONCE_MAX UINT64_MAX /* reserved: never used to encrypt or decrypt */

_Static_assert(crypto_aead_aes256gcm_NPUBBYTES == crypto_aead_chacha20poly1305_IETF_NPUBBYTES,
               "both Noise ciphers take a 96-bit nonce");
_Static_assert(crypto_aead_aes256gcm_ABYTES == CAIRN_AEAD_TAG_LEN &&
                   crypto_aead_aes256gcm_KEYBYTES == CAIRN_KEY_LEN,
               "AES-256-GCM has the tag and key lengths of ChaChaPoly");

static int aesgcm_override = -1;

bool noise_aesgcm_available(void)
{
	if (aesgcm_override >= 0)
		return aesgcm_override != 0;
	return crypto_aead_aes256gcm_is_available() != 0;
}

void noise_aesgcm_set_available(int available)
{
	aesgcm_override = available < 0 ? -1 : available != 0;
}

static void nonce_bytes(const struct noise_cipher *cs,
                        uint8_t out[static crypto_aead_chacha20poly1305_IETF_NPUBBYTES])
{
	memset(out, 0, 4);
	for (int i = 0; i < 8; i++) {
		int shift = cs->alg == NOISE_CIPHER_AESGCM ? 56 - 8 * i : 8 * i;
		out[4 + i] = (uint8_t)(cs->n >> shift);
	}
}

/* Whether a message goes through OpenSSL (aesgcm.h): long enough (LEN bytes of plaintext),
 * and its output (OUT, OUT_LEN bytes) either its input itself (IN, IN_LEN bytes) or apart from
 * it, as OpenSSL requires. */
static bool bulk(size_t len, const uint8_t *in, size_t in_len, const uint8_t *out, size_t out_len)
{
	/* Maybe two objects: compared as numbers. */
	uintptr_t i = (uintptr_t)in, o = (uintptr_t)out;
	return len >= AESGCM_BULK_MIN && (o == i || o + out_len <= i || i + in_len <= o);
}

void noise_cipher_init(struct noise_cipher *cs, const uint8_t k[static CAIRN_KEY_LEN])
{
	memcpy(cs->k, k, CAIRN_KEY_LEN);
	cs->n = 0;
	cs->has_key = true;
	cs->alg = NOISE_CIPHER_CHACHAPOLY;
}

void noise_cipher_set_alg(struct noise_cipher *cs, enum noise_cipher_alg alg)
{
	cs->alg = (uint8_t)alg;
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
	nonce_bytes(cs, nonce);
	unsigned long long clen = 0;
	if (cs->alg == NOISE_CIPHER_AESGCM) {
		/* OpenSSL for long messages, libsodium for the rest and when OpenSSL could not: the
		 * same bytes. libsodium fails only where the CPU lacks AES, which negotiation never
		 * chose. */
		int rc = bulk(ptlen, pt, ptlen, out, ptlen + CAIRN_AEAD_TAG_LEN)
		             ? aesgcm_bulk_seal(cs->k, nonce, ad, adlen, pt, ptlen, out)
		             : CAIRN_ENOMEM;
		if (rc == 0)
			clen = ptlen + CAIRN_AEAD_TAG_LEN;
		else if (crypto_aead_aes256gcm_encrypt(out, &clen, pt, ptlen, ad, adlen, NULL,
		                                       nonce, cs->k) != 0)
			return CAIRN_ECRYPTO;
	} else {
		crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen, pt, ptlen, ad, adlen, NULL,
		                                          nonce, cs->k);
	}
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
	nonce_bytes(cs, nonce);
	unsigned long long mlen = 0;
	int bad = CAIRN_ENOMEM;
	if (cs->alg == NOISE_CIPHER_AESGCM &&
	    bulk(ctlen - CAIRN_AEAD_TAG_LEN, ct, ctlen, out, ctlen - CAIRN_AEAD_TAG_LEN)) {
		bad = aesgcm_bulk_open(cs->k, nonce, ad, adlen, ct, ctlen, out);
		mlen = ctlen - CAIRN_AEAD_TAG_LEN;
	}
	if (bad == CAIRN_ENOMEM)
		bad = cs->alg == NOISE_CIPHER_AESGCM
		          ? crypto_aead_aes256gcm_decrypt(out, &mlen, NULL, ct, ctlen, ad, adlen,
		                                          nonce, cs->k)
		          : crypto_aead_chacha20poly1305_ietf_decrypt(out, &mlen, NULL, ct, ctlen,
		                                                      ad, adlen, nonce, cs->k);
	if (bad != 0) {
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
