/* SPDX-License-Identifier: MIT */
/*
 * Private routing's sealing and its commands (proto/forward.h, proto/codec.h; PROTOCOL.md
 * 5.11): the published vectors forward/seal, forward/reply, codec/forward, codec/forwarded and
 * codec/sealed both ways, then every refusal of the open functions (sizes, tag, len, padding,
 * low-order keys), the inner-command check, and the codec's bounds on the new fields.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "codec.h"
#include "forward.h"
#include "mdvec.h"

#define SEAL  "forward/seal"
#define REPLY "forward/reply"

static uint8_t relay_sk[32], relay_pk[32], eph[32];

static void load_keys(void)
{
	assert_int_equal(mdvec_hex(SEAL, "relay_secret", relay_sk, 32), 32);
	assert_int_equal(mdvec_hex(SEAL, "relay_public", relay_pk, 32), 32);
	assert_int_equal(mdvec_hex(SEAL, "ephemeral_secret", eph, 32), 32);
	uint8_t pk[32];
	crypto_scalarmult_base(pk, relay_sk);
	assert_memory_equal(pk, relay_pk, 32);
}

static void test_seal_vector(void **state)
{
	(void)state;
	load_keys();
	static uint8_t cmd[256], want[FORWARD_SEALED_MAX], got[FORWARD_SEALED_MAX];
	uint8_t k_rep[32], want_rep[32];
	size_t cmd_len = mdvec_hex(SEAL, "command", cmd, sizeof(cmd));
	size_t want_len = mdvec_hex(SEAL, "sealed", want, sizeof(want));
	assert_int_equal(mdvec_hex(SEAL, "k_rep", want_rep, 32), 32);
	size_t len;
	assert_int_equal(
	    forward_seal_with(eph, relay_pk, cmd, cmd_len, got, sizeof(got), &len, k_rep), 0);
	assert_int_equal(len, want_len);
	assert_memory_equal(got, want, len);
	assert_memory_equal(k_rep, want_rep, 32);

	/* The relay opens it to the same command and the same reply key. */
	static uint8_t inner[FORWARD_INNER_MAX];
	const uint8_t *c;
	size_t clen;
	uint8_t k2[32];
	assert_int_equal(forward_open(relay_sk, relay_pk, want, want_len, inner, &c, &clen, k2), 0);
	assert_int_equal(clen, cmd_len);
	assert_memory_equal(c, cmd, clen);
	assert_memory_equal(k2, want_rep, 32);
	assert_int_equal(forward_inner_kind(c, clen), CAIRN_CMD_SEND);
}

static void test_reply_vector(void **state)
{
	(void)state;
	uint8_t k_rep[32], reply[64], want[FORWARD_REPLY_SEALED], got[FORWARD_REPLY_SEALED];
	uint8_t inner[FORWARD_REPLY_INNER];
	assert_int_equal(mdvec_hex(SEAL, "k_rep", k_rep, 32), 32);
	size_t rlen = mdvec_hex(REPLY, "reply", reply, sizeof(reply));
	assert_int_equal(mdvec_hex(REPLY, "sealed_reply", want, sizeof(want)),
	                 FORWARD_REPLY_SEALED);
	assert_int_equal(forward_reply_seal(k_rep, reply, rlen, got), 0);
	assert_memory_equal(got, want, sizeof(got));
	const uint8_t *r;
	size_t n;
	assert_int_equal(forward_reply_open(k_rep, want, sizeof(want), inner, &r, &n), 0);
	assert_int_equal(n, rlen);
	assert_memory_equal(r, reply, n);
	struct cairn_msg m;
	assert_int_equal(cairn_msg_decode(r, n, NULL, &m, NULL), 0);
	assert_int_equal(m.type, CAIRN_REPLY_OK);
	assert_int_equal(m.request_id, 0);

	/* Any other size, any flipped bit, another key: refused. */
	assert_int_equal(forward_reply_open(k_rep, want, sizeof(want) - 1, inner, &r, &n),
	                 CAIRN_EAUTH);
	for (size_t i = 0; i < sizeof(want); i += 97) {
		want[i] ^= 1;
		assert_int_equal(forward_reply_open(k_rep, want, sizeof(want), inner, &r, &n),
		                 CAIRN_EAUTH);
		assert_null(r);
		want[i] ^= 1;
	}
	k_rep[0] ^= 1;
	assert_int_equal(forward_reply_open(k_rep, want, sizeof(want), inner, &r, &n), CAIRN_EAUTH);
	/* Too long or empty replies are not sealed. */
	assert_int_equal(forward_reply_seal(k_rep, reply, 0, got), CAIRN_EINVAL);
	static uint8_t big[FORWARD_REPLY_MAX + 1];
	assert_int_equal(forward_reply_seal(k_rep, big, sizeof(big), got), CAIRN_EINVAL);
	assert_int_equal(forward_reply_seal(k_rep, big, FORWARD_REPLY_MAX, got), 0);
}

/* Seals a raw INNER plaintext of SIZE bytes as a client would, bypassing the padding rules,
 * so that the relay's checks of len and padding are reached. */
static size_t seal_raw(const uint8_t *inner, size_t size, uint8_t *out)
{
	uint8_t e_pk[32], dh[32], keys[64];
	crypto_scalarmult_base(e_pk, eph);
	assert_int_equal(crypto_scalarmult(dh, eph, relay_pk), 0);
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, 64);
	crypto_generichash_update(&st, (const uint8_t *)"cairn/1 forward", 15);
	crypto_generichash_update(&st, e_pk, 32);
	crypto_generichash_update(&st, relay_pk, 32);
	crypto_generichash_update(&st, dh, 32);
	crypto_generichash_final(&st, keys, 64);
	static const uint8_t nonce[12];
	memcpy(out, e_pk, 32);
	crypto_aead_chacha20poly1305_ietf_encrypt(out + 32, NULL, inner, size, NULL, 0, NULL, nonce,
	                                          keys);
	return 32 + size + 16;
}

static int open_rc(const uint8_t *sealed, size_t len)
{
	static uint8_t inner[FORWARD_INNER_MAX];
	const uint8_t *c = (const uint8_t *)"x";
	size_t clen = 9;
	uint8_t k[32];
	memset(k, 0xaa, sizeof(k));
	int rc = forward_open(relay_sk, relay_pk, sealed, len, inner, &c, &clen, k);
	if (rc != 0) {
		assert_null(c);
		assert_int_equal(clen, 0);
		static const uint8_t zero[32];
		assert_memory_equal(k, zero, 32); /* wiped, or never written past the check */
	}
	return rc;
}

static void test_open_refusals(void **state)
{
	(void)state;
	load_keys();
	static uint8_t inner[FORWARD_INNER_MAX], sealed[FORWARD_SEALED_MAX + 64];
	uint8_t cmd[8] = {0x92, 0x01, 0x00}; /* PING: opens, but is not a SEND */
	size_t len;
	uint8_t k[32];

	/* The three sizes open; each is the smallest that holds its command. */
	const size_t sizes[] = {FORWARD_INNER_MIN, FORWARD_INNER_MID, FORWARD_INNER_MAX};
	const size_t cmds[] = {FORWARD_INNER_MIN - 4, FORWARD_INNER_MID - 4, FORWARD_COMMAND_MAX};
	static uint8_t long_cmd[FORWARD_COMMAND_MAX];
	memset(long_cmd, 0x5a, sizeof(long_cmd));
	for (int i = 0; i < 3; i++) {
		assert_int_equal(forward_seal_with(eph, relay_pk, long_cmd, cmds[i], sealed,
		                                   sizeof(sealed), &len, k),
		                 0);
		assert_int_equal(len, 32 + sizes[i] + 16);
		assert_int_equal(open_rc(sealed, len), 0);
		assert_int_equal(forward_seal_with(eph, relay_pk, long_cmd, cmds[i] + 1, sealed,
		                                   sizeof(sealed), &len, k),
		                 i < 2 ? 0 : CAIRN_EINVAL);
		if (i < 2)
			assert_int_equal(len, 32 + sizes[i + 1] + 16);
	}
	assert_int_equal(forward_seal_with(eph, relay_pk, cmd, 0, sealed, sizeof(sealed), &len, k),
	                 CAIRN_EINVAL);
	assert_int_equal(forward_seal_with(eph, relay_pk, cmd, 3, sealed, 1071, &len, k),
	                 CAIRN_ENOBUFS);
	/* A low-order destination key gives an all-zero secret: refused both ways. */
	static const uint8_t zero_key[32];
	assert_int_equal(forward_seal_with(eph, zero_key, cmd, 3, sealed, sizeof(sealed), &len, k),
	                 CAIRN_ECRYPTO);
	assert_int_equal(forward_seal_with(eph, relay_pk, cmd, 3, sealed, sizeof(sealed), &len, k),
	                 0);
	memset(sealed, 0, 32);
	assert_int_equal(open_rc(sealed, len), CAIRN_EBADREQ);

	/* Sizes other than the three. */
	assert_int_equal(forward_seal_with(eph, relay_pk, cmd, 3, sealed, sizeof(sealed), &len, k),
	                 0);
	assert_int_equal(open_rc(sealed, len - 1), CAIRN_EBADREQ);
	assert_int_equal(open_rc(sealed, FORWARD_SEALED_MIN), CAIRN_EBADREQ);
	assert_int_equal(open_rc(sealed, 0), CAIRN_EBADREQ);
	/* A flipped bit anywhere: E, ciphertext, tag. */
	for (size_t i = 0; i < len; i += 131) {
		sealed[i] ^= 0x10;
		assert_int_equal(open_rc(sealed, len), CAIRN_EBADREQ);
		sealed[i] ^= 0x10;
	}
	assert_int_equal(open_rc(sealed, len), 0);
	/* Another relay's key. */
	uint8_t other_sk[32], other_pk[32];
	memset(other_sk, 0x73, 32);
	crypto_scalarmult_base(other_pk, other_sk);
	const uint8_t *c;
	size_t clen;
	assert_int_equal(forward_open(other_sk, other_pk, sealed, len, inner, &c, &clen, k),
	                 CAIRN_EBADREQ);

	/* len: 0, past the end, exactly the end; padding not zero. */
	memset(inner, 0, FORWARD_INNER_MIN);
	len = seal_raw(inner, FORWARD_INNER_MIN, sealed);
	assert_int_equal(open_rc(sealed, len), CAIRN_EBADREQ); /* len 0 */
	inner[2] = 0x03, inner[3] = 0xfc;                      /* 1020: the whole of it */
	len = seal_raw(inner, FORWARD_INNER_MIN, sealed);
	assert_int_equal(open_rc(sealed, len), 0);
	inner[3] = 0xfd; /* 1021 */
	len = seal_raw(inner, FORWARD_INNER_MIN, sealed);
	assert_int_equal(open_rc(sealed, len), CAIRN_EBADREQ);
	inner[0] = 0x80, inner[3] = 0x10; /* huge */
	len = seal_raw(inner, FORWARD_INNER_MIN, sealed);
	assert_int_equal(open_rc(sealed, len), CAIRN_EBADREQ);
	memset(inner, 0, 4);
	inner[3] = 3;
	inner[FORWARD_INNER_MIN - 1] = 1; /* the last padding byte */
	len = seal_raw(inner, FORWARD_INNER_MIN, sealed);
	assert_int_equal(open_rc(sealed, len), CAIRN_EBADREQ);
	inner[FORWARD_INNER_MIN - 1] = 0;
	inner[7] = 1; /* the first padding byte */
	len = seal_raw(inner, FORWARD_INNER_MIN, sealed);
	assert_int_equal(open_rc(sealed, len), CAIRN_EBADREQ);
	/* A plaintext of another size that still authenticates (2048): refused by size. */
	inner[7] = 0;
	len = seal_raw(inner, 2048, sealed);
	assert_int_equal(open_rc(sealed, len), CAIRN_EBADREQ);
}

static void test_inner_kind(void **state)
{
	(void)state;
	uint8_t buf[CAIRN_MSG_ENCODED_MAX];
	size_t len;
	uint8_t sid[24] = {0}, work[16] = {0};
	struct cairn_msg m = {
	    .type = CAIRN_CMD_SEND, .sender_id = sid, .envelope = sid, .envelope_len = 5};
	assert_int_equal(cairn_msg_encode(&m, buf, sizeof(buf), &len), 0);
	assert_int_equal(forward_inner_kind(buf, len), CAIRN_CMD_SEND);
	/* Two commands, trailing bytes, a cut one: not one command. */
	memcpy(buf + len, buf, len);
	assert_int_equal(forward_inner_kind(buf, 2 * len), CAIRN_EBADREQ);
	assert_int_equal(forward_inner_kind(buf, len - 1), CAIRN_EBADREQ);
	assert_int_equal(forward_inner_kind(buf, 0), CAIRN_EBADREQ);
	m.type = CAIRN_CMD_SEND_WORK;
	m.work = work;
	assert_int_equal(cairn_msg_encode(&m, buf, sizeof(buf), &len), 0);
	assert_int_equal(forward_inner_kind(buf, len), CAIRN_CMD_SEND_WORK);
	/* The sender id's bin header made an integer: the array ends early, bytes trail. */
	buf[3] = 0x17;
	assert_int_equal(forward_inner_kind(buf, len), CAIRN_EBADREQ);
	/* A SEND with a faulty argument (a 1-byte sender id) passes: the relay answers it as it
	 * answers the same direct command. */
	const uint8_t short_sid[] = {0x95, 0x08, 0x00, 0xc4, 0x01, 0x00, 0xc0, 0xc4, 0x00};
	assert_int_equal(forward_inner_kind(short_sid, sizeof(short_sid)), CAIRN_CMD_SEND);
	/* Other commands, replies and nested FORWARDs are refused. */
	const uint8_t ping[] = {0x92, 0x01, 0x00}, ok[] = {0x92, 0x40, 0x00};
	assert_int_equal(forward_inner_kind(ping, sizeof(ping)), CAIRN_EBADREQ);
	assert_int_equal(forward_inner_kind(ok, sizeof(ok)), CAIRN_EBADREQ);
	uint8_t sealed[64];
	memset(sealed, 1, sizeof(sealed));
	struct cairn_msg f = {.type = CAIRN_CMD_FORWARDED, .sealed = sealed, .sealed_len = 49};
	assert_int_equal(cairn_msg_encode(&f, buf, sizeof(buf), &len), 0);
	assert_int_equal(forward_inner_kind(buf, len), CAIRN_EBADREQ);
	const uint8_t unknown[] = {0x92, 0x30, 0x00};
	assert_int_equal(forward_inner_kind(unknown, sizeof(unknown)), CAIRN_EBADREQ);
}

/* ---- The codec vectors of 5.7 for FORWARD, FORWARDED and SEALED -------------------------- */

static void check_codec(const char *name, uint8_t type, int with_relay)
{
	static uint8_t hex[CAIRN_MSG_ENCODED_MAX], enc[CAIRN_MSG_ENCODED_MAX];
	static uint8_t relay[CODEC_RELAY_MAX], sealed[CODEC_SEALED_MAX];
	struct cairn_msg m = {.type = type, .request_id = 7}, got;
	m.sealed_len = mdvec_hex(name, "sealed", sealed, sizeof(sealed));
	m.sealed = sealed;
	if (with_relay) {
		m.relay_len = mdvec_hex(name, "relay", relay, sizeof(relay));
		m.relay = relay;
	}
	size_t hexlen = mdvec_hex(name, "hex", hex, sizeof(hex)), enclen;
	assert_int_equal(cairn_msg_encode(&m, enc, sizeof(enc), &enclen), 0);
	assert_int_equal(enclen, hexlen);
	assert_memory_equal(enc, hex, hexlen);
	int have_id = 0;
	assert_int_equal(cairn_msg_decode(hex, hexlen, NULL, &got, &have_id), 0);
	assert_int_equal(got.type, type);
	assert_int_equal(got.request_id, 7);
	assert_int_equal(got.sealed_len, m.sealed_len);
	assert_memory_equal(got.sealed, sealed, m.sealed_len);
	assert_int_equal(got.relay_len, m.relay_len);
	if (with_relay)
		assert_memory_equal(got.relay, relay, m.relay_len);
	/* Every proper prefix is truncated. */
	for (size_t cut = 0; cut < hexlen; cut++) {
		uint8_t *p = malloc(cut ? cut : 1);
		assert_non_null(p);
		memcpy(p, hex, cut);
		int rc = cairn_msg_decode(p, cut, NULL, &got, NULL);
		free(p);
		if (rc != CAIRN_ETRUNCATED)
			fail_msg("%s cut at %zu: %d", name, cut, rc);
	}
}

static void test_codec_vectors(void **state)
{
	(void)state;
	check_codec("codec/forward", CAIRN_CMD_FORWARD, 1);
	check_codec("codec/forwarded", CAIRN_CMD_FORWARDED, 0);
	check_codec("codec/sealed", CAIRN_REPLY_SEALED, 0);
	assert_string_equal(cairn_msg_type_name(CAIRN_CMD_FORWARD), "FORWARD");
	assert_string_equal(cairn_msg_type_name(CAIRN_CMD_FORWARDED), "FORWARDED");
	assert_int_equal(cairn_wire_code(CAIRN_EUNREACHABLE), 11);
	assert_int_equal(cairn_wire_error(11), CAIRN_EUNREACHABLE);
	assert_string_equal(cairn_strerror_name(CAIRN_EUNREACHABLE), "CAIRN_EUNREACHABLE");
}

/* Encodes TYPE with a field of LEN bytes at each bound and one past it. */
static int codec_len_rc(uint8_t type, size_t relay_len, size_t sealed_len, int *enc_rc)
{
	static uint8_t buf[CAIRN_MSG_ENCODED_MAX + 64], field[CODEC_SEALED_MAX + 1];
	struct cairn_msg m = {.type = type,
	                      .request_id = 9,
	                      .relay = field,
	                      .relay_len = relay_len,
	                      .sealed = field,
	                      .sealed_len = sealed_len};
	size_t len;
	*enc_rc = cairn_msg_encode(&m, buf, sizeof(buf), &len);
	/* Encode by hand with the bounds ignored, to test the decoder. */
	size_t n = 0;
	int nargs = type == CAIRN_CMD_FORWARD ? 2 : 1;
	buf[n++] = (uint8_t)(0x92 + nargs);
	buf[n++] = type;
	buf[n++] = 9;
	if (type == CAIRN_CMD_FORWARD) {
		buf[n++] = 0xc5, buf[n++] = (uint8_t)(relay_len >> 8),
		buf[n++] = (uint8_t)relay_len;
		memset(buf + n, 'r', relay_len);
		n += relay_len;
	}
	buf[n++] = 0xc5, buf[n++] = (uint8_t)(sealed_len >> 8), buf[n++] = (uint8_t)sealed_len;
	memset(buf + n, 's', sealed_len);
	n += sealed_len;
	struct cairn_msg got;
	int have_id = 0;
	int rc = cairn_msg_decode(buf, n, NULL, &got, &have_id);
	assert_int_equal(have_id, 1);
	return rc;
}

static void test_codec_bounds(void **state)
{
	(void)state;
	int e;
	assert_int_equal(codec_len_rc(CAIRN_CMD_FORWARD, 1, 49, &e), 0);
	assert_int_equal(e, 0);
	assert_int_equal(codec_len_rc(CAIRN_CMD_FORWARD, 320, 16688, &e), 0);
	assert_int_equal(e, 0);
	assert_int_equal(codec_len_rc(CAIRN_CMD_FORWARD, 0, 49, &e), CAIRN_ETYPE);
	assert_int_equal(e, CAIRN_EINVAL);
	assert_int_equal(codec_len_rc(CAIRN_CMD_FORWARD, 321, 49, &e), CAIRN_ETYPE);
	assert_int_equal(e, CAIRN_EINVAL);
	assert_int_equal(codec_len_rc(CAIRN_CMD_FORWARD, 1, 48, &e), CAIRN_ETYPE);
	assert_int_equal(e, CAIRN_EINVAL);
	assert_int_equal(codec_len_rc(CAIRN_CMD_FORWARD, 1, 16689, &e), CAIRN_ETYPE);
	assert_int_equal(e, CAIRN_EINVAL);
	assert_int_equal(codec_len_rc(CAIRN_CMD_FORWARDED, 0, 49, &e), 0);
	assert_int_equal(codec_len_rc(CAIRN_CMD_FORWARDED, 0, 16688, &e), 0);
	assert_int_equal(codec_len_rc(CAIRN_CMD_FORWARDED, 0, 48, &e), CAIRN_ETYPE);
	assert_int_equal(codec_len_rc(CAIRN_CMD_FORWARDED, 0, 16689, &e), CAIRN_ETYPE);
	assert_int_equal(e, CAIRN_EINVAL);
	assert_int_equal(codec_len_rc(CAIRN_REPLY_SEALED, 0, 17, &e), 0);
	assert_int_equal(codec_len_rc(CAIRN_REPLY_SEALED, 0, 1040, &e), 0);
	assert_int_equal(e, 0);
	assert_int_equal(codec_len_rc(CAIRN_REPLY_SEALED, 0, 16, &e), CAIRN_ETYPE);
	assert_int_equal(codec_len_rc(CAIRN_REPLY_SEALED, 0, 1041, &e), CAIRN_ETYPE);
	assert_int_equal(e, CAIRN_EINVAL);
	/* A missing pointer is refused by the encoder. */
	uint8_t buf[128];
	size_t len;
	struct cairn_msg m = {.type = CAIRN_CMD_FORWARDED, .sealed_len = 49};
	assert_int_equal(cairn_msg_encode(&m, buf, sizeof(buf), &len), CAIRN_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_seal_vector),   cmocka_unit_test(test_reply_vector),
	    cmocka_unit_test(test_open_refusals), cmocka_unit_test(test_inner_kind),
	    cmocka_unit_test(test_codec_vectors), cmocka_unit_test(test_codec_bounds),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
