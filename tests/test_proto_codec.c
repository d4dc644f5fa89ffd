/* SPDX-License-Identifier: MIT */
/*
 * Commands and replies (proto/codec.h): the published vectors of PROTOCOL.md 5.7 both ways,
 * round trips, every decode error with a crafted input, prefixes, batches, lenient decoding
 * of long forms, and proof that hostile input costs no heap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <malloc.h>
#include <msgpack.h>

#include "codec.h"
#include "mdvec.h"
#include "work.h"

#define BYTES(...) (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})

/* Field values as in PROTOCOL.md 5.7; filled by fill_keys() before the tests run. */
static uint8_t k11[32], k22[24], k33[24], k44[64], k55[32];

static int fill_keys(void **state)
{
	memset(k11, 0x11, sizeof(k11));
	memset(k22, 0x22, sizeof(k22));
	memset(k33, 0x33, sizeof(k33));
	memset(k44, 0x44, sizeof(k44));
	memset(k55, 0x55, sizeof(k55));
	return 0;
}

/* Fields equal, pointed-to bytes included (decoded messages borrow different buffers). */
static void assert_msg_equal(const struct cairn_msg *a, const struct cairn_msg *b)
{
#define SAME_BYTES(field, size)                                                                    \
	do {                                                                                       \
		assert_true((a->field == NULL) == (b->field == NULL));                             \
		if (a->field != NULL)                                                              \
			assert_memory_equal(a->field, b->field, (size));                           \
	} while (0)
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->request_id, b->request_id);
	SAME_BYTES(recipient_key, CAIRN_KEY_LEN);
	SAME_BYTES(recipient_id, CAIRN_MAILBOX_ID_LEN);
	SAME_BYTES(sender_id, CAIRN_MAILBOX_ID_LEN);
	SAME_BYTES(signature, CAIRN_SIGNATURE_LEN);
	SAME_BYTES(credential, CAIRN_CREDENTIAL_LEN);
	assert_int_equal(a->envelope_id, b->envelope_id);
	assert_int_equal(a->envelope_len, b->envelope_len);
	if (a->envelope_len > 0)
		SAME_BYTES(envelope, a->envelope_len);
	assert_int_equal(a->code, b->code);
	SAME_BYTES(log_id, CAIRN_LOG_ID_LEN);
	SAME_BYTES(delete_digest, CAIRN_CREDENTIAL_LEN);
	SAME_BYTES(delete_secret, CAIRN_CREDENTIAL_LEN);
	assert_int_equal(a->seq, b->seq);
	assert_int_equal(a->first_seq, b->first_seq);
	assert_int_equal(a->next_seq, b->next_seq);
	assert_int_equal(a->follow, b->follow);
	assert_int_equal(a->work_bits, b->work_bits);
	SAME_BYTES(work, WORK_LEN);
#undef SAME_BYTES
}

/* Decodes exactly one message and checks the side outputs of a success. */
static void decode_ok(const uint8_t *buf, size_t len, struct cairn_msg *m)
{
	size_t used = 0;
	int have_id = 0;
	assert_int_equal(cairn_msg_decode(buf, len, &used, m, &have_id), 0);
	assert_int_equal(used, len);
	assert_int_equal(have_id, 1);
	struct cairn_msg again;
	assert_int_equal(cairn_msg_decode(buf, len, NULL, &again, NULL), 0);
	assert_msg_equal(m, &again);
}

static int decode_err(const uint8_t *buf, size_t len, int *have_id, size_t *used)
{
	struct cairn_msg m;
	return cairn_msg_decode(buf, len, used, &m, have_id);
}

/* ---- The vectors of PROTOCOL.md 5.7 ----------------------------------------------------- */

struct vec_store {
	uint8_t recipient_key[CAIRN_KEY_LEN];
	uint8_t recipient_id[CAIRN_MAILBOX_ID_LEN];
	uint8_t sender_id[CAIRN_MAILBOX_ID_LEN];
	uint8_t signature[CAIRN_SIGNATURE_LEN];
	uint8_t credential[CAIRN_CREDENTIAL_LEN];
	uint8_t envelope[256];
	uint8_t log_id[CAIRN_LOG_ID_LEN];
	uint8_t delete_key[CAIRN_CREDENTIAL_LEN];
	uint8_t work[WORK_LEN];
};

static uint64_t vec_uint(const char *name, const char *key)
{
	const char *s = mdvec_str(name, key);
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (*s < '0' || *s > '9' || *end != '\0')
		fail_msg("vector %s: %s is not a decimal integer: '%s'", name, key, s);
	return v;
}

static const uint8_t *vec_bin(const char *name, const char *key, uint8_t *out, size_t size)
{
	assert_int_equal(mdvec_hex(name, key, out, size), size);
	return out;
}

/* Builds the message that vector NAME describes, field by field from the spec's text. */
static void vec_fields(const char *name, struct cairn_msg *m, struct vec_store *st)
{
	*m = (struct cairn_msg){0};
	uint64_t type = vec_uint(name, "type");
	uint64_t id = vec_uint(name, "request_id");
	assert_true(type <= 255 && id <= UINT32_MAX);
	m->type = (uint8_t)type;
	m->request_id = (uint32_t)id;
	switch (m->type) {
	case CAIRN_CMD_CREATE:
		m->recipient_key = vec_bin(name, "recipient_key", st->recipient_key, CAIRN_KEY_LEN);
		break;
	case CAIRN_CMD_AUTH:
		m->signature = vec_bin(name, "signature", st->signature, CAIRN_SIGNATURE_LEN);
		/* fall through */
	case CAIRN_CMD_SUBSCRIBE:
	case CAIRN_CMD_DELETE:
		m->recipient_id = vec_bin(name, "recipient_id", st->recipient_id, 24);
		break;
	case CAIRN_CMD_SECURE:
		m->recipient_id = vec_bin(name, "recipient_id", st->recipient_id, 24);
		m->credential = vec_bin(name, "credential_digest", st->credential, 32);
		break;
	case CAIRN_CMD_ACK:
		m->recipient_id = vec_bin(name, "recipient_id", st->recipient_id, 24);
		m->envelope_id = vec_uint(name, "envelope_id");
		break;
	case CAIRN_CMD_SEND:
		m->sender_id = vec_bin(name, "sender_id", st->sender_id, 24);
		if (strcmp(mdvec_str(name, "credential"), "nil") != 0)
			m->credential = vec_bin(name, "credential", st->credential, 32);
		m->envelope_len = mdvec_hex(name, "envelope", st->envelope, sizeof(st->envelope));
		m->envelope = m->envelope_len > 0 ? st->envelope : NULL;
		break;
	case CAIRN_CMD_INTAKE:
		m->recipient_id = vec_bin(name, "recipient_id", st->recipient_id, 24);
		m->work_bits = (uint8_t)vec_uint(name, "work_bits");
		break;
	case CAIRN_CMD_SEND_WORK:
		m->sender_id = vec_bin(name, "sender_id", st->sender_id, 24);
		m->work = vec_bin(name, "work", st->work, WORK_LEN);
		m->envelope_len = mdvec_hex(name, "envelope", st->envelope, sizeof(st->envelope));
		m->envelope = m->envelope_len > 0 ? st->envelope : NULL;
		break;
	case CAIRN_REPLY_CREATED:
		m->recipient_id = vec_bin(name, "recipient_id", st->recipient_id, 24);
		m->sender_id = vec_bin(name, "sender_id", st->sender_id, 24);
		break;
	case CAIRN_REPLY_ERROR:
	case CAIRN_REPLY_END:
		m->code = (uint32_t)vec_uint(name, "code");
		break;
	case CAIRN_REPLY_ENVELOPE:
		m->envelope_id = vec_uint(name, "envelope_id");
		m->envelope_len = mdvec_hex(name, "envelope", st->envelope, sizeof(st->envelope));
		m->envelope = m->envelope_len > 0 ? st->envelope : NULL;
		break;
	case CAIRN_CMD_LOG_CREATE:
		m->log_id = vec_bin(name, "log_id", st->log_id, CAIRN_LOG_ID_LEN);
		m->credential = vec_bin(name, "credential_digest", st->credential, 32);
		m->delete_digest = vec_bin(name, "delete_digest", st->delete_key, 32);
		break;
	case CAIRN_CMD_LOG_APPEND:
		m->log_id = vec_bin(name, "log_id", st->log_id, CAIRN_LOG_ID_LEN);
		m->credential = vec_bin(name, "credential", st->credential, 32);
		m->envelope_len = mdvec_hex(name, "entry", st->envelope, sizeof(st->envelope));
		m->envelope = st->envelope;
		break;
	case CAIRN_CMD_LOG_READ:
		m->log_id = vec_bin(name, "log_id", st->log_id, CAIRN_LOG_ID_LEN);
		m->seq = vec_uint(name, "from_seq");
		m->follow = (uint8_t)vec_uint(name, "follow");
		break;
	case CAIRN_CMD_LOG_DELETE:
		m->log_id = vec_bin(name, "log_id", st->log_id, CAIRN_LOG_ID_LEN);
		m->delete_secret = vec_bin(name, "delete_secret", st->delete_key, 32);
		break;
	case CAIRN_REPLY_APPENDED:
		m->seq = vec_uint(name, "seq");
		break;
	case CAIRN_REPLY_LOG_STATE:
		m->first_seq = vec_uint(name, "first_seq");
		m->next_seq = vec_uint(name, "next_seq");
		break;
	case CAIRN_REPLY_LOG_ENTRY:
		m->seq = vec_uint(name, "seq");
		m->envelope_len = mdvec_hex(name, "entry", st->envelope, sizeof(st->envelope));
		m->envelope = st->envelope;
		break;
	default:
		break;
	}
}

static const char *const vector_names[] = {
    "codec/ping",    "codec/create", "codec/auth",     "codec/secure",   "codec/subscribe",
    "codec/ack",     "codec/delete", "codec/send",     "codec/send-nil", "codec/ok",
    "codec/created", "codec/error",  "codec/envelope", "codec/end",      "codec/error-full",
    "codec/intake",  "codec/send-work",
};
#define VECTOR_COUNT (sizeof(vector_names) / sizeof(vector_names[0]))

/* Vector NAME both ways: its fields encode to its hex, which decodes to its fields. Returns
 * its type. */
static uint8_t check_vector(const char *name)
{
	struct vec_store st;
	struct cairn_msg want, got;
	uint8_t hex[512], enc[512];
	size_t hexlen, enclen;

	vec_fields(name, &want, &st);
	hexlen = mdvec_hex(name, "hex", hex, sizeof(hex));
	assert_int_equal(cairn_msg_encode(&want, enc, sizeof(enc), &enclen), 0);
	if (enclen != hexlen || memcmp(enc, hex, hexlen) != 0)
		fail_msg("vector %s: encoding differs from the spec", name);
	decode_ok(hex, hexlen, &got);
	assert_msg_equal(&want, &got);
	return want.type;
}

static void test_spec_vectors(void **state)
{
	unsigned seen_types = 0; /* one bit per distinct type, to prove all 15 are covered */
	uint64_t bits = 0;
	for (size_t i = 0; i < VECTOR_COUNT; i++) {
		uint8_t type = check_vector(vector_names[i]);
		unsigned bit = type < 64 ? type : type - 64 + 16;
		if (!(bits & (1ull << bit)))
			seen_types++;
		bits |= 1ull << bit;
	}
	assert_int_equal(seen_types, 15);
}

/* ---- Round trips and encoding ----------------------------------------------------------- */

static void roundtrip(const struct cairn_msg *m)
{
	uint8_t buf[CAIRN_MSG_ENCODED_MAX];
	size_t len;
	struct cairn_msg got;
	assert_int_equal(cairn_msg_encode(m, buf, sizeof(buf), &len), 0);
	decode_ok(buf, len, &got);
	assert_msg_equal(m, &got);
}

static void test_roundtrip_edges(void **state)
{
	static uint8_t big[CAIRN_ENVELOPE_MAX];
	memset(big, 0xa5, sizeof(big));
	struct cairn_msg m = {.type = CAIRN_CMD_SEND, .request_id = UINT32_MAX, .sender_id = k33};
	roundtrip(&m); /* empty envelope, nil credential */
	m.envelope = big;
	m.envelope_len = sizeof(big);
	m.credential = k55;
	roundtrip(&m); /* the largest envelope */

	m = (struct cairn_msg){.type = CAIRN_REPLY_ENVELOPE, .envelope_id = UINT64_MAX};
	roundtrip(&m);
	m = (struct cairn_msg){.type = CAIRN_REPLY_ERROR, .request_id = 128, .code = UINT32_MAX};
	roundtrip(&m);
	m = (struct cairn_msg){.type = CAIRN_CMD_ACK, .recipient_id = k22, .envelope_id = 65535};
	roundtrip(&m);

	/* Shortest integer forms at each width boundary. */
	static const struct {
		uint64_t v;
		size_t len;
	} widths[] = {{0, 1},     {127, 1},   {128, 2},        {255, 2},        {256, 3},
	              {65535, 3}, {65536, 5}, {UINT32_MAX, 5}, {1ull << 32, 9}, {UINT64_MAX, 9}};
	for (size_t i = 0; i < sizeof(widths) / sizeof(widths[0]); i++) {
		uint8_t buf[64];
		size_t len;
		m = (struct cairn_msg){.type = CAIRN_REPLY_ENVELOPE, .envelope_id = widths[i].v};
		assert_int_equal(cairn_msg_encode(&m, buf, sizeof(buf), &len), 0);
		/* 94 43 00, the id, then c4 00 */
		assert_int_equal(len, 3 + widths[i].len + 2);
		roundtrip(&m);
	}
}

static void test_encode_errors(void **state)
{
	uint8_t buf[256];
	size_t len = 99;
	struct cairn_msg m = {.type = 9};
	assert_int_equal(cairn_msg_encode(&m, buf, sizeof(buf), &len), CAIRN_EINVAL);
	assert_int_equal(len, 0);
	m = (struct cairn_msg){.type = CAIRN_CMD_CREATE}; /* no recipient_key */
	assert_int_equal(cairn_msg_encode(&m, buf, sizeof(buf), &len), CAIRN_EINVAL);
	m = (struct cairn_msg){.type = CAIRN_CMD_SECURE, .recipient_id = k22}; /* no digest */
	assert_int_equal(cairn_msg_encode(&m, buf, sizeof(buf), &len), CAIRN_EINVAL);
	m = (struct cairn_msg){.type = CAIRN_CMD_SEND, .sender_id = k33, .envelope_len = 1};
	assert_int_equal(cairn_msg_encode(&m, buf, sizeof(buf), &len), CAIRN_EINVAL);
	static uint8_t over[CAIRN_ENVELOPE_MAX + 1];
	m.envelope = over;
	m.envelope_len = sizeof(over);
	assert_int_equal(cairn_msg_encode(&m, buf, sizeof(buf), &len), CAIRN_EINVAL);

	/* Every capacity short of the encoding fails with ENOBUFS and writes nothing past it. */
	m = (struct cairn_msg){
	    .type = CAIRN_CMD_AUTH, .request_id = 7, .recipient_id = k22, .signature = k44};
	size_t need;
	assert_int_equal(cairn_msg_encode(&m, buf, sizeof(buf), &need), 0);
	for (size_t cap = 0; cap < need; cap++) {
		memset(buf, 0xee, sizeof(buf));
		assert_int_equal(cairn_msg_encode(&m, cap ? buf : NULL, cap, &len), CAIRN_ENOBUFS);
		assert_int_equal(len, 0);
		for (size_t i = cap; i < sizeof(buf); i++)
			assert_int_equal(buf[i], 0xee);
	}
	assert_int_equal(cairn_msg_encode(&m, buf, need, &len), 0);
	assert_int_equal(len, need);
}

/* Encodes M, whose reference bytes msgpack-c's packer wrote into SB, and compares; then
 * every capacity short of them by one fails with ENOBUFS and writes nothing. */
static void check_reply(const struct cairn_msg *m, msgpack_sbuffer *sb)
{
	static uint8_t buf[CAIRN_ENVELOPE_MAX + 64];
	size_t len = 0;
	assert_int_equal(cairn_msg_encode(m, buf, sizeof(buf), &len), 0);
	assert_int_equal(len, sb->size);
	assert_memory_equal(buf, sb->data, sb->size);
	memset(buf, 0xee, sb->size);
	assert_int_equal(cairn_msg_encode(m, buf, sb->size - 1, &len), CAIRN_ENOBUFS);
	assert_int_equal(len, 0);
	for (size_t i = 0; i < sb->size; i++)
		assert_int_equal(buf[i], 0xee);
	msgpack_sbuffer_clear(sb);
}

/* OK, ERROR and ENVELOPE are written by hand (codec.c, codec_encode_reply): their bytes must
 * be msgpack-c's packer's, as the table's path writes them, at every width of every integer and
 * with every form of the envelope's bin header; a bad envelope is EINVAL. */
static void test_reply_fast_path(void **state)
{
	static uint8_t body[CAIRN_ENVELOPE_MAX];
	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (uint8_t)(i * 7 + 1);
	static const uint64_t ints[] = {0,     1,     127,        128,        255,       256,
	                                65535, 65536, UINT32_MAX, 1ull << 32, UINT64_MAX};
	static const size_t lens[] = {
	    0, 1, 31, 32, 255, 256, 1024, CAIRN_ENVELOPE_MAX - 1, CAIRN_ENVELOPE_MAX};
	size_t n_ints = sizeof(ints) / sizeof(ints[0]);
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	for (size_t a = 0; a < n_ints; a++) {
		uint32_t rid = ints[a] > UINT32_MAX ? UINT32_MAX : (uint32_t)ints[a];
		struct cairn_msg m = {.type = CAIRN_REPLY_OK, .request_id = rid};
		msgpack_pack_array(&pk, 2);
		msgpack_pack_uint8(&pk, CAIRN_REPLY_OK);
		msgpack_pack_uint32(&pk, rid);
		check_reply(&m, &sb);
		for (size_t b = 0; b < n_ints; b++) {
			m = (struct cairn_msg){.type = CAIRN_REPLY_ERROR, .request_id = rid};
			m.code = ints[b] > UINT32_MAX ? UINT32_MAX : (uint32_t)ints[b];
			msgpack_pack_array(&pk, 3);
			msgpack_pack_uint8(&pk, CAIRN_REPLY_ERROR);
			msgpack_pack_uint32(&pk, rid);
			msgpack_pack_uint32(&pk, m.code);
			check_reply(&m, &sb);
			for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
				m = (struct cairn_msg){.type = CAIRN_REPLY_ENVELOPE,
				                       .request_id = rid,
				                       .envelope_id = ints[b],
				                       .envelope = lens[l] > 0 ? body : NULL,
				                       .envelope_len = lens[l]};
				msgpack_pack_array(&pk, 4);
				msgpack_pack_uint8(&pk, CAIRN_REPLY_ENVELOPE);
				msgpack_pack_uint32(&pk, rid);
				msgpack_pack_uint64(&pk, ints[b]);
				msgpack_pack_bin(&pk, lens[l]);
				if (lens[l] > 0)
					msgpack_pack_bin_body(&pk, body, lens[l]);
				check_reply(&m, &sb);
			}
		}
	}
	msgpack_sbuffer_destroy(&sb);

	uint8_t buf[64];
	size_t len = 99;
	struct cairn_msg m = {.type = CAIRN_REPLY_ENVELOPE, .envelope_len = 1};
	assert_int_equal(cairn_msg_encode(&m, buf, sizeof(buf), &len), CAIRN_EINVAL);
	assert_int_equal(len, 0);
	static uint8_t over[CAIRN_ENVELOPE_MAX + 1];
	m.envelope = over;
	m.envelope_len = sizeof(over);
	assert_int_equal(cairn_msg_encode(&m, buf, sizeof(buf), &len), CAIRN_EINVAL);
}

/* ---- Decode errors, one crafted input each ---------------------------------------------- */

static void test_structural_errors(void **state)
{
	int have_id = 5;
	size_t used = 5;
	assert_int_equal(decode_err(BYTES(0x92, 0x01, 0xc1), &have_id, &used), CAIRN_EMALFORMED);
	assert_int_equal(have_id, 0);
	assert_int_equal(used, 0);
	assert_int_equal(decode_err(BYTES(0x92, 0x01, 0xca, 0, 0, 0, 0), NULL, NULL),
	                 CAIRN_EMALFORMED);
	assert_int_equal(decode_err(BYTES(0x92, 0x01, 0xd4, 0, 0), NULL, NULL), CAIRN_EMALFORMED);
	assert_int_equal(decode_err(BYTES(0xdd, 0x00, 0xff, 0xff, 0xff), &have_id, &used),
	                 CAIRN_ETRUNCATED);
	assert_int_equal(decode_err(BYTES(0x93, 0x02, 0x07, 0xc4, 0x20, 0x11), NULL, NULL),
	                 CAIRN_ETRUNCATED);
	assert_int_equal(decode_err(NULL, 0, NULL, NULL), CAIRN_ETRUNCATED);

	uint8_t wide[3 + 17];
	memset(wide, 0x01, sizeof(wide));
	wide[0] = 0xdc;
	wide[1] = 0;
	wide[2] = 17;
	assert_int_equal(decode_err(wide, sizeof(wide), NULL, NULL), CAIRN_ECOUNT);
	assert_int_equal(
	    decode_err(BYTES(0x93, 0x01, 0x07, 0x91, 0x91, 0x91, 0x91, 0xc0), &have_id, &used),
	    CAIRN_EDEPTH);
	assert_int_equal(have_id, 0);

	assert_int_equal(decode_err(BYTES(0x92, 0x01, 0x07, 0x00), NULL, NULL), CAIRN_ETRAILING);
	/* With USED, the same bytes are a message followed by the start of the next. */
	assert_int_equal(decode_err(BYTES(0x92, 0x01, 0x07, 0x00), &have_id, &used), 0);
	assert_int_equal(used, 3);
	assert_int_equal(have_id, 1);
}

/* The top level, type or request id is unusable: ETYPE and no id to answer with. */
static void test_type_errors_without_id(void **state)
{
	static const struct {
		uint8_t bytes[12];
		size_t len;
	} cases[] = {
	    {{0xc0}, 1},                                      /* not an array */
	    {{0x07}, 1},                                      /* not an array */
	    {{0x81, 0x01, 0x07}, 3},                          /* a map */
	    {{0x91, 0x01}, 2},                                /* one element */
	    {{0x90}, 1},                                      /* none */
	    {{0x92, 0xc0, 0x07}, 3},                          /* type nil */
	    {{0x92, 0xff, 0x07}, 3},                          /* type -1 */
	    {{0x92, 0xa1, 'x', 0x07}, 4},                     /* type a string */
	    {{0x92, 0x01, 0xc0}, 3},                          /* request id nil */
	    {{0x92, 0x01, 0xe0}, 3},                          /* request id -32 */
	    {{0x92, 0x01, 0xd0, 0x80}, 4},                    /* request id -128, int 8 */
	    {{0x92, 0x01, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0}, 11}, /* request id 2^32 */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int have_id = 5;
		size_t used = 0;
		int rc = decode_err(cases[i].bytes, cases[i].len, &have_id, &used);
		if (rc != CAIRN_ETYPE || have_id != 0 || used != cases[i].len)
			fail_msg("case %zu: rc %d have_id %d used %zu", i, rc, have_id, used);
	}
}

/* The request id is readable: ETYPE or EUNKNOWN with have_id, so the relay can reply. */
static void test_errors_with_id(void **state)
{
	static const struct {
		uint8_t bytes[64];
		size_t len;
		int rc;
	} cases[] = {
	    {{0x92, 0x13, 0x07}, 3, CAIRN_EUNKNOWN}, /* 19: the first type after POLICY */
	    {{0x92, 0x00, 0x07}, 3, CAIRN_EUNKNOWN},
	    {{0x92, 0x3f, 0x07}, 3, CAIRN_EUNKNOWN},
	    {{0x92, 0xcf, 0, 0, 0, 1, 0, 0, 0, 1, 0x07}, 11, CAIRN_EUNKNOWN}, /* 2^32 + 1 */
	    /* An unknown type is reported even when its arguments would be wrong. */
	    {{0x94, 0x4a, 0x07, 0xc0, 0xc0}, 5, CAIRN_EUNKNOWN},    /* 74 */
	    {{0x93, 0x01, 0x07, 0xc0}, 4, CAIRN_ETYPE},             /* PING with an argument */
	    {{0x92, 0x02, 0x07}, 3, CAIRN_ETYPE},                   /* CREATE without one */
	    {{0x93, 0x02, 0x07, 0xc4, 0x01, 0x11}, 6, CAIRN_ETYPE}, /* key of 1 byte */
	    {{0x93, 0x02, 0x07, 0xc0}, 4, CAIRN_ETYPE},             /* key nil */
	    {{0x93, 0x07, 0x07, 0xa1, 'x'}, 5, CAIRN_ETYPE},        /* id a string */
	    {{0x93, 0x42, 0x07, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0}, 12, CAIRN_ETYPE}, /* code 2^32 */
	    {{0x93, 0x44, 0x07, 0xc2}, 4, CAIRN_ETYPE},       /* END code false */
	    {{0x94, 0x43, 0x07, 0x01, 0xa0}, 5, CAIRN_ETYPE}, /* envelope a string */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int have_id = 0;
		size_t used = 0;
		struct cairn_msg m;
		int rc = cairn_msg_decode(cases[i].bytes, cases[i].len, &used, &m, &have_id);
		if (rc != cases[i].rc || have_id != 1 || used != cases[i].len || m.request_id != 7)
			fail_msg("case %zu: rc %d have_id %d used %zu", i, rc, have_id, used);
	}

	/* [type, 7, recipient_id, LAST]: an ACK whose envelope id is -1 or nil, a SECURE whose
	 * digest is nil, an INTAKE whose bits are out of range. */
	static const uint8_t tails[][2] = {{0x06, 0xff}, {0x06, 0xc0}, {0x04, 0xc0},
	                                   /* INTAKE with 0, 41 or nil bits of work */
	                                   {0x0d, 0x00}, {0x0d, 0x29}, {0x0d, 0xc0}};
	for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
		uint8_t buf[30] = {0x94, tails[i][0], 0x07, 0xc4, 24};
		memset(buf + 5, 0x22, 24);
		buf[29] = tails[i][1];
		int have_id = 0;
		size_t used = 0;
		struct cairn_msg m;
		assert_int_equal(cairn_msg_decode(buf, sizeof(buf), &used, &m, &have_id),
		                 CAIRN_ETYPE);
		assert_int_equal(have_id, 1);
		assert_int_equal(used, sizeof(buf));
		assert_non_null(m.recipient_id); /* the fields before the faulty one are kept */
	}
}

/* An oversize envelope is ETYPE, told apart by envelope_len so the relay can say `too big`. */
static void test_oversize_envelope(void **state)
{
	static uint8_t buf[CAIRN_MSG_ENCODED_MAX + 16];
	size_t pos = 0;
	buf[pos++] = 0x95;
	buf[pos++] = CAIRN_CMD_SEND;
	buf[pos++] = 0x07;
	buf[pos++] = 0xc4;
	buf[pos++] = 24;
	memset(buf + pos, 0x33, 24);
	pos += 24;
	buf[pos++] = 0xc0;
	buf[pos++] = 0xc5; /* bin 16 of CAIRN_ENVELOPE_MAX + 1 bytes */
	buf[pos++] = (CAIRN_ENVELOPE_MAX + 1) >> 8;
	buf[pos++] = (CAIRN_ENVELOPE_MAX + 1) & 0xff;
	memset(buf + pos, 0x68, CAIRN_ENVELOPE_MAX + 1);

	struct cairn_msg m;
	int have_id = 0;
	size_t used = 0;
	size_t len = pos + CAIRN_ENVELOPE_MAX + 1;
	assert_int_equal(cairn_msg_decode(buf, len, &used, &m, &have_id), CAIRN_ETYPE);
	assert_int_equal(have_id, 1);
	assert_int_equal(used, len);
	assert_int_equal(m.type, CAIRN_CMD_SEND);
	assert_int_equal(m.envelope_len, CAIRN_ENVELOPE_MAX + 1);
	assert_int_equal(cairn_wire_code(CAIRN_ETYPE), 1);

	/* One byte less is a valid SEND. */
	buf[pos - 1]--;
	assert_int_equal(cairn_msg_decode(buf, len - 1, &used, &m, &have_id), 0);
	assert_int_equal(m.envelope_len, CAIRN_ENVELOPE_MAX);
	/* Any other ETYPE leaves envelope_len at 0. */
	buf[3] = 0xc0;
	assert_int_equal(cairn_msg_decode(buf, len - 1, &used, &m, &have_id), CAIRN_ETYPE);
	assert_int_equal(m.envelope_len, 0);
}

/* ---- Lenient decoding, prefixes and batches --------------------------------------------- */

static void test_long_forms_accepted(void **state)
{
	struct cairn_msg m;
	const struct cairn_msg ping = {.type = CAIRN_CMD_PING, .request_id = 7};
	decode_ok(BYTES(0xdc, 0x00, 0x02, 0xcc, 0x01, 0xcd, 0x00, 0x07), &m);
	assert_msg_equal(&ping, &m);
	decode_ok(BYTES(0xdd, 0, 0, 0, 2, 0xcf, 0, 0, 0, 0, 0, 0, 0, 1, 0xce, 0, 0, 0, 7), &m);
	assert_msg_equal(&ping, &m);
	decode_ok(BYTES(0x92, 0xd0, 0x01, 0xd3, 0, 0, 0, 0, 0, 0, 0, 7), &m); /* signed forms */
	assert_msg_equal(&ping, &m);

	/* DELETE with its id in bin 32; ENVELOPE with its id as int 16 and bin 16 body. */
	uint8_t del[3 + 5 + 24] = {0x93, 0x07, 0x07, 0xc6, 0, 0, 0, 24};
	memset(del + 8, 0x22, 24);
	decode_ok(del, sizeof(del), &m);
	const struct cairn_msg want_del = {
	    .type = CAIRN_CMD_DELETE, .request_id = 7, .recipient_id = k22};
	assert_msg_equal(&want_del, &m);
	decode_ok(BYTES(0x94, 0x43, 0x07, 0xd1, 0x01, 0x00, 0xc5, 0x00, 0x01, 'h'), &m);
	assert_int_equal(m.envelope_id, 256);
	assert_int_equal(m.envelope_len, 1);
	assert_memory_equal(m.envelope, "h", 1);
}

/* Every proper prefix of every vector fails as truncated, with no side outputs. */
static void test_every_prefix_fails(void **state)
{
	for (size_t i = 0; i < VECTOR_COUNT; i++) {
		uint8_t hex[512];
		size_t len = mdvec_hex(vector_names[i], "hex", hex, sizeof(hex));
		for (size_t cut = 0; cut < len; cut++) {
			/* A heap copy of exactly CUT bytes, so ASan sees any read past it. */
			uint8_t *p = malloc(cut ? cut : 1);
			assert_non_null(p);
			memcpy(p, hex, cut);
			int have_id = 5;
			size_t used = 5;
			int rc = decode_err(p, cut, &have_id, &used);
			int rc2 = decode_err(p, cut, NULL, NULL);
			free(p);
			if (rc != CAIRN_ETRUNCATED || rc2 != CAIRN_ETRUNCATED || have_id != 0 ||
			    used != 0)
				fail_msg("%s cut at %zu: rc %d/%d", vector_names[i], cut, rc, rc2);
		}
	}
}

static void test_batch(void **state)
{
	static const uint8_t env[] = "batched";
	const struct cairn_msg msgs[] = {
	    {.type = CAIRN_CMD_PING, .request_id = 1},
	    {.type = CAIRN_CMD_SUBSCRIBE, .request_id = 2, .recipient_id = k22},
	    {.type = CAIRN_CMD_SEND,
	     .request_id = 3,
	     .sender_id = k33,
	     .credential = k55,
	     .envelope = env,
	     .envelope_len = sizeof(env)},
	    {.type = CAIRN_CMD_ACK, .request_id = 4, .recipient_id = k22, .envelope_id = 99},
	    {.type = CAIRN_CMD_CREATE, .request_id = 5, .recipient_key = k11},
	    {.type = CAIRN_REPLY_END, .request_id = 2, .code = 6},
	};
	const size_t count = sizeof(msgs) / sizeof(msgs[0]);
	uint8_t buf[1024];
	size_t len = 0;
	for (size_t i = 0; i < count; i++) {
		size_t n;
		assert_int_equal(cairn_msg_encode(&msgs[i], buf + len, sizeof(buf) - len, &n), 0);
		len += n;
		if (i == 2) { /* an unknown command in the middle */
			memcpy(buf + len, "\x93\x30\x09\xc0", 4);
			len += 4;
		}
	}

	size_t pos = 0, next = 0, unknown = 0;
	while (pos < len) {
		struct cairn_msg m;
		size_t used = 0;
		int have_id = 0;
		int rc = cairn_msg_decode(buf + pos, len - pos, &used, &m, &have_id);
		assert_true(used > 0);
		assert_int_equal(have_id, 1);
		if (rc == CAIRN_EUNKNOWN) {
			assert_int_equal(m.request_id, 9);
			unknown++;
		} else {
			assert_int_equal(rc, 0);
			assert_true(next < count);
			assert_msg_equal(&msgs[next], &m);
			next++;
		}
		pos += used;
	}
	assert_int_equal(pos, len);
	assert_int_equal(next, count);
	assert_int_equal(unknown, 1);
}

/* ---- No heap for hostile input ---------------------------------------------------------- */

/* Bytes the allocator has handed out: from ASan's allocator when it replaces glibc's. */
#if defined(__SANITIZE_ADDRESS__)
#define CODEC_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CODEC_TEST_ASAN 1
#endif
#endif

#ifdef CODEC_TEST_ASAN
/* From <sanitizer/allocator_interface.h>, which not every compiler installs. */
size_t __sanitizer_get_current_allocated_bytes(void);
static size_t heap_in_use(void)
{
	return __sanitizer_get_current_allocated_bytes();
}
#else
static size_t heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}
#endif

static void test_hostile_input_uses_no_heap(void **state)
{
	/* First prove the measure can see an allocation at all: if some other allocator is in
	 * use it cannot, and a check that cannot fail would prove nothing. */
	size_t before = heap_in_use();
	void *volatile probe = malloc(1 << 20);
	assert_non_null(probe);
	size_t during = heap_in_use();
	free(probe);
	if (during < before + (1 << 20))
		skip();

	static const struct {
		uint8_t bytes[16];
		size_t len;
	} hostile[] = {
	    {{0xdd, 0x00, 0xff, 0xff, 0xff}, 5},
	    {{0xdd, 0xff, 0xff, 0xff, 0xff}, 5},
	    {{0xdf, 0xff, 0xff, 0xff, 0xff}, 5},
	    {{0x92, 0x01, 0xdd, 0x00, 0xff, 0xff, 0xff}, 7},
	    {{0x93, 0x08, 0x07, 0xc6, 0xff, 0xff, 0xff, 0xff}, 8},
	    {{0x93, 0x08, 0x07, 0xdb, 0xff, 0xff, 0xff, 0xff}, 8},
	    {{0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0xc0}, 10},
	};
	int results[sizeof(hostile) / sizeof(hostile[0])];
	before = heap_in_use();
	for (unsigned rep = 0; rep < 1000; rep++) {
		for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
			struct cairn_msg m;
			size_t used;
			int have_id;
			results[i] =
			    cairn_msg_decode(hostile[i].bytes, hostile[i].len, &used, &m, &have_id);
		}
	}
	size_t after = heap_in_use();
	assert_int_equal(after, before);
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++)
		assert_int_equal(results[i], i < 6 ? CAIRN_ETRUNCATED : CAIRN_EDEPTH);
}

/* ---- Helpers ---------------------------------------------------------------------------- */

static void test_wire_codes_and_names(void **state)
{
	for (int c = 1; c <= CAIRN_WIRE_ERROR_MAX; c++) {
		assert_int_equal(cairn_wire_code(-c), c);
		assert_int_equal(cairn_wire_error((uint32_t)c), -c);
	}
	assert_int_equal(cairn_wire_code(CAIRN_EDENIED), 3);
	assert_int_equal(cairn_wire_code(CAIRN_EUNKNOWN), 2);
	assert_int_equal(cairn_wire_code(CAIRN_ETRUNCATED), 1);
	assert_int_equal(cairn_wire_code(CAIRN_EDEPTH), 1);
	assert_int_equal(cairn_wire_code(0), 0);
	assert_int_equal(cairn_wire_code(CAIRN_ENOMEM), 0);
	assert_int_equal(cairn_wire_code(-16), 0);
	assert_int_equal(cairn_wire_error(0), 0);
	assert_int_equal(cairn_wire_error(CAIRN_WIRE_ERROR_MAX + 1), CAIRN_EINVAL);
	assert_int_equal(cairn_wire_error(UINT32_MAX), CAIRN_EINVAL);

	assert_string_equal(cairn_msg_type_name(CAIRN_CMD_SEND), "SEND");
	assert_string_equal(cairn_msg_type_name(CAIRN_REPLY_ENVELOPE), "ENVELOPE");
	assert_string_equal(cairn_msg_type_name(CAIRN_CMD_PING), "PING");
	assert_string_equal(cairn_msg_type_name(0), "?");
	assert_string_equal(cairn_msg_type_name(-1), "?");
	assert_string_equal(cairn_msg_type_name(72), "SEALED");
	assert_string_equal(cairn_msg_type_name(73), "POLICY");
	assert_string_equal(cairn_msg_type_name(74), "?");
}

/* ---- Group logs: the vectors of PROTOCOL.md 5.9 and their wrong forms ------------------- */

static const char *const group_vector_names[] = {
    "group/log-create", "group/log-append", "group/log-read",  "group/log-delete",
    "group/appended",   "group/log-state",  "group/log-entry",
};

static void test_group_vectors(void **state)
{
	(void)state;
	uint8_t seen[256] = {0};
	for (size_t i = 0; i < sizeof(group_vector_names) / sizeof(group_vector_names[0]); i++)
		seen[check_vector(group_vector_names[i])] = 1;
	for (int t = CAIRN_CMD_LOG_CREATE; t <= CAIRN_CMD_LOG_DELETE; t++)
		assert_int_equal(seen[t], 1);
	for (int t = CAIRN_REPLY_APPENDED; t <= CAIRN_REPLY_LOG_ENTRY; t++)
		assert_int_equal(seen[t], 1);
	assert_string_equal(cairn_msg_type_name(CAIRN_CMD_LOG_APPEND), "LOG_APPEND");
	assert_string_equal(cairn_msg_type_name(CAIRN_REPLY_LOG_ENTRY), "LOG_ENTRY");
}

/* Decodes the spec's vector NAME with byte OFF replaced by BYTE (or cut to CUT bytes when
 * CUT is non-zero) and returns the result, with the message read so far in *M. */
static int group_mutant(const char *name, size_t off, int byte, size_t cut, struct cairn_msg *m,
                        int *have_id)
{
	static uint8_t hex[512];
	size_t len = mdvec_hex(name, "hex", hex, sizeof(hex));
	if (byte >= 0)
		hex[off] = (uint8_t)byte;
	if (cut > 0)
		len = cut;
	size_t used;
	return cairn_msg_decode(hex, len, &used, m, have_id);
}

static void test_group_wrong_forms(void **state)
{
	(void)state;
	struct cairn_msg m;
	int have_id;
	/* follow 2 (the last byte of log-read): `bad request`. */
	assert_int_equal(group_mutant("group/log-read", 40, 0x02, 0, &m, &have_id), CAIRN_ETYPE);
	assert_int_equal(have_id, 1);
	assert_int_equal(m.type, CAIRN_CMD_LOG_READ);
	/* A log id of 23 bytes (its length byte, at 5 after [0x95, 0x0b, cd 01 2c]). */
	assert_int_equal(group_mutant("group/log-read", 6, 0x17, 0, &m, &have_id), CAIRN_ETYPE);
	/* A delete secret of 31 bytes (c4 20 at offset 29, cut one byte shorter). */
	assert_int_equal(group_mutant("group/log-delete", 30, 0x1f, 62, &m, &have_id), CAIRN_ETYPE);
	/* follow as bin; from_seq negative (int 64 with its sign bit). */
	assert_int_equal(group_mutant("group/log-read", 40, 0xc0, 0, &m, &have_id), CAIRN_ETYPE);
	assert_int_equal(group_mutant("group/log-read", 31, 0xd3, 0, &m, &have_id), 0);
	assert_int_equal(m.seq, 1ull << 32);
	uint8_t neg[64];
	size_t neglen = mdvec_hex("group/log-read", "hex", neg, sizeof(neg));
	neg[31] = 0xd3;
	neg[32] = 0x80;
	assert_int_equal(cairn_msg_decode(neg, neglen, NULL, &m, &have_id), CAIRN_ETYPE);
	/* One argument missing: LOG_DELETE's array of 4 made 3 (the secret then follows it). */
	assert_int_equal(group_mutant("group/log-delete", 0, 0x93, 0, &m, &have_id), CAIRN_ETYPE);
	assert_int_equal(have_id, 1);
	/* Every strict prefix fails without a message. */
	for (size_t i = 0; i < sizeof(group_vector_names) / sizeof(group_vector_names[0]); i++) {
		uint8_t hex[512];
		size_t len = mdvec_hex(group_vector_names[i], "hex", hex, sizeof(hex));
		for (size_t cut = 1; cut < len; cut++)
			assert_int_not_equal(
			    group_mutant(group_vector_names[i], 0, -1, cut, &m, &have_id), 0);
	}
	uint8_t buf[512]; /* a trailing byte after one message */
	size_t len = mdvec_hex("group/log-append", "hex", buf, sizeof(buf) - 1);
	buf[len] = 0xc0;
	assert_int_equal(cairn_msg_decode(buf, len + 1, NULL, &m, NULL), CAIRN_ETRAILING);

	/* 16384 bytes of entry decode; one more is `too big` (envelope_len), none `bad request`. */
	static uint8_t big[CAIRN_MSG_ENCODED_MAX + 1], entry[CAIRN_LOG_ENTRY_MAX + 1];
	const uint8_t *id = k22, *cred = k55; /* a log id and a credential */
	struct cairn_msg e = {.type = CAIRN_CMD_LOG_APPEND,
	                      .log_id = id,
	                      .credential = cred,
	                      .envelope = entry,
	                      .envelope_len = CAIRN_LOG_ENTRY_MAX};
	assert_int_equal(cairn_msg_encode(&e, big, sizeof(big), &len), 0);
	size_t head = len - CAIRN_LOG_ENTRY_MAX - 3; /* c5 40 00 */
	assert_int_equal(cairn_msg_decode(big, len, NULL, &m, &have_id), 0);
	big[head + 2] = 0x01; /* 16385 */
	assert_int_equal(cairn_msg_decode(big, len + 1, NULL, &m, &have_id), CAIRN_ETYPE);
	assert_int_equal(m.type, CAIRN_CMD_LOG_APPEND);
	assert_int_equal(m.envelope_len, CAIRN_LOG_ENTRY_MAX + 1);
	memcpy(big + head, "\xc4\x00", 2);
	assert_int_equal(cairn_msg_decode(big, head + 2, NULL, &m, &have_id), CAIRN_ETYPE);
	assert_int_equal(have_id, 1);
	assert_int_equal(m.envelope_len, 0);

	/* The encoder refuses what the decoder would: no log id, an empty or oversized entry,
	 * follow 2, a missing digest. */
	uint8_t out[CAIRN_MSG_ENCODED_MAX];
	e.envelope_len = 0;
	assert_int_equal(cairn_msg_encode(&e, out, sizeof(out), &len), CAIRN_EINVAL);
	e.envelope_len = CAIRN_LOG_ENTRY_MAX + 1;
	assert_int_equal(cairn_msg_encode(&e, out, sizeof(out), &len), CAIRN_EINVAL);
	e.envelope_len = CAIRN_LOG_ENTRY_MAX;
	assert_int_equal(cairn_msg_encode(&e, out, sizeof(out), &len), 0);
	e.log_id = NULL;
	assert_int_equal(cairn_msg_encode(&e, out, sizeof(out), &len), CAIRN_EINVAL);
	e = (struct cairn_msg){.type = CAIRN_CMD_LOG_READ, .log_id = id, .follow = 2};
	assert_int_equal(cairn_msg_encode(&e, out, sizeof(out), &len), CAIRN_EINVAL);
	e = (struct cairn_msg){.type = CAIRN_CMD_LOG_CREATE, .log_id = id, .credential = cred};
	assert_int_equal(cairn_msg_encode(&e, out, sizeof(out), &len), CAIRN_EINVAL);
	e = (struct cairn_msg){.type = CAIRN_CMD_LOG_DELETE, .log_id = id};
	assert_int_equal(cairn_msg_encode(&e, out, sizeof(out), &len), CAIRN_EINVAL);
	/* Round trips at the integer edges. */
	e = (struct cairn_msg){
	    .type = CAIRN_REPLY_LOG_STATE, .request_id = UINT32_MAX, .first_seq = UINT64_MAX};
	roundtrip(&e);
	e = (struct cairn_msg){.type = CAIRN_CMD_LOG_READ, .log_id = id, .seq = 0, .follow = 0};
	roundtrip(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_spec_vectors),
	    cmocka_unit_test(test_roundtrip_edges),
	    cmocka_unit_test(test_encode_errors),
	    cmocka_unit_test(test_reply_fast_path),
	    cmocka_unit_test(test_structural_errors),
	    cmocka_unit_test(test_type_errors_without_id),
	    cmocka_unit_test(test_errors_with_id),
	    cmocka_unit_test(test_oversize_envelope),
	    cmocka_unit_test(test_long_forms_accepted),
	    cmocka_unit_test(test_every_prefix_fails),
	    cmocka_unit_test(test_batch),
	    cmocka_unit_test(test_hostile_input_uses_no_heap),
	    cmocka_unit_test(test_wire_codes_and_names),
	    cmocka_unit_test(test_group_vectors),
	    cmocka_unit_test(test_group_wrong_forms),
	};
	return cmocka_run_group_tests(tests, fill_keys, NULL);
}
