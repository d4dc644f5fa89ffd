/* SPDX-License-Identifier: MIT */
/*
 * AES-256-GCM through OpenSSL for long messages (proto/aesgcm.h) against libsodium's, which
 * seals the short ones: the same bytes at every length around the switch and at every frame
 * bucket, with and without associated data, in place; a wrong tag, a flipped byte of
 * ciphertext or associated data refused with nothing left in the output; the nonce advancing
 * only on success.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "aesgcm.h"
#include "cipher.h"

#define MAXLEN 65535
#define TAG    CAIRN_AEAD_TAG_LEN

static const size_t lengths[] = {0,    1,    15,   16,   17,   255,   256,   1024,  2046,
                                 2047, 2048, 2049, 4078, 4096, 16878, 16896, 32768, 65000};

static int setup(void **state)
{
	(void)state;
	return sodium_init() < 0 ? -1 : 0;
}

/* libsodium 1.0.18 has AES-256-GCM only in hardware: without it there is nothing to compare. */
static void need_aes(void)
{
	if (!crypto_aead_aes256gcm_is_available())
		skip();
}

static uint8_t *buf(size_t len)
{
	uint8_t *p = malloc(len);
	assert_non_null(p);
	return p;
}

/* A cipher state with key K at counter N, sealing with AES-256-GCM. */
static void aes_state(struct noise_cipher *cs, const uint8_t *k, uint64_t n)
{
	noise_cipher_init(cs, k);
	noise_cipher_set_alg(cs, NOISE_CIPHER_AESGCM);
	cs->n = n;
}

/* Noise's AESGCM nonce for counter N: 32 zero bits, then N big-endian. */
static void nonce_of(uint64_t n, uint8_t nonce[12])
{
	memset(nonce, 0, 4);
	for (int i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(n >> (56 - 8 * i));
}

/* Both paths of the cipher state seal what libsodium seals, and open it again. */
static void test_same_bytes_as_libsodium(void **state)
{
	(void)state;
	need_aes();
	uint8_t k[CAIRN_KEY_LEN], ad[64], nonce[12];
	uint8_t *pt = buf(MAXLEN), *want = buf(MAXLEN + TAG), *got = buf(MAXLEN + TAG),
	        *back = buf(MAXLEN);
	randombytes_buf(k, sizeof(k));
	randombytes_buf(ad, sizeof(ad));
	randombytes_buf(pt, MAXLEN);
	for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
		for (size_t adlen = 0; adlen <= sizeof(ad); adlen += sizeof(ad)) {
			size_t len = lengths[i];
			uint64_t n = 0x0102030405060708ull + i;
			unsigned long long wlen = 0;
			nonce_of(n, nonce);
			assert_int_equal(crypto_aead_aes256gcm_encrypt(want, &wlen, pt, len, ad,
			                                               adlen, NULL, nonce, k),
			                 0);
			struct noise_cipher cs;
			aes_state(&cs, k, n);
			size_t glen = 0;
			assert_int_equal(
			    noise_cipher_encrypt(&cs, ad, adlen, pt, len, got, len + TAG, &glen),
			    0);
			assert_int_equal(glen, wlen);
			assert_memory_equal(got, want, glen);
			assert_true(cs.n == n + 1);
			/* In place, as frame_seal does. */
			memcpy(got, pt, len);
			aes_state(&cs, k, n);
			assert_int_equal(
			    noise_cipher_encrypt(&cs, ad, adlen, got, len, got, len + TAG, &glen),
			    0);
			assert_memory_equal(got, want, glen);
			/* Opened by the cipher state, whichever library it picks. */
			aes_state(&cs, k, n);
			size_t blen = 0;
			assert_int_equal(
			    noise_cipher_decrypt(&cs, ad, adlen, want, wlen, back, MAXLEN, &blen),
			    0);
			assert_int_equal(blen, len);
			assert_memory_equal(back, pt, len);
			assert_true(cs.n == n + 1);
		}
	}
	free(pt);
	free(want);
	free(got);
	free(back);
}

/* OpenSSL's functions on their own, at lengths cipher.c never gives them too. */
static void test_bulk_functions_alone(void **state)
{
	(void)state;
	need_aes();
	uint8_t k[CAIRN_KEY_LEN], ad[13], nonce[12];
	uint8_t *pt = buf(MAXLEN), *want = buf(MAXLEN + TAG), *got = buf(MAXLEN + TAG),
	        *back = buf(MAXLEN);
	randombytes_buf(k, sizeof(k));
	randombytes_buf(ad, sizeof(ad));
	randombytes_buf(nonce, sizeof(nonce));
	randombytes_buf(pt, MAXLEN);
	for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
		size_t len = lengths[i];
		unsigned long long wlen = 0;
		assert_int_equal(crypto_aead_aes256gcm_encrypt(want, &wlen, pt, len, ad, sizeof(ad),
		                                               NULL, nonce, k),
		                 0);
		assert_int_equal(aesgcm_bulk_seal(k, nonce, ad, sizeof(ad), pt, len, got), 0);
		assert_memory_equal(got, want, wlen);
		assert_int_equal(aesgcm_bulk_open(k, nonce, ad, sizeof(ad), want, wlen, back), 0);
		assert_memory_equal(back, pt, len);
		/* Another nonce, key or associated data: refused. */
		nonce[11] ^= 1;
		assert_int_equal(aesgcm_bulk_open(k, nonce, ad, sizeof(ad), want, wlen, back),
		                 CAIRN_EAUTH);
		nonce[11] ^= 1;
		ad[0] ^= 0x80;
		assert_int_equal(aesgcm_bulk_open(k, nonce, ad, sizeof(ad), want, wlen, back),
		                 CAIRN_EAUTH);
		ad[0] ^= 0x80;
		k[31] ^= 1;
		assert_int_equal(aesgcm_bulk_open(k, nonce, ad, sizeof(ad), want, wlen, back),
		                 CAIRN_EAUTH);
		k[31] ^= 1;
	}
	assert_int_equal(aesgcm_bulk_open(k, nonce, NULL, 0, want, TAG - 1, back), CAIRN_EAUTH);
	free(pt);
	free(want);
	free(got);
	free(back);
}

/* A flipped bit anywhere in a long message or its tag: refused, the output wiped, the counter
 * where it was. */
static void test_tampering_refused(void **state)
{
	(void)state;
	need_aes();
	const size_t len = 16896;
	uint8_t k[CAIRN_KEY_LEN];
	uint8_t *pt = buf(len), *ct = buf(len + TAG), *back = buf(len);
	randombytes_buf(k, sizeof(k));
	randombytes_buf(pt, len);
	struct noise_cipher cs;
	aes_state(&cs, k, 7);
	size_t clen = 0;
	assert_int_equal(noise_cipher_encrypt(&cs, NULL, 0, pt, len, ct, len + TAG, &clen), 0);
	const size_t flips[] = {0, 1, len / 2, len - 1, len, len + TAG - 1};
	for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
		ct[flips[i]] ^= 0x10;
		aes_state(&cs, k, 7);
		memset(back, 0xaa, len);
		size_t blen = 1;
		assert_int_equal(noise_cipher_decrypt(&cs, NULL, 0, ct, clen, back, len, &blen),
		                 CAIRN_EAUTH);
		assert_int_equal(blen, 0);
		assert_true(sodium_is_zero(back, len));
		assert_true(cs.n == 7);
		ct[flips[i]] ^= 0x10;
	}
	aes_state(&cs, k, 7);
	size_t blen = 0;
	assert_int_equal(noise_cipher_decrypt(&cs, NULL, 0, ct, clen, back, len, &blen), 0);
	assert_memory_equal(back, pt, len);
	free(pt);
	free(ct);
	free(back);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_same_bytes_as_libsodium),
	    cmocka_unit_test(test_bulk_functions_alone),
	    cmocka_unit_test(test_tampering_refused),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
