/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the frame reader and frame_open. The first byte picks a mode: even feeds the input to
 * the reader as a byte stream and opens each frame it yields; odd seals the input as content,
 * appends whatever follows, and checks that reading and opening give the content back. The next
 * bytes choose the chunk sizes the stream is cut into.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "frame.h"

#define CHUNK_SIZES_MAX 8

static uint8_t wire[2 * (CAIRN_FRAME_HEADER_LEN + CAIRN_NOISE_MSG_MAX)];
static uint8_t opened[CAIRN_NOISE_MSG_MAX];

struct chunker {
	size_t sizes[CHUNK_SIZES_MAX];
	size_t count, next;
};

/* Reads 1 + (b & 7) chunk sizes from DATA; size 0 means "everything left". */
static size_t chunker_init(struct chunker *c, const uint8_t *data, size_t size)
{
	memset(c, 0, sizeof(*c));
	if (size == 0) {
		c->count = 1;
		return 0;
	}
	c->count = 1 + (data[0] & 7);
	size_t used = 1;
	for (size_t i = 0; i < c->count; i++) {
		uint8_t b = used < size ? data[used++] : 0;
		/* The top bit scales up, so large frames also arrive in few pieces. */
		c->sizes[i] = (b & 0x80) ? (size_t)(b & 0x7f) * 1031 : b;
	}
	return used;
}

static size_t chunker_next(struct chunker *c, size_t remaining)
{
	size_t n = c->sizes[c->next++ % c->count];
	return (n == 0 || n > remaining) ? remaining : n;
}

static void cipher_for_fuzz(struct noise_cipher *cs)
{
	uint8_t k[CAIRN_KEY_LEN];
	memset(k, 0x42, sizeof(k));
	noise_cipher_init(cs, k);
}

/*
 * Feeds IN through a reader cut by C and opens each frame. With EXPECT set, the first frame
 * must open to exactly EXPECT (EXPECT_LEN bytes); anything else aborts.
 */
static void read_and_open(const uint8_t *in, size_t len, struct chunker *c, bool handshake,
                          const uint8_t *expect, size_t expect_len)
{
	struct frame_reader r;
	struct noise_cipher rx;
	cipher_for_fuzz(&rx);
	if (handshake)
		frame_reader_init(&r, CAIRN_HANDSHAKE1_MIN, CAIRN_HANDSHAKE1_MAX);
	else
		frame_reader_init(&r, CAIRN_AEAD_TAG_LEN + CAIRN_FRAME_CONTENT_HEADER,
		                  CAIRN_NOISE_MSG_MAX);
	size_t pos = 0, frames = 0;
	bool failed = false;
	while (pos < len && !failed) {
		size_t chunk = chunker_next(c, len - pos);
		size_t off = 0;
		while (off < chunk) {
			size_t used = 0, flen = 0, clen = 0;
			const uint8_t *f = NULL, *content = NULL;
			int rc =
			    frame_reader_next(&r, in + pos + off, chunk - off, &used, &f, &flen);
			if (used > chunk - off)
				abort();
			off += used;
			if (rc < 0) {
				failed = true;
				break;
			}
			if (frame_reader_memory(&r) > CAIRN_NOISE_MSG_MAX)
				abort();
			if (rc == 0)
				continue;
			int orc = frame_open(&rx, f, flen, opened, sizeof(opened), &content, &clen);
			if (orc == 0 && clen > flen)
				abort();
			if (expect != NULL && frames == 0 &&
			    (orc != 0 || clen != expect_len ||
			     (clen > 0 && memcmp(content, expect, clen) != 0)))
				abort();
			frames++;
		}
		pos += chunk;
	}
	if (expect != NULL && frames == 0)
		abort();
	frame_reader_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	if (!ready) {
		if (sodium_init() < 0)
			abort();
		ready = true;
	}
	if (size < 1)
		return 0;
	uint8_t mode = data[0];
	struct chunker c;
	size_t skip = 1 + chunker_init(&c, data + 1, size - 1);
	const uint8_t *rest = data + skip;
	size_t rest_len = size - skip;

	if ((mode & 1) == 0) {
		read_and_open(rest, rest_len, &c, (mode & 2) != 0, NULL, 0);
		return 0;
	}

	/* Seal mode: the content length comes from the input too, the rest trails the frame. */
	static const size_t fixed_sizes[4] = {0, 0, CAIRN_FRAME_FIXED_MIN,
	                                      CAIRN_FRAME_PLAINTEXT_MAX};
	size_t fixed = fixed_sizes[(mode >> 1) & 3];
	size_t clen = rest_len;
	if (mode & 0x10)
		clen = rest_len / 2;
	size_t clen_max = fixed ? fixed - CAIRN_FRAME_CONTENT_HEADER : CAIRN_FRAME_CONTENT_MAX;
	if (clen > clen_max)
		clen = clen_max;
	struct noise_cipher tx;
	cipher_for_fuzz(&tx);
	size_t n = 0;
	if (frame_seal(&tx, rest, clen, fixed, wire, sizeof(wire), &n) != 0)
		abort();
	if (n != frame_wire_len(clen, fixed))
		abort();
	size_t tail = rest_len - clen;
	if (tail > sizeof(wire) - n)
		tail = sizeof(wire) - n;
	memcpy(wire + n, rest + clen, tail);
	read_and_open(wire, n + tail, &c, false, rest, clen);
	return 0;
}
