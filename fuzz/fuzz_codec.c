/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the command codec: arbitrary bytes are decoded as a frame's batch, and every
 * message that decodes is re-encoded and decoded again, which must give the same fields and,
 * the second time, the same bytes. The structure walker is also run on the input directly.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "msgcheck.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_bytes(const uint8_t *a, const uint8_t *b, size_t n)
{
	if ((a == NULL) != (b == NULL) || (a != NULL && memcmp(a, b, n) != 0))
		abort();
}

static void same_msg(const struct cairn_msg *a, const struct cairn_msg *b)
{
	if (a->type != b->type || a->request_id != b->request_id ||
	    a->envelope_id != b->envelope_id || a->envelope_len != b->envelope_len ||
	    a->code != b->code)
		abort();
	same_bytes(a->recipient_key, b->recipient_key, CAIRN_KEY_LEN);
	same_bytes(a->recipient_id, b->recipient_id, CAIRN_MAILBOX_ID_LEN);
	same_bytes(a->sender_id, b->sender_id, CAIRN_MAILBOX_ID_LEN);
	same_bytes(a->signature, b->signature, CAIRN_SIGNATURE_LEN);
	same_bytes(a->credential, b->credential, CAIRN_CREDENTIAL_LEN);
	same_bytes(a->envelope, b->envelope, a->envelope_len);
}

static void check_roundtrip(const struct cairn_msg *m, size_t original_len)
{
	static uint8_t enc[CAIRN_MSG_ENCODED_MAX], enc2[CAIRN_MSG_ENCODED_MAX];
	size_t len, len2;
	struct cairn_msg again, third;

	if (cairn_msg_encode(m, enc, sizeof(enc), &len) != 0)
		abort(); /* anything the decoder accepts must encode */
	if (len > original_len)
		abort(); /* shortest forms never take more room than the input did */
	if (cairn_msg_decode(enc, len, NULL, &again, NULL) != 0)
		abort();
	same_msg(m, &again);
	if (cairn_msg_encode(&again, enc2, sizeof(enc2), &len2) != 0 || len2 != len ||
	    memcmp(enc, enc2, len) != 0)
		abort();
	if (cairn_msg_decode(enc2, len2, NULL, &third, NULL) != 0)
		abort();
	same_msg(m, &third);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t objlen;
	int rc = cairn_msgcheck(data, size, &objlen);
	if (rc == 0 ? objlen == 0 || objlen > size : objlen != 0)
		abort();

	size_t pos = 0;
	while (pos < size) {
		struct cairn_msg m;
		size_t used;
		int have_id;
		rc = cairn_msg_decode(data + pos, size - pos, &used, &m, &have_id);
		if (rc == 0) {
			if (!have_id)
				abort();
			check_roundtrip(&m, used);
		} else if (rc != CAIRN_ETYPE && rc != CAIRN_EUNKNOWN) {
			if (used != 0 || have_id)
				abort();
			break; /* the rest of the batch cannot be delimited */
		}
		if (used == 0 || used > size - pos)
			abort();
		pos += used;
	}

	/* Exactly one message: the same verdict, unless bytes trail. */
	struct cairn_msg one;
	size_t first;
	int have;
	int rc_batch = cairn_msg_decode(data, size, &first, &one, &have);
	int rc_one = cairn_msg_decode(data, size, NULL, &one, NULL);
	if (rc_batch == 0 || rc_batch == CAIRN_ETYPE || rc_batch == CAIRN_EUNKNOWN) {
		if (first < size ? rc_one != CAIRN_ETRAILING : rc_one != rc_batch)
			abort();
	} else if (rc_one != rc_batch) {
		abort();
	}
	return 0;
}
