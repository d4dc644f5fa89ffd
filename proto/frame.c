/* SPDX-License-Identifier: MIT */
/*
 * Frames (docs/PROTOCOL.md section 4): the incremental length-prefix reader, and sealing and
 * opening of the padded frame plaintext. The reader returns frames in place when it can and
 * otherwise buffers only the bytes it has actually received, never the length a peer claims.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "frame.h"
#include "msgcheck.h"

/* First allocation for a partial frame; later growth doubles, capped at the declared length. */
#define FRAME_BUF_MIN 256

static const size_t frame_buckets[CAIRN_FRAME_BUCKET_COUNT] = CAIRN_FRAME_BUCKETS;

static size_t clamp_len(size_t v)
{
	if (v < 1)
		return 1;
	if (v > CAIRN_NOISE_MSG_MAX)
		return CAIRN_NOISE_MSG_MAX;
	return v;
}

void frame_reader_init(struct frame_reader *r, size_t min_len, size_t max_len)
{
	memset(r, 0, sizeof(*r));
	frame_reader_set_limits(r, min_len, max_len);
}

void frame_reader_set_limits(struct frame_reader *r, size_t min_len, size_t max_len)
{
	r->min_len = (uint16_t)clamp_len(min_len);
	r->max_len = (uint16_t)clamp_len(max_len);
}

bool frame_reader_idle(const struct frame_reader *r)
{
	return r->hdr_have == 0;
}

size_t frame_reader_memory(const struct frame_reader *r)
{
	return r->buf != NULL ? r->buf_cap : 0;
}

void frame_reader_free(struct frame_reader *r)
{
	free(r->buf);
	r->buf = NULL;
	r->buf_cap = 0;
	r->body_have = 0;
	r->hdr_have = 0;
	r->body_len = 0;
}

static bool length_ok(const struct frame_reader *r)
{
	return r->body_len >= r->min_len && r->body_len <= r->max_len;
}

/* Makes room for NEED bytes of the current body, growing geometrically up to body_len. */
static int reader_reserve(struct frame_reader *r, size_t need)
{
	if (need <= r->buf_cap && r->buf != NULL)
		return 0;
	size_t cap = r->buf_cap ? r->buf_cap * 2 : FRAME_BUF_MIN;
	if (cap < need)
		cap = need;
	if (cap > r->body_len)
		cap = r->body_len;
	uint8_t *p = realloc(r->buf, cap);
	if (p == NULL)
		return CAIRN_ENOMEM;
	r->buf = p;
	r->buf_cap = (uint16_t)cap; /* <= body_len */
	return 0;
}

int frame_reader_next(struct frame_reader *r, const uint8_t *in, size_t len, size_t *used,
                      const uint8_t **frame, size_t *frame_len)
{
	*used = 0;
	*frame = NULL;
	*frame_len = 0;
	/* A frame delivered from the buffer by the previous call is no longer needed. */
	if (r->hdr_have == 0 && r->buf != NULL)
		frame_reader_free(r);
	/* A rejected length stays rejected: the reader must be discarded. */
	if (r->hdr_have == CAIRN_FRAME_HEADER_LEN && !length_ok(r))
		return CAIRN_EFRAME;

	size_t pos = 0;
	while (r->hdr_have < CAIRN_FRAME_HEADER_LEN && pos < len) {
		r->hdr[r->hdr_have++] = in[pos++];
		if (r->hdr_have < CAIRN_FRAME_HEADER_LEN)
			continue;
		r->body_len = (uint16_t)(r->hdr[0] << 8 | r->hdr[1]);
		r->body_have = 0;
		if (!length_ok(r)) {
			*used = pos;
			return CAIRN_EFRAME;
		}
	}
	if (r->hdr_have < CAIRN_FRAME_HEADER_LEN) {
		*used = pos;
		return 0;
	}

	size_t avail = len - pos;
	if (r->body_have == 0 && avail >= r->body_len) {
		/* The whole body is in IN: hand it out without copying. */
		*frame = in + pos;
		*frame_len = r->body_len;
		*used = pos + r->body_len;
		r->hdr_have = 0;
		return 1;
	}

	size_t take = r->body_len - r->body_have;
	if (take > avail)
		take = avail;
	if (take > 0) {
		int rc = reader_reserve(r, r->body_have + take);
		if (rc != 0) {
			*used = pos;
			return rc;
		}
		memcpy(r->buf + r->body_have, in + pos, take);
		r->body_have = (uint16_t)(r->body_have + take); /* <= body_len */
		pos += take;
	}
	*used = pos;
	if (r->body_have < r->body_len)
		return 0;
	/* Complete. The buffer stays valid until the next call, which frees it. */
	*frame = r->buf;
	*frame_len = r->body_len;
	r->hdr_have = 0;
	r->body_have = 0;
	return 1;
}

size_t frame_plaintext_len(size_t content_len, size_t fixed_size)
{
	if (content_len > CAIRN_FRAME_CONTENT_MAX)
		return 0;
	size_t need = CAIRN_FRAME_CONTENT_HEADER + content_len;
	if (fixed_size != 0) {
		if (fixed_size < CAIRN_FRAME_FIXED_MIN || fixed_size > CAIRN_FRAME_PLAINTEXT_MAX)
			return 0;
		return need <= fixed_size ? fixed_size : 0;
	}
	for (size_t i = 0; i < CAIRN_FRAME_BUCKET_COUNT; i++)
		if (need <= frame_buckets[i])
			return frame_buckets[i];
	return 0;
}

size_t frame_wire_len(size_t content_len, size_t fixed_size)
{
	size_t pt = frame_plaintext_len(content_len, fixed_size);
	return pt ? CAIRN_FRAME_HEADER_LEN + pt + CAIRN_AEAD_TAG_LEN : 0;
}

size_t frame_split(const uint8_t *content, size_t len, size_t fixed_size)
{
	size_t room = fixed_size != 0 ? fixed_size : CAIRN_FRAME_PLAINTEXT_MAX;
	if (frame_plaintext_len(0, fixed_size) == 0)
		return 0;
	room -= CAIRN_FRAME_CONTENT_HEADER;
	/* cut[i]: the longest run of whole objects that fits bucket i (all of them with a
	 * fixed size, whose single "bucket" is the last one). */
	size_t cut[CAIRN_FRAME_BUCKET_COUNT] = {0};
	size_t end = 0;
	while (end < len) {
		size_t objlen = 0;
		if (cairn_msgcheck(content + end, len - end, &objlen) != 0 || end + objlen > room)
			break;
		end += objlen;
		for (size_t i = 0; i < CAIRN_FRAME_BUCKET_COUNT; i++)
			if (fixed_size != 0 ? i == CAIRN_FRAME_BUCKET_COUNT - 1
			                    : CAIRN_FRAME_CONTENT_HEADER + end <= frame_buckets[i])
				cut[i] = end;
	}
	if (fixed_size != 0)
		return end;
	/* Even when one frame could hold everything, smaller ones may pad less: 5 KiB of
	 * content wastes 11 KiB in one 16896-byte frame, 3 KiB in two of 4096. So: the largest
	 * bucket that the cut fills to 7/8 (few frames, little padding), else the fullest one.
	 * A fill a/b is compared with c/d as a*d against c*b. */
	size_t best = 0, best_bucket = 1;
	for (size_t i = CAIRN_FRAME_BUCKET_COUNT; i-- > 0;) {
		size_t used = CAIRN_FRAME_CONTENT_HEADER + cut[i];
		if (cut[i] > 0 && used * 8 >= frame_buckets[i] * 7)
			return cut[i];
		if (cut[i] > 0 && cut[i] * best_bucket > best * frame_buckets[i]) {
			best = cut[i];
			best_bucket = frame_buckets[i];
		}
	}
	return best;
}

int frame_seal(struct noise_cipher *cs, const uint8_t *content, size_t content_len,
               size_t fixed_size, uint8_t *out, size_t outcap, size_t *outlen)
{
	*outlen = 0;
	size_t pt_len = frame_plaintext_len(content_len, fixed_size);
	if (pt_len == 0 || !cs->has_key)
		return CAIRN_EINVAL;
	size_t wire = CAIRN_FRAME_HEADER_LEN + pt_len + CAIRN_AEAD_TAG_LEN;
	if (outcap < wire)
		return CAIRN_ENOBUFS;

	/* Lay the plaintext out where the ciphertext goes and encrypt it in place. */
	uint8_t *pt = out + CAIRN_FRAME_HEADER_LEN;
	pt[0] = (uint8_t)(content_len >> 8);
	pt[1] = (uint8_t)content_len;
	if (content_len > 0)
		memcpy(pt + CAIRN_FRAME_CONTENT_HEADER, content, content_len);
	memset(pt + CAIRN_FRAME_CONTENT_HEADER + content_len, 0,
	       pt_len - CAIRN_FRAME_CONTENT_HEADER - content_len);
	size_t ct_len = 0;
	int rc = noise_cipher_encrypt(cs, NULL, 0, pt, pt_len, pt, outcap - CAIRN_FRAME_HEADER_LEN,
	                              &ct_len);
	if (rc != 0) {
		/* Leave no plaintext behind in the caller's buffer. */
		sodium_memzero(out, wire);
		return rc;
	}
	out[0] = (uint8_t)(ct_len >> 8);
	out[1] = (uint8_t)ct_len;
	*outlen = CAIRN_FRAME_HEADER_LEN + ct_len;
	return 0;
}

/*
 * Whether the LEN bytes at P are all zero. Padding can be most of a frame (3 KiB of a 4 KiB
 * one carrying a 1 KiB envelope), so it is compared with a block of zeros by libc's vector
 * memcmp rather than a byte or a word at a time (callgrind: 1,057 instructions of frame_open's
 * own per frame, online at 100/s). Stopping at the first non-zero byte tells nothing: the
 * plaintext is authenticated, so only its sender can have put one there.
 */
static bool all_zero(const uint8_t *p, size_t len)
{
	static const uint8_t zeros[1024];
	while (len > 0) {
		size_t n = len < sizeof(zeros) ? len : sizeof(zeros);
		if (memcmp(p, zeros, n) != 0)
			return false;
		p += n;
		len -= n;
	}
	return true;
}

int frame_open(struct noise_cipher *cs, const uint8_t *msg, size_t len, uint8_t *out, size_t outcap,
               const uint8_t **content, size_t *content_len)
{
	*content = NULL;
	*content_len = 0;
	if (!cs->has_key)
		return CAIRN_EINVAL;
	if (len < CAIRN_AEAD_TAG_LEN + CAIRN_FRAME_CONTENT_HEADER || len > CAIRN_NOISE_MSG_MAX)
		return CAIRN_EFRAME;
	size_t pt_len = 0;
	int rc = noise_cipher_decrypt(cs, NULL, 0, msg, len, out, outcap, &pt_len);
	if (rc != 0)
		return rc;

	size_t clen = ((size_t)out[0] << 8) | out[1];
	if (clen > pt_len - CAIRN_FRAME_CONTENT_HEADER) {
		sodium_memzero(out, pt_len);
		return CAIRN_EPADDING;
	}
	if (!all_zero(out + CAIRN_FRAME_CONTENT_HEADER + clen,
	              pt_len - CAIRN_FRAME_CONTENT_HEADER - clen)) {
		sodium_memzero(out, pt_len);
		return CAIRN_EPADDING;
	}
	*content = out + CAIRN_FRAME_CONTENT_HEADER;
	*content_len = clen;
	return 0;
}
