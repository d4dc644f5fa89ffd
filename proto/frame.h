/* SPDX-License-Identifier: MIT */
/*
 * Frames (docs/PROTOCOL.md section 4): a u16 big-endian length, then one Noise message whose
 * plaintext is u16 content length || content || zero padding. The reader takes input split
 * anywhere and never allocates according to a length it has not yet received.
 */
#ifndef CAIRN_PROTO_FRAME_H
#define CAIRN_PROTO_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cairn/error.h"
#include "cairn/limits.h"
#include "cipher.h"

/* Every length here is at most CAIRN_NOISE_MSG_MAX (65535: the 2-byte header's range), so
 * 16 bits hold them: a relay keeps one reader per connection. */
struct frame_reader {
	uint8_t *buf;              /* partial body; grows with bytes received, freed when idle */
	uint16_t buf_cap;          /* at most body_len */
	uint16_t min_len, max_len; /* accepted Noise message lengths, inclusive */
	uint16_t body_len;         /* declared length, valid once hdr_have == 2 */
	uint16_t body_have;        /* body bytes held in buf */
	uint8_t hdr[CAIRN_FRAME_HEADER_LEN];
	uint8_t hdr_have; /* header bytes received of the current frame (0..2) */
};

/* Initializes an idle reader that accepts bodies of MIN_LEN..MAX_LEN bytes (1..65535). */
void frame_reader_init(struct frame_reader *r, size_t min_len, size_t max_len);

/* Changes the accepted lengths (e.g. after the handshake); applies from the next frame. */
void frame_reader_set_limits(struct frame_reader *r, size_t min_len, size_t max_len);

/*
 * Consumes bytes of IN (LEN bytes) until one frame is complete or IN is used up; *USED is the
 * number of bytes consumed. Returns 1 with *FRAME, *FRAME_LEN set to the Noise message when a
 * frame is complete: it points into IN when the frame lay wholly inside it (no copy), else into
 * the reader's buffer, and is valid until the next call. Returns 0 when IN was consumed
 * without completing a frame. Returns CAIRN_EFRAME for a length outside the limits (the reader
 * must then be discarded) or CAIRN_ENOMEM.
 */
CAIRN_WARN_UNUSED int frame_reader_next(struct frame_reader *r, const uint8_t *in, size_t len,
                                        size_t *used, const uint8_t **frame, size_t *frame_len);

/* True when no partial frame is held. The buffer of a frame just returned from it is freed
 * on the next frame_reader_next() call or by frame_reader_free(). */
bool frame_reader_idle(const struct frame_reader *r);

/* Bytes of heap memory the reader holds now. */
size_t frame_reader_memory(const struct frame_reader *r);

/* Frees the reader's buffer. Safe on an initialized or zeroed reader, and twice. */
void frame_reader_free(struct frame_reader *r);

/*
 * Plaintext size of a frame carrying CONTENT_LEN bytes: the smallest bucket that holds
 * 2 + CONTENT_LEN when FIXED_SIZE is 0, else FIXED_SIZE. Returns 0 when it cannot fit.
 */
size_t frame_plaintext_len(size_t content_len, size_t fixed_size);

/* Bytes on the wire (length prefix + ciphertext) of such a frame; 0 when it cannot fit. */
size_t frame_wire_len(size_t content_len, size_t fixed_size);

/*
 * Builds one frame: length prefix, then CONTENT encrypted with CS, padded per FIXED_SIZE
 * (0 = buckets, else 16896..65519). Writes frame_wire_len() bytes to OUT and sets *OUTLEN.
 * Returns 0, CAIRN_EINVAL (content too long for one frame, bad fixed size), CAIRN_ENOBUFS
 * or CAIRN_ENONCE. CONTENT and OUT must not overlap.
 */
CAIRN_WARN_UNUSED int frame_seal(struct noise_cipher *cs, const uint8_t *content,
                                 size_t content_len, size_t fixed_size, uint8_t *out, size_t outcap,
                                 size_t *outlen);

/*
 * Where to cut a batch of commands into frames (docs/PROTOCOL.md 4.2, "Packing"): CONTENT is
 * LEN bytes of whole msgpack objects back to back. Returns how many leading bytes, a whole
 * number of objects, the next frame should carry: with buckets, the largest bucket the cut
 * fills to 7/8, else the cut that fills its bucket best (so padding wastes little whatever
 * the batch size); with FIXED_SIZE, as many objects as fit. Returns 0 when LEN is 0 or the first
 * object is malformed or does not fit in any frame.
 */
size_t frame_split(const uint8_t *content, size_t len, size_t fixed_size);

/*
 * Opens a frame body MSG (the Noise message, without the length prefix) with CS into OUT
 * (capacity at least len - 16; OUT may equal MSG), checks the content header and that the
 * padding is zero, and sets *CONTENT, *CONTENT_LEN to the content inside OUT. Returns 0,
 * CAIRN_EFRAME (too short), CAIRN_EAUTH, CAIRN_EPADDING (bad content length or non-zero
 * padding), CAIRN_ENOBUFS or CAIRN_ENONCE.
 */
CAIRN_WARN_UNUSED int frame_open(struct noise_cipher *cs, const uint8_t *msg, size_t len,
                                 uint8_t *out, size_t outcap, const uint8_t **content,
                                 size_t *content_len);

#endif
