/* SPDX-License-Identifier: MIT */
/*
 * The relay's signed policy (policy.h). The body is written by hand in the shortest msgpack
 * forms (it has four kinds of element), and read back by a cursor after msgcheck has bounded
 * the bytes; then re-encoded and compared, so that a policy has one encoding and one digest.
 * XEdDSA is written out from Signal's specification with libsodium's Ed25519 scalar and point
 * primitives; verification is a plain Ed25519 verify by A.
 */
#include "policy.h"

#include <string.h>

#include <sodium.h>

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

struct policy_out {
	uint8_t *p;
	size_t cap, len;
	int overflow;
};

static void out_put(struct policy_out *o, const void *data, size_t n)
{
	if (o->overflow || n > o->cap - o->len) {
		o->overflow = 1;
		return;
	}
	memcpy(o->p + o->len, data, n);
	o->len += n;
}

static void out_byte(struct policy_out *o, uint8_t b)
{
	out_put(o, &b, 1);
}

static void out_uint(struct policy_out *o, uint32_t v)
{
	if (v < 0x80) {
		out_byte(o, (uint8_t)v);
	} else if (v <= 0xff) {
		uint8_t b[2] = {0xcc, (uint8_t)v};
		out_put(o, b, 2);
	} else if (v <= 0xffff) {
		uint8_t b[3] = {0xcd, (uint8_t)(v >> 8), (uint8_t)v};
		out_put(o, b, 3);
	} else {
		uint8_t b[5] = {0xce, (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
		                (uint8_t)v};
		out_put(o, b, 5);
	}
}

static void out_str(struct policy_out *o, const char *s, size_t n)
{
	if (n < 32) {
		out_byte(o, (uint8_t)(0xa0 | n));
	} else if (n <= 0xff) {
		uint8_t b[2] = {0xd9, (uint8_t)n};
		out_put(o, b, 2);
	} else {
		uint8_t b[3] = {0xda, (uint8_t)(n >> 8), (uint8_t)n};
		out_put(o, b, 3);
	}
	out_put(o, s, n);
}

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
	struct policy_out o = {out, cap < POLICY_BODY_MAX ? cap : POLICY_BODY_MAX, 0, 0};
	out_byte(&o, 0x90 | POLICY_FIELDS);
	out_uint(&o, POLICY_VERSION);
	uint8_t binhead[2] = {0xc4, 32};
	out_put(&o, binhead, 2);
	out_put(&o, p->edwards, 32);
	out_str(&o, texts[0], lens[0]);
	out_str(&o, texts[1], lens[1]);
	out_uint(&o, p->ttl_s);
	out_str(&o, texts[2], lens[2]);
	out_str(&o, texts[3], lens[3]);
	out_uint(&o, p->forwarding);
	out_str(&o, texts[4], lens[4]);
	if (o.overflow)
		return CAIRN_ENOBUFS;
	*len = o.len;
	return 0;
}

/* ---- Decoding ------------------------------------------------------------------------- */

struct policy_in {
	const uint8_t *p;
	size_t len, pos;
};

static const uint8_t *in_take(struct policy_in *r, size_t n)
{
	if (n > r->len - r->pos)
		return NULL;
	const uint8_t *p = r->p + r->pos;
	r->pos += n;
	return p;
}

/* Reads a big-endian integer of W bytes (a msgpack length or value) at most MAX into *V. */
static int in_be(struct policy_in *r, unsigned w, uint64_t max, uint64_t *v)
{
	const uint8_t *p = in_take(r, w);
	if (p == NULL)
		return CAIRN_ETYPE;
	uint64_t x = 0;
	for (unsigned i = 0; i < w; i++)
		x = (x << 8) | p[i];
	if (x > max)
		return CAIRN_ETYPE;
	*v = x;
	return 0;
}

/* Any unsigned form (the re-encoding catches a long one), at most UINT32_MAX. */
static int in_uint(struct policy_in *r, uint32_t *v)
{
	const uint8_t *b = in_take(r, 1);
	if (b == NULL)
		return CAIRN_ETYPE;
	if (*b < 0x80) {
		*v = *b;
		return 0;
	}
	if (*b < 0xcc || *b > 0xcf)
		return CAIRN_ETYPE;
	uint64_t x;
	if (in_be(r, 1u << (*b - 0xcc), UINT32_MAX, &x) != 0)
		return CAIRN_ETYPE;
	*v = (uint32_t)x;
	return 0;
}

static int in_str(struct policy_in *r, char out[POLICY_TEXT_MAX + 1])
{
	const uint8_t *b = in_take(r, 1);
	if (b == NULL)
		return CAIRN_ETYPE;
	size_t n;
	if ((*b & 0xe0) == 0xa0) {
		n = *b & 0x1f;
	} else if (*b >= 0xd9 && *b <= 0xdb) {
		uint64_t x;
		if (in_be(r, 1u << (*b - 0xd9), POLICY_TEXT_MAX, &x) != 0)
			return CAIRN_ETYPE;
		n = (size_t)x;
	} else {
		return CAIRN_ETYPE;
	}
	if (n > POLICY_TEXT_MAX)
		return CAIRN_ETYPE;
	const uint8_t *s = in_take(r, n);
	if (s == NULL || !policy_text_valid((const char *)s, n))
		return CAIRN_ETYPE;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

static int policy_decode_fields(const uint8_t *body, size_t len, struct policy *p)
{
	struct policy_in r = {body, len, 0};
	const uint8_t *b = in_take(&r, 1);
	uint32_t version, fwd;
	if (b == NULL || *b != (0x90 | POLICY_FIELDS))
		return CAIRN_ETYPE;
	if (in_uint(&r, &version) != 0 || version != POLICY_VERSION)
		return CAIRN_ETYPE;
	b = in_take(&r, 2);
	if (b == NULL || b[0] != 0xc4 || b[1] != 32)
		return CAIRN_ETYPE;
	const uint8_t *e = in_take(&r, 32);
	if (e == NULL)
		return CAIRN_ETYPE;
	memcpy(p->edwards, e, 32);
	if (in_str(&r, p->jurisdiction) != 0 || in_str(&r, p->contact) != 0 ||
	    in_uint(&r, &p->ttl_s) != 0 || in_str(&r, p->logging) != 0 ||
	    in_str(&r, p->retention) != 0 || in_uint(&r, &fwd) != 0 || fwd > 1 ||
	    in_str(&r, p->statement) != 0)
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
