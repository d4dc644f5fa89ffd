/* SPDX-License-Identifier: MIT */
/*
 * The change feed's row format (relay/feed_codec.h): every op kind comes back from
 * feed_decode as it went into feed_encode, bodies left out and LEN, STORED_AT and a bundled
 * envelope's key kept; a blob cut short anywhere, or with a byte the encoder never writes,
 * gives CAIRN_EMALFORMED and no op at or past the bad one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cairn/error.h"
#include "feed_codec.h"

static const struct store_mailbox mailbox = {
    .id = 0x1122334455667788u,
    .recipient_id = {1, 2, 3},
    .sender_id = {4, 5, 6},
    .recipient_key = {7, 8, 9},
    .credential_digest = {10, 11},
    .secured = true,
    .work_bits = 20,
    .touched = 1700000123,
};
static const struct store_log log_row = {
    .id = 0x0102030405060708u,
    .log_id = {21, 22},
    .credential_digest = {23},
    .delete_digest = {24, 25},
    .next_seq = 99,
    .touched = -5,
};
static const uint8_t body[40] = {0xee};
static const uint8_t bundle_e[CAIRN_KEY_LEN] = {0xbb, 0xcc};
static uint64_t many_ids[200];
static const uint64_t few_ids[] = {3, UINT64_MAX, 0};

/* One op of every kind (and a few kinds twice, with their variants). */
static size_t all_ops(struct store_op *ops)
{
	for (size_t i = 0; i < 200; i++)
		many_ids[i] = 1000 + i * 7;
	size_t n = 0;
	ops[n++] = (struct store_op){
	    .kind = STORE_MAILBOX_PUT, .mailbox = &mailbox, .mailbox_id = mailbox.id};
	ops[n++] = (struct store_op){
	    .kind = STORE_MAILBOX_SECURE, .mailbox = &mailbox, .mailbox_id = mailbox.id};
	ops[n++] = (struct store_op){
	    .kind = STORE_MAILBOX_INTAKE, .mailbox = &mailbox, .mailbox_id = mailbox.id};
	ops[n++] = (struct store_op){
	    .kind = STORE_MAILBOX_TOUCH, .mailbox_id = 77, .stored_at = 1700000200};
	ops[n++] = (struct store_op){.kind = STORE_MAILBOX_DELETE,
	                             .mailbox_id = 78,
	                             .envelope_ids = few_ids,
	                             .n_envelope_ids = 3};
	ops[n++] = (struct store_op){.kind = STORE_MAILBOX_DELETE,
	                             .mailbox_id = 79,
	                             .envelope_ids = many_ids,
	                             .n_envelope_ids = 200};
	ops[n++] = (struct store_op){.kind = STORE_MAILBOX_DELETE, .mailbox_id = 80};
	ops[n++] = (struct store_op){.kind = STORE_ENVELOPE_PUT,
	                             .envelope_id = 500,
	                             .mailbox_id = 77,
	                             .body = body,
	                             .len = sizeof(body),
	                             .stored_at = 1700000300};
	ops[n++] = (struct store_op){.kind = STORE_ENVELOPE_PUT,
	                             .envelope_id = 501,
	                             .mailbox_id = 77,
	                             .body = body,
	                             .len = 12,
	                             .stored_at = 1700000301,
	                             .bundle_e = bundle_e,
	                             .bundle_until = 1700099999};
	ops[n++] =
	    (struct store_op){.kind = STORE_ENVELOPE_DELETE, .envelope_id = 500, .mailbox_id = 77};
	ops[n++] = (struct store_op){.kind = STORE_EXPIRE, .envelope_id = 400};
	ops[n++] = (struct store_op){.kind = STORE_ID_MARK, .envelope_id = 1u << 20};
	ops[n++] = (struct store_op){.kind = STORE_LOG_PUT, .log = &log_row, .log_key = log_row.id};
	ops[n++] = (struct store_op){.kind = STORE_LOG_TOUCH, .log_key = 5, .stored_at = 17};
	ops[n++] = (struct store_op){
	    .kind = STORE_LOG_DELETE, .log_key = 6, .envelope_ids = few_ids, .n_envelope_ids = 2};
	ops[n++] = (struct store_op){.kind = STORE_LOG_ENTRY_PUT,
	                             .envelope_id = 600,
	                             .log_key = 6,
	                             .seq = 41,
	                             .body = body,
	                             .len = 33,
	                             .stored_at = 18};
	ops[n++] = (struct store_op){.kind = STORE_BUNDLE_EXPIRE, .stored_at = 1700000400};
	return n;
}

/* What the decoder called, each op checked against the expected one as it comes. */
struct seen {
	const struct store_op *want;
	size_t n;
	int stop_at; /* return CAIRN_ESTATE from this call (0-based), -1: never */
};

static void assert_same_op(const struct store_op *want, const struct store_op *got)
{
	assert_int_equal(got->kind, want->kind);
	assert_null(got->body);
	assert_int_equal(got->mailbox_id, want->mailbox_id);
	assert_int_equal(got->envelope_id, want->envelope_id);
	assert_int_equal(got->len, want->len);
	assert_int_equal(got->stored_at, want->stored_at);
	assert_int_equal(got->log_key, want->log_key);
	assert_int_equal(got->seq, want->seq);
	assert_int_equal(got->n_envelope_ids, want->n_envelope_ids);
	if (want->n_envelope_ids > 0)
		assert_memory_equal(got->envelope_ids, want->envelope_ids,
		                    want->n_envelope_ids * sizeof(uint64_t));
	if (want->mailbox != NULL) {
		assert_non_null(got->mailbox);
		assert_memory_equal(got->mailbox, want->mailbox, sizeof(*want->mailbox));
	} else {
		assert_null(got->mailbox);
	}
	if (want->log != NULL) {
		assert_non_null(got->log);
		assert_memory_equal(got->log, want->log, sizeof(*want->log));
	} else {
		assert_null(got->log);
	}
	if (want->bundle_e != NULL) {
		assert_non_null(got->bundle_e);
		assert_memory_equal(got->bundle_e, want->bundle_e, CAIRN_KEY_LEN);
		assert_int_equal(got->bundle_until, want->bundle_until);
	} else {
		assert_null(got->bundle_e);
	}
}

static int on_op(void *ctx, const struct store_op *op)
{
	struct seen *s = ctx;
	assert_same_op(&s->want[s->n], op);
	if ((int)s->n++ == s->stop_at)
		return CAIRN_ESTATE;
	return 0;
}

/* OPS[0..N) encoded into a blob of exactly their length (*LEN), owned by the caller. */
static uint8_t *encode_all(const struct store_op *ops, size_t n, size_t *len)
{
	*len = feed_encoded_len(ops, n);
	uint8_t *blob = malloc(*len);
	assert_non_null(blob);
	assert_int_equal(feed_encode(ops, n, blob, *len), *len);
	return blob;
}

static void test_round_trip_every_kind(void **state)
{
	(void)state;
	struct store_op ops[32];
	size_t n = all_ops(ops);
	/* Every kind is here. */
	unsigned kinds = 0;
	for (size_t i = 0; i < n; i++)
		kinds |= 1u << ops[i].kind;
	assert_int_equal(kinds, (1u << (STORE_BUNDLE_EXPIRE + 1)) - 1);
	size_t len = feed_encoded_len(ops, n);
	assert_true(len > 1);
	uint8_t *blob = malloc(len);
	assert_non_null(blob);
	assert_int_equal(feed_encode(ops, n, blob, len), len);
	/* Short by one: nothing written is claimed. */
	assert_int_equal(feed_encode(ops, n, blob, len - 1), 0);
	assert_int_equal(feed_encode(ops, n, blob, len), len);
	/* Bodies are left out: an envelope put is tens of bytes, whatever its body. */
	assert_int_equal(feed_encoded_len(&ops[7], 1), 1 + 1 + 8 + 8 + 4 + 8 + 1);
	struct seen s = {.want = ops, .stop_at = -1};
	assert_int_equal(feed_decode(blob, len, on_op, &s), 0);
	assert_int_equal(s.n, n);
	/* The callback's error stops the walk there. */
	s = (struct seen){.want = ops, .stop_at = 3};
	assert_int_equal(feed_decode(blob, len, on_op, &s), CAIRN_ESTATE);
	assert_int_equal(s.n, 4);
	/* An empty batch is the version byte alone. */
	uint8_t one[4];
	assert_int_equal(feed_encode(ops, 0, one, sizeof(one)), 1);
	s = (struct seen){.want = ops, .stop_at = -1};
	assert_int_equal(feed_decode(one, 1, on_op, &s), 0);
	assert_int_equal(s.n, 0);
	free(blob);
}

/* The ops of BLOB[0..LEN) that decode before an error; -1 if the whole decodes. */
static int decoded_before_error(const uint8_t *blob, size_t len, const struct store_op *ops)
{
	struct seen s = {.want = ops, .stop_at = -1};
	int rc = feed_decode(blob, len, on_op, &s);
	if (rc == 0)
		return -1;
	assert_int_equal(rc, CAIRN_EMALFORMED);
	return (int)s.n;
}

/* Cut at every length: each cut inside an op is malformed, and only the whole ops before
 * the cut were called. A cut between two ops is a shorter valid batch. */
static void test_truncated(void **state)
{
	(void)state;
	struct store_op ops[32];
	size_t n = all_ops(ops), len;
	uint8_t *blob = encode_all(ops, n, &len);
	/* Where each op ends. */
	size_t ends[32];
	for (size_t i = 0; i < n; i++)
		ends[i] = feed_encoded_len(ops, i + 1);
	assert_int_equal(feed_decode(blob, 0, on_op, NULL), CAIRN_EMALFORMED);
	for (size_t cut = 1; cut < len; cut++) {
		/* A copy of exactly CUT bytes, so ASan sees a read past it. */
		uint8_t *part = malloc(cut);
		assert_non_null(part);
		memcpy(part, blob, cut);
		size_t whole = 0;
		bool boundary = cut == 1;
		for (size_t i = 0; i < n; i++) {
			if (ends[i] <= cut)
				whole = i + 1;
			if (ends[i] == cut)
				boundary = true;
		}
		int got = decoded_before_error(part, cut, ops);
		if (boundary)
			assert_int_equal(got, -1);
		else
			assert_int_equal(got, (int)whole);
		free(part);
	}
	free(blob);
}

/* Bytes the encoder never writes: another version, an unknown kind, a flag of 2, an id count
 * past what the blob holds (which must not be allocated). */
static void test_corrupted(void **state)
{
	(void)state;
	struct store_op ops[32];
	size_t n = all_ops(ops), len;
	uint8_t *blob = encode_all(ops, n, &len);
	blob[0] = 2;
	assert_int_equal(decoded_before_error(blob, len, ops), 0);
	blob[0] = 1;
	/* The 4th op's kind byte (MAILBOX_TOUCH) made unknown. */
	size_t at = feed_encoded_len(ops, 3);
	blob[at] = 0x7f;
	assert_int_equal(decoded_before_error(blob, len, ops), 3);
	blob[at] = STORE_MAILBOX_TOUCH;
	/* The first mailbox's secured flag: after kind, id, three ids/keys and the digest. */
	size_t flag = 1 + 1 + 8 + CAIRN_MAILBOX_ID_LEN * 2 + CAIRN_KEY_LEN + CAIRN_CREDENTIAL_LEN;
	assert_int_equal(blob[flag], 1);
	blob[flag] = 2;
	assert_int_equal(decoded_before_error(blob, len, ops), 0);
	blob[flag] = 1;
	/* The 6th op (200 ids): its count raised past the blob's bytes. */
	size_t count = feed_encoded_len(ops, 5) + 1 + 8;
	assert_int_equal(blob[count + 3], 200);
	blob[count] = 0xff;
	assert_int_equal(decoded_before_error(blob, len, ops), 5);
	blob[count] = 0;
	/* A bundled flag of 2 in the 9th op (the bundled put). */
	size_t bundled = feed_encoded_len(ops, 8) + 1 + 8 + 8 + 4 + 8;
	assert_int_equal(blob[bundled], 1);
	blob[bundled] = 2;
	assert_int_equal(decoded_before_error(blob, len, ops), 8);
	blob[bundled] = 1;
	assert_int_equal(decoded_before_error(blob, len, ops), -1);
	free(blob);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip_every_kind),
	    cmocka_unit_test(test_truncated),
	    cmocka_unit_test(test_corrupted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
