/* SPDX-License-Identifier: MIT */
/*
 * The bounded msgpack writer and reader that codec.c (commands and replies) and policy.c (the
 * signed relay policy) share. The writer is msgpack-c's packer over the caller's fixed buffer,
 * which writes every integer and length in its shortest form and never grows; the reader is a
 * cursor over bytes msgcheck.h has bounded, whose every read still checks what remains.
 */
#ifndef CAIRN_PROTO_MPBUF_H
#define CAIRN_PROTO_MPBUF_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "cairn/error.h"

/*
 * A writer into OUT (CAP bytes, borrowed). A write that does not fit fails (the packer's call
 * returns nonzero), leaves the buffer as it was, and sets OVERFLOW, which stays set, so a
 * caller may write a whole body and check once at the end.
 */
struct mpbuf_out {
	uint8_t *out;
	size_t cap;
	size_t len;
	int overflow;
	msgpack_packer pk; /* pass &w->pk to msgpack_pack_* */
};

/* Starts W on OUT (capacity CAP; OUT may be NULL only when CAP is 0). W must not move after. */
void mpbuf_out_init(struct mpbuf_out *w, uint8_t *out, size_t cap);

/* Writes a bin (or str) header in its shortest form and then N bytes of DATA. Returns 0 or -1
 * (no room). */
int mpbuf_put_bin(struct mpbuf_out *w, const void *data, size_t n);
int mpbuf_put_str(struct mpbuf_out *w, const char *s, size_t n);

/*
 * A cursor over LEN bytes at P (borrowed). Reads return CAIRN_ETRUNCATED when the bytes a
 * header claims are not there and CAIRN_ETYPE for a value of another msgpack type; a failed
 * read leaves the cursor somewhere inside the value.
 */
struct mpbuf_in {
	const uint8_t *p;
	size_t len;
	size_t pos;
};

/* Takes N bytes; returns them (borrowed from the input), or NULL if they are not there. */
const uint8_t *mpbuf_take(struct mpbuf_in *r, size_t n);

/* If the next value is nil, steps over it and returns 1; else returns 0 and moves nothing. */
int mpbuf_take_nil(struct mpbuf_in *r);

/* An array header of any width: its element count in *N. */
CAIRN_WARN_UNUSED int mpbuf_read_array(struct mpbuf_in *r, uint32_t *n);

/* A non-negative integer in any msgpack integer format, signed ones included. */
CAIRN_WARN_UNUSED int mpbuf_read_uint(struct mpbuf_in *r, uint64_t *v);

/* A bin (resp. str) of any width: *DATA borrows its N bytes from the input. */
CAIRN_WARN_UNUSED int mpbuf_read_bin(struct mpbuf_in *r, const uint8_t **data, size_t *n);
CAIRN_WARN_UNUSED int mpbuf_read_str(struct mpbuf_in *r, const uint8_t **data, size_t *n);

#endif
