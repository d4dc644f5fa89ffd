/* SPDX-License-Identifier: MIT */
/* Application messages and replies: the PROTOCOL.md vector, bounds, and strict parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "appmsg.h"
#include "mdvec.h"

static void test_vector(void **state)
{
	uint8_t id[16], data[16], want[64], out[64];
	assert_int_equal(mdvec_hex("e2e/appmsg", "message_id", id, sizeof(id)), 16);
	size_t dlen = mdvec_hex("e2e/appmsg", "data", data, sizeof(data));
	size_t wlen = mdvec_hex("e2e/appmsg", "hex", want, sizeof(want));
	struct appmsg m = {.kind = 1, .sent_at = 1767225600, .part_index = 0, .part_count = 1,
			   .data = data, .data_len = dlen};
	memcpy(m.id, id, 16);
	size_t len;
	assert_int_equal(appmsg_encode(&m, out, sizeof(out), &len), 0);
	assert_int_equal(len, wlen);
	assert_memory_equal(out, want, wlen);
	struct appmsg p;
	assert_int_equal(appmsg_parse(want, wlen, &p), 0);
	assert_int_equal(p.kind, 1);
	assert_memory_equal(p.id, id, 16);
	assert_int_equal(p.sent_at, 1767225600);
	assert_int_equal(p.part_count, 1);
	assert_int_equal(p.data_len, dlen);
	assert_memory_equal(p.data, data, dlen);
	/* Every truncation of the header fails. */
	for (size_t i = 0; i < APPMSG_HEADER_LEN; i++)
		assert_int_equal(appmsg_parse(want, i, &p), CAIRN_EINVAL);
}

static void test_part_numbers(void **state)
{
	uint8_t out[64];
	size_t len;
	struct appmsg m = {.kind = 1, .part_index = 2, .part_count = 2};
	assert_int_equal(appmsg_encode(&m, out, sizeof(out), &len), CAIRN_EINVAL);
	m.part_count = 0;
	m.part_index = 0;
	assert_int_equal(appmsg_encode(&m, out, sizeof(out), &len), CAIRN_EINVAL);
	m.part_count = APPMSG_PARTS_MAX + 1;
	assert_int_equal(appmsg_encode(&m, out, sizeof(out), &len), CAIRN_EINVAL);
	m.part_count = 1;
	assert_int_equal(appmsg_encode(&m, out, sizeof(out), &len), 0);
	struct appmsg p;
	out[27] = 0xff; /* part_count 0xff01 */
	assert_int_equal(appmsg_parse(out, len, &p), CAIRN_EINVAL);
	static uint8_t big[APPMSG_PART_MAX + 64];
	m.data = big;
	m.data_len = APPMSG_PART_MAX + 1;
	assert_int_equal(appmsg_encode(&m, big, sizeof(big), &len), CAIRN_EINVAL);
}

static void test_reply(void **state)
{
	struct appmsg_reply r = {0}, back;
	memset(r.sender_id, 0x33, sizeof(r.sender_id));
	memset(r.credential, 0x66, sizeof(r.credential));
	strcpy(r.relay, "cairn://AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@127.0.0.1:7443");
	uint8_t out[APPMSG_REPLY_MAX];
	size_t len;
	assert_int_equal(appmsg_reply_encode(&r, out, sizeof(out), &len), 0);
	assert_int_equal(appmsg_reply_parse(out, len, &back), 0);
	assert_memory_equal(&back, &r, sizeof(r));
	assert_int_equal(appmsg_reply_parse(out, len - 1, &back), CAIRN_EINVAL);
	out[0] = 2;
	assert_int_equal(appmsg_reply_parse(out, len, &back), CAIRN_EINVAL);
	out[0] = 1;
	out[len - 1] = '/'; /* no longer an address */
	assert_int_equal(appmsg_reply_parse(out, len, &back), CAIRN_EINVAL);
	strcpy(r.relay, "not an address");
	assert_int_equal(appmsg_reply_encode(&r, out, sizeof(out), &len), CAIRN_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vector),
		cmocka_unit_test(test_part_numbers),
		cmocka_unit_test(test_reply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
