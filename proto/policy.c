/* SPDX-License-Identifier: MIT */
/*
 * The relay's signed policy (policy.h). The body is written in the shortest msgpack forms and
 * read back after msgcheck has bounded the bytes, both with codec.c's writer and cursor
 * (mpbuf.h); then re-encoded and compared, so that a policy has one encoding and one digest.
 * XEdDSA is written out from Signal's specification with libsodium's Ed25519 scalar and point
 * primitives; verification is a plain Ed25519 verify by A.
 */
#include "policy.h"

#include <string.h>

#include <sodium.h>

#include "mpbuf.h"
#include "msgcheck.h"

#define POLICY_FIELDS 9
static const char policy_label[] = "cairn/1 policy"; /* 14 bytes, no NUL on the wire */
#define POLICY_LABEL_LEN (sizeof(policy_label) - 1)

int policy_text_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < len) {
		unsigned c = p[i];
		size_t n;
		uint32_t cp, min;
		if (c == 0)
			return 0;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			n = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return 0;
		}
		if (n > len - i - 1)
			return 0;
		for (size_t k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		/* overlong forms, surrogates, beyond U+10FFFF */
		if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return 0;
		i += n + 1;
	}
	return 1;
}

/* ---- Encoding ------------------------------------------------------------------------- */

int policy_encode(const struct policy *p, uint8_t *out, size_t cap, size_t *len)
{
	const char *texts[5] = {p->jurisdiction, p->contact, p->logging, p->retention,
	                        p->statement};
	size_t lens[5];

	*len = 0;
	for (int i = 0; i < 5; i++) {
		lens[i] = strnlen(texts[i], POLICY_TEXT_MAX + 1);
		if (lens[i] > POLICY_TEXT_MAX || !policy_text_valid(texts[i], lens[i]))
			return CAIRN_EINVAL;
	}
	if (p->forwarding > 1)
		return CAIRN_EINVAL;
	/* The packer writes the shortest forms, which are the policy's one encoding. A failed
	 * write sets w.overflow, checked once at the end. */
	struct mpbuf_out w;
	mpbuf_out_init(&w, out, cap < POLICY_BODY_MAX ? cap : POLICY_BODY_MAX);
	(void)msgpack_pack_array(&w.pk, POLICY_FIELDS);
	(void)msgpack_pack_uint32(&w.pk, POLICY_VERSION);
	(void)mpbuf_put_bin(&w, p->edwards, 32);
	(void)mpbuf_put_str(&w, texts[0], lens[0]);
	(void)mpbuf_put_str(&w, texts[1], lens[1]);
	(void)msgpack_pack_uint32(&w.pk, p->ttl_s);
	(void)mpbuf_put_str(&w, texts[2], lens[2]);
	(void)mpbuf_put_str(&w, texts[3], lens[3]);
	(void)msgpack_pack_uint32(&w.pk, p->forwarding);
	(void)mpbuf_put_str(&w, texts[4], lens[4]);
	if (w.overflow)
		return CAIRN_ENOBUFS;
	*len = w.len;
	return 0;
}

/* ---- Decoding ------------------------------------------------------------------------- */

/* Any unsigned form (the re-encoding catches a long one), at most UINT32_MAX. */
static int policy_read_uint(struct mpbuf_in *r, uint32_t *v)
{
	uint64_t x;
	if (mpbuf_read_uint(r, &x) != 0 || x > UINT32_MAX)
		return CAIRN_ETYPE;
	*v = (uint32_t)x;
	return 0;
}

static int policy_read_str(struct mpbuf_in *r, char out[POLICY_TEXT_MAX + 1])
{
	const uint8_t *s;
	size_t n;
	if (mpbuf_read_str(r, &s, &n) != 0 || n > POLICY_TEXT_MAX ||
	    !policy_text_valid((const char *)s, n))
		return CAIRN_ETYPE;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

static int policy_decode_fields(const uint8_t *body, size_t len, struct policy *p)
{
	struct mpbuf_in r = {body, len, 0};
	uint32_t count, version, fwd;
	const uint8_t *e;
	size_t elen;
	if (mpbuf_read_array(&r, &count) != 0 || count != POLICY_FIELDS)
		return CAIRN_ETYPE;
	if (policy_read_uint(&r, &version) != 0 || version != POLICY_VERSION)
		return CAIRN_ETYPE;
	if (mpbuf_read_bin(&r, &e, &elen) != 0 || elen != 32)
		return CAIRN_ETYPE;
	memcpy(p->edwards, e, 32);
	if (policy_read_str(&r, p->jurisdiction) != 0 || policy_read_str(&r, p->contact) != 0 ||
	    policy_read_uint(&r, &p->ttl_s) != 0 || policy_read_str(&r, p->logging) != 0 ||
	    policy_read_str(&r, p->retention) != 0 || policy_read_uint(&r, &fwd) != 0 || fwd > 1 ||
	    policy_read_str(&r, p->statement) != 0)
		return CAIRN_ETYPE;
	p->forwarding = (uint8_t)fwd;
	return r.pos == len ? 0 : CAIRN_ETRAILING;
}

int policy_decode(const uint8_t *body, size_t len, struct policy *p)
{
	memset(p, 0, sizeof(*p));
	if (len == 0 || len > POLICY_BODY_MAX)
		return CAIRN_ETYPE;
	size_t objlen;
	int rc = cairn_msgcheck(body, len, &objlen);
	if (rc != 0)
		return rc;
	if (objlen != len)
		return CAIRN_ETRAILING;
	rc = policy_decode_fields(body, len, p);
	if (rc != 0)
		return rc;
	/* One policy, one encoding: a longer form of any length or integer is refused. */
	uint8_t again[POLICY_BODY_MAX];
	size_t again_len;
	if (policy_encode(p, again, sizeof(again), &again_len) != 0 || again_len != len ||
	    memcmp(again, body, len) != 0)
		return CAIRN_ETYPE;
	return 0;
}

void policy_digest(const uint8_t *body, size_t len, uint8_t out[POLICY_DIGEST_LEN])
{
	crypto_generichash(out, POLICY_DIGEST_LEN, body, len, NULL, 0);
}

/* ---- XEdDSA --------------------------------------------------------------------------- */

/* XEdDSA's calculate_key_pair: A (sign bit 0) and the scalar a with A = a*B. */
static int policy_keypair(const uint8_t secret[32], uint8_t edwards[32], uint8_t a[32])
{
	uint8_t k[64] = {0};
	memcpy(k, secret, 32);
	k[0] &= 248;
	k[31] &= 127;
	k[31] |= 64;
	crypto_core_ed25519_scalar_reduce(a, k); /* k mod q: the same point, k*B = (k mod q)*B */
	sodium_memzero(k, sizeof(k));
	if (crypto_scalarmult_ed25519_base_noclamp(edwards, a) != 0) {
		sodium_memzero(a, 32);
		return CAIRN_ECRYPTO;
	}
	if (edwards[31] & 0x80) {
		uint8_t neg[32];
		crypto_core_ed25519_scalar_negate(neg, a);
		memcpy(a, neg, 32);
		sodium_memzero(neg, sizeof(neg));
		edwards[31] &= 0x7f; /* -E: the same y, the other x */
	}
	return 0;
}

int policy_edwards(const uint8_t secret[32], uint8_t edwards[32])
{
	uint8_t a[32];
	int rc = policy_keypair(secret, edwards, a);
	sodium_memzero(a, sizeof(a));
	return rc;
}

int policy_sign(const uint8_t secret[32], const uint8_t *body, size_t len, const uint8_t *z,
                uint8_t sig[POLICY_SIG_LEN])
{
	if (len > POLICY_BODY_MAX || (body == NULL && len > 0))
		return CAIRN_EINVAL;
	uint8_t A[32], a[32], zz[POLICY_Z_LEN], h64[64], r[32], hs[32], s[32];
	int rc = policy_keypair(secret, A, a);
	if (rc != 0)
		return rc;
	if (z != NULL)
		memcpy(zz, z, sizeof(zz));
	else
		randombytes_buf(zz, sizeof(zz));

	/* r = hash_1(a || M || Z) mod q, hash_1's prefix 2^256 - 2 (little-endian) */
	uint8_t prefix[32];
	memset(prefix, 0xff, sizeof(prefix));
	prefix[0] = 0xfe;
	crypto_hash_sha512_state st;
	crypto_hash_sha512_init(&st);
	crypto_hash_sha512_update(&st, prefix, sizeof(prefix));
	crypto_hash_sha512_update(&st, a, sizeof(a));
	crypto_hash_sha512_update(&st, (const uint8_t *)policy_label, POLICY_LABEL_LEN);
	crypto_hash_sha512_update(&st, body, len);
	crypto_hash_sha512_update(&st, zz, sizeof(zz));
	crypto_hash_sha512_final(&st, h64);
	crypto_core_ed25519_scalar_reduce(r, h64);
	if (crypto_scalarmult_ed25519_base_noclamp(sig, r) != 0) { /* R */
		rc = CAIRN_ECRYPTO;
		goto out;
	}
	/* h = SHA-512(R || A || M) mod q; s = r + h*a mod q */
	crypto_hash_sha512_init(&st);
	crypto_hash_sha512_update(&st, sig, 32);
	crypto_hash_sha512_update(&st, A, sizeof(A));
	crypto_hash_sha512_update(&st, (const uint8_t *)policy_label, POLICY_LABEL_LEN);
	crypto_hash_sha512_update(&st, body, len);
	crypto_hash_sha512_final(&st, h64);
	crypto_core_ed25519_scalar_reduce(hs, h64);
	crypto_core_ed25519_scalar_mul(s, hs, a);
	crypto_core_ed25519_scalar_add(s, s, r);
	memcpy(sig + 32, s, 32);
out:
	sodium_memzero(a, sizeof(a));
	sodium_memzero(r, sizeof(r));
	sodium_memzero(zz, sizeof(zz));
	sodium_memzero(h64, sizeof(h64));
	sodium_memzero(&st, sizeof(st));
	if (rc != 0)
		sodium_memzero(sig, POLICY_SIG_LEN);
	return rc;
}

int policy_verify(const uint8_t relay_key[32], const uint8_t *body, size_t len,
                  const uint8_t sig[POLICY_SIG_LEN], struct policy *p)
{
	struct policy local, *q = p != NULL ? p : &local;
	int rc = policy_decode(body, len, q);
	if (rc != 0)
		return rc;
	uint8_t x[32];
	if ((q->edwards[31] & 0x80) != 0 ||
	    crypto_sign_ed25519_pk_to_curve25519(x, q->edwards) != 0 ||
	    sodium_memcmp(x, relay_key, 32) != 0)
		return CAIRN_EAUTH;
	uint8_t m[POLICY_LABEL_LEN + POLICY_BODY_MAX];
	memcpy(m, policy_label, POLICY_LABEL_LEN);
	memcpy(m + POLICY_LABEL_LEN, body, len);
	if (crypto_sign_verify_detached(sig, m, POLICY_LABEL_LEN + len, q->edwards) != 0)
		return CAIRN_EAUTH;
	return 0;
}
