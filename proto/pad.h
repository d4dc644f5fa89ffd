/* SPDX-License-Identifier: MIT */
/*
 * Plaintext padding for end-to-end messages (docs/PROTOCOL.md section 8.6). The sender pads so
 * that the whole envelope is one of a few bucket sizes, whatever the message length and type;
 * the relay and the network then see only those sizes.
 */
#ifndef CAIRN_PROTO_PAD_H
#define CAIRN_PROTO_PAD_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/error.h"
#include "cairn/limits.h"

/* Envelope sizes a sender pads to. Each fits a SEND in the frame bucket above it (section 4). */
#define PAD_BUCKETS                                                                                \
	{                                                                                          \
		896, 3968, CAIRN_ENVELOPE_MAX                                                      \
	}
#define PAD_BUCKET_COUNT 3
#define PAD_HEADER_LEN   2 /* u16 content length */

/*
 * The padded plaintext length for CONTENT_LEN bytes of content in an envelope whose other
 * bytes (type, keys, header, tags) number OVERHEAD: the smallest bucket B with
 * OVERHEAD + 2 + CONTENT_LEN <= B, minus OVERHEAD. Returns 0 if no bucket holds it.
 */
size_t pad_len(size_t overhead, size_t content_len);

/*
 * Writes u16 CONTENT_LEN || CONTENT || zero bytes, pad_len(OVERHEAD, LEN) bytes in all, into
 * OUT (capacity CAP). Returns 0, CAIRN_ETOOBIG if no bucket holds it, or CAIRN_ENOBUFS.
 */
CAIRN_WARN_UNUSED int pad_encode(const uint8_t *content, size_t len, size_t overhead, uint8_t *out,
                                 size_t cap, size_t *outlen);

/*
 * Reads a padded plaintext IN (LEN bytes): *CONTENT points into IN, *CONTENT_LEN its length.
 * Receivers accept any amount of padding but every padding byte must be zero. Returns 0, or
 * CAIRN_EPADDING (outputs NULL/0) when LEN < 2, the length overruns, or padding is non-zero.
 */
CAIRN_WARN_UNUSED int pad_decode(const uint8_t *in, size_t len, const uint8_t **content,
                                 size_t *content_len);

#endif
