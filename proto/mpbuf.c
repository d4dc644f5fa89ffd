/* SPDX-License-Identifier: MIT */
/*
 * The shared bounded msgpack writer and reader (mpbuf.h). The writer is only a sink for
 * msgpack-c's packer that refuses to pass the caller's capacity; the reader decodes headers by
 * hand, checking that the bytes a header claims are there before it reads them.
 */
#include "mpbuf.h"

#include <string.h>

/* ---- Writing -------------------------------------------------------------------------- */

static int mpbuf_sink(void *data, const char *buf, size_t len)
{
	struct mpbuf_out *w = data;
	if (w->overflow || len > w->cap - w->len) {
		w->overflow = 1;
		return -1;
	}
	if (len > 0) {
		memcpy(w->out + w->len, buf, len);
		w->len += len;
	}
	return 0;
}

void mpbuf_out_init(struct mpbuf_out *w, uint8_t *out, size_t cap)
{
	w->out = out;
	w->cap = out != NULL ? cap : 0;
	w->len = 0;
	w->overflow = 0;
	msgpack_packer_init(&w->pk, w, mpbuf_sink);
}

int mpbuf_put_bin(struct mpbuf_out *w, const void *data, size_t n)
{
	int rc = msgpack_pack_bin(&w->pk, n);
	return rc != 0 || n == 0 ? rc : msgpack_pack_bin_body(&w->pk, data, n);
}

int mpbuf_put_str(struct mpbuf_out *w, const char *s, size_t n)
{
	int rc = msgpack_pack_str(&w->pk, n);
	return rc != 0 || n == 0 ? rc : msgpack_pack_str_body(&w->pk, s, n);
}

/* ---- Reading -------------------------------------------------------------------------- */

const uint8_t *mpbuf_take(struct mpbuf_in *r, size_t n)
{
	if (n > r->len - r->pos)
		return NULL;
	const uint8_t *p = r->p + r->pos;
	r->pos += n;
	return p;
}

/* Takes a big-endian integer of WIDTH (1..8) bytes into *V: a length, a count or a value. */
static int mpbuf_be(struct mpbuf_in *r, unsigned width, uint64_t *v)
{
	const uint8_t *p = mpbuf_take(r, width);
	if (p == NULL)
		return CAIRN_ETRUNCATED;
	uint64_t x = 0;
	for (unsigned i = 0; i < width; i++)
		x = (x << 8) | p[i];
	*v = x;
	return 0;
}

int mpbuf_take_nil(struct mpbuf_in *r)
{
	if (r->pos < r->len && r->p[r->pos] == 0xc0) {
		r->pos++;
		return 1;
	}
	return 0;
}

int mpbuf_read_array(struct mpbuf_in *r, uint32_t *n)
{
	const uint8_t *b = mpbuf_take(r, 1);
	if (b == NULL)
		return CAIRN_ETRUNCATED;
	unsigned width;
	if (*b >= 0x90 && *b <= 0x9f) {
		*n = *b & 0x0f;
		return 0;
	} else if (*b == 0xdc) {
		width = 2;
	} else if (*b == 0xdd) {
		width = 4;
	} else {
		return CAIRN_ETYPE;
	}
	uint64_t v;
	if (mpbuf_be(r, width, &v) != 0)
		return CAIRN_ETRUNCATED;
	*n = (uint32_t)v;
	return 0;
}

int mpbuf_read_uint(struct mpbuf_in *r, uint64_t *v)
{
	const uint8_t *b = mpbuf_take(r, 1);
	if (b == NULL)
		return CAIRN_ETRUNCATED;
	if (*b <= 0x7f) {
		*v = *b;
		return 0;
	}
	unsigned width;
	int is_signed = *b >= 0xd0 && *b <= 0xd3;
	switch (*b) {
	case 0xcc:
	case 0xd0:
		width = 1;
		break;
	case 0xcd:
	case 0xd1:
		width = 2;
		break;
	case 0xce:
	case 0xd2:
		width = 4;
		break;
	case 0xcf:
	case 0xd3:
		width = 8;
		break;
	default:
		return CAIRN_ETYPE; /* negative fixint, or not an integer */
	}
	uint64_t x;
	if (mpbuf_be(r, width, &x) != 0)
		return CAIRN_ETRUNCATED;
	if (is_signed && (x >> (8 * width - 1)) != 0)
		return CAIRN_ETYPE; /* a negative value */
	*v = x;
	return 0;
}

/* A bin or str whose 1-, 2- and 4-byte length forms start at FIRST (and, for a str, whose
 * fixstr form is 0xa0..0xbf when FIX is set). */
static int mpbuf_read_raw(struct mpbuf_in *r, uint8_t first, int fix, const uint8_t **data,
                          size_t *n)
{
	const uint8_t *b = mpbuf_take(r, 1);
	if (b == NULL)
		return CAIRN_ETRUNCATED;
	size_t len;
	if (fix && (*b & 0xe0) == 0xa0) {
		len = *b & 0x1f;
	} else if (*b >= first && *b <= first + 2) {
		uint64_t v; /* a length of 1, 2 or 4 bytes */
		if (mpbuf_be(r, 1u << (*b - first), &v) != 0)
			return CAIRN_ETRUNCATED;
		len = (size_t)v;
	} else {
		return CAIRN_ETYPE;
	}
	const uint8_t *body = mpbuf_take(r, len);
	if (body == NULL)
		return CAIRN_ETRUNCATED;
	*data = body;
	*n = len;
	return 0;
}

int mpbuf_read_bin(struct mpbuf_in *r, const uint8_t **data, size_t *n)
{
	return mpbuf_read_raw(r, 0xc4, 0, data, n);
}

int mpbuf_read_str(struct mpbuf_in *r, const uint8_t **data, size_t *n)
{
	return mpbuf_read_raw(r, 0xd9, 1, data, n);
}
