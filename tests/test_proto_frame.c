/* SPDX-License-Identifier: MIT */
/*
 * Frames: sealing and opening with bucket and fixed padding, the rejection of bad lengths,
 * padding and keys, the incremental reader under every way of splitting a stream, and the
 * frame/ping vector of docs/PROTOCOL.md section 4.2.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "frame.h"
#include "mdvec.h"

#define WIRE_MAX (CAIRN_FRAME_HEADER_LEN + CAIRN_NOISE_MSG_MAX)

static uint8_t wire[WIRE_MAX];
static uint8_t opened[CAIRN_NOISE_MSG_MAX];
static uint8_t content[CAIRN_FRAME_CONTENT_MAX + 1];

/* xorshift64: deterministic, so a failure reproduces. */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void fill(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rng();
}

static void cipher_pair(struct noise_cipher *tx, struct noise_cipher *rx)
{
	uint8_t k[CAIRN_KEY_LEN];
	memset(k, 0x5a, sizeof(k));
	noise_cipher_init(tx, k);
	noise_cipher_init(rx, k);
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

/* Seals CLEN bytes, checks the wire size and prefix, opens, and checks the content. */
static void roundtrip(struct noise_cipher *tx, struct noise_cipher *rx, size_t clen, size_t fixed,
                      size_t expect_pt)
{
	fill(content, clen);
	assert_int_equal(frame_plaintext_len(clen, fixed), expect_pt);
	size_t n = 0;
	assert_int_equal(frame_seal(tx, content, clen, fixed, wire, sizeof(wire), &n), 0);
	assert_int_equal(n, frame_wire_len(clen, fixed));
	assert_int_equal(n, CAIRN_FRAME_HEADER_LEN + expect_pt + CAIRN_AEAD_TAG_LEN);
	assert_int_equal(be16(wire), n - CAIRN_FRAME_HEADER_LEN);

	const uint8_t *c = NULL;
	size_t got = 0;
	assert_int_equal(frame_open(rx, wire + CAIRN_FRAME_HEADER_LEN, n - CAIRN_FRAME_HEADER_LEN,
	                            opened, sizeof(opened), &c, &got),
	                 0);
	assert_int_equal(got, clen);
	assert_ptr_equal(c, opened + CAIRN_FRAME_CONTENT_HEADER);
	if (clen > 0)
		assert_memory_equal(c, content, clen);
}

static void test_bucket_roundtrip(void **state)
{
	struct noise_cipher tx, rx;
	cipher_pair(&tx, &rx);
	static const struct {
		size_t clen, pt;
	} cases[] = {
	    {0, 256},       {1, 256},       {100, 256},     {253, 256},
	    {254, 256},     {255, 1024},    {256, 1024},    {1022, 1024},
	    {1023, 4096},   {4094, 4096},   {4095, 16896},  {16894, 16896},
	    {16895, 65519}, {40000, 65519}, {65516, 65519}, {65517, 65519},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		roundtrip(&tx, &rx, cases[i].clen, 0, cases[i].pt);
	for (int i = 0; i < 200; i++) {
		size_t clen = (size_t)(rng() % (CAIRN_FRAME_CONTENT_MAX + 1));
		if (i % 2)
			clen %= 5000; /* exercise the small buckets as often as the big one */
		size_t pt = frame_plaintext_len(clen, 0);
		assert_true(pt >= clen + 2);
		roundtrip(&tx, &rx, clen, 0, pt);
	}
	/* Both ends advanced their nonces in step. */
	assert_int_equal(tx.n, rx.n);
	assert_int_equal(tx.n, 216);

	/* One byte too many for any frame. */
	size_t n = 1;
	assert_int_equal(frame_plaintext_len(CAIRN_FRAME_CONTENT_MAX + 1, 0), 0);
	assert_int_equal(frame_wire_len(CAIRN_FRAME_CONTENT_MAX + 1, 0), 0);
	assert_int_equal(
	    frame_seal(&tx, content, CAIRN_FRAME_CONTENT_MAX + 1, 0, wire, sizeof(wire), &n),
	    CAIRN_EINVAL);
	assert_int_equal(n, 0);
	assert_int_equal(frame_wire_len(SIZE_MAX, 0), 0);
}

static void test_fixed_roundtrip(void **state)
{
	struct noise_cipher tx, rx;
	cipher_pair(&tx, &rx);
	static const size_t sizes[] = {CAIRN_FRAME_FIXED_MIN, 20000, CAIRN_FRAME_PLAINTEXT_MAX};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t fixed = sizes[i];
		roundtrip(&tx, &rx, 0, fixed, fixed);
		roundtrip(&tx, &rx, 1, fixed, fixed);
		roundtrip(&tx, &rx, 300, fixed, fixed);
		roundtrip(&tx, &rx, fixed - 2, fixed, fixed);
		size_t n = 1;
		assert_int_equal(frame_plaintext_len(fixed - 1, fixed), 0);
		assert_int_equal(frame_seal(&tx, content, fixed - 1, fixed, wire, sizeof(wire), &n),
		                 CAIRN_EINVAL);
		assert_int_equal(n, 0);
	}
	size_t n = 0;
	assert_int_equal(frame_plaintext_len(10, CAIRN_FRAME_FIXED_MIN - 1), 0);
	assert_int_equal(frame_plaintext_len(10, CAIRN_FRAME_PLAINTEXT_MAX + 1), 0);
	assert_int_equal(
	    frame_seal(&tx, content, 10, CAIRN_FRAME_FIXED_MIN - 1, wire, sizeof(wire), &n),
	    CAIRN_EINVAL);
	assert_int_equal(frame_seal(&tx, content, 10, 1024, wire, sizeof(wire), &n), CAIRN_EINVAL);
	assert_int_equal(
	    frame_seal(&tx, content, 10, CAIRN_FRAME_PLAINTEXT_MAX + 1, wire, sizeof(wire), &n),
	    CAIRN_EINVAL);
}

static void test_seal_errors(void **state)
{
	struct noise_cipher tx, rx;
	cipher_pair(&tx, &rx);
	size_t n = 1;
	/* One byte short of the 274-byte frame. */
	assert_int_equal(frame_seal(&tx, content, 5, 0, wire, 273, &n), CAIRN_ENOBUFS);
	assert_int_equal(n, 0);
	assert_int_equal(tx.n, 0);
	assert_int_equal(frame_seal(&tx, content, 5, 0, wire, 274, &n), 0);
	assert_int_equal(n, 274);

	/* Nonce exhaustion: an error, and no plaintext left in the output. */
	memset(content, 0xee, 200);
	tx.n = UINT64_MAX;
	assert_int_equal(frame_seal(&tx, content, 200, 0, wire, sizeof(wire), &n), CAIRN_ENONCE);
	for (size_t i = 0; i < 274; i++)
		assert_int_equal(wire[i], 0);

	struct noise_cipher nokey;
	memset(&nokey, 0, sizeof(nokey));
	assert_int_equal(frame_seal(&nokey, content, 5, 0, wire, sizeof(wire), &n), CAIRN_EINVAL);
}

static void test_empty_content(void **state)
{
	struct noise_cipher tx, rx;
	cipher_pair(&tx, &rx);
	size_t n = 0;
	assert_int_equal(frame_seal(&tx, NULL, 0, 0, wire, sizeof(wire), &n), 0);
	assert_int_equal(n, 274);
	const uint8_t *c = NULL;
	size_t clen = 99;
	assert_int_equal(frame_open(&rx, wire + 2, n - 2, opened, sizeof(opened), &c, &clen), 0);
	assert_int_equal(clen, 0);
	assert_non_null(c);
}

/* Encrypts a hand-made plaintext as a frame body, bypassing frame_seal's own checks. */
static size_t encrypt_raw(struct noise_cipher *tx, const uint8_t *pt, size_t ptlen, uint8_t *out)
{
	size_t n = 0;
	assert_int_equal(noise_cipher_encrypt(tx, NULL, 0, pt, ptlen, out, CAIRN_NOISE_MSG_MAX, &n),
	                 0);
	assert_int_equal(n, ptlen + CAIRN_AEAD_TAG_LEN);
	return n;
}

static int open_raw(const uint8_t *pt, size_t ptlen, const uint8_t **c, size_t *clen)
{
	struct noise_cipher tx, rx;
	cipher_pair(&tx, &rx);
	uint8_t *msg = wire;
	size_t n = encrypt_raw(&tx, pt, ptlen, msg);
	/* Opened in place, which the API allows. */
	return frame_open(&rx, msg, n, msg, n, c, clen);
}

static void test_open_padding(void **state)
{
	uint8_t pt[256];
	const uint8_t *c = NULL;
	size_t clen = 0;

	/* Well formed: content_length 3, zero padding. */
	memset(pt, 0, sizeof(pt));
	pt[1] = 3;
	pt[2] = 'a';
	pt[3] = 'b';
	pt[4] = 'c';
	assert_int_equal(open_raw(pt, sizeof(pt), &c, &clen), 0);
	assert_int_equal(clen, 3);
	assert_memory_equal(c, "abc", 3);

	/* A non-zero byte anywhere in the padding, first or last or between. */
	static const size_t bad_at[] = {5, 100, 255};
	for (size_t i = 0; i < sizeof(bad_at) / sizeof(bad_at[0]); i++) {
		uint8_t p2[256];
		memcpy(p2, pt, sizeof(p2));
		p2[bad_at[i]] = 0x01;
		c = (const uint8_t *)"x";
		clen = 7;
		assert_int_equal(open_raw(p2, sizeof(p2), &c, &clen), CAIRN_EPADDING);
		assert_null(c);
		assert_int_equal(clen, 0);
	}

	/* Padding longer than the block of zeros it is compared with (1 KiB): a non-zero byte
	 * in the first block, across a block's edge, in a later one, or last. */
	static uint8_t big[4096];
	static const size_t big_bad_at[] = {5, 1029, 1030, 2100, 4095};
	memset(big, 0, sizeof(big));
	big[1] = 3;
	assert_int_equal(open_raw(big, sizeof(big), &c, &clen), 0);
	assert_int_equal(clen, 3);
	for (size_t i = 0; i < sizeof(big_bad_at) / sizeof(big_bad_at[0]); i++) {
		big[big_bad_at[i]] = 0x80;
		assert_int_equal(open_raw(big, sizeof(big), &c, &clen), CAIRN_EPADDING);
		big[big_bad_at[i]] = 0;
	}

	/* content_length exactly len - 2 is fine (no padding); one more is not. */
	memset(pt, 0x11, sizeof(pt));
	pt[0] = 0;
	pt[1] = 254;
	assert_int_equal(open_raw(pt, sizeof(pt), &c, &clen), 0);
	assert_int_equal(clen, 254);
	pt[1] = 255;
	assert_int_equal(open_raw(pt, sizeof(pt), &c, &clen), CAIRN_EPADDING);
	pt[0] = 0xff;
	pt[1] = 0xff;
	assert_int_equal(open_raw(pt, sizeof(pt), &c, &clen), CAIRN_EPADDING);

	/* Receivers accept any padding length, not only the buckets. */
	uint8_t odd[7] = {0, 2, 'h', 'i', 0, 0, 0};
	assert_int_equal(open_raw(odd, sizeof(odd), &c, &clen), 0);
	assert_int_equal(clen, 2);
	assert_memory_equal(c, "hi", 2);

	/* The smallest plaintext, a bare content header (an 18-byte frame). */
	uint8_t bare[2] = {0, 0};
	assert_int_equal(open_raw(bare, sizeof(bare), &c, &clen), 0);
	assert_int_equal(clen, 0);
	bare[1] = 1;
	assert_int_equal(open_raw(bare, sizeof(bare), &c, &clen), CAIRN_EPADDING);
}

static void test_open_errors(void **state)
{
	struct noise_cipher tx, rx;
	cipher_pair(&tx, &rx);
	const uint8_t *c = NULL;
	size_t clen = 0, n = 0;
	assert_int_equal(frame_seal(&tx, (const uint8_t *)"ping", 4, 0, wire, sizeof(wire), &n), 0);
	uint8_t *msg = wire + 2;
	size_t mlen = n - 2;

	/* Wrong key. */
	struct noise_cipher other;
	uint8_t k[CAIRN_KEY_LEN];
	memset(k, 0x5b, sizeof(k));
	noise_cipher_init(&other, k);
	assert_int_equal(frame_open(&other, msg, mlen, opened, sizeof(opened), &c, &clen),
	                 CAIRN_EAUTH);
	assert_null(c);
	assert_int_equal(other.n, 0);

	/* Wrong nonce (a frame skipped or replayed). */
	rx.n = 1;
	assert_int_equal(frame_open(&rx, msg, mlen, opened, sizeof(opened), &c, &clen),
	                 CAIRN_EAUTH);
	rx.n = 0;

	/* Tampered ciphertext, tampered tag. */
	msg[10] ^= 1;
	assert_int_equal(frame_open(&rx, msg, mlen, opened, sizeof(opened), &c, &clen),
	                 CAIRN_EAUTH);
	msg[10] ^= 1;
	msg[mlen - 1] ^= 0x80;
	assert_int_equal(frame_open(&rx, msg, mlen, opened, sizeof(opened), &c, &clen),
	                 CAIRN_EAUTH);
	msg[mlen - 1] ^= 0x80;

	/* Too short to hold a tag and a content header; too long for a Noise message. */
	assert_int_equal(frame_open(&rx, msg, 17, opened, sizeof(opened), &c, &clen), CAIRN_EFRAME);
	assert_int_equal(frame_open(&rx, msg, 0, opened, sizeof(opened), &c, &clen), CAIRN_EFRAME);
	assert_int_equal(
	    frame_open(&rx, wire, CAIRN_NOISE_MSG_MAX + 1, opened, sizeof(opened), &c, &clen),
	    CAIRN_EFRAME);

	/* Output too small. */
	assert_int_equal(frame_open(&rx, msg, mlen, opened, mlen - 17, &c, &clen), CAIRN_ENOBUFS);

	/* All of the above left the receiver's nonce alone, so the frame still opens. */
	assert_int_equal(frame_open(&rx, msg, mlen, opened, mlen - 16, &c, &clen), 0);
	assert_int_equal(clen, 4);
	assert_memory_equal(c, "ping", 4);
	assert_int_equal(rx.n, 1);
}

/* ---- reader ------------------------------------------------------------------------------ */

#define STREAM_FRAMES 60

struct stream {
	uint8_t *bytes;
	size_t len;
	size_t off[STREAM_FRAMES]; /* offset of each Noise message in bytes */
	size_t mlen[STREAM_FRAMES];
};

static void stream_build(struct stream *s)
{
	struct noise_cipher tx, rx;
	cipher_pair(&tx, &rx);
	size_t cap = 0;
	size_t sizes[STREAM_FRAMES];
	for (size_t i = 0; i < STREAM_FRAMES; i++) {
		size_t r = (size_t)rng();
		sizes[i] = (i % 10 == 9) ? r % (CAIRN_FRAME_CONTENT_MAX + 1) : r % 300;
		cap += frame_wire_len(sizes[i], 0);
	}
	s->bytes = malloc(cap);
	assert_non_null(s->bytes);
	s->len = 0;
	for (size_t i = 0; i < STREAM_FRAMES; i++) {
		fill(content, sizes[i]);
		size_t n = 0;
		assert_int_equal(
		    frame_seal(&tx, content, sizes[i], 0, s->bytes + s->len, cap - s->len, &n), 0);
		s->off[i] = s->len + CAIRN_FRAME_HEADER_LEN;
		s->mlen[i] = n - CAIRN_FRAME_HEADER_LEN;
		s->len += n;
	}
	assert_int_equal(s->len, cap);
}

/* ---- packing a batch into frames ------------------------------------------------------ */

/* Appends a msgpack bin8/bin16 object whose encoding is TOTAL bytes long. */
static size_t put_object(uint8_t *p, size_t total)
{
	if (total <= 2 + 255) {
		p[0] = 0xc4;
		p[1] = (uint8_t)(total - 2);
		memset(p + 2, 0xab, total - 2);
	} else {
		p[0] = 0xc5;
		p[1] = (uint8_t)((total - 3) >> 8);
		p[2] = (uint8_t)(total - 3);
		memset(p + 3, 0xab, total - 3);
	}
	return total;
}

/* Plaintext bytes spent on BATCH (N objects of SIZE bytes) cut by frame_split. */
static size_t packed_bytes(size_t n, size_t size, size_t fixed, size_t *frames)
{
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += put_object(content + len, size);
	size_t done = 0, spent = 0;
	*frames = 0;
	while (done < len) {
		size_t take = frame_split(content + done, len - done, fixed);
		assert_true(take > 0 && take % size == 0);
		spent += frame_plaintext_len(take, fixed);
		done += take;
		(*frames)++;
	}
	return spent;
}

static void test_split(void **state)
{
	(void)state;
	size_t frames;
	assert_int_equal(frame_split(content, 0, 0), 0);
	/* Five 1100-byte commands fit one 16896-byte frame, but two 4096-byte frames pad less. */
	assert_int_equal(packed_bytes(5, 1100, 0, &frames), 2 * 4096);
	assert_int_equal(frames, 2);
	/* Sixty fill the largest bucket well: one frame. */
	assert_int_equal(packed_bytes(59, 1100, 0, &frames), 65519);
	assert_int_equal(frames, 1);
	/* 10,000 bytes of tiny replies: full small frames beat one 16896-byte frame. */
	assert_true(packed_bytes(1000, 10, 0, &frames) <= 10 * 1024);
	/* The batches DELIVERs of 1 KiB envelopes make, up to a frame's worth (what the content
	 * buffer holds): never more padding than one frame would have, and from 13 on (past the
	 * 16896 bucket) under a quarter. */
	for (size_t n = 1; n * 1090 <= sizeof(content); n++) {
		size_t spent = packed_bytes(n, 1090, 0, &frames);
		size_t one = frame_plaintext_len(n * 1090, 0);
		assert_true(one == 0 || spent <= one);
		if (n >= 13)
			assert_true(spent * 4 <= n * 1090 * 5);
	}
	/* Fixed size: as many as fit, in order. */
	assert_int_equal(packed_bytes(40, 1100, 16896, &frames), 3 * 16896);
	/* A malformed or oversized first object cannot be cut. */
	content[0] = 0xc1;
	assert_int_equal(frame_split(content, 10, 0), 0);
	put_object(content, 300);
	assert_int_equal(frame_split(content, 299, 0), 0); /* truncated */
	assert_int_equal(frame_split(content, 300, 0), 300);
}

/*
 * Feeds the stream in chunks whose sizes come from NEXT_CHUNK and checks every frame against
 * the one sealed. Returns how many frames were handed out without a copy.
 */
static size_t stream_feed(const struct stream *s, size_t (*next_chunk)(size_t remaining))
{
	struct frame_reader r;
	frame_reader_init(&r, 18, CAIRN_NOISE_MSG_MAX);
	size_t pos = 0, frames = 0, zero_copy = 0;
	while (pos < s->len) {
		size_t chunk = next_chunk(s->len - pos);
		const uint8_t *in = s->bytes + pos;
		size_t off = 0;
		while (off < chunk) {
			size_t used = 0, flen = 0;
			const uint8_t *f = NULL;
			int rc = frame_reader_next(&r, in + off, chunk - off, &used, &f, &flen);
			assert_true(rc == 0 || rc == 1);
			assert_true(used <= chunk - off);
			/* Memory never exceeds twice what is buffered, or the first block. */
			assert_true(frame_reader_memory(&r) <=
			                (r.body_have * 2 > 256 ? r.body_have * 2 : 256) ||
			            rc == 1);
			off += used;
			if (rc == 1) {
				assert_true(frames < STREAM_FRAMES);
				assert_int_equal(flen, s->mlen[frames]);
				assert_memory_equal(f, s->bytes + s->off[frames], flen);
				if (f == s->bytes + s->off[frames])
					zero_copy++;
				else
					assert_ptr_equal(f, r.buf);
				frames++;
				assert_true(frame_reader_idle(&r));
			} else {
				/* Without a complete frame, the whole chunk was taken. */
				assert_int_equal(off, chunk);
			}
		}
		pos += chunk;
	}
	assert_int_equal(frames, STREAM_FRAMES);
	assert_true(frame_reader_idle(&r));
	/* The next call (even with no input) releases a buffer that held the last frame. */
	size_t used = 9, flen = 9;
	const uint8_t *f = NULL;
	assert_int_equal(frame_reader_next(&r, NULL, 0, &used, &f, &flen), 0);
	assert_int_equal(used, 0);
	assert_int_equal(frame_reader_memory(&r), 0);
	frame_reader_free(&r);
	frame_reader_free(&r);
	return zero_copy;
}

static size_t chunk_all(size_t remaining)
{
	return remaining;
}

static size_t chunk_one(size_t remaining)
{
	return 1;
}

static size_t chunk_random(size_t remaining)
{
	size_t c;
	switch (rng() % 4) {
	case 0:
		c = 1 + rng() % 3;
		break;
	case 1:
		c = 1 + rng() % 300;
		break;
	default:
		c = 1 + rng() % 70000;
		break;
	}
	return c < remaining ? c : remaining;
}

static void test_reader_splits(void **state)
{
	struct stream s;
	stream_build(&s);
	/* All at once: every frame comes straight out of the input. */
	assert_int_equal(stream_feed(&s, chunk_all), STREAM_FRAMES);
	/* A byte at a time: none can. */
	assert_int_equal(stream_feed(&s, chunk_one), 0);
	for (int i = 0; i < 20; i++)
		(void)stream_feed(&s, chunk_random);
	free(s.bytes);
}

static void test_reader_claimed_length(void **state)
{
	struct frame_reader r;
	frame_reader_init(&r, 18, CAIRN_NOISE_MSG_MAX);
	uint8_t in[3] = {0xff, 0xff, 0xab};
	size_t used = 0, flen = 0;
	const uint8_t *f = NULL;
	assert_int_equal(frame_reader_next(&r, in, sizeof(in), &used, &f, &flen), 0);
	assert_int_equal(used, 3);
	assert_null(f);
	assert_false(frame_reader_idle(&r));
	assert_true(frame_reader_memory(&r) > 0);
	assert_true(frame_reader_memory(&r) <= 256);

	/* Growth follows the bytes received, doubling, capped at the declared length. */
	static uint8_t body[CAIRN_NOISE_MSG_MAX];
	fill(body, sizeof(body));
	body[0] = 0xab;
	size_t have = 1;
	while (have < 5000) {
		assert_int_equal(frame_reader_next(&r, body + have, 100, &used, &f, &flen), 0);
		have += used;
		assert_true(frame_reader_memory(&r) >= have);
		assert_true(frame_reader_memory(&r) <= (2 * have > 256 ? 2 * have : 256));
	}
	assert_int_equal(frame_reader_next(&r, body + have, sizeof(body) - have, &used, &f, &flen),
	                 1);
	assert_int_equal(used, sizeof(body) - have);
	assert_int_equal(flen, CAIRN_NOISE_MSG_MAX);
	assert_memory_equal(f, body, flen);
	assert_int_equal(frame_reader_memory(&r), CAIRN_NOISE_MSG_MAX);
	assert_true(frame_reader_idle(&r));
	frame_reader_free(&r);
	assert_int_equal(frame_reader_memory(&r), 0);

	/* A small frame split in two never allocates more than the frame. */
	frame_reader_init(&r, 18, CAIRN_NOISE_MSG_MAX);
	uint8_t small[2 + 20] = {0, 20};
	assert_int_equal(frame_reader_next(&r, small, 5, &used, &f, &flen), 0);
	assert_int_equal(frame_reader_memory(&r), 20);
	assert_int_equal(frame_reader_next(&r, small + 5, 17, &used, &f, &flen), 1);
	assert_int_equal(flen, 20);
	frame_reader_free(&r);
}

static void test_reader_limits(void **state)
{
	struct frame_reader r;
	size_t used = 0, flen = 0;
	const uint8_t *f = NULL;

	/* Below the transport minimum of 18, rejected on the header alone. */
	frame_reader_init(&r, 18, CAIRN_NOISE_MSG_MAX);
	uint8_t short_hdr[4] = {0x00, 0x11, 0, 0};
	assert_int_equal(frame_reader_next(&r, short_hdr, sizeof(short_hdr), &used, &f, &flen),
	                 CAIRN_EFRAME);
	assert_int_equal(used, 2);
	assert_int_equal(frame_reader_memory(&r), 0);
	/* And it stays rejected. */
	assert_int_equal(frame_reader_next(&r, short_hdr + 2, 2, &used, &f, &flen), CAIRN_EFRAME);
	frame_reader_free(&r);

	/* Zero length is never a frame. */
	frame_reader_init(&r, 18, CAIRN_NOISE_MSG_MAX);
	uint8_t zero_hdr[2] = {0, 0};
	assert_int_equal(frame_reader_next(&r, zero_hdr, 2, &used, &f, &flen), CAIRN_EFRAME);
	frame_reader_free(&r);

	/* Handshake bounds, header arriving a byte at a time: 313 > 312. */
	frame_reader_init(&r, CAIRN_HANDSHAKE1_MIN, CAIRN_HANDSHAKE1_MAX);
	uint8_t big_hdr[2] = {0x01, 0x39};
	assert_int_equal(frame_reader_next(&r, big_hdr, 1, &used, &f, &flen), 0);
	assert_int_equal(used, 1);
	assert_false(frame_reader_idle(&r));
	assert_int_equal(frame_reader_next(&r, big_hdr + 1, 1, &used, &f, &flen), CAIRN_EFRAME);
	assert_int_equal(used, 1);
	frame_reader_free(&r);

	/* Exactly the bounds are accepted; 56 is not. */
	static uint8_t buf[2 + 312];
	memset(buf, 0x33, sizeof(buf));
	frame_reader_init(&r, CAIRN_HANDSHAKE1_MIN, CAIRN_HANDSHAKE1_MAX);
	buf[0] = 0x01;
	buf[1] = 0x38;
	assert_int_equal(frame_reader_next(&r, buf, 2 + 312, &used, &f, &flen), 1);
	assert_int_equal(flen, 312);
	assert_ptr_equal(f, buf + 2);
	buf[0] = 0;
	buf[1] = 57;
	assert_int_equal(frame_reader_next(&r, buf, 2 + 57, &used, &f, &flen), 1);
	assert_int_equal(flen, 57);
	/* New limits apply to the next frame. */
	frame_reader_set_limits(&r, 18, CAIRN_NOISE_MSG_MAX);
	buf[1] = 18;
	assert_int_equal(frame_reader_next(&r, buf, 2 + 18, &used, &f, &flen), 1);
	frame_reader_set_limits(&r, CAIRN_HANDSHAKE1_MIN, CAIRN_HANDSHAKE1_MAX);
	buf[1] = 56;
	assert_int_equal(frame_reader_next(&r, buf, 2 + 56, &used, &f, &flen), CAIRN_EFRAME);
	frame_reader_free(&r);

	/* A zeroed reader can be freed. */
	struct frame_reader z;
	memset(&z, 0, sizeof(z));
	frame_reader_free(&z);
}

static void test_reader_then_open(void **state)
{
	/* Three frames in one buffer, read and opened in order, the last one opened in place. */
	struct noise_cipher tx, rx;
	cipher_pair(&tx, &rx);
	static uint8_t buf[3 * 1100];
	size_t len = 0, n = 0;
	const char *texts[3] = {"one", "two", "three"};
	for (int i = 0; i < 3; i++) {
		assert_int_equal(frame_seal(&tx, (const uint8_t *)texts[i], strlen(texts[i]), 0,
		                            buf + len, sizeof(buf) - len, &n),
		                 0);
		len += n;
	}
	struct frame_reader r;
	frame_reader_init(&r, 18, CAIRN_NOISE_MSG_MAX);
	size_t off = 0;
	for (int i = 0; i < 3; i++) {
		size_t used = 0, flen = 0, clen = 0;
		const uint8_t *f = NULL, *c = NULL;
		assert_int_equal(frame_reader_next(&r, buf + off, len - off, &used, &f, &flen), 1);
		off += used;
		uint8_t *dst = (i == 2) ? buf + off - flen : opened;
		assert_int_equal(frame_open(&rx, f, flen, dst, flen, &c, &clen), 0);
		assert_int_equal(clen, strlen(texts[i]));
		assert_memory_equal(c, texts[i], clen);
	}
	assert_int_equal(off, len);
	frame_reader_free(&r);
}

static void test_vector_ping(void **state)
{
	uint8_t key[CAIRN_KEY_LEN], ping[64], expect[WIRE_MAX];
	assert_int_equal(mdvec_hex("frame/ping", "send_key", key, sizeof(key)), CAIRN_KEY_LEN);
	size_t clen = mdvec_hex("frame/ping", "content", ping, sizeof(ping));
	size_t elen = mdvec_hex("frame/ping", "frame", expect, sizeof(expect));
	uint64_t nonce = strtoull(mdvec_str("frame/ping", "nonce"), NULL, 10);
	size_t ptlen = (size_t)strtoul(mdvec_str("frame/ping", "plaintext_length"), NULL, 10);
	assert_int_equal(clen, 3);
	assert_memory_equal(ping, "\x92\x01\x00", 3);

	struct noise_cipher cs;
	noise_cipher_init(&cs, key);
	cs.n = nonce;
	size_t n = 0;
	assert_int_equal(frame_seal(&cs, ping, clen, 0, wire, sizeof(wire), &n), 0);
	assert_int_equal(n, elen);
	assert_int_equal(n, CAIRN_FRAME_HEADER_LEN + ptlen + CAIRN_AEAD_TAG_LEN);
	assert_memory_equal(wire, expect, elen);

	noise_cipher_init(&cs, key);
	cs.n = nonce;
	const uint8_t *c = NULL;
	size_t got = 0;
	assert_int_equal(frame_open(&cs, expect + 2, elen - 2, opened, sizeof(opened), &c, &got),
	                 0);
	assert_int_equal(got, clen);
	assert_memory_equal(c, ping, clen);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bucket_roundtrip), cmocka_unit_test(test_fixed_roundtrip),
	    cmocka_unit_test(test_seal_errors),      cmocka_unit_test(test_empty_content),
	    cmocka_unit_test(test_open_padding),     cmocka_unit_test(test_open_errors),
	    cmocka_unit_test(test_reader_splits),    cmocka_unit_test(test_reader_claimed_length),
	    cmocka_unit_test(test_reader_limits),    cmocka_unit_test(test_reader_then_open),
	    cmocka_unit_test(test_vector_ping),      cmocka_unit_test(test_split),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
