/* SPDX-License-Identifier: MIT */
/*
 * Envelope payloads of the end-to-end layer (docs/PROTOCOL.md section 8.6): type byte, X3DH
 * prefix for first messages, one ratchet message over padded content. The type byte and prefix
 * are the ratchet message's EAD (section 8.4), so neither can be changed in transit. Sealing
 * pads and encrypts in place in the caller's output buffer; opening decrypts into the caller's
 * buffer.
 */
#include <stdbool.h>
#include <string.h>

#include <sodium.h>

#include "e2e.h"
#include "pad.h"

#define BODY_OFFSET (RATCHET_NONCE_LEN + RATCHET_ENC_HEADER_LEN)
#define FIRST_HEAD  (1 + X3DH_PREFIX_LEN) /* a first message's EAD: type and prefix */

/* Types 1 and 3 have one layout: type, X3DH prefix, a ratchet message whose content starts with
 * the reply. Only the type byte (and with it the X3DH labels) tells them apart. */
static bool prefixed(int type)
{
	return type == E2E_TYPE_FIRST || type == E2E_TYPE_INTAKE;
}

_Static_assert(FIRST_HEAD <= RATCHET_EAD_MAX, "a first message's EAD fits the ratchet's");

/*
 * Pads [u16 REPLY_LEN || REPLY ||] MSG for an envelope of OVERHEAD bytes besides the padded
 * plaintext, and ratchet-encrypts it into OUT + HEAD. The HEAD bytes the caller wrote (type,
 * prefix) are the message's EAD: sealed with it, so a receiver checks them.
 */
static int seal(struct ratchet *r, size_t head, size_t overhead, const uint8_t *reply,
                size_t reply_len, const uint8_t *msg, size_t msg_len, uint8_t *out, size_t cap,
                size_t *outlen)
{
	size_t extra = reply != NULL ? 2 + reply_len : 0;
	if (msg_len > CAIRN_ENVELOPE_MAX)
		return CAIRN_ETOOBIG;
	size_t content_len = extra + msg_len;
	size_t n = pad_len(overhead, content_len);
	if (n == 0)
		return CAIRN_ETOOBIG;
	if (cap < overhead + n)
		return CAIRN_ENOBUFS;

	uint8_t *body = out + head + BODY_OFFSET;
	uint8_t *p = body;
	*p++ = (uint8_t)(content_len >> 8);
	*p++ = (uint8_t)content_len;
	if (reply != NULL) {
		*p++ = (uint8_t)(reply_len >> 8);
		*p++ = (uint8_t)reply_len;
		if (reply_len > 0)
			memcpy(p, reply, reply_len);
		p += reply_len;
	}
	if (msg_len > 0)
		memcpy(p, msg, msg_len);
	p += msg_len;
	memset(p, 0, n - (size_t)(p - body));

	size_t rlen = 0;
	int rc = ratchet_encrypt(r, out, head, body, n, out + head, cap - head, &rlen);
	if (rc != 0) {
		sodium_memzero(out, overhead + n);
		return rc;
	}
	*outlen = head + rlen;
	return 0;
}

/* Seals a message of the prefixed TYPE (1 or 3): e2e_seal_first's contract. */
static int seal_prefixed(uint8_t type, struct ratchet *r,
                         const uint8_t prefix[static X3DH_PREFIX_LEN], const uint8_t *reply,
                         size_t reply_len, const uint8_t *msg, size_t msg_len, uint8_t *out,
                         size_t cap, size_t *outlen)
{
	static const uint8_t empty[1];
	*outlen = 0;
	if (reply_len > E2E_REPLY_MAX)
		return CAIRN_EINVAL;
	if (cap < FIRST_HEAD)
		return CAIRN_ENOBUFS;
	out[0] = type;
	memcpy(out + 1, prefix, X3DH_PREFIX_LEN);
	return seal(r, FIRST_HEAD, E2E_FIRST_OVERHEAD, reply != NULL ? reply : empty, reply_len,
	            msg, msg_len, out, cap, outlen);
}

int e2e_seal_first(struct ratchet *r, const uint8_t prefix[static X3DH_PREFIX_LEN],
                   const uint8_t *reply, size_t reply_len, const uint8_t *msg, size_t msg_len,
                   uint8_t *out, size_t cap, size_t *outlen)
{
	return seal_prefixed(E2E_TYPE_FIRST, r, prefix, reply, reply_len, msg, msg_len, out, cap,
	                     outlen);
}

int e2e_seal_intake(struct ratchet *r, const uint8_t prefix[static X3DH_PREFIX_LEN],
                    const uint8_t *reply, size_t reply_len, const uint8_t *msg, size_t msg_len,
                    uint8_t *out, size_t cap, size_t *outlen)
{
	return seal_prefixed(E2E_TYPE_INTAKE, r, prefix, reply, reply_len, msg, msg_len, out, cap,
	                     outlen);
}

int e2e_seal(struct ratchet *r, const uint8_t *msg, size_t msg_len, uint8_t *out, size_t cap,
             size_t *outlen)
{
	*outlen = 0;
	if (cap < 1)
		return CAIRN_ENOBUFS;
	out[0] = E2E_TYPE_MESSAGE;
	return seal(r, 1, E2E_MESSAGE_OVERHEAD, NULL, 0, msg, msg_len, out, cap, outlen);
}

int e2e_first_onetime(const uint8_t *env, size_t len, uint8_t opk[static CAIRN_KEY_LEN])
{
	memset(opk, 0, CAIRN_KEY_LEN);
	if (len < E2E_FIRST_OVERHEAD || env[0] != E2E_TYPE_FIRST)
		return CAIRN_EINVAL;
	memcpy(opk, x3dh_prefix_onetime(env + 1), CAIRN_KEY_LEN);
	return 0;
}

int e2e_intake_keys(const uint8_t *env, size_t len, uint8_t ek[static CAIRN_KEY_LEN],
                    uint8_t spk[static CAIRN_KEY_LEN])
{
	memset(ek, 0, CAIRN_KEY_LEN);
	memset(spk, 0, CAIRN_KEY_LEN);
	if (len < E2E_FIRST_OVERHEAD || env[0] != E2E_TYPE_INTAKE)
		return CAIRN_EINVAL;
	memcpy(ek, env + 1, CAIRN_KEY_LEN);
	memcpy(spk, x3dh_prefix_onetime(env + 1), CAIRN_KEY_LEN);
	return 0;
}

/* Splits decrypted, padded plaintext BUF (LEN bytes) of an envelope of TYPE into RES. */
static int parse_content(int type, const uint8_t *buf, size_t len, struct e2e_opened *res)
{
	const uint8_t *c;
	size_t clen;
	int rc = pad_decode(buf, len, &c, &clen);
	if (rc != 0)
		return rc;
	res->type = type;
	if (prefixed(type)) {
		if (clen < 2)
			return CAIRN_EINVAL;
		size_t rlen = ((size_t)c[0] << 8) | c[1];
		if (rlen > E2E_REPLY_MAX || rlen > clen - 2)
			return CAIRN_EINVAL;
		res->reply = c + 2;
		res->reply_len = rlen;
		c += 2 + rlen;
		clen -= 2 + rlen;
	}
	res->message = c;
	res->message_len = clen;
	return 0;
}

static void opened_clear(struct e2e_opened *res)
{
	memset(res, 0, sizeof(*res));
}

int e2e_open(struct ratchet *r, const uint8_t *env, size_t len, uint8_t *buf, size_t cap,
             struct e2e_opened *res, const struct e2e_rng *rng)
{
	opened_clear(res);
	size_t head;
	if (len >= E2E_FIRST_OVERHEAD && prefixed(env[0]))
		head = FIRST_HEAD;
	else if (len >= E2E_MESSAGE_OVERHEAD && env[0] == E2E_TYPE_MESSAGE)
		head = 1;
	else
		return CAIRN_EINVAL;
	size_t n = 0;
	/* The EAD is what came before the ratchet message, as received: a changed type byte or
	 * prefix fails here, so the content is never parsed under a type it was not sealed with. */
	int rc = ratchet_decrypt(r, env, head, env + head, len - head, buf, cap, &n, rng);
	if (rc == 0)
		rc = parse_content(env[0], buf, n, res);
	if (rc != 0)
		opened_clear(res);
	return rc;
}

/*
 * Opens a message of the prefixed TYPE (1 or 3) that starts a session: the X3DH response for
 * that type, then the first ratchet message. e2e_open_first's contract, except that OTK is left
 * to the caller.
 */
static int open_prefixed(uint8_t type, const uint8_t my_identity_sk[static X3DH_IDENTITY_SK_LEN],
                         const struct x3dh_onetime *otk, const uint8_t *env, size_t len,
                         uint8_t *buf, size_t cap, struct e2e_opened *res,
                         uint8_t peer_identity[static X3DH_IDENTITY_PK_LEN],
                         struct ratchet **session, const struct e2e_rng *rng)
{
	struct ratchet *s = NULL;
	size_t n = 0;
	int rc;

	opened_clear(res);
	*session = NULL;
	memset(peer_identity, 0, X3DH_IDENTITY_PK_LEN);
	if (len < E2E_FIRST_OVERHEAD || env[0] != type)
		return CAIRN_EINVAL;
	if (type == E2E_TYPE_INTAKE)
		rc = x3dh_respond_intake(my_identity_sk, otk, env + 1, peer_identity, &s);
	else
		rc = x3dh_respond(my_identity_sk, otk, env + 1, peer_identity, &s);
	if (rc == 0)
		rc = ratchet_decrypt(s, env, FIRST_HEAD, env + FIRST_HEAD, len - FIRST_HEAD, buf,
		                     cap, &n, rng);
	if (rc == 0)
		rc = parse_content(type, buf, n, res);
	if (rc != 0) {
		ratchet_free(s);
		opened_clear(res);
		memset(peer_identity, 0, X3DH_IDENTITY_PK_LEN);
		if (n > 0)
			sodium_memzero(buf, n);
		return rc;
	}
	*session = s;
	return 0;
}

int e2e_open_first(const uint8_t my_identity_sk[static X3DH_IDENTITY_SK_LEN],
                   struct x3dh_onetime *otk, const uint8_t *env, size_t len, uint8_t *buf,
                   size_t cap, struct e2e_opened *res,
                   uint8_t peer_identity[static X3DH_IDENTITY_PK_LEN], struct ratchet **session,
                   const struct e2e_rng *rng)
{
	int rc = open_prefixed(E2E_TYPE_FIRST, my_identity_sk, otk, env, len, buf, cap, res,
	                       peer_identity, session, rng);
	if (rc != 0)
		return rc;
	/* The session is confirmed: the one-time key is spent. */
	otk->used = true;
	sodium_memzero(otk->priv, sizeof(otk->priv));
	return 0;
}

int e2e_open_intake(const uint8_t my_identity_sk[static X3DH_IDENTITY_SK_LEN],
                    const struct x3dh_onetime *spk, const uint8_t *env, size_t len, uint8_t *buf,
                    size_t cap, struct e2e_opened *res,
                    uint8_t peer_identity[static X3DH_IDENTITY_PK_LEN], struct ratchet **session,
                    const struct e2e_rng *rng)
{
	/* The prekey serves every requester until it expires: it stays as it is, and the caller
	 * keeps this envelope's ephemeral key against replays (10.4). */
	return open_prefixed(E2E_TYPE_INTAKE, my_identity_sk, spk, env, len, buf, cap, res,
	                     peer_identity, session, rng);
}
