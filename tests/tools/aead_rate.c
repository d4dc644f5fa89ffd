/* SPDX-License-Identifier: MIT */
/*
 * aead-rate: AES-256-GCM's cost per frame as libsodium seals and opens it alone and as the
 * transport's cipher state does (proto/cipher.c: OpenSSL from AESGCM_BULK_MIN bytes on,
 * aesgcm.h), at each frame bucket of PROTOCOL.md 2.4 and around the switch. Thread CPU time,
 * ROUNDS alternating rounds of the two, medians. Not a test; figures in docs/PERFORMANCE.md.
 *
 *   aead-rate [ROUNDS]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "aesgcm.h"
#include "cipher.h"

#define MAXLEN 16896
#define TAG    CAIRN_AEAD_TAG_LEN

static double thread_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static uint8_t key[CAIRN_KEY_LEN], pt[MAXLEN], ct[MAXLEN + TAG], back[MAXLEN];

/* ns per seal (OPEN false) or open of LEN bytes, through libsodium (SODIUM) or cipher.c. */
static double one_round(size_t len, bool sodium, bool open, int iters)
{
	static const uint8_t nonce[12] = {0};
	struct noise_cipher cs;
	noise_cipher_init(&cs, key);
	noise_cipher_set_alg(&cs, NOISE_CIPHER_AESGCM);
	unsigned long long n = 0;
	size_t out = 0;
	int bad = 0;
	double t0 = thread_ns();
	for (int i = 0; i < iters; i++) {
		cs.n = 0;
		if (sodium && !open)
			bad |= crypto_aead_aes256gcm_encrypt(ct, &n, pt, len, NULL, 0, NULL, nonce, key);
		else if (sodium)
			bad |= crypto_aead_aes256gcm_decrypt(back, &n, NULL, ct, len + TAG, NULL, 0, nonce,
			                                     key);
		else if (!open)
			bad |= noise_cipher_encrypt(&cs, NULL, 0, pt, len, ct, sizeof(ct), &out);
		else
			bad |= noise_cipher_decrypt(&cs, NULL, 0, ct, len + TAG, back, sizeof(back), &out);
	}
	double ns = (thread_ns() - t0) / iters;
	if (bad != 0) {
		fprintf(stderr, "aead-rate: a seal or open failed\n");
		exit(1);
	}
	return ns;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 7;
	if (sodium_init() < 0 || !crypto_aead_aes256gcm_is_available() || rounds < 1 ||
	    rounds > 101) {
		fprintf(stderr, "usage: aead-rate [ROUNDS 1-101] (needs a CPU with AES-NI)\n");
		return 2;
	}
	randombytes_buf(key, sizeof(key));
	randombytes_buf(pt, sizeof(pt));
	static const size_t lens[] = {256, 1024, AESGCM_BULK_MIN - 1, AESGCM_BULK_MIN, 4096, 16896};
	printf("%7s %14s %14s %14s %14s   (ns per frame, medians of %d rounds)\n", "bytes",
	       "libsodium seal", "cipher.c seal", "libsodium open", "cipher.c open", rounds);
	for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
		size_t len = lens[l];
		int iters = (int)(20000000 / (len + 256));
		/* The same key and nonce every time: ct holds a valid message for the opens. */
		unsigned long long n = 0;
		crypto_aead_aes256gcm_encrypt(ct, &n, pt, len, NULL, 0, NULL, (const uint8_t[12]){0},
		                              key);
		double r[4][101];
		for (int k = 0; k < rounds; k++)
			for (int w = 0; w < 4; w++)
				r[w][k] = one_round(len, w % 2 == 0, w >= 2, iters);
		for (int w = 0; w < 4; w++)
			qsort(r[w], (size_t)rounds, sizeof(double), cmp);
		printf("%7zu %14.0f %14.0f %14.0f %14.0f\n", len, r[0][rounds / 2], r[1][rounds / 2],
		       r[2][rounds / 2], r[3][rounds / 2]);
	}
	return 0;
}
