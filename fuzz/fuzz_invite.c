/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes invite_parse (docs/PROTOCOL.md section 8.2) and, on the same bytes, the other two
 * readers of a mailbox list: the data of a mailboxes message and the accepter's reply (section
 * 8.9), and group_invite_parse (the version 3 group invite of 9.8). Whatever parses must
 * encode back to exactly the same bytes (each format has one form), and a failed parse must
 * leave the output zeroed.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "appmsg.h"
#include "invite.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_invite(const uint8_t *data, size_t size)
{
	struct invite inv;
	uint8_t out[INVITE_MAX_LEN];
	size_t len = 0;
	if (invite_parse(data, size, &inv) != 0) {
		if (!sodium_is_zero((const uint8_t *)&inv, sizeof(inv)))
			abort();
		return;
	}
	if (invite_encode(&inv, out, sizeof(out), &len) != 0 || len != size ||
	    memcmp(out, data, size) != 0)
		abort();
}

/* A group invite; the bytes after its header are read as a mailbox list by check_lists too. */
static void check_group_invite(const uint8_t *data, size_t size)
{
	struct group_invite gi;
	struct invite inv;
	uint8_t out[INVITE_GROUP_MAX_LEN];
	size_t len = 0;
	if (group_invite_parse(data, size, &gi) != 0) {
		if (!sodium_is_zero((const uint8_t *)&gi, sizeof(gi)))
			abort();
		return;
	}
	if (group_invite_encode(&gi, out, sizeof(out), &len) != 0 || len != size ||
	    memcmp(out, data, size) != 0)
		abort();
	/* One set of bytes is never both kinds of invite. */
	if (invite_parse(data, size, &inv) == 0)
		abort();
}

/* An invite's mailbox list starts after its header; read it as a mailboxes message and as a
 * reply too (each with its own prefix in front). */
static void check_lists(const uint8_t *data, size_t size)
{
	if (size < INVITE_HEADER_LEN || size - INVITE_HEADER_LEN > INVITE_MAX_LEN)
		return;
	const uint8_t *list = data + INVITE_HEADER_LEN;
	size_t llen = size - INVITE_HEADER_LEN;
	static uint8_t in[4 + INVITE_MAX_LEN], out[4 + INVITE_MAX_LEN];
	struct mailbox_list l;
	uint32_t serial;
	size_t len = 0;
	memcpy(in, data + 1, 4); /* a serial from the identity's first bytes */
	memcpy(in + 4, list, llen);
	if (appmsg_mailboxes_parse(in, 4 + llen, &serial, &l) == 0) {
		if (appmsg_mailboxes_encode(serial, &l, out, sizeof(out), &len) != 0 ||
		    len != 4 + llen || memcmp(out, in, len) != 0)
			abort();
	} else if (serial != 0 || !sodium_is_zero((const uint8_t *)&l, sizeof(l))) {
		abort();
	}
	in[0] = APPMSG_REPLY_VERSION;
	memcpy(in + 1, list, llen);
	if (appmsg_reply_parse(in, 1 + llen, &l) == 0) {
		if (appmsg_reply_encode(&l, out, sizeof(out), &len) != 0 || len != 1 + llen ||
		    memcmp(out, in, len) != 0)
			abort();
	} else if (!sodium_is_zero((const uint8_t *)&l, sizeof(l))) {
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	if (!ready) {
		if (sodium_init() < 0)
			abort();
		ready = true;
	}
	check_invite(data, size);
	check_group_invite(data, size);
	check_lists(data, size);
	return 0;
}
