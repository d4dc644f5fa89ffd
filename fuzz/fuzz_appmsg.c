/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: an application message (docs/PROTOCOL.md 8.9) as a session or a group log
 * hands it over: appmsg_parse, appmsg_check in both scopes, and a timer message's data
 * (8.11, appmsg_timer_parse). Whatever parses must re-encode to the same bytes; a part that
 * appmsg_check accepts as a timer must carry seconds appmsg_timer_parse accepts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "appmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct appmsg m;
	static uint8_t out[E2E_MESSAGE_MAX];
	size_t len = 0;
	uint32_t seconds = 1;
	if (appmsg_timer_parse(data, size, &seconds) == 0) {
		uint8_t back[APPMSG_TIMER_DATA_LEN];
		if (seconds > CAIRN_TIMER_MAX_S || appmsg_timer_encode(seconds, back) != 0 ||
		    memcmp(back, data, sizeof(back)) != 0)
			abort();
	} else if (seconds != 0) {
		abort();
	}
	if (appmsg_parse(data, size, &m) != 0)
		return 0;
	if (appmsg_encode(&m, out, sizeof(out), &len) != 0 || len != size ||
	    memcmp(out, data, size) != 0)
		abort();
	for (int scope = APPMSG_DIRECT; scope <= APPMSG_GROUP; scope++)
		if (appmsg_check(&m, (enum appmsg_scope)scope) == 0 && m.kind == APPMSG_TIMER &&
		    (m.part_count != 1 || appmsg_timer_parse(m.data, m.data_len, &seconds) != 0))
			abort();
	return 0;
}
