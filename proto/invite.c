/* SPDX-License-Identifier: MIT */
/*
 * Invite payload and mailbox list encoding, with strict parsing (docs/PROTOCOL.md section
 * 8.2). Every length is checked against the bytes present before it is used; the structure is
 * walked whole before any relay text is parsed; every relay text must be a valid address, no
 * two on the same relay, and the identity key a valid Ed25519 point. Version 3, the group
 * invite of section 9.8, is the same with a trailer naming the group.
 */
#include <string.h>

#include <sodium.h>

#include "invite.h"

/* The identity key must map to an X25519 key, as session setup will need it to. */
int identity_key_check(const uint8_t key[static CAIRN_KEY_LEN])
{
	uint8_t x[CAIRN_KEY_LEN];
	int ok = crypto_sign_ed25519_pk_to_curve25519(x, key) == 0;
	sodium_memzero(x, sizeof(x));
	return ok ? 0 : CAIRN_EINVAL;
}

/*
 * A relay is its key: the same relay under two host names is one relay, and two mailboxes
 * there would add nothing but a way to tell them apart.
 */
int relay_texts_check(const char *const relay[], size_t count)
{
	uint8_t keys[CAIRN_MAILBOXES_MAX][CAIRN_KEY_LEN];
	if (count > CAIRN_MAILBOXES_MAX)
		return CAIRN_EINVAL;
	for (size_t i = 0; i < count; i++) {
		struct cairn_address a;
		if (cairn_address_parse(relay[i], &a) != 0)
			return CAIRN_EADDRESS;
		memcpy(keys[i], a.key, CAIRN_KEY_LEN);
	}
	for (size_t i = 0; i < count; i++)
		for (size_t j = i + 1; j < count; j++)
			if (memcmp(keys[i], keys[j], CAIRN_KEY_LEN) == 0)
				return CAIRN_EINVAL;
	return 0;
}

/* The relays of L by relay_texts_check. */
static int check_relays(const struct mailbox_list *l)
{
	const char *relay[CAIRN_MAILBOXES_MAX];
	for (size_t i = 0; i < l->count; i++)
		relay[i] = l->box[i].relay;
	return relay_texts_check(relay, l->count);
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

/*
 * Reads the structure of the mailbox list at the start of IN (LEN bytes, untrusted) into *OUT:
 * count, then each mailbox, every length checked against the bytes left. Sets *USED to the
 * list's length and *NUL when a relay text holds a NUL; the relay texts themselves are checked
 * by the caller once all structure holds. Returns 0 or CAIRN_EINVAL.
 */
static int list_read(const uint8_t *in, size_t len, struct mailbox_list *out, size_t *used,
                     int *nul)
{
	if (len < 1 || in[0] == 0 || in[0] > CAIRN_MAILBOXES_MAX)
		return CAIRN_EINVAL;
	size_t off = 1;
	for (size_t i = 0; i < in[0]; i++) {
		if (len - off < MAILBOX_ENTRY_FIXED)
			return CAIRN_EINVAL;
		struct mailbox_addr *m = &out->box[i];
		memcpy(m->sender_id, in + off, CAIRN_MAILBOX_ID_LEN);
		off += CAIRN_MAILBOX_ID_LEN;
		memcpy(m->credential, in + off, CAIRN_CREDENTIAL_LEN);
		off += CAIRN_CREDENTIAL_LEN;
		size_t rlen = ((size_t)in[off] << 8) | in[off + 1];
		off += 2;
		if (rlen == 0 || rlen > CAIRN_ADDRESS_MAX || rlen > len - off)
			return CAIRN_EINVAL;
		/* A NUL inside the text would hide bytes from the address parser. */
		*nul |= memchr(in + off, 0, rlen) != NULL;
		memcpy(m->relay, in + off, rlen);
		m->relay[rlen] = '\0';
		off += rlen;
	}
	out->count = in[0];
	*used = off;
	return 0;
}

int mailbox_list_parse(const uint8_t *in, size_t len, struct mailbox_list *out)
{
	int rc, nul = 0;
	size_t used = 0;
	memset(out, 0, sizeof(*out));
	rc = list_read(in, len, out, &used, &nul);
	if (rc == 0 && used != len)
		rc = CAIRN_EINVAL;
	if (rc == 0)
		rc = nul ? CAIRN_EADDRESS : check_relays(out);
	if (rc != 0)
		sodium_memzero(out, sizeof(*out));
	return rc;
}

/* Writes the header (VERSION, identity, one-time key) and mailbox list of INV into OUT. */
static int invite_put(const struct invite *inv, uint8_t version, uint8_t *out, size_t cap,
                      size_t *outlen)
{
	*outlen = 0;
	if (identity_key_check(inv->identity) != 0)
		return CAIRN_EINVAL;
	if (cap < INVITE_HEADER_LEN)
		return CAIRN_ENOBUFS;
	size_t llen = 0;
	int rc = mailbox_list_encode(&inv->mailboxes, out + INVITE_HEADER_LEN,
	                             cap - INVITE_HEADER_LEN, &llen);
	if (rc != 0)
		return rc;
	out[0] = version;
	memcpy(out + 1, inv->identity, CAIRN_KEY_LEN);
	memcpy(out + 1 + CAIRN_KEY_LEN, inv->onetime, CAIRN_KEY_LEN);
	*outlen = INVITE_HEADER_LEN + llen;
	return 0;
}

int invite_encode(const struct invite *inv, uint8_t *out, size_t cap, size_t *outlen)
{
	return invite_put(inv, INVITE_VERSION, out, cap, outlen);
}

/* Takes the keys of the header at IN and checks the identity (rule 5 of 8.2). */
static int take_keys(const uint8_t *in, struct invite *out)
{
	memcpy(out->identity, in + 1, CAIRN_KEY_LEN);
	memcpy(out->onetime, in + 1 + CAIRN_KEY_LEN, CAIRN_KEY_LEN);
	return identity_key_check(out->identity);
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
	if ((rc = take_keys(in, out)) != 0) {
		sodium_memzero(out, sizeof(*out));
		return rc;
	}
	return 0;
}

int group_invite_encode(const struct group_invite *gi, uint8_t *out, size_t cap, size_t *outlen)
{
	size_t nlen = strnlen(gi->name, sizeof(gi->name)), len = 0;
	*outlen = 0;
	if (group_name_check((const uint8_t *)gi->name, nlen) != 0)
		return CAIRN_EINVAL;
	int rc = invite_put(&gi->invite, INVITE_GROUP_VERSION, out, cap, &len);
	if (rc != 0)
		return rc;
	if (cap - len < INVITE_GROUP_TRAILER_MIN + nlen)
		return CAIRN_ENOBUFS;
	memcpy(out + len, gi->group_id, GROUP_ID_LEN);
	out[len + GROUP_ID_LEN] = (uint8_t)nlen;
	memcpy(out + len + INVITE_GROUP_TRAILER_MIN, gi->name, nlen);
	*outlen = len + INVITE_GROUP_TRAILER_MIN + nlen;
	return 0;
}

/*
 * The rules of 8.2 in their order, on the part before the trailer, the list being followed by
 * the trailer instead of the end; then the trailer whole, with nothing after it, and last the
 * name's characters.
 */
int group_invite_parse(const uint8_t *in, size_t len, struct group_invite *out)
{
	int rc = CAIRN_EINVAL, nul = 0;
	size_t used = 0;
	memset(out, 0, sizeof(*out));
	if (len < INVITE_GROUP_MIN_LEN || len > INVITE_GROUP_MAX_LEN ||
	    in[0] != INVITE_GROUP_VERSION)
		return CAIRN_EINVAL;
	const uint8_t *list = in + INVITE_HEADER_LEN;
	size_t left = len - INVITE_HEADER_LEN;
	if (list_read(list, left, &out->invite.mailboxes, &used, &nul) != 0)
		goto fail;
	const uint8_t *trailer = list + used;
	left -= used;
	if (left < INVITE_GROUP_TRAILER_MIN || trailer[GROUP_ID_LEN] > GROUP_NAME_MAX ||
	    left != (size_t)INVITE_GROUP_TRAILER_MIN + trailer[GROUP_ID_LEN])
		goto fail;
	if ((rc = nul ? CAIRN_EADDRESS : check_relays(&out->invite.mailboxes)) != 0 ||
	    (rc = take_keys(in, &out->invite)) != 0)
		goto fail;
	size_t nlen = trailer[GROUP_ID_LEN];
	if ((rc = group_name_check(trailer + INVITE_GROUP_TRAILER_MIN, nlen)) != 0)
		goto fail;
	memcpy(out->group_id, trailer, GROUP_ID_LEN);
	memcpy(out->name, trailer + INVITE_GROUP_TRAILER_MIN, nlen);
	out->name[nlen] = '\0';
	return 0;
fail:
	sodium_memzero(out, sizeof(*out));
	return rc;
}
