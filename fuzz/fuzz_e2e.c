/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the inviter's side of session setup: opening a first message (docs/PROTOCOL.md
 * section 8.6, type 1) with e2e_open_first, which fuzz_ratchet does not reach. The keys are
 * fixed: an inviter identity and one-time key, an accepter identity. The first byte picks the
 * mode: 0 opens the rest as an envelope; 1 has the accepter seal u16 reply length || reply ||
 * message from the rest and checks the whole exchange (open, replay refused, a second first
 * message, the inviter's answer); 2 XORs the rest into a valid first message (its first two
 * bytes cut the length); 3 ratchet-encrypts the rest as the padded plaintext of a first
 * message, so the padding and reply parsing see arbitrary bytes behind a valid seal.
 * Whatever fails must leave every output cleared and the one-time key unspent.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "e2e.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

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

static uint8_t inviter_pk[X3DH_IDENTITY_PK_LEN], inviter_sk[X3DH_IDENTITY_SK_LEN];
static uint8_t accepter_pk[X3DH_IDENTITY_PK_LEN], accepter_sk[X3DH_IDENTITY_SK_LEN];
static struct x3dh_onetime otk_fixed;
static uint8_t env[CAIRN_ENVELOPE_MAX + RATCHET_OVERHEAD + X3DH_PREFIX_LEN + 1];
static uint8_t env2[CAIRN_ENVELOPE_MAX];
static uint8_t buf[CAIRN_ENVELOPE_MAX + 64];
static uint8_t replay_buf[CAIRN_ENVELOPE_MAX + 64];
static char sentinel; /* what an output pointer holds before a call must set it */
static uint8_t valid[CAIRN_ENVELOPE_MAX]; /* mode 2's first message */
static size_t valid_len;

static void setup_once(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	CHECK(sodium_init() >= 0);
	uint8_t seed[crypto_sign_SEEDBYTES];
	memset(seed, 0x11, sizeof(seed));
	crypto_sign_seed_keypair(inviter_pk, inviter_sk, seed);
	memset(seed, 0x22, sizeof(seed));
	crypto_sign_seed_keypair(accepter_pk, accepter_sk, seed);
	fuzz_ctr = 0;
	x3dh_onetime_generate(&otk_fixed, &rng);
}

/* The accepter's side: a new session against the fixed invite. */
static struct ratchet *accepter_start(uint8_t prefix[static X3DH_PREFIX_LEN])
{
	struct ratchet *a = NULL;
	fuzz_ctr = 100;
	CHECK(x3dh_initiate(inviter_pk, otk_fixed.pub, accepter_sk, &rng, prefix, &a) == 0);
	return a;
}

/*
 * Opens ENV (LEN bytes) as the inviter. On failure checks that nothing leaked out or
 * changed; returns the session (owned by the caller) or NULL.
 */
static struct ratchet *inviter_open(struct x3dh_onetime *otk, const uint8_t *e, size_t len,
                                    struct e2e_opened *res)
{
	struct ratchet *b = (struct ratchet *)(void *)&sentinel;
	uint8_t peer[X3DH_IDENTITY_PK_LEN];
	struct x3dh_onetime before = *otk;
	fuzz_ctr = 1000;
	int rc = e2e_open_first(inviter_sk, otk, e, len, buf, sizeof(buf), res, peer, &b, &rng);
	if (rc != 0) {
		CHECK(b == NULL && sodium_is_zero(peer, sizeof(peer)));
		CHECK(res->message == NULL && res->reply == NULL && res->message_len == 0);
		CHECK(memcmp(&before, otk, sizeof(before)) == 0);
		return NULL;
	}
	CHECK(b != NULL && memcmp(peer, accepter_pk, sizeof(peer)) == 0);
	CHECK(otk->used && sodium_is_zero(otk->priv, sizeof(otk->priv)));
	CHECK(res->type == E2E_TYPE_FIRST && res->reply_len <= E2E_REPLY_MAX);
	CHECK(res->reply >= buf && res->message >= res->reply + res->reply_len);
	CHECK(res->message + res->message_len <= buf + sizeof(buf));
	/* The key is spent: the same message again is a replay. */
	struct ratchet *again = NULL;
	CHECK(e2e_open_first(inviter_sk, otk, e, len, replay_buf, sizeof(replay_buf),
	                     &(struct e2e_opened){0}, peer, &again, &rng) == CAIRN_EREPLAY);
	CHECK(again == NULL);
	return b;
}

/* Mode 0: any bytes as a first message. */
static void open_raw(const uint8_t *in, size_t len)
{
	uint8_t opk[CAIRN_KEY_LEN];
	struct x3dh_onetime otk = otk_fixed;
	struct e2e_opened res;
	if (e2e_first_onetime(in, len, opk) != 0)
		CHECK(sodium_is_zero(opk, sizeof(opk)));
	ratchet_free(inviter_open(&otk, in, len, &res));
}

/* Mode 1: a real exchange around the reply and message the input holds. */
static void exchange(const uint8_t *in, size_t len)
{
	size_t rlen = len >= 2 ? ((size_t)in[0] << 8 | in[1]) % (E2E_REPLY_MAX + 1) : 0;
	in += len >= 2 ? 2 : len;
	len -= len >= 2 ? 2 : len;
	if (rlen > len)
		rlen = len;
	const uint8_t *reply = in, *msg = in + rlen;
	size_t mlen = len - rlen;
	uint8_t prefix[X3DH_PREFIX_LEN];
	struct ratchet *a = accepter_start(prefix);
	size_t n = 0;
	int rc = e2e_seal_first(a, prefix, reply, rlen, msg, mlen, env, sizeof(env), &n);
	if (rc != 0) {
		CHECK(rc == CAIRN_ETOOBIG);
		ratchet_free(a);
		return;
	}
	struct x3dh_onetime otk = otk_fixed;
	struct e2e_opened res;
	struct ratchet *b = inviter_open(&otk, env, n, &res);
	CHECK(b != NULL && res.reply_len == rlen && res.message_len == mlen);
	CHECK(memcmp(res.reply, reply, rlen) == 0 && memcmp(res.message, msg, mlen) == 0);

	/* Until it hears back, the accepter keeps sending first messages; the session opens
	 * them. Then the inviter answers. */
	size_t n2 = 0;
	CHECK(e2e_seal_first(a, prefix, reply, rlen, (const uint8_t *)"again", 5, env2,
	                     sizeof(env2), &n2) == 0);
	CHECK(e2e_open(b, env2, n2, buf, sizeof(buf), &res, &rng) == 0);
	CHECK(res.message_len == 5 && memcmp(res.message, "again", 5) == 0);
	CHECK(e2e_seal(b, msg, mlen > 64 ? 64 : mlen, env2, sizeof(env2), &n2) == 0);
	CHECK(e2e_open(a, env2, n2, buf, sizeof(buf), &res, &rng) == 0);
	CHECK(res.type == E2E_TYPE_MESSAGE && res.reply == NULL);
	ratchet_free(a);
	ratchet_free(b);
}

/* Mode 2: a valid first message with the input XORed in. */
static void tampered(const uint8_t *in, size_t len)
{
	if (valid_len == 0) {
		uint8_t prefix[X3DH_PREFIX_LEN];
		struct ratchet *a = accepter_start(prefix);
		CHECK(e2e_seal_first(a, prefix, (const uint8_t *)"reply", 5,
		                     (const uint8_t *)"hello", 5, valid, sizeof(valid),
		                     &valid_len) == 0);
		ratchet_free(a);
	}
	if (len < 2)
		return;
	/* The first two bytes choose the length: shorter, or longer with the bytes given. */
	size_t cut = ((size_t)in[0] << 8 | in[1]) % sizeof(env);
	in += 2;
	len -= 2;
	memset(env, 0, sizeof(env));
	memcpy(env, valid, valid_len);
	for (size_t i = 0; i < len && i < sizeof(env); i++)
		env[i] ^= in[i];
	size_t elen = cut == 0 ? valid_len : cut;
	struct x3dh_onetime otk = otk_fixed;
	struct e2e_opened res;
	ratchet_free(inviter_open(&otk, env, elen, &res));
}

/* Mode 3: the input as the padded plaintext of a properly sealed first message. */
static void plaintext(const uint8_t *in, size_t len)
{
	uint8_t prefix[X3DH_PREFIX_LEN];
	if (len > CAIRN_ENVELOPE_MAX)
		len = CAIRN_ENVELOPE_MAX;
	struct ratchet *a = accepter_start(prefix);
	env[0] = E2E_TYPE_FIRST;
	memcpy(env + 1, prefix, X3DH_PREFIX_LEN);
	size_t n = 0;
	CHECK(ratchet_encrypt(a, env, 1 + X3DH_PREFIX_LEN, in, len, env + 1 + X3DH_PREFIX_LEN,
	                      sizeof(env) - 1 - X3DH_PREFIX_LEN, &n) == 0);
	ratchet_free(a);
	struct x3dh_onetime otk = otk_fixed;
	struct e2e_opened res;
	ratchet_free(inviter_open(&otk, env, 1 + X3DH_PREFIX_LEN + n, &res));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup_once();
	if (size < 1)
		return 0;
	switch (data[0] % 4) {
	case 0:
		open_raw(data + 1, size - 1);
		break;
	case 1:
		exchange(data + 1, size - 1);
		break;
	case 2:
		tampered(data + 1, size - 1);
		break;
	default:
		plaintext(data + 1, size - 1);
		break;
	}
	return 0;
}
