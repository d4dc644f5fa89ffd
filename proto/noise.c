/* SPDX-License-Identifier: MIT */
/*
 * Noise rev 34 SymmetricState and HandshakeState (see noise.h). Patterns are tables of
 * tokens interpreted by one write and one read loop, so NK (Cairn's transport) shares every
 * line with the patterns the cacophony vectors check. HMAC is RFC 2104 over the plain hash.
 */
#include <string.h>

#include <sodium.h>

#include "noise.h"

enum token { T_END = 0, T_E, T_S, T_EE, T_ES, T_SE, T_SS, T_PSK };

#define PATTERN_MSGS_MAX   3
#define PATTERN_TOKENS_MAX 5

struct noise_pattern {
	const char *name;
	bool pre_rs; /* responder's static key is a pre-message (<- s) */
	bool pre_is; /* initiator's static key is a pre-message (-> s) */
	bool psk;    /* psk modifier: "e" also calls MixKey */
	unsigned nmsgs;
	uint8_t msgs[PATTERN_MSGS_MAX][PATTERN_TOKENS_MAX + 1];
};

static const struct noise_pattern patterns[] = {
    {"NN", false, false, false, 2, {{T_E}, {T_E, T_EE}}},
    {"NK", true, false, false, 2, {{T_E, T_ES}, {T_E, T_EE}}},
    {"XX", false, false, false, 3, {{T_E}, {T_E, T_EE, T_S, T_ES}, {T_S, T_SE}}},
    {"XK", true, false, false, 3, {{T_E, T_ES}, {T_E, T_EE}, {T_S, T_SE}}},
    {"IK", true, false, false, 2, {{T_E, T_ES, T_S, T_SS}, {T_E, T_EE, T_SE}}},
    {"NKpsk2", true, false, true, 2, {{T_E, T_ES}, {T_E, T_EE, T_PSK}}},
    {"NNpsk0", false, false, true, 2, {{T_PSK, T_E}, {T_E, T_EE}}},
};

/* ---- Hash, HMAC, HKDF -------------------------------------------------------------------- */

struct hash_ctx {
	enum noise_hash_alg alg;
	union {
		crypto_generichash_blake2b_state b2;
		crypto_hash_sha256_state sha;
	} u;
};

static size_t block_len(enum noise_hash_alg alg)
{
	return alg == NOISE_HASH_BLAKE2B ? 128 : 64;
}

static size_t hash_len(enum noise_hash_alg alg)
{
	return alg == NOISE_HASH_BLAKE2B ? 64 : 32;
}

static void hash_init(struct hash_ctx *c, enum noise_hash_alg alg)
{
	c->alg = alg;
	if (alg == NOISE_HASH_BLAKE2B)
		crypto_generichash_blake2b_init(&c->u.b2, NULL, 0, 64);
	else
		crypto_hash_sha256_init(&c->u.sha);
}

static void hash_update(struct hash_ctx *c, const uint8_t *in, size_t len)
{
	if (len == 0)
		return;
	if (c->alg == NOISE_HASH_BLAKE2B)
		crypto_generichash_blake2b_update(&c->u.b2, in, len);
	else
		crypto_hash_sha256_update(&c->u.sha, in, len);
}

static void hash_final(struct hash_ctx *c, uint8_t *out)
{
	if (c->alg == NOISE_HASH_BLAKE2B)
		crypto_generichash_blake2b_final(&c->u.b2, out, 64);
	else
		crypto_hash_sha256_final(&c->u.sha, out);
	sodium_memzero(c, sizeof(*c));
}

/* HMAC-HASH(key, a || b) per RFC 2104; KEYLEN is at most HASHLEN, so never longer than a
 * block and used as is, zero-padded to the block size. */
static void hmac(enum noise_hash_alg alg, const uint8_t *key, size_t keylen, const uint8_t *a,
                 size_t alen, const uint8_t *b, size_t blen, uint8_t *out)
{
	uint8_t pad[128];
	uint8_t inner[NOISE_HASH_MAX_LEN];
	struct hash_ctx c;
	size_t bl = block_len(alg);

	memset(pad, 0, sizeof(pad));
	memcpy(pad, key, keylen);
	for (size_t i = 0; i < bl; i++)
		pad[i] ^= 0x36;
	hash_init(&c, alg);
	hash_update(&c, pad, bl);
	hash_update(&c, a, alen);
	hash_update(&c, b, blen);
	hash_final(&c, inner);

	for (size_t i = 0; i < bl; i++)
		pad[i] ^= 0x36 ^ 0x5c;
	hash_init(&c, alg);
	hash_update(&c, pad, bl);
	hash_update(&c, inner, hash_len(alg));
	hash_final(&c, out);

	sodium_memzero(pad, sizeof(pad));
	sodium_memzero(inner, sizeof(inner));
}

/* HKDF(chaining_key, ikm, 2 or 3) as Noise section 4.3 defines it. OUT3 may be NULL. */
static void hkdf(enum noise_hash_alg alg, const uint8_t *ck, const uint8_t *ikm, size_t ikmlen,
                 uint8_t *out1, uint8_t *out2, uint8_t *out3)
{
	const uint8_t one = 1, two = 2, three = 3;
	size_t hl = hash_len(alg);
	uint8_t temp[NOISE_HASH_MAX_LEN];

	hmac(alg, ck, hl, ikm, ikmlen, NULL, 0, temp);
	hmac(alg, temp, hl, &one, 1, NULL, 0, out1);
	hmac(alg, temp, hl, out1, hl, &two, 1, out2);
	if (out3 != NULL)
		hmac(alg, temp, hl, out2, hl, &three, 1, out3);
	sodium_memzero(temp, sizeof(temp));
}

/* ---- SymmetricState ---------------------------------------------------------------------- */

static void mix_hash(struct noise_handshake *hs, const uint8_t *data, size_t len)
{
	struct hash_ctx c;
	hash_init(&c, hs->hash);
	hash_update(&c, hs->h, hs->hashlen);
	hash_update(&c, data, len);
	hash_final(&c, hs->h);
}

/* MixKey(ikm); the cipher key is the first 32 bytes of the HASHLEN-byte output. */
static void mix_key(struct noise_handshake *hs, const uint8_t *ikm, size_t len)
{
	uint8_t temp_k[NOISE_HASH_MAX_LEN];
	hkdf(hs->hash, hs->ck, ikm, len, hs->ck, temp_k, NULL);
	noise_cipher_init(&hs->cipher, temp_k);
	sodium_memzero(temp_k, sizeof(temp_k));
}

static void mix_key_and_hash(struct noise_handshake *hs, const uint8_t *ikm, size_t len)
{
	uint8_t temp_h[NOISE_HASH_MAX_LEN], temp_k[NOISE_HASH_MAX_LEN];
	hkdf(hs->hash, hs->ck, ikm, len, hs->ck, temp_h, temp_k);
	mix_hash(hs, temp_h, hs->hashlen);
	noise_cipher_init(&hs->cipher, temp_k);
	sodium_memzero(temp_h, sizeof(temp_h));
	sodium_memzero(temp_k, sizeof(temp_k));
}

/* Stands in for a NULL buffer of length 0: memcpy and friends must not see NULL. */
static uint8_t empty[1];

static int encrypt_and_hash(struct noise_handshake *hs, const uint8_t *pt, size_t len, uint8_t *out,
                            size_t cap, size_t *outlen)
{
	if (pt == NULL)
		pt = empty;
	int rc = noise_cipher_encrypt(&hs->cipher, hs->h, hs->hashlen, pt, len, out, cap, outlen);
	if (rc == 0)
		mix_hash(hs, out, *outlen);
	return rc;
}

static int decrypt_and_hash(struct noise_handshake *hs, const uint8_t *ct, size_t len, uint8_t *out,
                            size_t cap, size_t *outlen)
{
	/* h must absorb the ciphertext, which OUT may overwrite, so hash into a copy first. */
	uint8_t h_next[NOISE_HASH_MAX_LEN];
	struct hash_ctx c;
	if (out == NULL)
		out = empty;
	hash_init(&c, hs->hash);
	hash_update(&c, hs->h, hs->hashlen);
	hash_update(&c, ct, len);
	hash_final(&c, h_next);
	int rc = noise_cipher_decrypt(&hs->cipher, hs->h, hs->hashlen, ct, len, out, cap, outlen);
	if (rc == 0)
		memcpy(hs->h, h_next, hs->hashlen);
	return rc;
}

/* ---- HandshakeState ---------------------------------------------------------------------- */

static const struct noise_pattern *find_pattern(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++)
		if (strlen(patterns[i].name) == len && memcmp(patterns[i].name, name, len) == 0)
			return &patterns[i];
	return NULL;
}

/* Splits "Noise_<PATTERN>_25519_ChaChaPoly_<HASH>"; returns false for anything else. */
static bool parse_name(const char *name, const struct noise_pattern **pattern,
                       enum noise_hash_alg *alg)
{
	static const char prefix[] = "Noise_", middle[] = "_25519_ChaChaPoly_";
	if (strncmp(name, prefix, strlen(prefix)) != 0)
		return false;
	const char *p = name + strlen(prefix);
	const char *end = strchr(p, '_');
	if (end == NULL || (*pattern = find_pattern(p, (size_t)(end - p))) == NULL)
		return false;
	if (strncmp(end, middle, strlen(middle)) != 0)
		return false;
	const char *h = end + strlen(middle);
	if (strcmp(h, "BLAKE2b") == 0)
		*alg = NOISE_HASH_BLAKE2B;
	else if (strcmp(h, "SHA256") == 0)
		*alg = NOISE_HASH_SHA256;
	else
		return false;
	return true;
}

static bool pattern_uses(const struct noise_pattern *p, enum token t)
{
	for (unsigned m = 0; m < p->nmsgs; m++)
		for (const uint8_t *tok = p->msgs[m]; *tok != T_END; tok++)
			if (*tok == t)
				return true;
	return false;
}

/* Whether a side needs its own static key: it pre-shares it, sends it, or uses it in a DH
 * (ss; se as initiator; es as responder). */
static bool needs_local_static(const struct noise_pattern *p, bool initiator)
{
	if ((initiator ? p->pre_is : p->pre_rs) || pattern_uses(p, T_SS) ||
	    pattern_uses(p, initiator ? T_SE : T_ES))
		return true;
	for (unsigned m = initiator ? 0 : 1; m < p->nmsgs; m += 2)
		for (const uint8_t *tok = p->msgs[m]; *tok != T_END; tok++)
			if (*tok == T_S)
				return true;
	return false;
}

int noise_handshake_init(struct noise_handshake *hs, const char *protocol_name,
                         enum noise_role role, const uint8_t *prologue, size_t prologue_len,
                         const uint8_t *s_private, const uint8_t *s_public,
                         const uint8_t *rs_public, const uint8_t *psk)
{
	const struct noise_pattern *p = NULL;
	enum noise_hash_alg alg = NOISE_HASH_BLAKE2B;

	memset(hs, 0, sizeof(*hs));
	if (sodium_init() < 0)
		return CAIRN_ECRYPTO;
	if (!parse_name(protocol_name, &p, &alg))
		return CAIRN_EINVAL;
	bool initiator = role == NOISE_INITIATOR;
	bool needs_s = needs_local_static(p, initiator);
	bool needs_rs = initiator ? p->pre_rs : p->pre_is;
	if ((needs_s && s_private == NULL) || (needs_rs && rs_public == NULL) ||
	    (p->psk && psk == NULL))
		return CAIRN_EINVAL;

	hs->hash = alg;
	hs->hashlen = hash_len(alg);
	hs->pattern = p;
	hs->initiator = initiator;

	size_t nlen = strlen(protocol_name);
	if (nlen <= hs->hashlen) {
		memcpy(hs->h, protocol_name, nlen);
	} else {
		struct hash_ctx c;
		hash_init(&c, alg);
		hash_update(&c, (const uint8_t *)protocol_name, nlen);
		hash_final(&c, hs->h);
	}
	memcpy(hs->ck, hs->h, hs->hashlen);
	mix_hash(hs, prologue, prologue_len);

	if (s_private != NULL) {
		memcpy(hs->s_priv, s_private, NOISE_DH_LEN);
		if (s_public != NULL)
			memcpy(hs->s_pub, s_public, NOISE_DH_LEN);
		else
			crypto_scalarmult_base(hs->s_pub, hs->s_priv);
		hs->has_s = true;
	}
	if (rs_public != NULL) {
		memcpy(hs->rs, rs_public, NOISE_DH_LEN);
		hs->has_rs = true;
	}
	if (psk != NULL) {
		memcpy(hs->psk, psk, NOISE_PSK_LEN);
		hs->has_psk = true;
	}
	/* Pre-messages: the initiator's first, then the responder's. */
	if (p->pre_is)
		mix_hash(hs, initiator ? hs->s_pub : hs->rs, NOISE_DH_LEN);
	if (p->pre_rs)
		mix_hash(hs, initiator ? hs->rs : hs->s_pub, NOISE_DH_LEN);
	return 0;
}

int noise_handshake_set_ephemeral(struct noise_handshake *hs,
                                  const uint8_t private_key[static NOISE_DH_LEN])
{
	if (hs->pattern == NULL || hs->has_e || hs->failed || hs->split)
		return CAIRN_ESTATE;
	memcpy(hs->e_priv, private_key, NOISE_DH_LEN);
	crypto_scalarmult_base(hs->e_pub, hs->e_priv);
	hs->has_e = true;
	return 0;
}

/* Whose turn: the initiator writes messages 0, 2, ...; the responder 1, 3, ... */
static bool my_turn_to_write(const struct noise_handshake *hs)
{
	return (hs->msg_index % 2 == 0) == hs->initiator;
}

static int check_usable(const struct noise_handshake *hs)
{
	if (hs->pattern == NULL || hs->failed || hs->split || hs->msg_index >= hs->pattern->nmsgs)
		return CAIRN_ESTATE;
	return 0;
}

/* Bytes the current message adds around its payload: keys, their tags, the payload tag. */
static size_t message_overhead(const struct noise_handshake *hs)
{
	bool keyed = hs->cipher.has_key;
	size_t n = 0;
	for (const uint8_t *t = hs->pattern->msgs[hs->msg_index]; *t != T_END; t++) {
		if (*t == T_E) {
			n += NOISE_DH_LEN;
			keyed = keyed || hs->pattern->psk;
		} else if (*t == T_S) {
			n += NOISE_DH_LEN + (keyed ? CAIRN_AEAD_TAG_LEN : 0);
		} else {
			keyed = true;
		}
	}
	return n + (keyed ? CAIRN_AEAD_TAG_LEN : 0);
}

/* The DH tokens: ee, es, se, ss, each from this side's point of view. */
static int mix_dh(struct noise_handshake *hs, uint8_t t)
{
	/* The first letter names the initiator's key, the second the responder's. */
	bool local_e = false, remote_e = false;
	switch (t) {
	case T_EE:
		local_e = remote_e = true;
		break;
	case T_ES:
		local_e = hs->initiator;
		remote_e = !hs->initiator;
		break;
	case T_SE:
		local_e = !hs->initiator;
		remote_e = hs->initiator;
		break;
	default: /* T_SS */
		break;
	}
	const uint8_t *priv = local_e ? hs->e_priv : hs->s_priv;
	const uint8_t *pub = remote_e ? hs->re : hs->rs;
	if ((local_e ? !hs->has_e : !hs->has_s) || (remote_e ? !hs->has_re : !hs->has_rs))
		return CAIRN_ESTATE;

	uint8_t shared[NOISE_DH_LEN];
	int rc = 0;
	if (crypto_scalarmult(shared, priv, pub) != 0)
		rc = CAIRN_ECRYPTO;
	else
		mix_key(hs, shared, sizeof(shared));
	sodium_memzero(shared, sizeof(shared));
	return rc;
}

static int mix_token(struct noise_handshake *hs, uint8_t t)
{
	if (t == T_PSK) {
		mix_key_and_hash(hs, hs->psk, NOISE_PSK_LEN);
		return 0;
	}
	return mix_dh(hs, t);
}

int noise_handshake_write_message(struct noise_handshake *hs, const uint8_t *payload, size_t len,
                                  uint8_t *out, size_t cap, size_t *outlen)
{
	*outlen = 0;
	int rc = check_usable(hs);
	if (rc != 0 || !my_turn_to_write(hs))
		return CAIRN_ESTATE;
	size_t over = message_overhead(hs);
	if (len > NOISE_MSG_MAX - over)
		return CAIRN_EINVAL;
	if (cap < over + len)
		return CAIRN_ENOBUFS;

	size_t pos = 0, n = 0;
	for (const uint8_t *t = hs->pattern->msgs[hs->msg_index]; *t != T_END && rc == 0; t++) {
		switch (*t) {
		case T_E:
			if (!hs->has_e) {
				randombytes_buf(hs->e_priv, NOISE_DH_LEN);
				crypto_scalarmult_base(hs->e_pub, hs->e_priv);
				hs->has_e = true;
			}
			memcpy(out + pos, hs->e_pub, NOISE_DH_LEN);
			pos += NOISE_DH_LEN;
			mix_hash(hs, hs->e_pub, NOISE_DH_LEN);
			if (hs->pattern->psk)
				mix_key(hs, hs->e_pub, NOISE_DH_LEN);
			break;
		case T_S:
			rc = encrypt_and_hash(hs, hs->s_pub, sizeof(hs->s_pub), out + pos,
			                      cap - pos, &n);
			pos += n;
			break;
		default:
			rc = mix_token(hs, *t);
			break;
		}
	}
	if (rc == 0)
		rc = encrypt_and_hash(hs, payload, len, out + pos, cap - pos, &n);
	if (rc != 0) {
		/* Part of the message has been mixed in: the state cannot be resumed. */
		sodium_memzero(out, cap);
		noise_handshake_wipe(hs);
		hs->failed = true;
		return rc;
	}
	*outlen = pos + n;
	hs->msg_index++;
	return 0;
}

int noise_handshake_read_message(struct noise_handshake *hs, const uint8_t *msg, size_t len,
                                 uint8_t *payload, size_t cap, size_t *payload_len)
{
	*payload_len = 0;
	int rc = check_usable(hs);
	if (rc != 0 || my_turn_to_write(hs))
		return CAIRN_ESTATE;
	size_t over = message_overhead(hs);
	if (len < over || len > NOISE_MSG_MAX) {
		rc = CAIRN_EAUTH;
		goto fail;
	}
	if (cap < len - over)
		return CAIRN_ENOBUFS;

	size_t pos = 0, n = 0;
	for (const uint8_t *t = hs->pattern->msgs[hs->msg_index]; *t != T_END && rc == 0; t++) {
		switch (*t) {
		case T_E:
			memcpy(hs->re, msg + pos, NOISE_DH_LEN);
			hs->has_re = true;
			pos += NOISE_DH_LEN;
			mix_hash(hs, hs->re, NOISE_DH_LEN);
			if (hs->pattern->psk)
				mix_key(hs, hs->re, NOISE_DH_LEN);
			break;
		case T_S: {
			size_t slen = NOISE_DH_LEN + (hs->cipher.has_key ? CAIRN_AEAD_TAG_LEN : 0);
			rc = decrypt_and_hash(hs, msg + pos, slen, hs->rs, NOISE_DH_LEN, &n);
			hs->has_rs = rc == 0;
			pos += slen;
			break;
		}
		default:
			rc = mix_token(hs, *t);
			break;
		}
	}
	if (rc == 0)
		rc = decrypt_and_hash(hs, msg + pos, len - pos, payload, cap, payload_len);
	if (rc == 0) {
		hs->msg_index++;
		return 0;
	}
fail:
	/* Noise aborts a handshake whose message fails; keep nothing that could be misused. */
	*payload_len = 0;
	noise_handshake_wipe(hs);
	hs->failed = true;
	return rc;
}

bool noise_handshake_is_done(const struct noise_handshake *hs)
{
	return hs->pattern != NULL && !hs->failed && hs->msg_index == hs->pattern->nmsgs;
}

int noise_handshake_split(struct noise_handshake *hs, struct noise_cipher *c1,
                          struct noise_cipher *c2)
{
	uint8_t k1[NOISE_HASH_MAX_LEN], k2[NOISE_HASH_MAX_LEN];
	if (!noise_handshake_is_done(hs) || hs->split)
		return CAIRN_ESTATE;
	hkdf(hs->hash, hs->ck, NULL, 0, k1, k2, NULL);
	noise_cipher_init(c1, k1);
	noise_cipher_init(c2, k2);
	sodium_memzero(k1, sizeof(k1));
	sodium_memzero(k2, sizeof(k2));

	sodium_memzero(hs->ck, sizeof(hs->ck));
	noise_cipher_wipe(&hs->cipher);
	sodium_memzero(hs->s_priv, sizeof(hs->s_priv));
	sodium_memzero(hs->e_priv, sizeof(hs->e_priv));
	sodium_memzero(hs->psk, sizeof(hs->psk));
	hs->split = true;
	return 0;
}

size_t noise_handshake_hash(const struct noise_handshake *hs,
                            uint8_t out[static NOISE_HASH_MAX_LEN])
{
	memset(out, 0, NOISE_HASH_MAX_LEN);
	memcpy(out, hs->h, hs->hashlen);
	return hs->hashlen;
}

const uint8_t *noise_handshake_remote_ephemeral(const struct noise_handshake *hs)
{
	return hs->has_re ? hs->re : NULL;
}

void noise_handshake_wipe(struct noise_handshake *hs)
{
	sodium_memzero(hs, sizeof(*hs));
}
