/* SPDX-License-Identifier: MIT */
/*
 * The negotiated transport cipher (docs/PROTOCOL.md 2.5): the published vector
 * handshake/nk-aesgcm (computed by an independent implementation), every pairing of offer and
 * choice including the old peers that send neither, unknown bits, a choice nobody offered,
 * and a transport message sealed with the other cipher.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "handshake.h"
#include "mdvec.h"

#define VEC  "handshake/nk-aesgcm"
#define NOW  1767225600u
#define NK   "Noise_NK_25519_ChaChaPoly_BLAKE2b"
#define MAXM 512
#define AES  CAIRN_HELLO_CIPHER_AESGCM

struct keys {
	uint8_t priv[32], pub[32];
};

static int setup(void **state)
{
	(void)state;
	return sodium_init() < 0 ? -1 : 0;
}

/* libsodium 1.0.18 has AES-256-GCM only in hardware: without it there is nothing to test. */
static void need_aes(void)
{
	if (!crypto_aead_aes256gcm_is_available())
		skip();
}

/* Seals PT with A and opens it with B: returns B's decrypt code. */
static int seal_open(struct noise_cipher *a, struct noise_cipher *b, const char *pt)
{
	uint8_t ct[64], out[64];
	size_t len = 0, olen = 0, n = strlen(pt);
	assert_int_equal(
	    noise_cipher_encrypt(a, NULL, 0, (const uint8_t *)pt, n, ct, sizeof(ct), &len), 0);
	int rc = noise_cipher_decrypt(b, NULL, 0, ct, len, out, sizeof(out), &olen);
	if (rc == 0) {
		assert_int_equal(olen, n);
		assert_memory_equal(out, pt, n);
	}
	return rc;
}

/*
 * One handshake: the client offers OFFER (pad 0: the offer must still be sent), the relay may
 * choose MAY (pad 0 likewise); both sessions must agree on ALG and talk both ways.
 */
static void negotiate(const struct keys *k, uint8_t offer, uint8_t may, enum noise_cipher_alg alg)
{
	struct noise_handshake hs;
	struct cairn_session cs, rs;
	uint8_t m1[MAXM], m2[MAXM];
	size_t len1 = 0, len2 = 0;
	assert_int_equal(cairn_handshake_client_start_ex(&hs, k->pub, NULL, NOW, 0, offer, m1,
	                                                 sizeof(m1), &len1),
	                 0);
	assert_int_equal(len1, CAIRN_HANDSHAKE1_MIN + (offer != 0));
	assert_int_equal(cairn_handshake_relay_respond_ex(k->priv, k->pub, NULL, NULL, NOW, m1,
	                                                  len1, 0, may, m2, sizeof(m2), &len2, &rs),
	                 0);
	assert_int_equal(len2, CAIRN_HANDSHAKE2_MIN + (may != 0));
	assert_int_equal(cairn_handshake_client_finish_ex(&hs, m2, len2, offer, &cs), 0);
	assert_int_equal(cs.send.alg, alg);
	assert_int_equal(cs.recv.alg, alg);
	assert_int_equal(rs.send.alg, alg);
	assert_int_equal(rs.recv.alg, alg);
	assert_int_equal(seal_open(&cs.send, &rs.recv, "ping"), 0);
	assert_int_equal(seal_open(&rs.send, &cs.recv, "pong"), 0);
	cairn_session_wipe(&cs);
	cairn_session_wipe(&rs);
}

static void test_vector(void **state)
{
	(void)state;
	need_aes();
	struct keys k;
	uint8_t ce[32], re[32], p1[64], p2[64], m1[MAXM], m2[MAXM], h[64], ck[32], rk[32];
	uint8_t out1[MAXM], out2[MAXM], pt[64], ct[64], got[64];
	size_t len1, len2;
	struct noise_handshake hs;
	struct cairn_session cs, rs;

	mdvec_hex(VEC, "relay_static_private", k.priv, 32);
	mdvec_hex(VEC, "relay_static_public", k.pub, 32);
	mdvec_hex(VEC, "client_ephemeral_private", ce, 32);
	mdvec_hex(VEC, "relay_ephemeral_private", re, 32);
	assert_int_equal(strtoull(mdvec_str(VEC, "timestamp"), NULL, 10), NOW);
	size_t plen1 = mdvec_hex(VEC, "payload1", p1, sizeof(p1));
	size_t plen2 = mdvec_hex(VEC, "payload2", p2, sizeof(p2));
	size_t mlen1 = mdvec_hex(VEC, "message1", m1, sizeof(m1));
	size_t mlen2 = mdvec_hex(VEC, "message2", m2, sizeof(m2));
	mdvec_hex(VEC, "handshake_hash", h, 64);
	mdvec_hex(VEC, "client_send_key", ck, 32);
	mdvec_hex(VEC, "relay_send_key", rk, 32);

	/* The payloads as 2.1 and 2.5 lay them out: the offer and the choice in the first
	 * padding byte, the rest zero. */
	static const uint8_t want_p1[] = {1, 0, 0, 0, 0, 0x69, 0x55, 0xb9, 0, AES, 0, 0};
	static const uint8_t want_p2[] = {1, AES, 0, 0, 0, 0};
	assert_int_equal(plen1, sizeof(want_p1));
	assert_memory_equal(p1, want_p1, plen1);
	assert_int_equal(plen2, sizeof(want_p2));
	assert_memory_equal(p2, want_p2, plen2);

	assert_int_equal(cairn_handshake_client_start_ex(&hs, k.pub, ce, NOW, plen1 - 9, AES, out1,
	                                                 sizeof(out1), &len1),
	                 0);
	assert_int_equal(len1, mlen1);
	assert_memory_equal(out1, m1, mlen1);
	assert_int_equal(cairn_handshake_relay_respond_ex(k.priv, k.pub, re, NULL, NOW, m1, mlen1,
	                                                  plen2 - 1, AES, out2, sizeof(out2), &len2,
	                                                  &rs),
	                 0);
	assert_int_equal(len2, mlen2);
	assert_memory_equal(out2, m2, mlen2);
	assert_int_equal(cairn_handshake_client_finish_ex(&hs, m2, mlen2, AES, &cs), 0);
	assert_memory_equal(cs.h, h, 64);
	assert_memory_equal(rs.h, h, 64);
	assert_memory_equal(cs.send.k, ck, 32);
	assert_memory_equal(rs.recv.k, ck, 32);
	assert_memory_equal(cs.recv.k, rk, 32);
	assert_memory_equal(rs.send.k, rk, 32);

	/* The transport messages, in order: client's first, relay's first, client's second. */
	static const char *const names[][2] = {{"transport1_plaintext", "transport1"},
	                                       {"transport2_plaintext", "transport2"},
	                                       {"transport3_plaintext", "transport3"}};
	for (int i = 0; i < 3; i++) {
		struct noise_cipher *from = i == 1 ? &rs.send : &cs.send;
		struct noise_cipher *to = i == 1 ? &cs.recv : &rs.recv;
		size_t ptlen = mdvec_hex(VEC, names[i][0], pt, sizeof(pt));
		size_t want = mdvec_hex(VEC, names[i][1], got, sizeof(got));
		size_t len = 0, olen = 0;
		assert_int_equal(
		    noise_cipher_encrypt(from, NULL, 0, pt, ptlen, ct, sizeof(ct), &len), 0);
		assert_int_equal(len, want);
		assert_memory_equal(ct, got, want);
		assert_int_equal(
		    noise_cipher_decrypt(to, NULL, 0, got, want, ct, sizeof(ct), &olen), 0);
		assert_int_equal(olen, ptlen);
		assert_memory_equal(ct, pt, ptlen);
	}
	cairn_session_wipe(&cs);
	cairn_session_wipe(&rs);
}

/* Both offer: AES-256-GCM. Either side without it (an old client sends no offer, an old
 * relay or one whose CPU lacks AES chooses nothing): ChaCha20-Poly1305 both ways. */
static void test_pairings(void **state)
{
	(void)state;
	need_aes();
	struct keys k;
	crypto_box_keypair(k.pub, k.priv);
	negotiate(&k, AES, AES, NOISE_CIPHER_AESGCM);
	negotiate(&k, 0, AES, NOISE_CIPHER_CHACHAPOLY);
	negotiate(&k, AES, 0, NOISE_CIPHER_CHACHAPOLY);
	negotiate(&k, 0, 0, NOISE_CIPHER_CHACHAPOLY);
	/* Unknown offer bits are ignored, never chosen. */
	negotiate(&k, 0xfe, AES, NOISE_CIPHER_CHACHAPOLY);
	negotiate(&k, 0xff, AES, NOISE_CIPHER_AESGCM);
	negotiate(&k, AES, 0xff, NOISE_CIPHER_AESGCM);

	/* The old entry points are the no-offer, no-choice case, byte for byte the old wire. */
	struct noise_handshake hs;
	struct cairn_session cs, rs;
	uint8_t m1[MAXM], m2[MAXM];
	size_t len1 = 0, len2 = 0;
	assert_int_equal(
	    cairn_handshake_client_start(&hs, k.pub, NULL, NOW, 0, m1, sizeof(m1), &len1), 0);
	assert_int_equal(len1, CAIRN_HANDSHAKE1_MIN);
	assert_int_equal(cairn_handshake_relay_respond_ex(k.priv, k.pub, NULL, NULL, NOW, m1, len1,
	                                                  7, AES, m2, sizeof(m2), &len2, &rs),
	                 0);
	assert_int_equal(cairn_handshake_client_finish(&hs, m2, len2, &cs), 0);
	assert_int_equal(cs.send.alg, NOISE_CIPHER_CHACHAPOLY);
	assert_int_equal(rs.send.alg, NOISE_CIPHER_CHACHAPOLY);
	assert_int_equal(seal_open(&cs.send, &rs.recv, "ping"), 0);
	cairn_session_wipe(&cs);
	cairn_session_wipe(&rs);
}

/*
 * Message 2 written by hand with PAYLOAD2 (a relay that bends 2.5), read by a client that
 * offered OFFER: returns client_finish's code, *CS the session.
 */
static int finish_against(const struct keys *k, uint8_t offer, const uint8_t *payload2, size_t plen,
                          struct cairn_session *cs)
{
	struct noise_handshake hs, r;
	uint8_t m1[MAXM], m2[MAXM], p1[MAXM];
	size_t len1 = 0, len2 = 0, glen = 0;
	assert_int_equal(cairn_handshake_client_start_ex(&hs, k->pub, NULL, NOW, 4, offer, m1,
	                                                 sizeof(m1), &len1),
	                 0);
	assert_int_equal(noise_handshake_init(&r, NK, NOISE_RESPONDER,
	                                      (const uint8_t *)CAIRN_PROLOGUE, 7, k->priv, k->pub,
	                                      NULL, NULL),
	                 0);
	assert_int_equal(noise_handshake_read_message(&r, m1, len1, p1, sizeof(p1), &glen), 0);
	assert_int_equal(p1[CAIRN_HELLO1_FIXED_LEN], offer);
	assert_int_equal(noise_handshake_write_message(&r, payload2, plen, m2, sizeof(m2), &len2),
	                 0);
	noise_handshake_wipe(&r);
	return cairn_handshake_client_finish_ex(&hs, m2, len2, offer, cs);
}

static void test_choice_checked(void **state)
{
	(void)state;
	need_aes();
	struct keys k;
	crypto_box_keypair(k.pub, k.priv);
	struct cairn_session cs;
	/* A choice of AES-256-GCM that the client did not offer fails the handshake. */
	static const uint8_t aes[] = {1, AES, 0};
	assert_int_equal(finish_against(&k, 0, aes, sizeof(aes), &cs), CAIRN_EBADREQ);
	assert_true(sodium_is_zero((const uint8_t *)&cs, sizeof(cs)));
	assert_int_equal(finish_against(&k, AES, aes, sizeof(aes), &cs), 0);
	assert_int_equal(cs.send.alg, NOISE_CIPHER_AESGCM);
	/* Unknown choice bits are ignored; an old relay's zero padding, or none, is ChaCha. */
	static const uint8_t unknown[] = {1, 0x80 | AES};
	assert_int_equal(finish_against(&k, AES, unknown, sizeof(unknown), &cs), 0);
	assert_int_equal(cs.recv.alg, NOISE_CIPHER_AESGCM);
	static const uint8_t only_unknown[] = {1, 0xfe};
	assert_int_equal(finish_against(&k, 0, only_unknown, sizeof(only_unknown), &cs), 0);
	assert_int_equal(cs.recv.alg, NOISE_CIPHER_CHACHAPOLY);
	static const uint8_t old[] = {1, 0, 0, 0};
	assert_int_equal(finish_against(&k, AES, old, sizeof(old), &cs), 0);
	assert_int_equal(cs.send.alg, NOISE_CIPHER_CHACHAPOLY);
	static const uint8_t none[] = {1};
	assert_int_equal(finish_against(&k, AES, none, sizeof(none), &cs), 0);
	assert_int_equal(cs.send.alg, NOISE_CIPHER_CHACHAPOLY);
	cairn_session_wipe(&cs);
}

/* A message sealed with one cipher does not open with the other under the same key and
 * nonce, either way; nor does AES-GCM open with the other nonce layout. */
static void test_wrong_cipher_fails(void **state)
{
	(void)state;
	need_aes();
	uint8_t key[32];
	randombytes_buf(key, sizeof(key));
	struct noise_cipher a, b;
	for (int dir = 0; dir < 2; dir++) {
		noise_cipher_init(&a, key);
		noise_cipher_init(&b, key);
		noise_cipher_set_alg(dir ? &a : &b, NOISE_CIPHER_AESGCM);
		assert_int_equal(seal_open(&a, &b, "frame"), CAIRN_EAUTH);
		assert_int_equal(b.n, 0); /* a failed open uses no nonce */
	}
	noise_cipher_init(&a, key);
	noise_cipher_init(&b, key);
	noise_cipher_set_alg(&a, NOISE_CIPHER_AESGCM);
	noise_cipher_set_alg(&b, NOISE_CIPHER_AESGCM);
	assert_int_equal(seal_open(&a, &b, "0"), 0);
	/* Nonce 1 in little-endian layout is AES-GCM's nonce 2^56: libsodium's AES-GCM with
	 * that nonce must not open a message sealed at Noise nonce 1. */
	uint8_t ct[64], out[64], nonce[12] = {0};
	size_t len = 0;
	assert_int_equal(
	    noise_cipher_encrypt(&a, NULL, 0, (const uint8_t *)"one", 3, ct, sizeof(ct), &len), 0);
	nonce[4] = 1;
	assert_int_not_equal(
	    crypto_aead_aes256gcm_decrypt(out, NULL, NULL, ct, len, NULL, 0, nonce, key), 0);
	memset(nonce, 0, sizeof(nonce));
	nonce[11] = 1;
	assert_int_equal(
	    crypto_aead_aes256gcm_decrypt(out, NULL, NULL, ct, len, NULL, 0, nonce, key), 0);
	assert_memory_equal(out, "one", 3);
	noise_cipher_wipe(&a);
	noise_cipher_wipe(&b);
}

/* The session's size is what it was: the choice lives in what was padding (issue 18's
 * memory per idle connection). */
static void test_size_unchanged(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct noise_cipher), sizeof(struct {
		                 uint8_t k[CAIRN_KEY_LEN];
		                 uint64_t n;
		                 bool has_key;
	                 }));
}

/* The availability check answers the CPU unless a test overrides it. */
static void test_availability_override(void **state)
{
	(void)state;
	noise_aesgcm_set_available(0);
	assert_false(noise_aesgcm_available());
	noise_aesgcm_set_available(1);
	assert_true(noise_aesgcm_available());
	noise_aesgcm_set_available(-1);
	assert_int_equal(noise_aesgcm_available(), crypto_aead_aes256gcm_is_available() != 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vector),         cmocka_unit_test(test_pairings),
	    cmocka_unit_test(test_choice_checked), cmocka_unit_test(test_wrong_cipher_fails),
	    cmocka_unit_test(test_size_unchanged), cmocka_unit_test(test_availability_override),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
