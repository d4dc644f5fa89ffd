/* SPDX-License-Identifier: MIT */
/*
 * Bucket padding of end-to-end plaintexts: u16 length, content, zero bytes up to a size that
 * makes the envelope one of PAD_BUCKETS. Decoding checks every padding byte (with no early
 * exit: the plaintext is already authenticated, but there is no reason to leak more).
 */
#include <string.h>

#include "pad.h"

static const size_t buckets[PAD_BUCKET_COUNT] = PAD_BUCKETS;

size_t pad_len(size_t overhead, size_t content_len)
{
	for (size_t i = 0; i < PAD_BUCKET_COUNT; i++) {
		if (overhead + PAD_HEADER_LEN > buckets[i])
			continue;
		if (content_len <= buckets[i] - overhead - PAD_HEADER_LEN)
			return buckets[i] - overhead;
	}
	return 0;
}

int pad_encode(const uint8_t *content, size_t len, size_t overhead, uint8_t *out, size_t cap,
               size_t *outlen)
{
	*outlen = 0;
	size_t n = pad_len(overhead, len);
	if (n == 0)
		return CAIRN_ETOOBIG;
	if (n > cap)
		return CAIRN_ENOBUFS;
	out[0] = (uint8_t)(len >> 8);
	out[1] = (uint8_t)len;
	if (len > 0)
		memmove(out + PAD_HEADER_LEN, content, len);
	memset(out + PAD_HEADER_LEN + len, 0, n - PAD_HEADER_LEN - len);
	*outlen = n;
	return 0;
}

int pad_decode(const uint8_t *in, size_t len, const uint8_t **content, size_t *content_len)
{
	*content = NULL;
	*content_len = 0;
	if (len < PAD_HEADER_LEN)
		return CAIRN_EPADDING;
	size_t clen = ((size_t)in[0] << 8) | in[1];
	if (clen > len - PAD_HEADER_LEN)
		return CAIRN_EPADDING;
	uint8_t acc = 0;
	for (size_t i = PAD_HEADER_LEN + clen; i < len; i++)
		acc |= in[i];
	if (acc != 0)
		return CAIRN_EPADDING;
	*content = in + PAD_HEADER_LEN;
	*content_len = clen;
	return 0;
}
