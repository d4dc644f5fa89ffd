/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the readers of intake addresses (docs/PROTOCOL.md section 10): intake_parse, whose
 * successes must encode back to the same bytes (one form) and whose failures leave the output
 * zeroed; bundle_open against the fixed identity and log id of the 10.9 vectors, whose
 * successes must satisfy 10.3's field rules and be signed again to the same bytes; and the
 * owner's e2e_open_intake with the vectors' keys, which must leave the prekey unchanged and,
 * on failure, every output cleared. All three see every input.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "e2e.h"
#include "intake.h"
#include "work.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

static uint8_t owner_pk[32], owner_sk[64], log_id[CAIRN_LOG_ID_LEN];
static struct x3dh_onetime spk;
static uint8_t buf[CAIRN_ENVELOPE_MAX + 64];

static void fuzz_fill(void *ctx, uint8_t *out, size_t len)
{
	uint64_t *ctr = ctx;
	uint8_t seed[randombytes_SEEDBYTES] = {0};
	memcpy(seed, ctr, sizeof(*ctr));
	(*ctr)++;
	randombytes_buf_deterministic(out, len, seed);
}

static uint64_t fuzz_ctr;
static const struct e2e_rng rng = {fuzz_fill, &fuzz_ctr};

static void setup_once(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	CHECK(sodium_init() >= 0);
	uint8_t seed[crypto_sign_SEEDBYTES];
	memset(seed, 0x01, sizeof(seed));
	crypto_sign_seed_keypair(owner_pk, owner_sk, seed);
	memset(log_id, 0x51, sizeof(log_id));
	memset(spk.priv, 0x31, sizeof(spk.priv));
	crypto_scalarmult_base(spk.pub, spk.priv);
}

static void check_address(const uint8_t *data, size_t size)
{
	struct intake_address a;
	uint8_t out[INTAKE_MAX_LEN];
	size_t len = 0;
	if (intake_parse(data, size, &a) != 0) {
		CHECK(sodium_is_zero((const uint8_t *)&a, sizeof(a)));
		return;
	}
	CHECK(intake_encode(&a, out, sizeof(out), &len) == 0);
	CHECK(len == size && memcmp(out, data, size) == 0);
}

static void check_bundle(const uint8_t *data, size_t size)
{
	struct intake_bundle b;
	uint8_t out[BUNDLE_LEN];
	if (bundle_open(data, size, owner_pk, log_id, &b) != 0) {
		CHECK(sodium_is_zero((const uint8_t *)&b, sizeof(b)));
		return;
	}
	CHECK(b.expires > b.created && b.work_bits >= WORK_BITS_MIN &&
	      b.work_bits <= WORK_BITS_MAX && memcmp(b.identity, owner_pk, 32) == 0);
	/* Ed25519 signatures are deterministic and libsodium refuses non-canonical ones. */
	CHECK(bundle_sign(&b, log_id, owner_sk, out) == 0);
	CHECK(size == BUNDLE_LEN && memcmp(out, data, BUNDLE_LEN) == 0);
}

static void check_first(const uint8_t *data, size_t size)
{
	struct x3dh_onetime before = spk;
	struct e2e_opened res;
	struct ratchet *s = NULL;
	uint8_t peer[32], ek[32], k[32];
	if (e2e_intake_keys(data, size, ek, k) != 0)
		CHECK(sodium_is_zero(ek, 32) && sodium_is_zero(k, 32));
	fuzz_ctr = 1000;
	int rc =
	    e2e_open_intake(owner_sk, &spk, data, size, buf, sizeof(buf), &res, peer, &s, &rng);
	CHECK(memcmp(&before, &spk, sizeof(spk)) == 0);
	if (rc != 0) {
		CHECK(s == NULL && sodium_is_zero(peer, sizeof(peer)));
		CHECK(res.message == NULL && res.reply == NULL && res.message_len == 0);
		return;
	}
	CHECK(s != NULL && res.type == E2E_TYPE_INTAKE && res.reply_len <= E2E_REPLY_MAX);
	CHECK(res.message + res.message_len <= buf + sizeof(buf));
	/* The session it started refuses the same envelope again. */
	CHECK(e2e_open(s, data, size, buf, sizeof(buf), &res, &rng) == CAIRN_EREPLAY);
	ratchet_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup_once();
	check_address(data, size);
	check_bundle(data, size);
	check_first(data, size);
	return 0;
}
