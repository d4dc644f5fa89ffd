/* SPDX-License-Identifier: MIT */
/*
 * Application message and reply layouts (docs/PROTOCOL.md section 8.9). Fixed-layout binary
 * with big-endian integers; every length is checked against what remains before it is used.
 */
#include <stdbool.h>
#include <string.h>

#include <sodium.h>

#include "appmsg.h"
#include "file.h"

static void put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t get_u16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

int appmsg_encode(const struct appmsg *m, uint8_t *out, size_t cap, size_t *outlen)
{
	*outlen = 0;
	if (m->part_count == 0 || m->part_count > APPMSG_PARTS_MAX ||
	    m->part_index >= m->part_count || m->data_len > APPMSG_PART_MAX ||
	    (m->data_len > 0 && m->data == NULL))
		return CAIRN_EINVAL;
	size_t len = APPMSG_HEADER_LEN + m->data_len;
	if (cap < len)
		return CAIRN_ENOBUFS;
	out[0] = m->kind;
	memcpy(out + 1, m->id, APPMSG_ID_LEN);
	for (int i = 0; i < 8; i++)
		out[1 + APPMSG_ID_LEN + i] = (uint8_t)(m->sent_at >> (56 - 8 * i));
	put_u16(out + 25, m->part_index);
	put_u16(out + 27, m->part_count);
	if (m->data_len > 0)
		memcpy(out + APPMSG_HEADER_LEN, m->data, m->data_len);
	*outlen = len;
	return 0;
}

int appmsg_parse(const uint8_t *in, size_t len, struct appmsg *m)
{
	memset(m, 0, sizeof(*m));
	if (len < APPMSG_HEADER_LEN || len - APPMSG_HEADER_LEN > APPMSG_PART_MAX)
		return CAIRN_EINVAL;
	uint16_t index = get_u16(in + 25), count = get_u16(in + 27);
	if (count == 0 || count > APPMSG_PARTS_MAX || index >= count)
		return CAIRN_EINVAL;
	m->kind = in[0];
	memcpy(m->id, in + 1, APPMSG_ID_LEN);
	for (int i = 0; i < 8; i++)
		m->sent_at = (m->sent_at << 8) | in[1 + APPMSG_ID_LEN + i];
	m->part_index = index;
	m->part_count = count;
	m->data = in + APPMSG_HEADER_LEN;
	m->data_len = len - APPMSG_HEADER_LEN;
	return 0;
}

int appmsg_check(const struct appmsg *m, enum appmsg_scope scope)
{
	bool direct = scope == APPMSG_DIRECT, group = scope == APPMSG_GROUP, ok;
	switch (m->kind) {
	case APPMSG_TEXT:
		ok = direct || (group && m->data_len <= APPMSG_GROUP_PART_MAX);
		break;
	case APPMSG_FILE: /* section 11: one part, the same in a group log */
		ok = (direct || group) && m->part_count == 1 && m->data_len <= FILE_DATA_MAX;
		break;
	case APPMSG_GROUP_WELCOME:
		ok = direct; /* up to APPMSG_PARTS_MAX parts: a 1,000-member roster is 101 KB */
		break;
	case APPMSG_HELLO:
		ok = direct && m->part_count == 1 && m->data_len == 0;
		break;
	case APPMSG_MAILBOXES:
	case APPMSG_GROUP_OFFER:
	case APPMSG_GROUP_JOIN:
		ok = direct && m->part_count == 1;
		break;
	case APPMSG_KEY_UPDATE:
		ok = group && m->part_count == 1 && m->data_len == APPMSG_KEY_UPDATE_DATA_LEN;
		break;
	case APPMSG_LEAVE:
		ok = group && m->part_count == 1 && m->data_len == 0;
		break;
	default:
		ok = false;
	}
	return ok ? 0 : CAIRN_EINVAL;
}

int appmsg_reply_encode(const struct mailbox_list *l, uint8_t *out, size_t cap, size_t *outlen)
{
	uint8_t buf[1 + MAILBOX_LIST_MAX];
	size_t len = 0;
	*outlen = 0;
	int rc = mailbox_list_encode(l, buf + 1, sizeof(buf) - 1, &len);
	if (rc != 0)
		return rc;
	if (1 + len > APPMSG_REPLY_MAX)
		return CAIRN_ETOOBIG;
	if (cap < 1 + len)
		return CAIRN_ENOBUFS;
	buf[0] = APPMSG_REPLY_VERSION;
	memcpy(out, buf, 1 + len);
	sodium_memzero(buf, sizeof(buf)); /* credentials */
	*outlen = 1 + len;
	return 0;
}

int appmsg_reply_parse(const uint8_t *in, size_t len, struct mailbox_list *l)
{
	memset(l, 0, sizeof(*l));
	if (len < 1 || len > APPMSG_REPLY_MAX || in[0] != APPMSG_REPLY_VERSION)
		return CAIRN_EINVAL;
	return mailbox_list_parse(in + 1, len - 1, l);
}

int appmsg_mailboxes_encode(uint32_t serial, const struct mailbox_list *l, uint8_t *out, size_t cap,
                            size_t *outlen)
{
	*outlen = 0;
	if (serial == 0)
		return CAIRN_EINVAL;
	if (cap < 4)
		return CAIRN_ENOBUFS;
	size_t len = 0;
	int rc = mailbox_list_encode(l, out + 4, cap - 4, &len);
	if (rc != 0)
		return rc;
	for (int i = 0; i < 4; i++)
		out[i] = (uint8_t)(serial >> (24 - 8 * i));
	*outlen = 4 + len;
	return 0;
}

int appmsg_mailboxes_parse(const uint8_t *in, size_t len, uint32_t *serial, struct mailbox_list *l)
{
	*serial = 0;
	memset(l, 0, sizeof(*l));
	if (len < 4 || len > APPMSG_MAILBOXES_MAX)
		return CAIRN_EINVAL;
	uint32_t s =
	    ((uint32_t)in[0] << 24) | ((uint32_t)in[1] << 16) | ((uint32_t)in[2] << 8) | in[3];
	if (s == 0)
		return CAIRN_EINVAL;
	int rc = mailbox_list_parse(in + 4, len - 4, l);
	if (rc == 0)
		*serial = s;
	return rc;
}
