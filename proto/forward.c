/* SPDX-License-Identifier: MIT */
/*
 * Private routing's sealing (forward.h, docs/PROTOCOL.md 5.11): X25519 with a fresh ephemeral
 * key, BLAKE2b-512 into a request key and a reply key, ChaCha20-Poly1305-IETF with a zero
 * nonce (each key seals one message). The padded sizes hide which of three sizes of command
 * the forwarding relay carries, and all replies look alike.
 */
#include "forward.h"

#include <stdbool.h>
#include <string.h>

#include <sodium.h>

#include "codec.h"
#include "group_bytes.h" /* big-endian integers, as everywhere in proto/ */

static const size_t forward_sizes[] = {FORWARD_INNER_MIN, FORWARD_INNER_MID, FORWARD_INNER_MAX};

/* keys = BLAKE2b-512(label || E || S || dh); K_REQ, K_REP its halves. */
static void forward_keys(const uint8_t e_pk[static CAIRN_KEY_LEN],
                         const uint8_t relay_pk[static CAIRN_KEY_LEN],
                         const uint8_t dh[static CAIRN_KEY_LEN], uint8_t k_req[CAIRN_KEY_LEN],
                         uint8_t k_rep[CAIRN_KEY_LEN])
{
	uint8_t keys[64];
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, sizeof(keys));
	crypto_generichash_update(&st, (const uint8_t *)FORWARD_LABEL, strlen(FORWARD_LABEL));
	crypto_generichash_update(&st, e_pk, CAIRN_KEY_LEN);
	crypto_generichash_update(&st, relay_pk, CAIRN_KEY_LEN);
	crypto_generichash_update(&st, dh, CAIRN_KEY_LEN);
	crypto_generichash_final(&st, keys, sizeof(keys));
	memcpy(k_req, keys, CAIRN_KEY_LEN);
	memcpy(k_rep, keys + CAIRN_KEY_LEN, CAIRN_KEY_LEN);
	sodium_memzero(keys, sizeof(keys));
	sodium_memzero(&st, sizeof(st));
}

/* The AEAD of 5.11: ChaCha20-Poly1305-IETF, nonce 12 zero bytes, no associated data. */
static void forward_aead_seal(const uint8_t key[static CAIRN_KEY_LEN], const uint8_t *pt,
                              size_t len, uint8_t *out)
{
	static const uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
	crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, pt, len, NULL, 0, NULL, nonce, key);
}

static int forward_aead_open(const uint8_t key[static CAIRN_KEY_LEN], const uint8_t *ct, size_t len,
                             uint8_t *out)
{
	static const uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
	return crypto_aead_chacha20poly1305_ietf_decrypt(out, NULL, NULL, ct, len, NULL, 0, nonce,
	                                                 key);
}

/* Checks len || body || zero padding in INNER (SIZE bytes); sets the body. */
static int forward_unpad(const uint8_t *inner, size_t size, const uint8_t **body, size_t *len)
{
	uint32_t n = group_get_u32(inner);
	if (n == 0 || n > size - FORWARD_LEN_PREFIX)
		return -1;
	uint8_t acc = 0; /* the padding is no secret, but one pass over it costs the same */
	for (size_t i = FORWARD_LEN_PREFIX + n; i < size; i++)
		acc |= inner[i];
	if (acc != 0)
		return -1;
	*body = inner + FORWARD_LEN_PREFIX;
	*len = n;
	return 0;
}

/* Seals COMMAND with an `inner` of SIZE bytes (one of forward_sizes, and big enough). */
static int forward_seal_sized(const uint8_t e_secret[static CAIRN_KEY_LEN],
                              const uint8_t relay_pk[static CAIRN_KEY_LEN], const uint8_t *command,
                              size_t cmd_len, size_t size, uint8_t *out, size_t *outlen,
                              uint8_t k_rep[static CAIRN_KEY_LEN])
{
	size_t total = CAIRN_KEY_LEN + size + CAIRN_AEAD_TAG_LEN;

	uint8_t e_pk[CAIRN_KEY_LEN], dh[CAIRN_KEY_LEN], k_req[CAIRN_KEY_LEN];
	crypto_scalarmult_base(e_pk, e_secret);
	if (crypto_scalarmult(dh, e_secret, relay_pk) != 0) {
		sodium_memzero(dh, sizeof(dh));
		return CAIRN_ECRYPTO; /* a low-order key: the shared secret would be all zero */
	}
	forward_keys(e_pk, relay_pk, dh, k_req, k_rep);
	sodium_memzero(dh, sizeof(dh));

	/* The plaintext is built in OUT after E, then sealed in place (libsodium allows it). */
	uint8_t *inner = out + CAIRN_KEY_LEN;
	group_put_u32(inner, (uint32_t)cmd_len);
	memmove(inner + FORWARD_LEN_PREFIX, command, cmd_len);
	memset(inner + FORWARD_LEN_PREFIX + cmd_len, 0, size - FORWARD_LEN_PREFIX - cmd_len);
	forward_aead_seal(k_req, inner, size, inner);
	sodium_memzero(k_req, sizeof(k_req));
	memcpy(out, e_pk, CAIRN_KEY_LEN);
	*outlen = total;
	return 0;
}

int forward_seal_with(const uint8_t e_secret[static CAIRN_KEY_LEN],
                      const uint8_t relay_pk[static CAIRN_KEY_LEN], const uint8_t *command,
                      size_t cmd_len, uint8_t *out, size_t cap, size_t *outlen,
                      uint8_t k_rep[static CAIRN_KEY_LEN])
{
	*outlen = 0;
	if (command == NULL || cmd_len == 0 || cmd_len > FORWARD_COMMAND_MAX)
		return CAIRN_EINVAL;
	size_t size = 0;
	for (size_t i = 0; i < sizeof(forward_sizes) / sizeof(forward_sizes[0]); i++) {
		if (FORWARD_LEN_PREFIX + cmd_len <= forward_sizes[i]) {
			size = forward_sizes[i];
			break;
		}
	}
	if (out == NULL || cap < CAIRN_KEY_LEN + size + CAIRN_AEAD_TAG_LEN)
		return CAIRN_ENOBUFS;
	return forward_seal_sized(e_secret, relay_pk, command, cmd_len, size, out, outlen, k_rep);
}

int bundle_seal_with(const uint8_t e_secret[static CAIRN_KEY_LEN],
                     const uint8_t relay_pk[static CAIRN_KEY_LEN], const uint8_t *command,
                     size_t cmd_len, uint8_t out[static CAIRN_BUNDLE_ITEM_LEN])
{
	if (command == NULL || cmd_len == 0 || cmd_len > FORWARD_COMMAND_MAX)
		return CAIRN_EINVAL;
	uint8_t k_rep[CAIRN_KEY_LEN];
	size_t len;
	/* Always the largest inner: every item of a bundle has the same size (12). */
	int rc = forward_seal_sized(e_secret, relay_pk, command, cmd_len, CAIRN_BUNDLE_INNER_LEN,
	                            out, &len, k_rep);
	sodium_memzero(k_rep, sizeof(k_rep));
	return rc;
}

int bundle_seal(const uint8_t relay_pk[static CAIRN_KEY_LEN], const uint8_t *command,
                size_t cmd_len, uint8_t out[static CAIRN_BUNDLE_ITEM_LEN])
{
	uint8_t e[CAIRN_KEY_LEN];
	randombytes_buf(e, sizeof(e));
	int rc = bundle_seal_with(e, relay_pk, command, cmd_len, out);
	sodium_memzero(e, sizeof(e));
	return rc;
}

int forward_seal(const uint8_t relay_pk[static CAIRN_KEY_LEN], const uint8_t *command,
                 size_t cmd_len, uint8_t *out, size_t cap, size_t *outlen,
                 uint8_t k_rep[static CAIRN_KEY_LEN])
{
	uint8_t e[CAIRN_KEY_LEN];
	randombytes_buf(e, sizeof(e));
	int rc = forward_seal_with(e, relay_pk, command, cmd_len, out, cap, outlen, k_rep);
	sodium_memzero(e, sizeof(e));
	return rc;
}

int forward_open(const uint8_t relay_sk[static CAIRN_KEY_LEN],
                 const uint8_t relay_pk[static CAIRN_KEY_LEN], const uint8_t *sealed, size_t len,
                 uint8_t inner[static FORWARD_INNER_MAX], const uint8_t **command, size_t *cmd_len,
                 uint8_t k_rep[static CAIRN_KEY_LEN])
{
	*command = NULL;
	*cmd_len = 0;
	sodium_memzero(k_rep, CAIRN_KEY_LEN); /* nothing left from a caller's earlier use */
	size_t size = 0;
	for (size_t i = 0; i < sizeof(forward_sizes) / sizeof(forward_sizes[0]); i++)
		if (len == CAIRN_KEY_LEN + forward_sizes[i] + CAIRN_AEAD_TAG_LEN)
			size = forward_sizes[i];
	if (sealed == NULL || size == 0)
		return CAIRN_EBADREQ;

	uint8_t dh[CAIRN_KEY_LEN], k_req[CAIRN_KEY_LEN];
	if (crypto_scalarmult(dh, relay_sk, sealed) != 0) {
		sodium_memzero(dh, sizeof(dh)); /* an all-zero secret: E is of low order */
		return CAIRN_EBADREQ;
	}
	forward_keys(sealed, relay_pk, dh, k_req, k_rep);
	sodium_memzero(dh, sizeof(dh));
	int rc = forward_aead_open(k_req, sealed + CAIRN_KEY_LEN, size + CAIRN_AEAD_TAG_LEN, inner);
	sodium_memzero(k_req, sizeof(k_req));
	if (rc != 0 || forward_unpad(inner, size, command, cmd_len) != 0) {
		sodium_memzero(inner, size);
		sodium_memzero(k_rep, CAIRN_KEY_LEN);
		*command = NULL;
		*cmd_len = 0;
		return CAIRN_EBADREQ;
	}
	return 0;
}

/* The inner command's type, BUNDLED allowed or not. */
static int inner_kind(const uint8_t *command, size_t cmd_len, bool bundled_ok)
{
	struct cairn_msg m;
	int have_id = 0;
	if (command == NULL || cmd_len == 0)
		return CAIRN_EBADREQ;
	int rc = cairn_msg_decode(command, cmd_len, NULL, &m, &have_id);
	/* CAIRN_ETYPE after the type was read: a faulty argument, answered like a direct one. */
	if ((rc != 0 && rc != CAIRN_ETYPE) || !have_id)
		return CAIRN_EBADREQ;
	if (m.type == CAIRN_CMD_BUNDLED && bundled_ok)
		return m.type;
	if (m.type != CAIRN_CMD_SEND && m.type != CAIRN_CMD_SEND_WORK)
		return CAIRN_EBADREQ;
	return m.type;
}

int forward_inner_kind(const uint8_t *command, size_t cmd_len)
{
	return inner_kind(command, cmd_len, false);
}

int forward_sealed_kind(const uint8_t *command, size_t cmd_len, size_t sealed_len)
{
	return inner_kind(command, cmd_len, sealed_len == CAIRN_BUNDLE_ITEM_LEN);
}

int forward_reply_seal(const uint8_t k_rep[static CAIRN_KEY_LEN], const uint8_t *reply,
                       size_t reply_len, uint8_t out[static FORWARD_REPLY_SEALED])
{
	if (reply == NULL || reply_len == 0 || reply_len > FORWARD_REPLY_MAX)
		return CAIRN_EINVAL;
	uint8_t inner[FORWARD_REPLY_INNER] = {0};
	group_put_u32(inner, (uint32_t)reply_len);
	memcpy(inner + FORWARD_LEN_PREFIX, reply, reply_len);
	forward_aead_seal(k_rep, inner, sizeof(inner), out);
	sodium_memzero(inner, sizeof(inner));
	return 0;
}

int forward_reply_open(const uint8_t k_rep[static CAIRN_KEY_LEN], const uint8_t *sealed, size_t len,
                       uint8_t inner[static FORWARD_REPLY_INNER], const uint8_t **reply,
                       size_t *reply_len)
{
	*reply = NULL;
	*reply_len = 0;
	if (sealed == NULL || len != FORWARD_REPLY_SEALED ||
	    forward_aead_open(k_rep, sealed, len, inner) != 0)
		return CAIRN_EAUTH;
	if (forward_unpad(inner, FORWARD_REPLY_INNER, reply, reply_len) != 0) {
		sodium_memzero(inner, FORWARD_REPLY_INNER);
		return CAIRN_EAUTH;
	}
	return 0;
}
