/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the ratchet's decoders (docs/PROTOCOL.md sections 8.4 to 8.6). The first byte picks
 * the mode: 0 deserializes the rest as a state (and checks that a state that parses serializes
 * back to the same bytes); 1 decrypts the rest as a ratchet message, and 2 opens it as an
 * envelope, against a fixed mid-conversation state that a failure must leave unchanged.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "e2e.h"

/* Deterministic randomness: a counter run through randombytes_buf_deterministic. */
static void fuzz_fill(void *ctx, uint8_t *out, size_t len)
{
	uint64_t *ctr = ctx;
	uint8_t seed[randombytes_SEEDBYTES] = {0};
	memcpy(seed, ctr, sizeof(*ctr));
	(*ctr)++;
	randombytes_buf_deterministic(out, len, seed);
}

static uint64_t fuzz_ctr;
static const struct e2e_rng fuzz_rng = {fuzz_fill, &fuzz_ctr};
static uint8_t fixed_state[RATCHET_STATE_MAX];
static size_t fixed_len;
static uint8_t scratch[RATCHET_STATE_MAX];
static uint8_t plain[CAIRN_ENVELOPE_MAX + 64];

/*
 * The fixed receiving side: A (initiator) sends three messages, B decrypts the third, so B
 * holds two skipped keys. A is returned for corpus generation; B's bytes are kept.
 */
struct ratchet *fuzz_ratchet_setup(void);
struct ratchet *fuzz_ratchet_setup(void)
{
	struct ratchet_init k;
	uint8_t priv[32], pub[32], m[RATCHET_OVERHEAD + 1];
	size_t n;
	struct ratchet *a = NULL, *b = NULL;
	memset(&k, 0x5a, sizeof(k));
	memset(priv, 0x33, sizeof(priv));
	crypto_scalarmult_base(pub, priv);
	fuzz_ctr = 0;
	if (ratchet_new_initiator(&a, &k, pub, &fuzz_rng) != 0 ||
	    ratchet_new_responder(&b, &k, priv) != 0)
		abort();
	for (int i = 0; i < 3; i++)
		if (ratchet_encrypt(a, NULL, 0, (const uint8_t *)"m", 1, m, sizeof(m), &n) != 0)
			abort();
	if (ratchet_decrypt(b, NULL, 0, m, n, plain, sizeof(plain), &n, &fuzz_rng) != 0 ||
	    ratchet_serialize(b, fixed_state, sizeof(fixed_state), &fixed_len) != 0)
		abort();
	ratchet_free(b);
	return a;
}

static void check_unchanged(const struct ratchet *r)
{
	size_t len = 0;
	if (ratchet_serialize(r, scratch, sizeof(scratch), &len) != 0 || len != fixed_len ||
	    memcmp(scratch, fixed_state, len) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	if (!ready) {
		if (sodium_init() < 0)
			abort();
		ratchet_free(fuzz_ratchet_setup());
		ready = true;
	}
	if (size < 1)
		return 0;
	const uint8_t *in = data + 1;
	size_t len = size - 1;
	struct ratchet *r = NULL;
	size_t n = 0;

	if (data[0] % 3 == 0) {
		if (ratchet_deserialize(&r, in, len) != 0) {
			if (r != NULL)
				abort();
			return 0;
		}
		if (ratchet_serialize(r, scratch, sizeof(scratch), &n) != 0 || n != len ||
		    memcmp(scratch, in, len) != 0)
			abort();
		/* A parsed state must be safe to use. */
		int rc =
		    ratchet_encrypt(r, NULL, 0, in, len > 64 ? 64 : len, plain, sizeof(plain), &n);
		if (rc != 0 && rc != CAIRN_ESTATE && rc != CAIRN_ENONCE)
			abort();
		ratchet_free(r);
		return 0;
	}

	fuzz_ctr = 1000;
	if (ratchet_deserialize(&r, fixed_state, fixed_len) != 0)
		abort();
	int rc;
	if (data[0] % 3 == 1) {
		rc = ratchet_decrypt(r, NULL, 0, in, len, plain, sizeof(plain), &n, &fuzz_rng);
		if (rc == 0 && n + RATCHET_OVERHEAD != len)
			abort();
	} else {
		struct e2e_opened o;
		rc = e2e_open(r, in, len, plain, sizeof(plain), &o, &fuzz_rng);
		if (rc == 0 && o.message_len > len)
			abort();
	}
	if (rc != 0)
		check_unchanged(r);
	ratchet_free(r);
	return 0;
}
