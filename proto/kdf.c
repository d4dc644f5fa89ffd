/* SPDX-License-Identifier: MIT */
/*
 * HKDF-SHA-256 (RFC 5869) over libsodium's HMAC-SHA-256, for the end-to-end layer. Kept apart
 * from noise.c, whose HKDF is Noise's BLAKE2b construction, so neither can change the other.
 */
#include <string.h>

#include <sodium.h>

#include "kdf.h"

void kdf_hmac_sha256(const uint8_t *key, size_t keylen, const uint8_t *a, size_t alen,
                     const uint8_t *b, size_t blen, uint8_t out[static KDF_HASH_LEN])
{
	crypto_auth_hmacsha256_state st;
	crypto_auth_hmacsha256_init(&st, key, keylen);
	if (alen > 0)
		crypto_auth_hmacsha256_update(&st, a, alen);
	if (blen > 0)
		crypto_auth_hmacsha256_update(&st, b, blen);
	crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof(st));
}

int kdf_hkdf_sha256(uint8_t *out, size_t outlen, const uint8_t *salt, size_t saltlen,
                    const uint8_t *ikm, size_t ikmlen, const uint8_t *info, size_t infolen)
{
	static const uint8_t zero_salt[KDF_HASH_LEN];
	uint8_t prk[KDF_HASH_LEN], t[KDF_HASH_LEN];
	crypto_auth_hmacsha256_state st;

	if (outlen == 0 || outlen > KDF_OUT_MAX)
		return CAIRN_EINVAL;
	if (salt == NULL || saltlen == 0) {
		salt = zero_salt;
		saltlen = sizeof(zero_salt);
	}
	kdf_hmac_sha256(salt, saltlen, ikm, ikmlen, NULL, 0, prk);

	/* T(i) = HMAC(PRK, T(i-1) || info || i), with T(0) empty. */
	size_t done = 0;
	for (uint8_t i = 1; done < outlen; i++) {
		crypto_auth_hmacsha256_init(&st, prk, sizeof(prk));
		if (i > 1)
			crypto_auth_hmacsha256_update(&st, t, sizeof(t));
		if (infolen > 0)
			crypto_auth_hmacsha256_update(&st, info, infolen);
		crypto_auth_hmacsha256_update(&st, &i, 1);
		crypto_auth_hmacsha256_final(&st, t);
		size_t n = outlen - done < sizeof(t) ? outlen - done : sizeof(t);
		memcpy(out + done, t, n);
		done += n;
	}
	sodium_memzero(&st, sizeof(st));
	sodium_memzero(prk, sizeof(prk));
	sodium_memzero(t, sizeof(t));
	return 0;
}
