/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes both ends of the handshake with the keys and clock of the docs/PROTOCOL.md vector.
 * The first input byte picks a mode (its value mod 3): 0 feeds the rest as message 1 to the
 * relay; 1 feeds it as message 2 to a client that sent the vector's message 1; 2 takes the
 * relay's real message 2, XORs the input into it and cuts it to a length the input chooses.
 * Its next bit (value / 3, odd) makes the client offer and the relay able to choose
 * AES-256-GCM (PROTOCOL.md 2.5), as vector handshake/nk-aesgcm; the seeds msg1-aesgcm and
 * msg2-aesgcm are that vector's messages.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "handshake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1767225600u /* the vector's timestamp */

static const uint8_t relay_private[32] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};
static const uint8_t client_ephemeral[32] = {
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};
static const uint8_t relay_ephemeral[32] = {
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
};

/* A failed invariant is a finding: abort so the fuzzer records the input. */
#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

/* The offer and the choice the relay may make: this input's, per the mode byte. */
static uint8_t ciphers;

static void relay_public(uint8_t pub[static 32])
{
	crypto_scalarmult_base(pub, relay_private);
}

/* Mode 0: arbitrary bytes as message 1, against a fresh replay cache. */
static void fuzz_message1(const uint8_t *msg, size_t len)
{
	uint8_t pub[32], out[CAIRN_HANDSHAKE2_MAX];
	size_t outlen = 1;
	struct cairn_session s;
	relay_public(pub);
	struct replay_cache *cache = replay_cache_new(4);
	CHECK(cache != NULL);
	int rc =
	    cairn_handshake_relay_respond_ex(relay_private, pub, relay_ephemeral, cache, NOW, msg,
	                                     len, 5, ciphers, out, sizeof(out), &outlen, &s);
	if (rc == 0) {
		CHECK(len >= CAIRN_HANDSHAKE1_MIN && len <= CAIRN_HANDSHAKE1_MAX);
		CHECK(outlen == CAIRN_HANDSHAKE2_MIN + 5);
		/* Only a cipher this relay may choose is chosen. */
		CHECK(s.send.alg == s.recv.alg);
		CHECK(ciphers != 0 || s.send.alg == NOISE_CIPHER_CHACHAPOLY);
		/* Accepted once, so the same message is now a replay. */
		CHECK(cairn_handshake_relay_respond_ex(relay_private, pub, relay_ephemeral, cache,
		                                       NOW, msg, len, 5, ciphers, out, sizeof(out),
		                                       &outlen, &s) == CAIRN_EREPLAY);
	} else {
		CHECK(outlen == 0);
		CHECK(sodium_is_zero((const uint8_t *)&s, sizeof(s)));
	}
	cairn_session_wipe(&s);
	replay_cache_free(cache);
}

/* The client side of the vector: message 1 written, waiting for message 2. */
static void client_started(struct noise_handshake *hs, uint8_t m1[static CAIRN_HANDSHAKE1_MAX],
                           size_t *len1)
{
	uint8_t pub[32];
	relay_public(pub);
	CHECK(cairn_handshake_client_start_ex(hs, pub, client_ephemeral, NOW, 3, ciphers, m1,
	                                      CAIRN_HANDSHAKE1_MAX, len1) == 0);
}

static void finish(struct noise_handshake *hs, const uint8_t *msg, size_t len)
{
	struct cairn_session s;
	int rc = cairn_handshake_client_finish_ex(hs, msg, len, ciphers, &s);
	if (rc == 0) {
		CHECK(len >= CAIRN_HANDSHAKE2_MIN && len <= CAIRN_HANDSHAKE2_MAX);
		/* Never a cipher the client did not offer. */
		CHECK(s.send.alg == s.recv.alg);
		CHECK(ciphers != 0 || s.send.alg == NOISE_CIPHER_CHACHAPOLY);
	} else {
		CHECK(sodium_is_zero((const uint8_t *)&s, sizeof(s)));
	}
	CHECK(sodium_is_zero((const uint8_t *)hs, sizeof(*hs)));
	cairn_session_wipe(&s);
}

/* Mode 1: arbitrary bytes as message 2. */
static void fuzz_message2(const uint8_t *msg, size_t len)
{
	struct noise_handshake hs;
	uint8_t m1[CAIRN_HANDSHAKE1_MAX];
	size_t len1;
	client_started(&hs, m1, &len1);
	finish(&hs, msg, len);
}

/* Mode 2: the real message 2, XORed with the input and cut to length. */
static void fuzz_mutated_message2(const uint8_t *in, size_t len)
{
	struct noise_handshake hs;
	struct cairn_session s;
	uint8_t m1[CAIRN_HANDSHAKE1_MAX], m2[CAIRN_HANDSHAKE2_MAX + 1] = {0}, pub[32];
	size_t len1, len2;
	if (len < 2)
		return;
	size_t pad = in[0];
	size_t cut = in[1];
	in += 2;
	len -= 2;
	client_started(&hs, m1, &len1);
	relay_public(pub);
	CHECK(cairn_handshake_relay_respond_ex(relay_private, pub, relay_ephemeral, NULL, NOW, m1,
	                                       len1, pad, ciphers, m2, sizeof(m2), &len2, &s) == 0);
	cairn_session_wipe(&s);
	for (size_t i = 0; i < len && i < sizeof(m2); i++)
		m2[i] ^= in[i];
	/* CUT 0 keeps the whole message; otherwise it shortens it by CUT bytes or adds one. */
	if (cut == 255)
		len2++;
	else if (cut <= len2)
		len2 -= cut;
	finish(&hs, m2, len2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || sodium_init() < 0)
		return 0;
	ciphers = (data[0] / 3) % 2 ? CAIRN_HELLO_CIPHER_AESGCM : 0;
	switch (data[0] % 3) {
	case 0:
		fuzz_message1(data + 1, size - 1);
		break;
	case 1:
		fuzz_message2(data + 1, size - 1);
		break;
	default:
		fuzz_mutated_message2(data + 1, size - 1);
		break;
	}
	return 0;
}
