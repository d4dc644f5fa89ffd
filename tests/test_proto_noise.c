/* SPDX-License-Identifier: MIT */
/*
 * Noise HandshakeState against every cacophony vector in tests/vectors/noise (handshake hash
 * and every handshake and transport ciphertext, byte for byte), plus the failure paths:
 * out-of-turn calls, tampering, unknown names, small buffers, nonce exhaustion, zero DH.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <sodium.h>

#include "mdvec.h"
#include "noise.h"

#define NK_B2 "Noise_NK_25519_ChaChaPoly_BLAKE2b"
#define NN_B2 "Noise_NN_25519_ChaChaPoly_BLAKE2b"

static cJSON *load_vectors(void)
{
	const char *path = CAIRN_TEST_VECTORS "/noise/cacophony-subset.json";
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("cannot open %s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *text = malloc((size_t)n + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
	text[n] = '\0';
	fclose(f);
	cJSON *root = cJSON_Parse(text);
	free(text);
	assert_non_null(root);
	return root;
}

/* Decodes the hex string field NAME of OBJ into OUT; returns its length, or -1 if absent. */
static long field_hex(const cJSON *obj, const char *name, uint8_t *out, size_t cap)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, name);
	if (f == NULL)
		return -1;
	assert_true(cJSON_IsString(f));
	return (long)test_unhex(f->valuestring, out, cap);
}

/* The first entry of a "*_psks" array, or -1 if the field is absent. */
static long field_psk(const cJSON *obj, const char *name, uint8_t out[static NOISE_PSK_LEN])
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, name);
	if (f == NULL)
		return -1;
	assert_true(cJSON_IsArray(f));
	assert_int_equal(cJSON_GetArraySize(f), 1);
	const cJSON *first = cJSON_GetArrayItem(f, 0);
	assert_true(cJSON_IsString(first));
	assert_int_equal(test_unhex(first->valuestring, out, NOISE_PSK_LEN), NOISE_PSK_LEN);
	return NOISE_PSK_LEN;
}

/* Sets up one side of vector V; PREFIX is "init" or "resp". */
static void setup_side(const cJSON *v, const char *prefix, enum noise_role role,
                       struct noise_handshake *hs)
{
	char key[64];
	uint8_t prologue[256], s[32], rs[32], e[32], psk[32];
	const char *name = cJSON_GetObjectItemCaseSensitive(v, "protocol_name")->valuestring;

	snprintf(key, sizeof(key), "%s_prologue", prefix);
	long plen = field_hex(v, key, prologue, sizeof(prologue));
	assert_true(plen >= 0);
	snprintf(key, sizeof(key), "%s_static", prefix);
	long slen = field_hex(v, key, s, sizeof(s));
	snprintf(key, sizeof(key), "%s_remote_static", prefix);
	long rslen = field_hex(v, key, rs, sizeof(rs));
	snprintf(key, sizeof(key), "%s_psks", prefix);
	long psklen = field_psk(v, key, psk);
	snprintf(key, sizeof(key), "%s_ephemeral", prefix);
	assert_int_equal(field_hex(v, key, e, sizeof(e)), 32);
	/* Fields this test does not know would mean a vector it cannot really check. */
	snprintf(key, sizeof(key), "%s_remote_ephemeral", prefix);
	assert_null(cJSON_GetObjectItemCaseSensitive(v, key));

	assert_int_equal(noise_handshake_init(hs, name, role, prologue, (size_t)plen,
	                                      slen == 32 ? s : NULL, NULL, rslen == 32 ? rs : NULL,
	                                      psklen == 32 ? psk : NULL),
	                 0);
	assert_int_equal(noise_handshake_set_ephemeral(hs, e), 0);
}

/* Runs vector V through both sides and checks every byte. */
static void check_vector(const cJSON *v)
{
	static uint8_t payload[65536], expect[65536], out[65536], got[65536];
	struct noise_handshake ini, res;
	struct noise_cipher ini_send, ini_recv, res_send, res_recv;
	uint8_t hash[64], h1[64], h2[64];
	size_t outlen, gotlen;

	setup_side(v, "init", NOISE_INITIATOR, &ini);
	setup_side(v, "resp", NOISE_RESPONDER, &res);
	long hashlen = field_hex(v, "handshake_hash", hash, sizeof(hash));

	const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(v, "messages");
	assert_true(cJSON_IsArray(msgs));
	int count = cJSON_GetArraySize(msgs);
	bool split = false;
	for (int i = 0; i < count; i++) {
		const cJSON *m = cJSON_GetArrayItem(msgs, i);
		long plen = field_hex(m, "payload", payload, sizeof(payload));
		long clen = field_hex(m, "ciphertext", expect, sizeof(expect));
		assert_true(plen >= 0 && clen >= 0);
		bool from_init = i % 2 == 0;
		if (!split) {
			struct noise_handshake *w = from_init ? &ini : &res;
			struct noise_handshake *r = from_init ? &res : &ini;
			assert_int_equal(noise_handshake_write_message(w, payload, (size_t)plen,
			                                               out, sizeof(out), &outlen),
			                 0);
			assert_int_equal(outlen, (size_t)clen);
			assert_memory_equal(out, expect, outlen);
			assert_int_equal(
			    noise_handshake_read_message(r, out, outlen, got, sizeof(got), &gotlen),
			    0);
			assert_int_equal(gotlen, (size_t)plen);
			assert_memory_equal(got, payload, gotlen);
			assert_int_equal(noise_handshake_is_done(w), noise_handshake_is_done(r));
			if (noise_handshake_is_done(w)) {
				assert_int_equal(noise_handshake_hash(&ini, h1), (size_t)hashlen);
				assert_int_equal(noise_handshake_hash(&res, h2), (size_t)hashlen);
				assert_memory_equal(h1, hash, (size_t)hashlen);
				assert_memory_equal(h2, hash, (size_t)hashlen);
				assert_int_equal(noise_handshake_split(&ini, &ini_send, &ini_recv),
				                 0);
				assert_int_equal(noise_handshake_split(&res, &res_recv, &res_send),
				                 0);
				/* Split keeps h but nothing secret. */
				assert_int_equal(noise_handshake_hash(&ini, h1), (size_t)hashlen);
				assert_memory_equal(h1, hash, (size_t)hashlen);
				assert_true(sodium_is_zero(ini.ck, sizeof(ini.ck)));
				assert_true(sodium_is_zero(ini.e_priv, sizeof(ini.e_priv)));
				split = true;
			}
			continue;
		}
		struct noise_cipher *send = from_init ? &ini_send : &res_send;
		struct noise_cipher *recv = from_init ? &res_recv : &ini_recv;
		assert_int_equal(noise_cipher_encrypt(send, NULL, 0, payload, (size_t)plen, out,
		                                      sizeof(out), &outlen),
		                 0);
		assert_int_equal(outlen, (size_t)clen);
		assert_memory_equal(out, expect, outlen);
		assert_int_equal(
		    noise_cipher_decrypt(recv, NULL, 0, out, outlen, got, sizeof(got), &gotlen), 0);
		assert_int_equal(gotlen, (size_t)plen);
		assert_memory_equal(got, payload, gotlen);
	}
	/* Every vector must reach transport messages, or the split keys went unchecked. */
	assert_true(split);
	noise_handshake_wipe(&ini);
	noise_handshake_wipe(&res);
	noise_cipher_wipe(&ini_send);
	noise_cipher_wipe(&ini_recv);
	noise_cipher_wipe(&res_send);
	noise_cipher_wipe(&res_recv);
}

static void test_cacophony_vectors(void **state)
{
	cJSON *root = load_vectors();
	const cJSON *vectors = cJSON_GetObjectItemCaseSensitive(root, "vectors");
	assert_true(cJSON_IsArray(vectors));
	int total = cJSON_GetArraySize(vectors), checked = 0;
	bool seen_sha256 = false, seen_psk = false;
	const cJSON *v;
	cJSON_ArrayForEach(v, vectors)
	{
		const char *name =
		    cJSON_GetObjectItemCaseSensitive(v, "protocol_name")->valuestring;
		seen_sha256 = seen_sha256 || strstr(name, "_SHA256") != NULL;
		seen_psk = seen_psk || strstr(name, "psk") != NULL;
		check_vector(v);
		checked++;
	}
	assert_int_equal(checked, total);
	assert_int_equal(total, 9); /* the README lists nine */
	assert_true(seen_sha256 && seen_psk);
	cJSON_Delete(root);
}

/* A completed NN handshake with fresh random ephemerals. */
static void nn_pair(struct noise_cipher *ini_send, struct noise_cipher *ini_recv,
                    struct noise_cipher *res_send, struct noise_cipher *res_recv)
{
	struct noise_handshake ini, res;
	uint8_t msg[128], pl[16];
	size_t len, plen;
	assert_int_equal(
	    noise_handshake_init(&ini, NN_B2, NOISE_INITIATOR, NULL, 0, NULL, NULL, NULL, NULL), 0);
	assert_int_equal(
	    noise_handshake_init(&res, NN_B2, NOISE_RESPONDER, NULL, 0, NULL, NULL, NULL, NULL), 0);
	assert_int_equal(noise_handshake_write_message(&ini, NULL, 0, msg, sizeof(msg), &len), 0);
	assert_int_equal(noise_handshake_read_message(&res, msg, len, pl, sizeof(pl), &plen), 0);
	assert_int_equal(noise_handshake_write_message(&res, NULL, 0, msg, sizeof(msg), &len), 0);
	assert_int_equal(noise_handshake_read_message(&ini, msg, len, pl, sizeof(pl), &plen), 0);
	assert_int_equal(noise_handshake_split(&ini, ini_send, ini_recv), 0);
	assert_int_equal(noise_handshake_split(&res, res_recv, res_send), 0);
	noise_handshake_wipe(&ini);
	noise_handshake_wipe(&res);
}

static void test_nonce_exhaustion(void **state)
{
	struct noise_cipher a_send, a_recv, b_send, b_recv;
	uint8_t ct[64], pt[64];
	size_t len, plen;
	nn_pair(&a_send, &a_recv, &b_send, &b_recv);

	a_send.n = UINT64_MAX - 1;
	b_recv.n = UINT64_MAX - 1;
	assert_int_equal(
	    noise_cipher_encrypt(&a_send, NULL, 0, (const uint8_t *)"x", 1, ct, sizeof(ct), &len),
	    0);
	assert_int_equal(noise_cipher_decrypt(&b_recv, NULL, 0, ct, len, pt, sizeof(pt), &plen), 0);
	assert_int_equal(plen, 1);
	assert_int_equal(pt[0], 'x');
	/* 2^64-1 is reserved: neither side may use it. */
	assert_int_equal(
	    noise_cipher_encrypt(&a_send, NULL, 0, (const uint8_t *)"y", 1, ct, sizeof(ct), &len),
	    CAIRN_ENONCE);
	assert_int_equal(len, 0);
	assert_int_equal(noise_cipher_decrypt(&b_recv, NULL, 0, ct, 17, pt, sizeof(pt), &plen),
	                 CAIRN_ENONCE);
	assert_int_equal(a_send.n, UINT64_MAX);
}

static void test_out_of_turn(void **state)
{
	struct noise_handshake ini, res;
	struct noise_cipher c1, c2;
	uint8_t msg[128], pl[16];
	size_t len, plen;
	uint8_t rs_priv[32], rs_pub[32];
	crypto_box_keypair(rs_pub, rs_priv);

	assert_int_equal(
	    noise_handshake_init(&ini, NK_B2, NOISE_INITIATOR, NULL, 0, NULL, NULL, rs_pub, NULL),
	    0);
	assert_int_equal(
	    noise_handshake_init(&res, NK_B2, NOISE_RESPONDER, NULL, 0, rs_priv, NULL, NULL, NULL),
	    0);
	assert_int_equal(noise_handshake_read_message(&ini, msg, 48, pl, sizeof(pl), &plen),
	                 CAIRN_ESTATE);
	assert_int_equal(noise_handshake_write_message(&res, NULL, 0, msg, sizeof(msg), &len),
	                 CAIRN_ESTATE);
	assert_int_equal(noise_handshake_split(&ini, &c1, &c2), CAIRN_ESTATE);
	assert_false(noise_handshake_is_done(&ini));

	assert_int_equal(noise_handshake_write_message(&ini, NULL, 0, msg, sizeof(msg), &len), 0);
	uint8_t other[128];
	size_t other_len = 1;
	assert_int_equal(
	    noise_handshake_write_message(&ini, NULL, 0, other, sizeof(other), &other_len),
	    CAIRN_ESTATE);
	assert_int_equal(other_len, 0);
	assert_int_equal(noise_handshake_read_message(&res, msg, len, pl, sizeof(pl), &plen), 0);
	assert_int_equal(noise_handshake_read_message(&res, msg, len, pl, sizeof(pl), &plen),
	                 CAIRN_ESTATE);
	assert_int_equal(noise_handshake_write_message(&res, NULL, 0, msg, sizeof(msg), &len), 0);
	assert_int_equal(noise_handshake_read_message(&ini, msg, len, pl, sizeof(pl), &plen), 0);
	assert_true(noise_handshake_is_done(&ini) && noise_handshake_is_done(&res));

	/* Finished: no more handshake messages, and one split only. */
	assert_int_equal(noise_handshake_write_message(&ini, NULL, 0, msg, sizeof(msg), &len),
	                 CAIRN_ESTATE);
	assert_int_equal(noise_handshake_read_message(&res, msg, len, pl, sizeof(pl), &plen),
	                 CAIRN_ESTATE);
	assert_int_equal(noise_handshake_split(&ini, &c1, &c2), 0);
	assert_int_equal(noise_handshake_split(&ini, &c1, &c2), CAIRN_ESTATE);
	assert_int_equal(noise_handshake_set_ephemeral(&ini, rs_priv), CAIRN_ESTATE);
	noise_handshake_wipe(&ini);
	noise_handshake_wipe(&res);
	noise_cipher_wipe(&c1);
	noise_cipher_wipe(&c2);
}

/* Flipping any single bit of an NK message 1 (key or ciphertext) fails authentication. */
static void test_tampered_rejected(void **state)
{
	struct noise_handshake ini, res;
	uint8_t msg[128], bad[128], pl[16];
	size_t len, plen;
	uint8_t rs_priv[32], rs_pub[32];
	crypto_box_keypair(rs_pub, rs_priv);

	assert_int_equal(
	    noise_handshake_init(&ini, NK_B2, NOISE_INITIATOR, NULL, 0, NULL, NULL, rs_pub, NULL),
	    0);
	assert_int_equal(noise_handshake_write_message(&ini, (const uint8_t *)"hello", 5, msg,
	                                               sizeof(msg), &len),
	                 0);
	assert_int_equal(len, 32 + 5 + 16);
	for (size_t i = 0; i < len * 8; i += 7) {
		memcpy(bad, msg, len);
		bad[i / 8] ^= (uint8_t)(1u << (i % 8));
		assert_int_equal(noise_handshake_init(&res, NK_B2, NOISE_RESPONDER, NULL, 0,
		                                      rs_priv, NULL, NULL, NULL),
		                 0);
		assert_int_equal(
		    noise_handshake_read_message(&res, bad, len, pl, sizeof(pl), &plen),
		    CAIRN_EAUTH);
		assert_int_equal(plen, 0);
		/* The failed state is wiped and refuses to continue. */
		assert_int_equal(
		    noise_handshake_write_message(&res, NULL, 0, bad, sizeof(bad), &plen),
		    CAIRN_ESTATE);
	}
	/* Too short to hold e and a tag. */
	assert_int_equal(
	    noise_handshake_init(&res, NK_B2, NOISE_RESPONDER, NULL, 0, rs_priv, NULL, NULL, NULL),
	    0);
	assert_int_equal(noise_handshake_read_message(&res, msg, 47, pl, sizeof(pl), &plen),
	                 CAIRN_EAUTH);
	/* A different prologue is a different handshake. */
	assert_int_equal(noise_handshake_init(&res, NK_B2, NOISE_RESPONDER, (const uint8_t *)"x", 1,
	                                      rs_priv, NULL, NULL, NULL),
	                 0);
	assert_int_equal(noise_handshake_read_message(&res, msg, len, pl, sizeof(pl), &plen),
	                 CAIRN_EAUTH);
	/* The untouched message still works. */
	assert_int_equal(
	    noise_handshake_init(&res, NK_B2, NOISE_RESPONDER, NULL, 0, rs_priv, NULL, NULL, NULL),
	    0);
	assert_int_equal(noise_handshake_read_message(&res, msg, len, pl, sizeof(pl), &plen), 0);
	assert_memory_equal(pl, "hello", 5);

	/* A tampered transport message is rejected and does not advance the nonce. */
	struct noise_cipher a_send, a_recv, b_send, b_recv;
	nn_pair(&a_send, &a_recv, &b_send, &b_recv);
	assert_int_equal(noise_cipher_encrypt(&a_send, NULL, 0, (const uint8_t *)"data", 4, msg,
	                                      sizeof(msg), &len),
	                 0);
	msg[len - 1] ^= 1;
	assert_int_equal(noise_cipher_decrypt(&b_recv, NULL, 0, msg, len, pl, sizeof(pl), &plen),
	                 CAIRN_EAUTH);
	assert_int_equal(b_recv.n, 0);
	msg[len - 1] ^= 1;
	assert_int_equal(noise_cipher_decrypt(&b_recv, NULL, 0, msg, len, pl, sizeof(pl), &plen),
	                 0);
	noise_handshake_wipe(&ini);
	noise_handshake_wipe(&res);
}

static void test_bad_names_and_missing_keys(void **state)
{
	static const char *bad[] = {
	    "Noise_KK_25519_ChaChaPoly_BLAKE2b",
	    "Noise_NK_448_ChaChaPoly_BLAKE2b",
	    "Noise_NK_25519_AESGCM_SHA256",
	    "Noise_NK_25519_ChaChaPoly_BLAKE2s",
	    "Noise_NK_25519_ChaChaPoly_BLAKE2b_",
	    "Noise_NK_25519_ChaChaPoly_SHA2566",
	    "Noise_NK",
	    "noise_NK_25519_ChaChaPoly_BLAKE2b",
	    "Noise_NKpsk_25519_ChaChaPoly_BLAKE2b",
	    "",
	};
	struct noise_handshake hs;
	uint8_t k[32] = {0};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(
		    noise_handshake_init(&hs, bad[i], NOISE_INITIATOR, NULL, 0, k, NULL, k, k),
		    CAIRN_EINVAL);
	/* NK initiator needs rs; NK responder needs s; psk patterns need the psk. */
	assert_int_equal(
	    noise_handshake_init(&hs, NK_B2, NOISE_INITIATOR, NULL, 0, NULL, NULL, NULL, NULL),
	    CAIRN_EINVAL);
	assert_int_equal(
	    noise_handshake_init(&hs, NK_B2, NOISE_RESPONDER, NULL, 0, NULL, NULL, NULL, NULL),
	    CAIRN_EINVAL);
	assert_int_equal(noise_handshake_init(&hs, "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2b",
	                                      NOISE_RESPONDER, NULL, 0, NULL, NULL, NULL, NULL),
	                 CAIRN_EINVAL);
	assert_int_equal(noise_handshake_init(&hs, "Noise_XX_25519_ChaChaPoly_SHA256",
	                                      NOISE_INITIATOR, NULL, 0, NULL, NULL, NULL, NULL),
	                 CAIRN_EINVAL);
	assert_int_equal(noise_handshake_init(&hs, "Noise_XX_25519_ChaChaPoly_SHA256",
	                                      NOISE_INITIATOR, NULL, 0, k, NULL, NULL, NULL),
	                 0);
	noise_handshake_wipe(&hs);
}

/* A too-small buffer is ENOBUFS and leaves the state untouched, so a retry succeeds. */
static void test_small_buffers(void **state)
{
	struct noise_handshake ini, res;
	uint8_t msg[128], pl[16];
	size_t len, plen;
	uint8_t rs_priv[32], rs_pub[32];
	crypto_box_keypair(rs_pub, rs_priv);
	assert_int_equal(
	    noise_handshake_init(&ini, NK_B2, NOISE_INITIATOR, NULL, 0, NULL, NULL, rs_pub, NULL),
	    0);
	assert_int_equal(
	    noise_handshake_init(&res, NK_B2, NOISE_RESPONDER, NULL, 0, rs_priv, NULL, NULL, NULL),
	    0);
	assert_int_equal(
	    noise_handshake_write_message(&ini, (const uint8_t *)"abcd", 4, msg, 51, &len),
	    CAIRN_ENOBUFS);
	assert_int_equal(len, 0);
	assert_int_equal(
	    noise_handshake_write_message(&ini, (const uint8_t *)"abcd", 4, msg, 52, &len), 0);
	assert_int_equal(noise_handshake_read_message(&res, msg, len, pl, 3, &plen), CAIRN_ENOBUFS);
	assert_int_equal(noise_handshake_read_message(&res, msg, len, pl, 4, &plen), 0);
	assert_memory_equal(pl, "abcd", 4);
	/* A payload that would push the message past 65535 bytes is refused. */
	static uint8_t big[70000];
	assert_int_equal(
	    noise_handshake_write_message(&res, big, 65535 - 48 + 1, big, sizeof(big), &len),
	    CAIRN_EINVAL);
	assert_int_equal(
	    noise_handshake_write_message(&res, big, 65535 - 48, big, sizeof(big), &len), 0);
	assert_int_equal(len, 65535);
	noise_handshake_wipe(&ini);
	noise_handshake_wipe(&res);
}

/* A low-order peer key makes X25519 output zero: refused, not mixed in. */
static void test_zero_dh_refused(void **state)
{
	struct noise_handshake ini, res;
	uint8_t zero[32] = {0}, msg[128], pl[16];
	size_t len, plen;
	assert_int_equal(
	    noise_handshake_init(&ini, NK_B2, NOISE_INITIATOR, NULL, 0, NULL, NULL, zero, NULL), 0);
	assert_int_equal(noise_handshake_write_message(&ini, NULL, 0, msg, sizeof(msg), &len),
	                 CAIRN_ECRYPTO);
	assert_int_equal(len, 0);
	assert_int_equal(noise_handshake_write_message(&ini, NULL, 0, msg, sizeof(msg), &len),
	                 CAIRN_ESTATE);

	/* A responder reading an all-zero e computes a zero es. */
	uint8_t rs_priv[32], rs_pub[32];
	crypto_box_keypair(rs_pub, rs_priv);
	assert_int_equal(
	    noise_handshake_init(&res, NK_B2, NOISE_RESPONDER, NULL, 0, rs_priv, NULL, NULL, NULL),
	    0);
	memset(msg, 0, 48);
	assert_int_equal(noise_handshake_read_message(&res, msg, 48, pl, sizeof(pl), &plen),
	                 CAIRN_ECRYPTO);
	assert_true(res.failed && res.pattern == NULL); /* wiped */
	assert_true(sodium_is_zero(res.s_priv, sizeof(res.s_priv)));
	noise_handshake_wipe(&ini);
	noise_handshake_wipe(&res);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cacophony_vectors),
	    cmocka_unit_test(test_nonce_exhaustion),
	    cmocka_unit_test(test_out_of_turn),
	    cmocka_unit_test(test_tampered_rejected),
	    cmocka_unit_test(test_bad_names_and_missing_keys),
	    cmocka_unit_test(test_small_buffers),
	    cmocka_unit_test(test_zero_dh_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
