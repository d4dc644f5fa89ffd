/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the client's record decoders (client/records.c), which read back local state.
 * The state is sealed, so its bytes are normally our own; a damaged or old store must still
 * fail cleanly. The first byte picks the decoder (0xfe: a conversation, 0xff: an expiry index
 * entry; else by its value modulo 3); whatever parses must re-encode to the same bytes (a
 * contact from before intake addresses, to the same bytes and a zero trailer; a message or a
 * conversation from before timers, to the same bytes and the trailer of no timer).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "records.h"

static void check_same(const uint8_t *a, size_t alen, uint8_t *b, size_t blen)
{
	if (alen != blen || memcmp(a, b, alen) != 0)
		abort();
	free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || sodium_init() < 0)
		return 0;
	const uint8_t *in = data + 1;
	size_t len = size - 1;
	uint8_t *out = NULL;
	size_t outlen = 0;
	if (data[0] == 0xfe) {
		struct conversation v;
		if (conversation_parse(in, len, &v) == 0) {
			if (conversation_encode(&v, &out, &outlen) != 0)
				abort();
			/* From before timers: the trailer comes back zero (timer, sent_at, id). */
			if (outlen == len + 8 + 8 + APPMSG_ID_LEN &&
			    sodium_is_zero(out + len, outlen - len))
				outlen = len;
			check_same(in, len, out, outlen);
			conversation_wipe(&v);
		}
		return 0;
	}
	if (data[0] == 0xff) {
		struct expiry_entry x;
		uint8_t back[EXPIRY_ENTRY_LEN];
		if (expiry_entry_parse(in, len, &x) == 0) {
			expiry_entry_encode(&x, back);
			if (len != EXPIRY_ENTRY_LEN || memcmp(in, back, len) != 0)
				abort();
		}
		return 0;
	}
	switch (data[0] % 3) {
	case 0: {
		struct contact k;
		if (contact_parse(in, len, &k) == 0) {
			if (contact_encode(&k, &out, &outlen) != 0)
				abort();
			/* A record from before intake addresses comes back with a zero trailer. */
			if (outlen == len + CONTACT_INTAKE_TRAILER_LEN &&
			    sodium_is_zero(out + len, CONTACT_INTAKE_TRAILER_LEN))
				outlen = len;
			check_same(in, len, out, outlen);
			contact_wipe(&k);
		}
		break;
	}
	case 1: {
		struct stored_message m;
		if (message_parse(in, len, &m) == 0) {
			if (message_encode(&m, &out, &outlen) != 0)
				abort();
			/* From before timers: a text that never expires (kind 1, time 0). */
			if (outlen == len + 9 && out[len] == APPMSG_TEXT &&
			    sodium_is_zero(out + len + 1, 8))
				outlen = len;
			check_same(in, len, out, outlen);
		}
		break;
	}
	default: {
		struct outbox_entry e;
		if (outbox_parse(in, len, &e) == 0) {
			if (outbox_encode(&e, &out, &outlen) != 0)
				abort();
			check_same(in, len, out, outlen);
		}
		break;
	}
	}
	return 0;
}
