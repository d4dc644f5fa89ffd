/* SPDX-License-Identifier: MIT */
/* Application messages, replies and mailboxes messages: the PROTOCOL.md vectors, bounds, and
 * strict parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "appmsg.h"
#include "mdvec.h"

static void test_vector(void **state)
{
	uint8_t id[16], data[16], want[64], out[64];
	assert_int_equal(mdvec_hex("e2e/appmsg", "message_id", id, sizeof(id)), 16);
	size_t dlen = mdvec_hex("e2e/appmsg", "data", data, sizeof(data));
	size_t wlen = mdvec_hex("e2e/appmsg", "hex", want, sizeof(want));
	struct appmsg m = {.kind = 1,
	                   .sent_at = 1767225600,
	                   .part_index = 0,
	                   .part_count = 1,
	                   .data = data,
	                   .data_len = dlen};
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

/* Reads the mailbox list of vector V (count, then sender_id_N, credential_N, relay_N). */
static void load_list(const char *v, struct mailbox_list *l)
{
	memset(l, 0, sizeof(*l));
	l->count = (uint8_t)atoi(mdvec_str(v, "count"));
	assert_true(l->count >= 1 && l->count <= CAIRN_MAILBOXES_MAX);
	for (int i = 0; i < l->count; i++) {
		char key[32];
		snprintf(key, sizeof(key), "sender_id_%d", i + 1);
		assert_int_equal(mdvec_hex(v, key, l->box[i].sender_id, 24), 24);
		snprintf(key, sizeof(key), "credential_%d", i + 1);
		assert_int_equal(mdvec_hex(v, key, l->box[i].credential, 32), 32);
		snprintf(key, sizeof(key), "relay_%d", i + 1);
		snprintf(l->box[i].relay, sizeof(l->box[i].relay), "%s", mdvec_str(v, key));
	}
}

static void test_reply(void **state)
{
	struct mailbox_list l, back;
	load_list("e2e/reply-mailboxes", &l);
	uint8_t want[APPMSG_REPLY_MAX], out[APPMSG_REPLY_MAX + 1];
	size_t wlen = mdvec_hex("e2e/reply-mailboxes", "hex", want, sizeof(want)), len;
	assert_int_equal(appmsg_reply_encode(&l, out, sizeof(out), &len), 0);
	assert_int_equal(len, wlen);
	assert_memory_equal(out, want, wlen);
	assert_int_equal(appmsg_reply_parse(want, wlen, &back), 0);
	assert_memory_equal(&back, &l, sizeof(l));
	assert_int_equal(appmsg_reply_encode(&l, out, wlen - 1, &len), CAIRN_ENOBUFS);
	/* Every truncation, a trailing byte, another version (1 was the one-relay form). */
	for (size_t cut = 0; cut < wlen; cut++)
		assert_int_equal(appmsg_reply_parse(want, cut, &back), CAIRN_EINVAL);
	memcpy(out, want, wlen);
	out[wlen] = 0;
	assert_int_equal(appmsg_reply_parse(out, wlen + 1, &back), CAIRN_EINVAL);
	out[0] = 1;
	assert_int_equal(appmsg_reply_parse(out, wlen, &back), CAIRN_EINVAL);
	assert_true(sodium_is_zero((const uint8_t *)&back, sizeof(back)));
	/* An address that no longer parses. */
	memcpy(out, want, wlen);
	out[wlen - 1] = '/';
	assert_int_equal(appmsg_reply_parse(out, wlen, &back), CAIRN_EADDRESS);
	strcpy(l.box[1].relay, "not an address");
	assert_int_equal(appmsg_reply_encode(&l, out, sizeof(out), &len), CAIRN_EADDRESS);
	/* Four mailboxes whose addresses are too long together for a first message. */
	memset(&l, 0, sizeof(l));
	l.count = 4;
	for (int i = 0; i < 4; i++) {
		struct cairn_address a = {.host_type = CAIRN_HOST_NAME, .port = 7443};
		memset(a.key, i + 1, sizeof(a.key));
		memset(a.host, 'a' + i, 200);
		a.host[63] = a.host[127] = a.host[191] = '.';
		assert_int_equal(cairn_address_format(&a, l.box[i].relay, sizeof(l.box[i].relay)),
		                 0);
	}
	uint8_t big[MAILBOX_LIST_MAX + 1];
	assert_int_equal(appmsg_reply_encode(&l, big, sizeof(big), &len), CAIRN_ETOOBIG);
	l.count = 3;
	assert_int_equal(appmsg_reply_encode(&l, big, sizeof(big), &len), 0);
	assert_true(len <= APPMSG_REPLY_MAX);
}

static void test_mailboxes_message(void **state)
{
	const char *V = "e2e/appmsg-mailboxes";
	struct mailbox_list l, back;
	load_list(V, &l);
	uint8_t want[APPMSG_MAILBOXES_MAX], data[APPMSG_MAILBOXES_MAX], out[APPMSG_MAILBOXES_MAX];
	size_t dlen = mdvec_hex(V, "data", want, sizeof(want)), len;
	uint32_t serial = (uint32_t)atoi(mdvec_str(V, "serial"));
	assert_int_equal(serial, 1);
	assert_int_equal(appmsg_mailboxes_encode(serial, &l, data, sizeof(data), &len), 0);
	assert_int_equal(len, dlen);
	assert_memory_equal(data, want, dlen);
	/* The whole application message around it. */
	struct appmsg m = {.kind = APPMSG_MAILBOXES,
	                   .sent_at = 1767225600,
	                   .part_count = 1,
	                   .data = data,
	                   .data_len = dlen};
	assert_int_equal(mdvec_hex(V, "message_id", m.id, sizeof(m.id)), 16);
	assert_int_equal(atoi(mdvec_str(V, "kind")), APPMSG_MAILBOXES);
	uint8_t whole[APPMSG_HEADER_LEN + APPMSG_MAILBOXES_MAX], wwant[sizeof(whole)];
	size_t wlen = mdvec_hex(V, "hex", wwant, sizeof(wwant));
	assert_int_equal(appmsg_encode(&m, whole, sizeof(whole), &len), 0);
	assert_int_equal(len, wlen);
	assert_memory_equal(whole, wwant, wlen);
	struct appmsg p;
	assert_int_equal(appmsg_parse(wwant, wlen, &p), 0);
	uint32_t got = 0;
	assert_int_equal(appmsg_mailboxes_parse(p.data, p.data_len, &got, &back), 0);
	assert_int_equal(got, 1);
	assert_memory_equal(&back, &l, sizeof(l));
	/* Serial 0 is never sent; every truncation fails. */
	assert_int_equal(appmsg_mailboxes_encode(0, &l, out, sizeof(out), &len), CAIRN_EINVAL);
	memcpy(out, want, dlen);
	out[3] = 0;
	assert_int_equal(appmsg_mailboxes_parse(out, dlen, &got, &back), CAIRN_EINVAL);
	assert_int_equal(got, 0);
	for (size_t cut = 0; cut < dlen; cut++)
		assert_int_equal(appmsg_mailboxes_parse(want, cut, &got, &back), CAIRN_EINVAL);
}

/* The timer message (8.11): the e2e/appmsg-timer vector, 1:1 and in group logs, and the forms
 * a receiver drops: another data length, seconds over a year, several parts. */
static void test_timer(void **state)
{
	static const char V[] = "e2e/appmsg-timer";
	uint8_t id[16], data[8], want[64], out[64];
	assert_int_equal(mdvec_hex(V, "message_id", id, sizeof(id)), 16);
	assert_int_equal(mdvec_hex(V, "data", data, sizeof(data)), APPMSG_TIMER_DATA_LEN);
	size_t wlen = mdvec_hex(V, "hex", want, sizeof(want)), len;
	assert_int_equal(atoi(mdvec_str(V, "kind")), APPMSG_TIMER);
	uint8_t d[APPMSG_TIMER_DATA_LEN];
	assert_int_equal(appmsg_timer_encode(86400, d), 0);
	assert_memory_equal(d, data, sizeof(d));
	struct appmsg m = {.kind = APPMSG_TIMER,
	                   .sent_at = (uint64_t)atoll(mdvec_str(V, "sent_at")),
	                   .part_count = 1,
	                   .data = d,
	                   .data_len = sizeof(d)},
	              p;
	memcpy(m.id, id, 16);
	assert_int_equal(appmsg_encode(&m, out, sizeof(out), &len), 0);
	assert_int_equal(len, wlen);
	assert_memory_equal(out, want, wlen);
	assert_int_equal(appmsg_parse(want, wlen, &p), 0);
	assert_int_equal(appmsg_check(&p, APPMSG_DIRECT), 0);
	assert_int_equal(appmsg_check(&p, APPMSG_GROUP), 0);
	uint32_t s = 1;
	assert_int_equal(appmsg_timer_parse(p.data, p.data_len, &s), 0);
	assert_int_equal(s, 86400);
	/* Off, and the longest, are timers; a second more is not, nor another length. */
	static const uint32_t ok[] = {0, 1, CAIRN_TIMER_MAX_S};
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(appmsg_timer_encode(ok[i], d), 0);
		assert_int_equal(appmsg_timer_parse(d, sizeof(d), &s), 0);
		assert_int_equal(s, ok[i]);
	}
	assert_int_equal(appmsg_timer_encode(CAIRN_TIMER_MAX_S + 1, d), CAIRN_EINVAL);
	uint8_t over[4] = {0x01, 0xe1, 0x33, 0x81}; /* 31536001 */
	assert_int_equal(appmsg_timer_parse(over, 4, &s), CAIRN_EINVAL);
	assert_int_equal(s, 0);
	m.data = over;
	assert_int_equal(appmsg_check(&m, APPMSG_DIRECT), CAIRN_EINVAL);
	assert_int_equal(appmsg_check(&m, APPMSG_GROUP), CAIRN_EINVAL);
	uint8_t five[5] = {0};
	for (size_t n = 0; n <= 5; n++) {
		if (n == 4)
			continue;
		m.data = five;
		m.data_len = n;
		assert_int_equal(appmsg_timer_parse(five, n, &s), CAIRN_EINVAL);
		assert_int_equal(appmsg_check(&m, APPMSG_DIRECT), CAIRN_EINVAL);
		assert_int_equal(appmsg_check(&m, APPMSG_GROUP), CAIRN_EINVAL);
	}
	m.data = d;
	m.data_len = 4;
	m.part_count = 2;
	assert_int_equal(appmsg_check(&m, APPMSG_DIRECT), CAIRN_EINVAL);
	assert_int_equal(appmsg_check(&m, APPMSG_GROUP), CAIRN_EINVAL);
	/* The order of 8.11: sent_at first, then the id as bytes. */
	uint8_t lo[16] = {0}, hi[16] = {0};
	hi[15] = 1;
	assert_true(appmsg_timer_later(2, lo, 1, hi));
	assert_false(appmsg_timer_later(1, hi, 2, lo));
	assert_true(appmsg_timer_later(1, hi, 1, lo));
	assert_false(appmsg_timer_later(1, lo, 1, hi));
	assert_false(appmsg_timer_later(1, lo, 1, lo));
}

/* Which kinds go where (8.9, 9.4, 9.6, 9.8), and the part rules of each. */
static void test_check_kinds(void **state)
{
	static const struct {
		uint8_t kind;
		uint16_t parts;
		size_t data_len;
		int direct, group; /* expected results */
	} rows[] = {
	    {APPMSG_TEXT, 1, 5, 0, 0},
	    {APPMSG_TEXT, 64, APPMSG_GROUP_PART_MAX, 0, 0},
	    {APPMSG_TEXT, 2, APPMSG_GROUP_PART_MAX + 1, 0, CAIRN_EINVAL},
	    {APPMSG_HELLO, 1, 0, 0, CAIRN_EINVAL},
	    {APPMSG_HELLO, 1, 1, CAIRN_EINVAL, CAIRN_EINVAL},
	    {APPMSG_HELLO, 2, 0, CAIRN_EINVAL, CAIRN_EINVAL},
	    {APPMSG_MAILBOXES, 1, 100, 0, CAIRN_EINVAL},
	    {APPMSG_MAILBOXES, 2, 100, CAIRN_EINVAL, CAIRN_EINVAL},
	    {APPMSG_GROUP_OFFER, 1, 24, 0, CAIRN_EINVAL},
	    {APPMSG_GROUP_OFFER, 2, 24, CAIRN_EINVAL, CAIRN_EINVAL},
	    {APPMSG_GROUP_JOIN, 1, 80, 0, CAIRN_EINVAL},
	    {APPMSG_GROUP_JOIN, 3, 80, CAIRN_EINVAL, CAIRN_EINVAL},
	    {APPMSG_GROUP_WELCOME, 1, 900, 0, CAIRN_EINVAL},
	    {APPMSG_GROUP_WELCOME, APPMSG_PARTS_MAX, APPMSG_PART_MAX, 0, CAIRN_EINVAL},
	    {APPMSG_KEY_UPDATE, 1, APPMSG_KEY_UPDATE_DATA_LEN, CAIRN_EINVAL, 0},
	    {APPMSG_KEY_UPDATE, 1, APPMSG_KEY_UPDATE_DATA_LEN - 1, CAIRN_EINVAL, CAIRN_EINVAL},
	    {APPMSG_KEY_UPDATE, 2, APPMSG_KEY_UPDATE_DATA_LEN, CAIRN_EINVAL, CAIRN_EINVAL},
	    {APPMSG_LEAVE, 1, 0, CAIRN_EINVAL, 0},
	    {APPMSG_LEAVE, 1, 1, CAIRN_EINVAL, CAIRN_EINVAL},
	    {APPMSG_LEAVE, 2, 0, CAIRN_EINVAL, CAIRN_EINVAL},
	    {0, 1, 0, CAIRN_EINVAL, CAIRN_EINVAL},
	    {7, 1, 0, CAIRN_EINVAL, CAIRN_EINVAL},
	    {15, 1, 0, CAIRN_EINVAL, CAIRN_EINVAL},
	    {18, 1, 0, CAIRN_EINVAL, CAIRN_EINVAL},
	    {255, 1, 0, CAIRN_EINVAL, CAIRN_EINVAL},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct appmsg m = {.kind = rows[i].kind,
		                   .part_count = rows[i].parts,
		                   .part_index = (uint16_t)(rows[i].parts - 1),
		                   .data_len = rows[i].data_len};
		assert_int_equal(appmsg_check(&m, APPMSG_DIRECT), rows[i].direct);
		assert_int_equal(appmsg_check(&m, APPMSG_GROUP), rows[i].group);
		assert_int_equal(appmsg_check(&m, (enum appmsg_scope)0), CAIRN_EINVAL);
	}
	assert_int_equal(APPMSG_GROUP_PART_MAX, 16224);
}

/* The payloads of the group/message and group/keyupdate entries parse and belong in a group
 * log only; a welcome of 64 parts, the most a 1,000-member roster needs, is a 1:1 message. */
static void test_check_vectors(void **state)
{
	static const char *vs[] = {"group/message", "group/keyupdate"};
	static const uint8_t kinds[] = {APPMSG_TEXT, APPMSG_KEY_UPDATE};
	for (size_t i = 0; i < 2; i++) {
		uint8_t raw[128];
		size_t len = mdvec_hex(vs[i], "payload", raw, sizeof(raw));
		struct appmsg p;
		assert_int_equal(appmsg_parse(raw, len, &p), 0);
		assert_int_equal(p.kind, kinds[i]);
		assert_int_equal(p.sent_at, 1767225600);
		assert_int_equal(appmsg_check(&p, APPMSG_GROUP), 0);
		assert_int_equal(appmsg_check(&p, APPMSG_DIRECT),
		                 kinds[i] == APPMSG_TEXT ? 0 : CAIRN_EINVAL);
	}
	uint8_t data[32] = {0}, raw[64];
	struct appmsg m = {.kind = APPMSG_GROUP_WELCOME,
	                   .part_index = 63,
	                   .part_count = 64,
	                   .data = data,
	                   .data_len = sizeof(data)},
	              p;
	size_t len;
	assert_int_equal(appmsg_encode(&m, raw, sizeof(raw), &len), 0);
	assert_int_equal(appmsg_parse(raw, len, &p), 0);
	assert_int_equal(appmsg_check(&p, APPMSG_DIRECT), 0);
	assert_int_equal(appmsg_check(&p, APPMSG_GROUP), CAIRN_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vector),      cmocka_unit_test(test_part_numbers),
	    cmocka_unit_test(test_reply),       cmocka_unit_test(test_mailboxes_message),
	    cmocka_unit_test(test_check_kinds), cmocka_unit_test(test_check_vectors),
	    cmocka_unit_test(test_timer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
