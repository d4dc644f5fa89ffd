/* SPDX-License-Identifier: MIT */
/*
 * Application message and reply layouts (docs/PROTOCOL.md section 8.9). Fixed-layout binary
 * with big-endian integers; every length is checked against what remains before it is used.
 */
#include <string.h>

#include <sodium.h>

#include "appmsg.h"

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

int appmsg_reply_encode(const struct appmsg_reply *r, uint8_t *out, size_t cap, size_t *outlen)
{
	*outlen = 0;
	size_t rl = strnlen(r->relay, sizeof(r->relay));
	struct cairn_address check;
	if (rl > CAIRN_ADDRESS_MAX || cairn_address_parse(r->relay, &check) != 0)
		return CAIRN_EINVAL;
	size_t len = 1 + CAIRN_MAILBOX_ID_LEN + CAIRN_CREDENTIAL_LEN + 2 + rl;
	if (cap < len)
		return CAIRN_ENOBUFS;
	uint8_t *p = out;
	*p++ = 1;
	memcpy(p, r->sender_id, CAIRN_MAILBOX_ID_LEN);
	p += CAIRN_MAILBOX_ID_LEN;
	memcpy(p, r->credential, CAIRN_CREDENTIAL_LEN);
	p += CAIRN_CREDENTIAL_LEN;
	put_u16(p, (uint16_t)rl);
	memcpy(p + 2, r->relay, rl);
	*outlen = len;
	return 0;
}

int appmsg_reply_parse(const uint8_t *in, size_t len, struct appmsg_reply *r)
{
	memset(r, 0, sizeof(*r));
	const size_t fixed = 1 + CAIRN_MAILBOX_ID_LEN + CAIRN_CREDENTIAL_LEN + 2;
	if (len < fixed || in[0] != 1)
		return CAIRN_EINVAL;
	size_t rl = get_u16(in + fixed - 2);
	if (rl > CAIRN_ADDRESS_MAX || rl != len - fixed)
		return CAIRN_EINVAL;
	memcpy(r->sender_id, in + 1, CAIRN_MAILBOX_ID_LEN);
	memcpy(r->credential, in + 1 + CAIRN_MAILBOX_ID_LEN, CAIRN_CREDENTIAL_LEN);
	memcpy(r->relay, in + fixed, rl);
	r->relay[rl] = '\0';
	struct cairn_address check;
	if (memchr(r->relay, '\0', rl) != NULL || cairn_address_parse(r->relay, &check) != 0) {
		sodium_memzero(r, sizeof(*r));
		return CAIRN_EINVAL;
	}
	return 0;
}
