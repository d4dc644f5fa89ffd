/* SPDX-License-Identifier: MIT */
/*
 * The key schedule of a group (docs/PROTOCOL.md 9.1, 9.3, 9.5, 9.7, 9.10): every function is
 * one formula of the spec, HKDF-SHA-256 and HMAC-SHA-256 from kdf.h, SHA-256/512 and X25519
 * from libsodium. Nothing here keeps state; intermediate secrets on the stack are wiped.
 */
#include <assert.h>
#include <string.h>

#include <sodium.h>

#include "group_keys.h"
#include "kdf.h"

#define KL GROUP_SECRET_LEN

static const char label_epoch[] = "cairn/1 group epoch";
static const char label_sender[] = "cairn/1 group sender";
static const char label_msg[] = "cairn/1 group message keys";
static const char label_head[] = "cairn/1 group head";
static const char label_next[] = "cairn/1 group next";
static const char label_seal[] = "cairn/1 group seal";
static const char label_move[] = "cairn/1 group move";
static const char label_safety[] = "cairn/1 group safety number";

/* The longest info of this file: the seal's label, group_id, u64, head, eph, G. */
#define INFO_MAX (sizeof(label_seal) - 1 + GROUP_ID_LEN + 8 + GROUP_HEAD_LEN + 2 * CAIRN_KEY_LEN)

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

/* An info string: LABEL || A || B, in INFO (capacity INFO_MAX); returns its length. */
static size_t info_of(uint8_t info[static INFO_MAX], const char *label, size_t label_len,
                      const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	assert(label_len + alen + blen <= INFO_MAX);
	memcpy(info, label, label_len);
	if (alen > 0)
		memcpy(info + label_len, a, alen);
	if (blen > 0)
		memcpy(info + label_len + alen, b, blen);
	return label_len + alen + blen;
}

/* HKDF with the fixed, valid output lengths of this file: kdf_hkdf_sha256 fails only on a bad
 * length, which no caller here passes. SALT NULL means 0^32. */
static void hkdf(uint8_t *out, size_t outlen, const uint8_t *salt, const uint8_t *ikm,
                 size_t ikmlen, const uint8_t *info, size_t infolen)
{
	int rc =
	    kdf_hkdf_sha256(out, outlen, salt, salt != NULL ? KL : 0, ikm, ikmlen, info, infolen);
	assert(rc == 0);
	(void)rc;
}

void group_ctx(const uint8_t group_id[static GROUP_ID_LEN], uint64_t epoch,
               const uint8_t head[static GROUP_HEAD_LEN], uint8_t out[static GROUP_CTX_LEN])
{
	memcpy(out, group_id, GROUP_ID_LEN);
	put_u64(out + GROUP_ID_LEN, epoch);
	memcpy(out + GROUP_ID_LEN + 8, head, GROUP_HEAD_LEN);
}

void group_epoch_keys(const uint8_t epoch_secret[static GROUP_SECRET_LEN],
                      const uint8_t ctx[static GROUP_CTX_LEN], struct group_epoch_keys *out)
{
	uint8_t info[INFO_MAX], okm[5 * KL];
	size_t il =
	    info_of(info, label_epoch, sizeof(label_epoch) - 1, ctx, GROUP_CTX_LEN, NULL, 0);
	hkdf(okm, sizeof(okm), NULL, epoch_secret, KL, info, il);
	/* The order of 9.3: header, commit, sender base, init, confirm. */
	memcpy(out->header_key, okm, KL);
	memcpy(out->commit_key, okm + KL, KL);
	memcpy(out->sender_base, okm + 2 * KL, KL);
	memcpy(out->init_secret, okm + 3 * KL, KL);
	memcpy(out->confirm_key, okm + 4 * KL, KL);
	sodium_memzero(okm, sizeof(okm));
}

void group_sender_chain(const uint8_t base[static GROUP_SECRET_LEN], uint16_t index,
                        uint8_t out[static GROUP_SECRET_LEN])
{
	uint8_t info[INFO_MAX], idx[2] = {(uint8_t)(index >> 8), (uint8_t)index};
	size_t il = info_of(info, label_sender, sizeof(label_sender) - 1, idx, 2, NULL, 0);
	hkdf(out, KL, NULL, base, KL, info, il);
}

void group_chain_step(uint8_t ck[static GROUP_SECRET_LEN], uint8_t mk[static GROUP_SECRET_LEN])
{
	/* KDF_CK of 8.4: both outputs from the old CK before it is overwritten. */
	static const uint8_t one = 0x01, two = 0x02;
	uint8_t next[KL];
	kdf_hmac_sha256(ck, KL, &one, 1, NULL, 0, mk);
	kdf_hmac_sha256(ck, KL, &two, 1, NULL, 0, next);
	memcpy(ck, next, KL);
	sodium_memzero(next, sizeof(next));
}

void group_message_keys(const uint8_t mk[static GROUP_SECRET_LEN],
                        uint8_t key[static GROUP_SECRET_LEN], uint8_t nonce[static GROUP_NONCE_LEN])
{
	uint8_t okm[KL + GROUP_NONCE_LEN];
	hkdf(okm, sizeof(okm), NULL, mk, KL, (const uint8_t *)label_msg, sizeof(label_msg) - 1);
	memcpy(key, okm, KL);
	memcpy(nonce, okm + KL, GROUP_NONCE_LEN);
	sodium_memzero(okm, sizeof(okm));
}

void group_head(const uint8_t *signed_commit, size_t len, uint8_t out[static GROUP_HEAD_LEN])
{
	crypto_hash_sha256_state st;
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const uint8_t *)label_head, sizeof(label_head) - 1);
	if (len > 0)
		crypto_hash_sha256_update(&st, signed_commit, len);
	crypto_hash_sha256_final(&st, out);
}

void group_next_epoch(const uint8_t init_secret[static GROUP_SECRET_LEN],
                      const uint8_t commit_secret[static GROUP_SECRET_LEN],
                      const uint8_t head[static GROUP_HEAD_LEN],
                      uint8_t out[static GROUP_SECRET_LEN])
{
	uint8_t info[INFO_MAX];
	size_t il =
	    info_of(info, label_next, sizeof(label_next) - 1, head, GROUP_HEAD_LEN, NULL, 0);
	/* The salt is init_secret itself, 0^32 for the genesis: the same bytes HKDF's absent salt
	 * would give, so no special case. */
	hkdf(out, KL, init_secret, commit_secret, KL, info, il);
}

void group_confirm(const uint8_t confirm_key[static GROUP_SECRET_LEN],
                   const uint8_t head[static GROUP_HEAD_LEN], uint8_t out[static GROUP_SECRET_LEN])
{
	kdf_hmac_sha256(confirm_key, KL, head, GROUP_HEAD_LEN, NULL, 0, out);
}

int group_seal_pad(const uint8_t our_private[static CAIRN_KEY_LEN],
                   const uint8_t their_public[static CAIRN_KEY_LEN],
                   const uint8_t group_id[static GROUP_ID_LEN], uint64_t new_epoch,
                   const uint8_t prev_head[static GROUP_HEAD_LEN],
                   const uint8_t eph[static CAIRN_KEY_LEN], const uint8_t g[static CAIRN_KEY_LEN],
                   uint8_t out[static GROUP_SECRET_LEN])
{
	uint8_t dh[CAIRN_KEY_LEN], mid[GROUP_ID_LEN + 8 + GROUP_HEAD_LEN], keys[2 * CAIRN_KEY_LEN];
	uint8_t info[INFO_MAX];
	/* crypto_scalarmult fails on an all-zero result (a low-order public key), which 9.1
	 * makes an error. */
	if (crypto_scalarmult(dh, our_private, their_public) != 0) {
		sodium_memzero(dh, sizeof(dh));
		return CAIRN_ECRYPTO;
	}
	memcpy(mid, group_id, GROUP_ID_LEN);
	put_u64(mid + GROUP_ID_LEN, new_epoch);
	memcpy(mid + GROUP_ID_LEN + 8, prev_head, GROUP_HEAD_LEN);
	memcpy(keys, eph, CAIRN_KEY_LEN);
	memcpy(keys + CAIRN_KEY_LEN, g, CAIRN_KEY_LEN);
	size_t il =
	    info_of(info, label_seal, sizeof(label_seal) - 1, mid, sizeof(mid), keys, sizeof(keys));
	hkdf(out, KL, NULL, dh, sizeof(dh), info, il);
	sodium_memzero(dh, sizeof(dh));
	return 0;
}

void group_move_key(const uint8_t init_secret[static GROUP_SECRET_LEN],
                    const uint8_t commit_secret[static GROUP_SECRET_LEN],
                    uint8_t out[static GROUP_SECRET_LEN])
{
	hkdf(out, KL, init_secret, commit_secret, KL, (const uint8_t *)label_move,
	     sizeof(label_move) - 1);
}

void group_safety_number(const uint8_t group_id[static GROUP_ID_LEN], uint64_t epoch,
                         const uint8_t head[static GROUP_HEAD_LEN],
                         char out[static GROUP_SAFETY_TEXT_LEN])
{
	uint8_t d[crypto_hash_sha512_BYTES], e[8];
	crypto_hash_sha512_state st;
	put_u64(e, epoch);
	crypto_hash_sha512_init(&st);
	crypto_hash_sha512_update(&st, (const uint8_t *)label_safety, sizeof(label_safety) - 1);
	crypto_hash_sha512_update(&st, group_id, GROUP_ID_LEN);
	crypto_hash_sha512_update(&st, e, sizeof(e));
	crypto_hash_sha512_update(&st, head, GROUP_HEAD_LEN);
	crypto_hash_sha512_final(&st, d);
	/* Twelve 5-byte big-endian integers mod 100000, five digits each, leading zeros kept,
	 * groups separated by one space. */
	size_t o = 0;
	for (unsigned c = 0; c < 12; c++) {
		uint64_t v = 0;
		for (unsigned j = 0; j < 5; j++)
			v = (v << 8) | d[5 * c + j];
		v %= 100000;
		if (c > 0)
			out[o++] = ' ';
		for (int k = 4; k >= 0; k--) {
			out[o + (unsigned)k] = (char)('0' + v % 10);
			v /= 10;
		}
		o += 5;
	}
	out[o] = '\0';
}
