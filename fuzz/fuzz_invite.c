/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes invite_parse (docs/PROTOCOL.md section 8.2). A payload that parses must encode back
 * to exactly the same bytes (the format has one form), and a failed parse must leave the
 * output zeroed.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "invite.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	if (!ready) {
		if (sodium_init() < 0)
			abort();
		ready = true;
	}
	struct invite inv;
	uint8_t out[INVITE_MAX_LEN];
	size_t len = 0;
	if (invite_parse(data, size, &inv) != 0) {
		if (!sodium_is_zero((const uint8_t *)&inv, sizeof(inv)))
			abort();
		return 0;
	}
	if (invite_encode(&inv, out, sizeof(out), &len) != 0 || len != size ||
	    memcmp(out, data, size) != 0)
		abort();
	return 0;
}
