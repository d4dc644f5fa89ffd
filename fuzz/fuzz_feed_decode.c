/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the change feed's decoder (relay/feed_codec.h): any input decodes or is refused
 * without reading past it or allocating more than it holds, and one that decodes is in the
 * one form: its ops encoded again, one by one, give back the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/error.h"
#include "feed_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

struct again {
	uint8_t *out;
	size_t cap, len;
};

/* Each op encoded alone is the version byte and the op: append the op. */
static int encode_again(void *ctx, const struct store_op *op)
{
	struct again *a = ctx;
	CHECK(op->body == NULL);
	size_t n = feed_encoded_len(op, 1);
	CHECK(n > 1 && n - 1 <= a->cap - a->len);
	uint8_t *tmp = malloc(n);
	CHECK(tmp != NULL);
	CHECK(feed_encode(op, 1, tmp, n) == n);
	memcpy(a->out + a->len, tmp + 1, n - 1);
	a->len += n - 1;
	free(tmp);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct again a = {.out = malloc(size + 1), .cap = size, .len = 1};
	CHECK(a.out != NULL);
	a.out[0] = size > 0 ? data[0] : 0;
	int rc = feed_decode(data, size, encode_again, &a);
	CHECK(rc == 0 || rc == CAIRN_EMALFORMED);
	if (rc == 0) {
		CHECK(a.len == size);
		CHECK(memcmp(a.out, data, size) == 0);
	}
	free(a.out);
	return 0;
}
