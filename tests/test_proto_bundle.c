/* SPDX-License-Identifier: MIT */
/*
 * Bundle items (proto/forward.h bundle_seal*, forward_sealed_kind; proto/codec.h BUNDLED;
 * PROTOCOL.md 5.12): the published vector bundle/item both ways, the BUNDLED command's codec
 * (round trip, a faulty argument, wrong counts), and the forms a relay must refuse: a BUNDLED in
 * a seal smaller than an item, a BUNDLED counted as a plain forwarded command, a cut item.
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

#define ITEM "bundle/item"

static void test_item_vector(void **state)
{
	(void)state;
	uint8_t relay_sk[32], relay_pk[32], eph[32], head[64], digest[32], want_digest[32];
	static uint8_t cmd[256], item[CAIRN_BUNDLE_ITEM_LEN], inner[FORWARD_INNER_MAX];
	assert_int_equal(mdvec_hex(ITEM, "relay_secret", relay_sk, 32), 32);
	assert_int_equal(mdvec_hex(ITEM, "ephemeral_secret", eph, 32), 32);
	assert_int_equal(mdvec_hex(ITEM, "sealed_head", head, 64), 64);
	assert_int_equal(mdvec_hex(ITEM, "sealed_blake2b", want_digest, 32), 32);
	assert_int_equal(strtoul(mdvec_str(ITEM, "sealed_len"), NULL, 10), CAIRN_BUNDLE_ITEM_LEN);
	crypto_scalarmult_base(relay_pk, relay_sk);
	size_t cmd_len = mdvec_hex(ITEM, "command", cmd, sizeof(cmd));

	/* The command is the BUNDLED of the vector's fields. */
	struct cairn_msg m;
	int have_id = 0;
	assert_int_equal(cairn_msg_decode(cmd, cmd_len, NULL, &m, &have_id), 0);
	assert_int_equal(m.type, CAIRN_CMD_BUNDLED);
	assert_int_equal(m.request_id, 0);
	assert_int_equal(m.not_after, strtoull(mdvec_str(ITEM, "not_after"), NULL, 10));
	assert_int_equal(m.envelope_len, 5);
	assert_memory_equal(m.envelope, "hello", 5);
	uint8_t again[256];
	size_t again_len;
	assert_int_equal(cairn_msg_encode(&m, again, sizeof(again), &again_len), 0);
	assert_int_equal(again_len, cmd_len);
	assert_memory_equal(again, cmd, cmd_len);

	assert_int_equal(bundle_seal_with(eph, relay_pk, cmd, cmd_len, item), 0);
	assert_memory_equal(item, head, 64);
	crypto_generichash(digest, 32, item, sizeof(item), NULL, 0);
	assert_memory_equal(digest, want_digest, 32);

	/* The relay opens it to the BUNDLED, which only an item's size admits. */
	const uint8_t *c;
	size_t clen;
	uint8_t k_rep[32];
	assert_int_equal(
	    forward_open(relay_sk, relay_pk, item, sizeof(item), inner, &c, &clen, k_rep), 0);
	assert_int_equal(clen, cmd_len);
	assert_memory_equal(c, cmd, clen);
	assert_int_equal(forward_sealed_kind(c, clen, sizeof(item)), CAIRN_CMD_BUNDLED);
	assert_int_equal(forward_inner_kind(c, clen), CAIRN_EBADREQ);

	/* One flipped byte anywhere: it does not open. */
	item[CAIRN_BUNDLE_ITEM_LEN / 2] ^= 1;
	assert_int_equal(
	    forward_open(relay_sk, relay_pk, item, sizeof(item), inner, &c, &clen, k_rep),
	    CAIRN_EBADREQ);
	item[CAIRN_BUNDLE_ITEM_LEN / 2] ^= 1;
	/* A cut item is not a seal of any size. */
	assert_int_equal(
	    forward_open(relay_sk, relay_pk, item, sizeof(item) - 1, inner, &c, &clen, k_rep),
	    CAIRN_EBADREQ);
}

static void test_bundled_in_small_seal(void **state)
{
	(void)state;
	uint8_t relay_sk[32], relay_pk[32], k_rep[32];
	static uint8_t cmd[256], sealed[FORWARD_SEALED_MAX], inner[FORWARD_INNER_MAX];
	randombytes_buf(relay_sk, sizeof(relay_sk));
	crypto_scalarmult_base(relay_pk, relay_sk);
	size_t cmd_len = mdvec_hex(ITEM, "command", cmd, sizeof(cmd));
	size_t slen;
	/* forward_seal pads it to 1024 bytes: a BUNDLED there is refused. */
	assert_int_equal(forward_seal(relay_pk, cmd, cmd_len, sealed, sizeof(sealed), &slen, k_rep),
	                 0);
	assert_int_equal(slen, 32 + 1024 + 16);
	const uint8_t *c;
	size_t clen;
	assert_int_equal(forward_open(relay_sk, relay_pk, sealed, slen, inner, &c, &clen, k_rep),
	                 0);
	assert_int_equal(forward_sealed_kind(c, clen, slen), CAIRN_EBADREQ);
	/* A SEND in an item-sized seal is still a SEND. */
	const uint8_t send[] = {0x95, 0x08, 0x00, 0xc4, 0x01, 0x00, 0xc0, 0xc4, 0x00};
	assert_int_equal(forward_sealed_kind(send, sizeof(send), CAIRN_BUNDLE_ITEM_LEN),
	                 CAIRN_CMD_SEND);
	/* bundle_seal of anything is always an item, and needs a command. */
	assert_int_equal(bundle_seal(relay_pk, send, sizeof(send), sealed), 0);
	assert_int_equal(forward_open(relay_sk, relay_pk, sealed, CAIRN_BUNDLE_ITEM_LEN, inner, &c,
	                              &clen, k_rep),
	                 0);
	assert_int_equal(clen, sizeof(send));
	assert_int_equal(bundle_seal(relay_pk, send, 0, sealed), CAIRN_EINVAL);
	assert_int_equal(bundle_seal(relay_pk, cmd, FORWARD_COMMAND_MAX + 1, sealed), CAIRN_EINVAL);
}

static void test_bundled_codec(void **state)
{
	(void)state;
	uint8_t sid[24], cred[32], buf[CAIRN_MSG_ENCODED_MAX];
	memset(sid, 0x33, sizeof(sid));
	memset(cred, 0x66, sizeof(cred));
	struct cairn_msg m = {.type = CAIRN_CMD_BUNDLED,
	                      .request_id = 9,
	                      .not_after = UINT64_MAX,
	                      .sender_id = sid,
	                      .envelope = cred,
	                      .envelope_len = 3};
	size_t len;
	/* No credential (nil), the largest not_after. */
	assert_int_equal(cairn_msg_encode(&m, buf, sizeof(buf), &len), 0);
	struct cairn_msg d;
	int have_id;
	assert_int_equal(cairn_msg_decode(buf, len, NULL, &d, &have_id), 0);
	assert_int_equal(d.type, CAIRN_CMD_BUNDLED);
	assert_int_equal(d.not_after, UINT64_MAX);
	assert_null(d.credential);
	assert_string_equal(cairn_msg_type_name(CAIRN_CMD_BUNDLED), "BUNDLED");
	/* Without a sender id it does not encode. */
	m.sender_id = NULL;
	assert_int_equal(cairn_msg_encode(&m, buf, sizeof(buf), &len), CAIRN_EINVAL);
	/* Five elements (not_after missing): a faulty command, with its id. */
	const uint8_t short_form[] = {0x95, 0x11, 0x07, 0xc4, 0x01, 0x00, 0xc0, 0xc4, 0x00};
	assert_int_equal(cairn_msg_decode(short_form, sizeof(short_form), NULL, &d, &have_id),
	                 CAIRN_ETYPE);
	assert_int_equal(have_id, 1);
	assert_int_equal(d.request_id, 7);
	/* A negative not_after. */
	const uint8_t negative[] = {0x96, 0x11, 0x07, 0xff, 0xc4, 0x01, 0x00, 0xc0, 0xc4, 0x00};
	assert_int_equal(cairn_msg_decode(negative, sizeof(negative), NULL, &d, &have_id),
	                 CAIRN_ETYPE);
	/* An envelope over the limit is the faulty field, as for SEND (`too big`). */
	static uint8_t big[CAIRN_ENVELOPE_MAX + 64];
	size_t n = 0;
	big[n++] = 0x96;
	big[n++] = 0x11;
	big[n++] = 0x00;
	big[n++] = 0x01;
	big[n++] = 0xc4;
	big[n++] = 24;
	memset(big + n, 0x33, 24);
	n += 24;
	big[n++] = 0xc0;
	big[n++] = 0xc6;
	uint32_t elen = CAIRN_ENVELOPE_MAX + 1;
	big[n++] = (uint8_t)(elen >> 24);
	big[n++] = (uint8_t)(elen >> 16);
	big[n++] = (uint8_t)(elen >> 8);
	big[n++] = (uint8_t)elen;
	assert_true(n + elen <= sizeof(big));
	assert_int_equal(cairn_msg_decode(big, n + elen, NULL, &d, &have_id), CAIRN_ETYPE);
	assert_int_equal(d.envelope_len, elen);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_item_vector),
	    cmocka_unit_test(test_bundled_in_small_seal),
	    cmocka_unit_test(test_bundled_codec),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
