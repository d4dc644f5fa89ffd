/* SPDX-License-Identifier: MIT */
/*
 * The HTTP/1.1 request head the relay's WebSocket listener reads before the Cairn stream
 * (PROTOCOL.md 7.2): a pure parser over bytes received so far, and the Sec-WebSocket-Accept
 * value of the 101 response. No I/O here, so a unit test and a fuzz target see exactly what a
 * peer's bytes do.
 */
#ifndef CAIRN_RELAY_HTTPHEAD_H
#define CAIRN_RELAY_HTTPHEAD_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/error.h"

#define HTTPHEAD_MAX        4096 /* a request head, up to and including its blank line */
#define HTTPHEAD_KEY_LEN    24   /* Sec-WebSocket-Key: base64 of 16 bytes */
#define HTTPHEAD_ACCEPT_LEN 28   /* Sec-WebSocket-Accept: base64 of a SHA-1 */

enum httphead_result {
	HTTPHEAD_INCOMPLETE = 0, /* no blank line yet, and still under HTTPHEAD_MAX */
	HTTPHEAD_UPGRADE,        /* GET /<path> with a valid version 13 upgrade: answer 101 */
	HTTPHEAD_NOT_FOUND,      /* a well-formed head asking for anything else: answer 404 */
	HTTPHEAD_MALFORMED,      /* not HTTP/1.x, or too long: close without an answer */
};

struct httphead_request {
	size_t head_len;                /* bytes of the head, blank line included */
	char key[HTTPHEAD_KEY_LEN + 1]; /* HTTPHEAD_UPGRADE: the Sec-WebSocket-Key */
};

/*
 * Parses the first LEN bytes a peer sent (borrowed) as a request head for the secret PATH
 * (NUL-terminated, without its leading '/'). Bytes after the head's blank line are not looked
 * at (they are the stream's first bytes). Header names and the Upgrade/Connection tokens
 * compare without regard to case; the path compares exactly, in time independent of where it
 * differs. Fills OUT for HTTPHEAD_UPGRADE and HTTPHEAD_NOT_FOUND.
 */
enum httphead_result httphead_parse(const uint8_t *buf, size_t len, const char *path,
                                    struct httphead_request *out);

/*
 * Writes the Sec-WebSocket-Accept value for KEY into OUT (NUL-terminated):
 * base64(SHA-1(KEY || the RFC 6455 GUID)). Returns 0 or CAIRN_ENOMEM.
 */
CAIRN_WARN_UNUSED int httphead_accept(const char key[static HTTPHEAD_KEY_LEN],
                                      char out[static HTTPHEAD_ACCEPT_LEN + 1]);

#endif
