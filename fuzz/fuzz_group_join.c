/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the decoders of joining a group (docs/PROTOCOL.md 9.7 and 9.8): offer, join and
 * welcome data and a log location, each on the same bytes. Whatever decodes must encode back
 * to exactly the same bytes (each format has one form), a welcome's roster must lie inside the
 * input, and a failed decode must leave its output zeroed.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "group_join.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(int rc, const uint8_t *out, size_t len, const uint8_t *data, size_t size)
{
	if (rc != 0 || len != size || memcmp(out, data, size) != 0)
		abort();
}

static void zeroed(const void *p, size_t n)
{
	if (!sodium_is_zero(p, n))
		abort();
}

static void check_offer(const uint8_t *data, size_t size)
{
	struct group_offer o;
	uint8_t out[GROUP_OFFER_MAX];
	size_t len = 0;
	if (group_offer_decode(data, size, &o) != 0) {
		zeroed(&o, sizeof(o));
		return;
	}
	int rc = group_offer_encode(&o, out, sizeof(out), &len);
	same(rc, out, len, data, size);
}

static void check_join(const uint8_t *data, size_t size)
{
	struct group_join j;
	uint8_t out[GROUP_JOIN_LEN];
	size_t len = 0;
	if (group_join_decode(data, size, &j) != 0) {
		zeroed(&j, sizeof(j));
		return;
	}
	int rc = group_join_encode(&j, out, sizeof(out), &len);
	same(rc, out, len, data, size);
}

static void check_location(const uint8_t *data, size_t size)
{
	struct group_location l;
	uint8_t out[GROUP_LOCATION_MAX];
	size_t len = 0;
	if (group_location_decode(data, size, &l) != 0) {
		zeroed(&l, sizeof(l));
		return;
	}
	int rc = group_location_encode(&l, out, sizeof(out), &len);
	same(rc, out, len, data, size);
}

static void check_welcome(const uint8_t *data, size_t size)
{
	static uint8_t out[GROUP_WELCOME_MAX];
	struct group_welcome w;
	size_t len = 0;
	if (group_welcome_decode(data, size, &w) != 0) {
		zeroed(&w, sizeof(w));
		return;
	}
	if (w.roster < data || w.roster_len > size || w.roster + w.roster_len != data + size)
		abort();
	int rc = group_welcome_encode(&w, out, sizeof(out), &len);
	same(rc, out, len, data, size);
	group_welcome_clear(&w);
	zeroed(&w, sizeof(w));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	if (!ready) {
		if (sodium_init() < 0)
			abort();
		ready = true;
	}
	check_offer(data, size);
	check_join(data, size);
	check_location(data, size);
	check_welcome(data, size);
	return 0;
}
