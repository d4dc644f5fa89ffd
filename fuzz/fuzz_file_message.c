/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes file_msg_parse, the file message's data (docs/PROTOCOL.md 11.2, kind 8): whatever
 * parses must pass every receiver check again and encode back to exactly the same bytes (the
 * format has one form), and a failed parse must leave the output zeroed. The same bytes as
 * an entry: its index is read only from an entry of exactly 16384 bytes.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct file_msg m;
	uint8_t out[FILE_DATA_MAX];
	size_t len = 0;
	if (file_msg_parse(data, size, &m) != 0) {
		if (!sodium_is_zero((const uint8_t *)&m, sizeof(m)))
			abort();
	} else {
		if (m.size > CAIRN_FILE_SIZE_MAX || m.chunks != file_chunks(m.size) ||
		    m.name_len == 0 || m.name_len > FILE_NAME_MAX ||
		    !file_utf8_ok(m.name, m.name_len) || m.relay_len == 0 ||
		    m.relay_len > CAIRN_ADDRESS_MAX)
			abort();
		if (file_msg_encode(&m, out, sizeof(out), &len) != 0 || len != size ||
		    memcmp(out, data, size) != 0)
			abort();
	}
	uint32_t i;
	if ((file_entry_index(data, size, &i) == 0) != (size == FILE_ENTRY_LEN))
		abort();
	return 0;
}
