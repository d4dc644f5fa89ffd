/* SPDX-License-Identifier: MIT */
/*
 * The msgpack structure check of msgcheck.h: a loop over element headers with one small
 * fixed stack of open containers. Every length is compared with the bytes that remain before
 * it is used, so nothing here can read past BUF or overflow.
 */
#include "msgcheck.h"

#include "cairn/limits.h"

/* What one header byte announces. */
enum msgcheck_kind {
	KIND_BAD,    /* 0xc1, ext, float */
	KIND_SCALAR, /* nil, bool, int: header only, or header + fixed payload */
	KIND_BYTES,  /* str, bin: header + a length, then that many bytes */
	KIND_ARRAY,
	KIND_MAP,
};

struct msgcheck_head {
	enum msgcheck_kind kind;
	uint8_t size;      /* bytes of header that follow the first byte (fixed width) */
	uint8_t lenbytes;  /* of those, how many give a length or count (big-endian) */
	uint32_t inline_n; /* length or count held in the first byte (fix formats) */
};

static struct msgcheck_head msgcheck_classify(uint8_t b)
{
	struct msgcheck_head h = {KIND_SCALAR, 0, 0, 0};

	if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
		return h; /* fixint, negative fixint, nil, false, true */
	if (b <= 0x8f) {
		h.kind = KIND_MAP;
		h.inline_n = b & 0x0f;
		return h;
	}
	if (b <= 0x9f) {
		h.kind = KIND_ARRAY;
		h.inline_n = b & 0x0f;
		return h;
	}
	if (b <= 0xbf) {
		h.kind = KIND_BYTES;
		h.inline_n = b & 0x1f;
		return h;
	}
	switch (b) {
	case 0xc4: /* bin 8, 16, 32 */
	case 0xd9: /* str 8, 16, 32 */
		h.kind = KIND_BYTES;
		h.size = h.lenbytes = 1;
		return h;
	case 0xc5:
	case 0xda:
		h.kind = KIND_BYTES;
		h.size = h.lenbytes = 2;
		return h;
	case 0xc6:
	case 0xdb:
		h.kind = KIND_BYTES;
		h.size = h.lenbytes = 4;
		return h;
	case 0xcc: /* uint 8 .. 64, int 8 .. 64 */
	case 0xd0:
		h.size = 1;
		return h;
	case 0xcd:
	case 0xd1:
		h.size = 2;
		return h;
	case 0xce:
	case 0xd2:
		h.size = 4;
		return h;
	case 0xcf:
	case 0xd3:
		h.size = 8;
		return h;
	case 0xdc:
		h.kind = KIND_ARRAY;
		h.size = h.lenbytes = 2;
		return h;
	case 0xdd:
		h.kind = KIND_ARRAY;
		h.size = h.lenbytes = 4;
		return h;
	case 0xde:
		h.kind = KIND_MAP;
		h.size = h.lenbytes = 2;
		return h;
	case 0xdf:
		h.kind = KIND_MAP;
		h.size = h.lenbytes = 4;
		return h;
	default: /* 0xc1, ext 8/16/32 (c7-c9), float (ca, cb), fixext (d4-d8) */
		h.kind = KIND_BAD;
		return h;
	}
}

int cairn_msgcheck(const uint8_t *buf, size_t len, size_t *objlen)
{
	/* left[i] = elements still to walk in the container open at depth i + 1. A map of N
	 * pairs is 2N elements; N <= CAIRN_MSG_COUNT_MAX, so these stay small. */
	uint32_t left[CAIRN_MSG_DEPTH_MAX];
	unsigned depth = 0;
	size_t pos = 0;

	*objlen = 0;
	for (;;) {
		if (pos >= len)
			return CAIRN_ETRUNCATED;
		struct msgcheck_head h = msgcheck_classify(buf[pos]);
		if (h.kind == KIND_BAD)
			return CAIRN_EMALFORMED;
		pos++;
		if (h.size > len - pos)
			return CAIRN_ETRUNCATED;
		uint32_t n = h.inline_n;
		for (unsigned i = 0; i < h.lenbytes; i++)
			n = (n << 8) | buf[pos + i];
		pos += h.size;
		size_t remain = len - pos;

		if (h.kind == KIND_BYTES) {
			if (n > remain)
				return CAIRN_ETRUNCATED;
			pos += n;
		} else if (h.kind == KIND_ARRAY || h.kind == KIND_MAP) {
			/* Compare before doubling: n may be up to 2^32 - 1. */
			if (n > remain || (h.kind == KIND_MAP && n > remain / 2))
				return CAIRN_ETRUNCATED;
			if (n > CAIRN_MSG_COUNT_MAX)
				return CAIRN_ECOUNT;
			if (depth >= CAIRN_MSG_DEPTH_MAX)
				return CAIRN_EDEPTH;
			uint32_t elems = h.kind == KIND_MAP ? 2 * n : n;
			if (elems > 0) {
				left[depth++] = elems;
				continue; /* walk its first element next */
			}
		}

		/* One element is complete: count it against its container, closing every
		 * container it completes in turn. */
		while (depth > 0 && --left[depth - 1] == 0)
			depth--;
		if (depth == 0) {
			*objlen = pos;
			return 0;
		}
	}
}
