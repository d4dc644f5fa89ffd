/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the relay policy's decoder and verifier (proto/policy.h, docs/PROTOCOL.md 5.13),
 * which a client runs on bytes a relay chose: policy_decode on the input (on success every
 * string is valid UTF-8 within its bound, and re-encoding gives the same bytes: one encoding),
 * and policy_verify with the relay key of the policy/body vector and the input's last 64 bytes
 * as the signature (it may succeed only on bodies that decode; the vector's own body, a seed,
 * verifies with the vector's signature).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

static uint8_t relay_pk[32];

static void setup_once(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	CHECK(sodium_init() >= 0);
	uint8_t sk[32];
	memset(sk, 0x72, sizeof(sk));
	crypto_scalarmult_base(relay_pk, sk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup_once();
	static struct policy p;
	static uint8_t again[POLICY_BODY_MAX];
	int rc = policy_decode(data, size, &p);
	if (rc == 0) {
		const char *t[] = {p.jurisdiction, p.contact, p.logging, p.retention, p.statement};
		for (int i = 0; i < 5; i++) {
			size_t n = strnlen(t[i], POLICY_TEXT_MAX + 1);
			CHECK(n <= POLICY_TEXT_MAX && policy_text_valid(t[i], n));
		}
		CHECK(p.forwarding <= 1);
		size_t len;
		CHECK(policy_encode(&p, again, sizeof(again), &len) == 0);
		CHECK(len == size && memcmp(again, data, size) == 0);
	}
	if (size > POLICY_SIG_LEN) {
		size_t blen = size - POLICY_SIG_LEN;
		int v = policy_verify(relay_pk, data, blen, data + blen, &p);
		if (v == 0)
			CHECK(policy_decode(data, blen, &p) == 0);
	}
	return 0;
}
