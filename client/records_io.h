/* SPDX-License-Identifier: MIT */
/*
 * The bounded writer and reader the record layouts are built with (records.c, records_v1.c):
 * a version byte, fixed-size fields raw, variable ones behind a big-endian u32 length. Private
 * to those two files.
 */
#ifndef CAIRN_CLIENT_RECORDS_IO_H
#define CAIRN_CLIENT_RECORDS_IO_H

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cairn/error.h"

struct writer {
	uint8_t *buf;
	size_t len, cap;
	int err;
};

static inline void w_bytes(struct writer *w, const void *p, size_t n)
{
	if (w->err)
		return;
	if (w->cap - w->len < n) {
		size_t ncap = w->cap ? w->cap : 256;
		while (ncap - w->len < n)
			ncap *= 2;
		uint8_t *nb = sodium_malloc(ncap);
		if (nb == NULL) {
			w->err = CAIRN_ENOMEM;
			return;
		}
		if (w->buf != NULL) {
			memcpy(nb, w->buf, w->len);
			sodium_free(w->buf);
		}
		w->buf = nb;
		w->cap = ncap;
	}
	if (n > 0)
		memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static inline void w_u8(struct writer *w, uint8_t v)
{
	w_bytes(w, &v, 1);
}

static inline void w_u64(struct writer *w, uint64_t v)
{
	uint8_t b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (56 - 8 * i));
	w_bytes(w, b, 8);
}

static inline void w_var(struct writer *w, const void *p, size_t n)
{
	uint8_t b[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
	w_bytes(w, b, 4);
	w_bytes(w, p, n);
}

static inline void w_str(struct writer *w, const char *s, size_t max)
{
	w_var(w, s, strnlen(s, max));
}

/* Hands the buffer over as a malloc'd copy so callers free it with free(). */
static inline int w_finish(struct writer *w, uint8_t **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	if (w->err == 0) {
		*out = malloc(w->len ? w->len : 1);
		if (*out == NULL)
			w->err = CAIRN_ENOMEM;
		else
			memcpy(*out, w->buf, w->len);
		*len = w->len;
	}
	if (w->buf != NULL)
		sodium_free(w->buf); /* sodium_free wipes */
	return w->err;
}

struct reader {
	const uint8_t *p;
	size_t left;
	int err;
};

static inline const uint8_t *r_take(struct reader *r, size_t n)
{
	if (r->err || r->left < n) {
		r->err = CAIRN_ECORRUPT;
		return NULL;
	}
	const uint8_t *p = r->p;
	r->p += n;
	r->left -= n;
	return p;
}

static inline void r_bytes(struct reader *r, void *out, size_t n)
{
	const uint8_t *p = r_take(r, n);
	if (p != NULL)
		memcpy(out, p, n);
}

static inline uint8_t r_u8(struct reader *r)
{
	const uint8_t *p = r_take(r, 1);
	return p ? p[0] : 0;
}

static inline uint64_t r_u64(struct reader *r)
{
	const uint8_t *p = r_take(r, 8);
	uint64_t v = 0;
	for (int i = 0; p != NULL && i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* A variable field of at most MAX bytes; returns a pointer into the input. */
static inline const uint8_t *r_var(struct reader *r, size_t max, size_t *n)
{
	const uint8_t *b = r_take(r, 4);
	*n = 0;
	if (b == NULL)
		return NULL;
	size_t len = ((size_t)b[0] << 24) | ((size_t)b[1] << 16) | ((size_t)b[2] << 8) | b[3];
	if (len > max) {
		r->err = CAIRN_ECORRUPT;
		return NULL;
	}
	*n = len;
	return r_take(r, len);
}

/* A string field into OUT (capacity MAX + 1), NUL-terminated; no embedded NULs. */
static inline void r_str(struct reader *r, char *out, size_t max)
{
	size_t n;
	const uint8_t *p = r_var(r, max, &n);
	out[0] = '\0';
	if (p == NULL)
		return;
	if (memchr(p, '\0', n) != NULL) {
		r->err = CAIRN_ECORRUPT;
		return;
	}
	memcpy(out, p, n);
	out[n] = '\0';
}

static inline int r_finish(struct reader *r)
{
	if (r->err == 0 && r->left != 0)
		r->err = CAIRN_ECORRUPT;
	return r->err;
}

#endif
