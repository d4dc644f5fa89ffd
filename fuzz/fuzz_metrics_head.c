/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the metrics listener's request head decoder (metrics_route, relay/metrics_addr.c).
 * Every prefix is decoded, as a client may send a byte at a time: a verdict once reached
 * must not change as bytes are added, and no read may leave the input (ASan sees to that:
 * the input is copied into a buffer of exactly its size).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metrics_addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 8192)
		return 0;
	char *head = malloc(size > 0 ? size : 1);
	if (head == NULL)
		return 0;
	memcpy(head, data, size);
	enum metrics_route whole = metrics_route(head, size);
	enum metrics_route first = METRICS_ROUTE_INCOMPLETE;
	for (size_t n = 0; n <= size; n++) {
		enum metrics_route r = metrics_route(head, n);
		if (first == METRICS_ROUTE_INCOMPLETE)
			first = r;
		else if (r != first)
			abort();
	}
	if (first != whole)
		abort();
	free(head);
	return 0;
}
