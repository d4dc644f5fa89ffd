/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the records of a group's state (client/group_records.c), read back from the
 * sealed store. The store is authenticated, so their bytes are normally our own; a damaged or
 * older store must still fail cleanly. The first byte picks the layout; whatever parses must
 * encode back to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "group.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t kinds[] = {REC_GROUP, REC_GROUP_EPOCH, REC_GROUP_CHAINS,
	                                 REC_GROUP_SKIPPED, REC_GROUP_PENDING};
	if (size < 1 || sodium_init() < 0)
		return 0;
	uint32_t kind = kinds[data[0] % 5];
	/* Big enough for any of the five structs. */
	size_t cap = sizeof(struct group_state) > sizeof(struct group_pending)
	                 ? sizeof(struct group_state)
	                 : sizeof(struct group_pending);
	void *obj = calloc(1, cap);
	if (obj == NULL)
		return 0;
	if (group_record_parse(kind, data + 1, size - 1, obj) == 0) {
		uint8_t *out = NULL;
		size_t len = 0;
		if (group_record_encode(kind, obj, &out, &len) != 0 || len != size - 1 ||
		    memcmp(out, data + 1, len) != 0)
			abort();
		free(out);
		if (kind == REC_GROUP_PENDING)
			group_pending_wipe(obj);
	}
	free(obj);
	return 0;
}
