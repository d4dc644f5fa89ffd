/* SPDX-License-Identifier: MIT */
/*
 * Invite payload encoding and strict parsing (docs/PROTOCOL.md section 8.2). Every length is
 * checked against the bytes present before it is used; the relay text must be a valid
 * address and the identity key a valid Ed25519 point.
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

static int check_relay(const char *text)
{
	struct cairn_address a;
	int rc = cairn_address_parse(text, &a);
	return rc == 0 ? 0 : CAIRN_EADDRESS;
}

int invite_encode(const struct invite *inv, uint8_t *out, size_t cap, size_t *outlen)
{
	*outlen = 0;
	size_t rlen = strnlen(inv->relay, sizeof(inv->relay));
	if (rlen == 0 || rlen > CAIRN_ADDRESS_MAX || check_relay(inv->relay) != 0)
		return CAIRN_EADDRESS;
	if (check_identity(inv->identity) != 0)
		return CAIRN_EINVAL;
	if (cap < INVITE_FIXED_LEN + rlen)
		return CAIRN_ENOBUFS;
	uint8_t *p = out;
	*p++ = INVITE_VERSION;
	memcpy(p, inv->identity, CAIRN_KEY_LEN);
	p += CAIRN_KEY_LEN;
	memcpy(p, inv->onetime, CAIRN_KEY_LEN);
	p += CAIRN_KEY_LEN;
	memcpy(p, inv->sender_id, CAIRN_MAILBOX_ID_LEN);
	p += CAIRN_MAILBOX_ID_LEN;
	memcpy(p, inv->credential, CAIRN_CREDENTIAL_LEN);
	p += CAIRN_CREDENTIAL_LEN;
	*p++ = (uint8_t)(rlen >> 8);
	*p++ = (uint8_t)rlen;
	memcpy(p, inv->relay, rlen);
	*outlen = INVITE_FIXED_LEN + rlen;
	return 0;
}

int invite_parse(const uint8_t *in, size_t len, struct invite *out)
{
	int rc = CAIRN_EINVAL;
	memset(out, 0, sizeof(*out));
	if (len < INVITE_FIXED_LEN || len > INVITE_MAX_LEN || in[0] != INVITE_VERSION)
		return CAIRN_EINVAL;
	const uint8_t *p = in + 1;
	memcpy(out->identity, p, CAIRN_KEY_LEN);
	p += CAIRN_KEY_LEN;
	memcpy(out->onetime, p, CAIRN_KEY_LEN);
	p += CAIRN_KEY_LEN;
	memcpy(out->sender_id, p, CAIRN_MAILBOX_ID_LEN);
	p += CAIRN_MAILBOX_ID_LEN;
	memcpy(out->credential, p, CAIRN_CREDENTIAL_LEN);
	p += CAIRN_CREDENTIAL_LEN;
	size_t rlen = ((size_t)p[0] << 8) | p[1];
	p += 2;
	if (rlen == 0 || rlen != len - INVITE_FIXED_LEN)
		goto fail;
	/* A NUL inside the text would hide bytes from the address parser. */
	if (memchr(p, 0, rlen) != NULL)
		goto fail;
	memcpy(out->relay, p, rlen);
	out->relay[rlen] = '\0';
	if ((rc = check_relay(out->relay)) != 0 || (rc = check_identity(out->identity)) != 0)
		goto fail;
	return 0;
fail:
	sodium_memzero(out, sizeof(*out));
	return rc;
}
