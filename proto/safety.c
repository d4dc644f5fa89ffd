/* SPDX-License-Identifier: MIT */
/*
 * Safety numbers, after Signal's numeric fingerprints: per identity key, SHA-512 iterated
 * 5200 times gives 30 digits; the two halves are sorted so that both people see one number.
 */
#include <string.h>

#include <sodium.h>

#include "safety.h"

static const char label[] = "cairn/1 safety number";

/* 30 decimal digits (no NUL) for one key: six 5-byte big-endian chunks, each mod 100000. */
static void half(const uint8_t key[static CAIRN_KEY_LEN], char out[static SAFETY_DIGITS / 2])
{
	uint8_t h[crypto_hash_sha512_BYTES];
	crypto_hash_sha512_state st;
	crypto_hash_sha512_init(&st);
	crypto_hash_sha512_update(&st, (const uint8_t *)label, sizeof(label) - 1);
	crypto_hash_sha512_update(&st, key, CAIRN_KEY_LEN);
	crypto_hash_sha512_final(&st, h);
	for (unsigned i = 1; i < SAFETY_ITERATIONS; i++) {
		crypto_hash_sha512_init(&st);
		crypto_hash_sha512_update(&st, h, sizeof(h));
		crypto_hash_sha512_update(&st, key, CAIRN_KEY_LEN);
		crypto_hash_sha512_final(&st, h);
	}
	for (unsigned c = 0; c < 6; c++) {
		uint64_t v = 0;
		for (unsigned j = 0; j < 5; j++)
			v = (v << 8) | h[5 * c + j];
		v %= 100000;
		for (int d = 4; d >= 0; d--) {
			out[5 * c + (unsigned)d] = (char)('0' + v % 10);
			v /= 10;
		}
	}
}

void safety_number(const uint8_t a[static CAIRN_KEY_LEN], const uint8_t b[static CAIRN_KEY_LEN],
                   char out[static SAFETY_TEXT_LEN])
{
	char ha[SAFETY_DIGITS / 2], hb[SAFETY_DIGITS / 2], digits[SAFETY_DIGITS];
	half(a, ha);
	half(b, hb);
	/* The smaller half first: the order of A and B does not matter. */
	int a_first = memcmp(ha, hb, sizeof(ha)) <= 0;
	memcpy(digits, a_first ? ha : hb, sizeof(ha));
	memcpy(digits + sizeof(ha), a_first ? hb : ha, sizeof(hb));
	size_t o = 0;
	for (unsigned i = 0; i < SAFETY_DIGITS; i++) {
		if (i > 0 && i % 5 == 0)
			out[o++] = ' ';
		out[o++] = digits[i];
	}
	out[o] = '\0';
}
