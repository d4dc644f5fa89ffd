/* SPDX-License-Identifier: MIT */
/*
 * Bounded msgpack structure check over raw bytes (docs/PROTOCOL.md 5.1). It walks one object
 * without recursion or allocation, so a hostile length or count can neither size a buffer nor
 * drive a deep call stack; only bytes it accepts are ever decoded further.
 */
#ifndef CAIRN_PROTO_MSGCHECK_H
#define CAIRN_PROTO_MSGCHECK_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/error.h"

/*
 * Walks the one msgpack object at the start of BUF (LEN bytes; borrowed, may hold more after
 * it) and sets *OBJLEN to the bytes it spans. Only nil, bool, integers of every width, str,
 * bin, array and map are allowed. Elements are checked in byte order and the walk stops at
 * the first one that fails; for that element the checks apply in this order:
 *
 *   CAIRN_EMALFORMED  0xc1, ext or float
 *   CAIRN_ETRUNCATED  the header, a str/bin length, or an element count does not fit in the
 *                     bytes that remain (N elements need N bytes, N map pairs 2N)
 *   CAIRN_ECOUNT      an array of more than CAIRN_MSG_COUNT_MAX elements, or a map of more
 *                     than that many pairs
 *   CAIRN_EDEPTH      an array or map nested inside CAIRN_MSG_DEPTH_MAX others
 *
 * A top-level array has depth 1, so [[[[1]]]] passes and [[[[[1]]]]] does not. Returns 0 or
 * one of the codes above; *OBJLEN is set to 0 on failure.
 */
CAIRN_WARN_UNUSED int cairn_msgcheck(const uint8_t *buf, size_t len, size_t *objlen);

#endif
