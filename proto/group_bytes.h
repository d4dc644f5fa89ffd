/* SPDX-License-Identifier: MIT */
/*
 * How every group format of docs/PROTOCOL.md section 9 is written and read: big-endian
 * integers (9.1) and a reader over untrusted input that checks what is left before every take.
 */
#ifndef CAIRN_PROTO_GROUP_BYTES_H
#define CAIRN_PROTO_GROUP_BYTES_H

#include <stddef.h>
#include <stdint.h>

/* Writes the N low bytes of V big-endian at P; returns P + N. */
static inline uint8_t *group_put_be(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	return p + n;
}

/* Reads N (at most 8) big-endian bytes at P. */
static inline uint64_t group_get_be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

static inline void group_put_u16(uint8_t *p, uint16_t v)
{
	(void)group_put_be(p, v, 2);
}
static inline void group_put_u32(uint8_t *p, uint32_t v)
{
	(void)group_put_be(p, v, 4);
}
static inline void group_put_u64(uint8_t *p, uint64_t v)
{
	(void)group_put_be(p, v, 8);
}
static inline uint16_t group_get_u16(const uint8_t *p)
{
	return (uint16_t)group_get_be(p, 2);
}
static inline uint32_t group_get_u32(const uint8_t *p)
{
	return (uint32_t)group_get_be(p, 4);
}
static inline uint64_t group_get_u64(const uint8_t *p)
{
	return group_get_be(p, 8);
}

/* A reading position in untrusted input. */
struct group_reader {
	const uint8_t *p;
	size_t left;
};

/* The next N bytes of R, or NULL (R unchanged) if fewer are left. */
static inline const uint8_t *group_take(struct group_reader *r, size_t n)
{
	if (r->left < n)
		return NULL;
	const uint8_t *at = r->p;
	r->p += n;
	r->left -= n;
	return at;
}

#endif
