/* SPDX-License-Identifier: MIT */
/* AES-256-GCM for long messages through OpenSSL (aesgcm.h). */
#include <limits.h>
#include <pthread.h>

#include <openssl/evp.h>

#include "aesgcm.h"
#include "cairn/error.h"

#define TAG_LEN 16

/* The cipher, fetched once: an implicit fetch by name in every call cost ~0.5 us. */
static EVP_CIPHER *aes256gcm;
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;

static void fetch(void)
{
	aes256gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

/* A context keyed with K and NONCE for ENC (1) or decryption (0), AD already fed; NULL when
 * OpenSSL cannot. */
static EVP_CIPHER_CTX *start(const uint8_t *k, const uint8_t *nonce, const uint8_t *ad,
                             size_t adlen, size_t len, int enc)
{
	if (len > INT_MAX || adlen > INT_MAX || pthread_once(&fetch_once, fetch) != 0 ||
	    aes256gcm == NULL)
		return NULL;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n = 0;
	if (ctx == NULL)
		return NULL;
	/* GCM's default nonce is 12 bytes, Noise's. */
	if (EVP_CipherInit_ex2(ctx, aes256gcm, k, nonce, enc, NULL) != 1 ||
	    (adlen > 0 && EVP_CipherUpdate(ctx, NULL, &n, ad, (int)adlen) != 1)) {
		EVP_CIPHER_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int aesgcm_bulk_seal(const uint8_t k[static CAIRN_KEY_LEN], const uint8_t nonce[static 12],
                     const uint8_t *ad, size_t adlen, const uint8_t *pt, size_t len, uint8_t *out)
{
	EVP_CIPHER_CTX *ctx = start(k, nonce, ad, adlen, len, 1);
	if (ctx == NULL)
		return CAIRN_ENOMEM;
	int n = 0, fin = 0;
	int ok = EVP_EncryptUpdate(ctx, out, &n, pt, (int)len) == 1 &&
	         EVP_EncryptFinal_ex(ctx, out + n, &fin) == 1 && (size_t)n + (size_t)fin == len &&
	         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, out + len) == 1;
	EVP_CIPHER_CTX_free(ctx); /* wipes the key schedule */
	return ok ? 0 : CAIRN_ENOMEM;
}

int aesgcm_bulk_open(const uint8_t k[static CAIRN_KEY_LEN], const uint8_t nonce[static 12],
                     const uint8_t *ad, size_t adlen, const uint8_t *ct, size_t len, uint8_t *out)
{
	if (len < TAG_LEN)
		return CAIRN_EAUTH;
	size_t mlen = len - TAG_LEN;
	EVP_CIPHER_CTX *ctx = start(k, nonce, ad, adlen, mlen, 0);
	if (ctx == NULL)
		return CAIRN_ENOMEM;
	int n = 0, fin = 0, rc = CAIRN_ENOMEM;
	/* The tag is set before the last step, which compares it in constant time. */
	if (EVP_DecryptUpdate(ctx, out, &n, ct, (int)mlen) == 1 &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, (void *)(ct + mlen)) == 1)
		rc = EVP_DecryptFinal_ex(ctx, out + n, &fin) == 1 && (size_t)n + (size_t)fin == mlen
		         ? 0
		         : CAIRN_EAUTH;
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}
