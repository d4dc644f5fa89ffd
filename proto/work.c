/* SPDX-License-Identifier: MIT */
/*
 * Proof of work for intake mailboxes (docs/PROTOCOL.md 5.10). The digest input is 84 bytes,
 * one BLAKE2b block, so a try costs one compression; the envelope is hashed once per solve
 * and once per check.
 */
#include "work.h"

#include <sodium.h>
#include <string.h>

#define WORK_LABEL     "cairn/1 work"
#define WORK_LABEL_LEN 12
#define WORK_INPUT_LEN (WORK_LABEL_LEN + CAIRN_MAILBOX_ID_LEN + WORK_HASH_LEN + WORK_LEN) /* 84 */

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

uint64_t work_time(const uint8_t work[static WORK_LEN])
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | work[i];
	return v;
}

void work_envelope_hash(const uint8_t *env, size_t len, uint8_t out[static WORK_HASH_LEN])
{
	crypto_generichash(out, WORK_HASH_LEN, env, len, NULL, 0);
}

/* The digest input with the work's place at the end, for a solver to fill per try. */
static void work_input(uint8_t in[static WORK_INPUT_LEN],
                       const uint8_t sender_id[static CAIRN_MAILBOX_ID_LEN],
                       const uint8_t envelope_hash[static WORK_HASH_LEN])
{
	memcpy(in, WORK_LABEL, WORK_LABEL_LEN);
	memcpy(in + WORK_LABEL_LEN, sender_id, CAIRN_MAILBOX_ID_LEN);
	memcpy(in + WORK_LABEL_LEN + CAIRN_MAILBOX_ID_LEN, envelope_hash, WORK_HASH_LEN);
}

void work_digest(const uint8_t sender_id[static CAIRN_MAILBOX_ID_LEN],
                 const uint8_t envelope_hash[static WORK_HASH_LEN],
                 const uint8_t work[static WORK_LEN], uint8_t out[static WORK_HASH_LEN])
{
	uint8_t in[WORK_INPUT_LEN];
	work_input(in, sender_id, envelope_hash);
	memcpy(in + WORK_INPUT_LEN - WORK_LEN, work, WORK_LEN);
	crypto_generichash(out, WORK_HASH_LEN, in, sizeof(in), NULL, 0);
}

bool work_sufficient(const uint8_t digest[static WORK_HASH_LEN], unsigned bits)
{
	if (bits > 8 * WORK_HASH_LEN)
		return false;
	unsigned whole = bits / 8, rest = bits % 8;
	for (unsigned i = 0; i < whole; i++)
		if (digest[i] != 0)
			return false;
	return rest == 0 || (digest[whole] >> (8 - rest)) == 0;
}

int work_solve(const uint8_t sender_id[static CAIRN_MAILBOX_ID_LEN], const uint8_t *env,
               size_t len, uint64_t time, unsigned bits, uint64_t first_nonce,
               uint8_t work[static WORK_LEN], uint8_t *digest)
{
	if (bits < WORK_BITS_MIN || bits > WORK_BITS_MAX)
		return CAIRN_EINVAL;
	uint8_t in[WORK_INPUT_LEN], h[WORK_HASH_LEN];
	uint8_t *w = in + WORK_INPUT_LEN - WORK_LEN;
	work_envelope_hash(env, len, h);
	work_input(in, sender_id, h);
	put_u64(w, time);
	/* 2^40 tries at most are expected: the nonce space of 2^64 never runs out. */
	for (uint64_t nonce = first_nonce;; nonce++) {
		put_u64(w + 8, nonce);
		crypto_generichash(h, WORK_HASH_LEN, in, sizeof(in), NULL, 0);
		if (work_sufficient(h, bits))
			break;
	}
	memcpy(work, w, WORK_LEN);
	if (digest != NULL)
		memcpy(digest, h, WORK_HASH_LEN);
	return 0;
}

bool work_verify(const uint8_t sender_id[static CAIRN_MAILBOX_ID_LEN], const uint8_t *env,
                 size_t len, const uint8_t work[static WORK_LEN], unsigned bits,
                 uint8_t digest[static WORK_HASH_LEN])
{
	uint8_t h[WORK_HASH_LEN];
	work_envelope_hash(env, len, h);
	work_digest(sender_id, h, work, digest);
	return work_sufficient(digest, bits);
}
