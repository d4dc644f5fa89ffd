/* SPDX-License-Identifier: MIT */
/*
 * Layouts of data model 1, before ids (records_v1.h), kept exactly as that client wrote them so
 * that the upgrade reads every old home. The contact's lives beside the current one in
 * records.c (the two differ only at the ends).
 */
#include <string.h>

#include "records_io.h"
#include "records_v1.h"

#define MESSAGE_V1_RECORD_VERSION 1
#define OUTBOX_V1_RECORD_VERSION  2

int message_v1_parse(const uint8_t *in, size_t len, char contact[static CAIRN_NAME_MAX + 1],
                     struct stored_message *m)
{
	struct reader r = {in, len, 0};
	memset(m, 0, sizeof(*m));
	if (r_u8(&r) != MESSAGE_V1_RECORD_VERSION)
		return CAIRN_ECORRUPT;
	r_str(&r, contact, CAIRN_NAME_MAX);
	m->outgoing = r_u8(&r);
	m->sent_at = (int64_t)r_u64(&r);
	m->received_at = (int64_t)r_u64(&r);
	r_bytes(&r, m->id, APPMSG_ID_LEN);
	m->text = r_var(&r, CAIRN_MESSAGE_MAX, &m->len);
	int rc = r_finish(&r);
	return rc == 0 && (m->outgoing > 1 || contact[0] == '\0') ? CAIRN_ECORRUPT : rc;
}

int outbox_v1_parse(const uint8_t *in, size_t len, char contact[static CAIRN_NAME_MAX + 1],
                    struct outbox_entry *e)
{
	struct reader r = {in, len, 0};
	memset(e, 0, sizeof(*e));
	if (r_u8(&r) != OUTBOX_V1_RECORD_VERSION)
		return CAIRN_ECORRUPT;
	r_str(&r, contact, CAIRN_NAME_MAX);
	r_bytes(&r, e->message_id, APPMSG_ID_LEN);
	r_bytes(&r, e->outbox_id, sizeof(e->outbox_id));
	e->kind = r_u8(&r);
	e->envelope = r_var(&r, CAIRN_ENVELOPE_MAX, &e->envelope_len);
	int rc = r_finish(&r);
	return rc == 0 && contact[0] == '\0' ? CAIRN_ECORRUPT : rc;
}

size_t message_v1_key(uint8_t *out, const char *name, const uint8_t id[static APPMSG_ID_LEN])
{
	size_t n = strnlen(name, CAIRN_NAME_MAX);
	memcpy(out, name, n);
	out[n] = 0;
	memcpy(out + n + 1, id, APPMSG_ID_LEN);
	return n + 1 + APPMSG_ID_LEN;
}

size_t part_v1_key(uint8_t *out, const char *name, const uint8_t id[static APPMSG_ID_LEN],
                   uint16_t index)
{
	size_t n = message_v1_key(out, name, id);
	out[n] = (uint8_t)(index >> 8);
	out[n + 1] = (uint8_t)index;
	return n + 2;
}
