/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the WebSocket listener's request head parser (relay/httphead.c). Every prefix of
 * the input is parsed, as a peer may deliver it a byte at a time: a prefix shorter than a
 * complete head must say "incomplete", a verdict once reached must not change as bytes are
 * added, and an accepted head must lie within the input and the 4096-byte limit.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "httphead.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	if (!ready) {
		if (sodium_init() < 0)
			abort();
		ready = 1;
	}
	static const char path[] = "k3Jx9-wq_Tn2LmA7pQe0Vg";
	struct httphead_request whole;
	enum httphead_result r = httphead_parse(data, size, path, &whole);
	if (r != HTTPHEAD_INCOMPLETE && r != HTTPHEAD_MALFORMED &&
	    (whole.head_len > size || whole.head_len > HTTPHEAD_MAX || whole.head_len < 4))
		abort();
	if (r == HTTPHEAD_UPGRADE) {
		char accept[HTTPHEAD_ACCEPT_LEN + 1];
		if (strlen(whole.key) != HTTPHEAD_KEY_LEN ||
		    httphead_accept(whole.key, accept) != 0 ||
		    strlen(accept) != HTTPHEAD_ACCEPT_LEN)
			abort();
	}
	/* A prefix that ends before the head does is incomplete; one that holds it decides the
	 * same way as the whole input (bytes after the head are never looked at). */
	size_t step = size > 512 ? size / 256 : 1;
	for (size_t n = 0; n < size; n += step) {
		struct httphead_request part;
		enum httphead_result p = httphead_parse(data, n, path, &part);
		if (r == HTTPHEAD_UPGRADE || r == HTTPHEAD_NOT_FOUND) {
			if (n < whole.head_len ? p != HTTPHEAD_INCOMPLETE
			                       : p != r || part.head_len != whole.head_len)
				abort();
		} else if (r == HTTPHEAD_INCOMPLETE && p != HTTPHEAD_INCOMPLETE) {
			abort();
		}
	}
	return 0;
}
