/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the relay address parser. Whatever parses must format, and the formatted text must
 * parse back to the same fields and format to the same text; whatever fails must leave the
 * output zeroed.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cairn/address.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	if (!ready) {
		if (sodium_init() < 0)
			abort();
		ready = 1;
	}
	char *text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	static const struct cairn_address zero;
	struct cairn_address a, b;
	memset(&a, 0x5a, sizeof(a));
	if (cairn_address_parse(text, &a) != 0) {
		if (memcmp(&a, &zero, sizeof(a)) != 0)
			abort();
		free(text);
		return 0;
	}
	char out[CAIRN_ADDRESS_MAX + 1], again[CAIRN_ADDRESS_MAX + 1];
	if (cairn_address_format(&a, out, sizeof(out)) != 0)
		abort();
	if (cairn_address_parse(out, &b) != 0 || memcmp(&a, &b, sizeof(a)) != 0)
		abort();
	if (cairn_address_format(&b, again, sizeof(again)) != 0 || strcmp(out, again) != 0)
		abort();
	/* The formatter writes nothing longer than the input it came from, except for IPv6. */
	if (a.host_type != CAIRN_HOST_IPV6 && strlen(out) != strlen(text))
		abort();
	free(text);
	return 0;
}
