/* SPDX-License-Identifier: MIT */
/*
 * Invite payload and mailbox list encoding, with strict parsing (docs/PROTOCOL.md section
 * 8.2). Every length is checked against the bytes present before it is used; the structure is
 * walked whole before any relay text is parsed; every relay text must be a valid address, no
 * two on the same relay, and the identity key a valid Ed25519 point.
 */
#include <string.h>

#include <sodium.h>

#include "invite.h"

/* The identity key must map to an X25519 key, as session setup will need it to. */
static int check_identity(const uint8_t key[static CAIRN_KEY_LEN])
{
	uint8_t x[CAIRN_KEY_LEN];
	int ok = crypto_sign_ed25519_pk_to_curve25519(x, key) == 0;
	sodium_memzero(x, sizeof(x));
	return ok ? 0 : CAIRN_EINVAL;
}

/*
 * Checks the relays of L: each text an address (CAIRN_EADDRESS), then no two with the same
 * static key (CAIRN_EINVAL). A relay is its key: the same relay under two host names is one
 * relay, and two mailboxes there would add nothing but a way to tell them apart.
 */
static int check_relays(const struct mailbox_list *l)
{
	uint8_t keys[CAIRN_MAILBOXES_MAX][CAIRN_KEY_LEN];
	for (size_t i = 0; i < l->count; i++) {
		struct cairn_address a;
		if (cairn_address_parse(l->box[i].relay, &a) != 0)
			return CAIRN_EADDRESS;
		memcpy(keys[i], a.key, CAIRN_KEY_LEN);
	}
	for (size_t i = 0; i < l->count; i++)
		for (size_t j = i + 1; j < l->count; j++)
			if (memcmp(keys[i], keys[j], CAIRN_KEY_LEN) == 0)
				return CAIRN_EINVAL;
	return 0;
}

int mailbox_list_encode(const struct mailbox_list *l, uint8_t *out, size_t cap, size_t *outlen)
{
	*outlen = 0;
	if (l->count == 0 || l->count > CAIRN_MAILBOXES_MAX)
		return CAIRN_EINVAL;
	size_t need = 1;
	for (size_t i = 0; i < l->count; i++) {
		size_t rlen = strnlen(l->box[i].relay, sizeof(l->box[i].relay));
		if (rlen == 0 || rlen > CAIRN_ADDRESS_MAX)
			return CAIRN_EADDRESS;
		need += MAILBOX_ENTRY_FIXED + rlen;
	}
	int rc = check_relays(l);
	if (rc != 0)
		return rc;
	if (cap < need)
		return CAIRN_ENOBUFS;
	uint8_t *p = out;
	*p++ = l->count;
	for (size_t i = 0; i < l->count; i++) {
		const struct mailbox_addr *m = &l->box[i];
		size_t rlen = strlen(m->relay);
		memcpy(p, m->sender_id, CAIRN_MAILBOX_ID_LEN);
		p += CAIRN_MAILBOX_ID_LEN;
		memcpy(p, m->credential, CAIRN_CREDENTIAL_LEN);
		p += CAIRN_CREDENTIAL_LEN;
		*p++ = (uint8_t)(rlen >> 8);
		*p++ = (uint8_t)rlen;
		memcpy(p, m->relay, rlen);
		p += rlen;
	}
	*outlen = need;
	return 0;
}

int mailbox_list_parse(const uint8_t *in, size_t len, struct mailbox_list *out)
{
	int rc = CAIRN_EINVAL, nul = 0;
	memset(out, 0, sizeof(*out));
	if (len < 1 || in[0] == 0 || in[0] > CAIRN_MAILBOXES_MAX)
		return CAIRN_EINVAL;
	size_t off = 1;
	for (size_t i = 0; i < in[0]; i++) {
		if (len - off < MAILBOX_ENTRY_FIXED)
			goto fail;
		struct mailbox_addr *m = &out->box[i];
		memcpy(m->sender_id, in + off, CAIRN_MAILBOX_ID_LEN);
		off += CAIRN_MAILBOX_ID_LEN;
		memcpy(m->credential, in + off, CAIRN_CREDENTIAL_LEN);
		off += CAIRN_CREDENTIAL_LEN;
		size_t rlen = ((size_t)in[off] << 8) | in[off + 1];
		off += 2;
		if (rlen == 0 || rlen > CAIRN_ADDRESS_MAX || rlen > len - off)
			goto fail;
		/* A NUL inside the text would hide bytes from the address parser. */
		nul |= memchr(in + off, 0, rlen) != NULL;
		memcpy(m->relay, in + off, rlen);
		m->relay[rlen] = '\0';
		off += rlen;
	}
	if (off != len)
		goto fail;
	out->count = in[0];
	rc = nul ? CAIRN_EADDRESS : check_relays(out);
	if (rc == 0)
		return 0;
fail:
	sodium_memzero(out, sizeof(*out));
	return rc;
}

int invite_encode(const struct invite *inv, uint8_t *out, size_t cap, size_t *outlen)
{
	*outlen = 0;
	if (check_identity(inv->identity) != 0)
		return CAIRN_EINVAL;
	if (cap < INVITE_HEADER_LEN)
		return CAIRN_ENOBUFS;
	size_t llen = 0;
	int rc = mailbox_list_encode(&inv->mailboxes, out + INVITE_HEADER_LEN,
	                             cap - INVITE_HEADER_LEN, &llen);
	if (rc != 0)
		return rc;
	out[0] = INVITE_VERSION;
	memcpy(out + 1, inv->identity, CAIRN_KEY_LEN);
	memcpy(out + 1 + CAIRN_KEY_LEN, inv->onetime, CAIRN_KEY_LEN);
	*outlen = INVITE_HEADER_LEN + llen;
	return 0;
}

int invite_parse(const uint8_t *in, size_t len, struct invite *out)
{
	memset(out, 0, sizeof(*out));
	if (len <= INVITE_HEADER_LEN || len > INVITE_MAX_LEN || in[0] != INVITE_VERSION)
		return CAIRN_EINVAL;
	int rc =
	    mailbox_list_parse(in + INVITE_HEADER_LEN, len - INVITE_HEADER_LEN, &out->mailboxes);
	if (rc != 0)
		return rc;
	memcpy(out->identity, in + 1, CAIRN_KEY_LEN);
	memcpy(out->onetime, in + 1 + CAIRN_KEY_LEN, CAIRN_KEY_LEN);
	if ((rc = check_identity(out->identity)) != 0) {
		sodium_memzero(out, sizeof(*out));
		return rc;
	}
	return 0;
}
