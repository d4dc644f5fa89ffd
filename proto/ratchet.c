/* SPDX-License-Identifier: MIT */
/*
 * The Double Ratchet with header encryption, as in Signal's specification (revision 1, section
 * 4), with Cairn's choices (docs/PROTOCOL.md section 8.4): HKDF-SHA-256 for KDF_RK, HMAC-SHA-256
 * for KDF_CK, XChaCha20-Poly1305 for headers and bodies, whose associated data also covers the
 * envelope bytes before the message (EAD). Decryption runs on a copy of the state and replaces
 * the state only when the message authenticates.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "kdf.h"
#include "ratchet.h"

#define KL RATCHET_KEY_LEN

enum {
	HAS_DHR = 1 << 0,
	HAS_CKS = 1 << 1,
	HAS_CKR = 1 << 2,
	HAS_HKS = 1 << 3,
	HAS_HKR = 1 << 4,
	HAS_ALL = 0x1f,
};

struct skipped {
	uint8_t hk[KL];
	uint8_t mk[KL];
	uint32_t n;
};

struct ratchet {
	unsigned flags;
	uint8_t dhs_priv[KL], dhs_pub[KL], dhr[KL];
	uint8_t rk[KL], cks[KL], ckr[KL];
	uint8_t hks[KL], hkr[KL], nhks[KL], nhkr[KL];
	uint32_t ns, nr, pn;
	uint8_t ad[RATCHET_AD_LEN];
	size_t nskipped, skipped_cap;
	struct skipped *skipped; /* oldest first */
};

static const char info_rk[] = "cairn/1 ratchet";
static const char info_mk[] = "cairn/1 message keys";

void e2e_rng_fill(const struct e2e_rng *rng, uint8_t *out, size_t len)
{
	if (rng != NULL && rng->fill != NULL)
		rng->fill(rng->ctx, out, len);
	else
		randombytes_buf(out, len);
}

static struct ratchet *ratchet_alloc(size_t cap)
{
	struct ratchet *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	if (cap > 0) {
		r->skipped = calloc(cap, sizeof(*r->skipped));
		if (r->skipped == NULL) {
			free(r);
			return NULL;
		}
		r->skipped_cap = cap;
	}
	return r;
}

void ratchet_free(struct ratchet *r)
{
	if (r == NULL)
		return;
	if (r->skipped != NULL) {
		sodium_memzero(r->skipped, r->skipped_cap * sizeof(*r->skipped));
		free(r->skipped);
	}
	sodium_memzero(r, sizeof(*r));
	free(r);
}

/* A deep copy of R; its skipped-key array grows on demand. */
static struct ratchet *ratchet_clone(const struct ratchet *r)
{
	size_t cap = r->nskipped;
	struct ratchet *c = ratchet_alloc(cap);
	if (c == NULL)
		return NULL;
	struct skipped *keep = c->skipped;
	memcpy(c, r, sizeof(*c));
	c->skipped = keep;
	c->skipped_cap = cap;
	if (r->nskipped > 0)
		memcpy(c->skipped, r->skipped, r->nskipped * sizeof(*r->skipped));
	return c;
}

/* KDF_RK: HKDF-SHA-256 with salt RK over DH_OUT gives RK || CK || NHK. */
static int kdf_rk(uint8_t rk[static KL], const uint8_t dh_out[static KL], uint8_t ck[static KL],
                  uint8_t nhk[static KL])
{
	uint8_t okm[3 * KL];
	int rc = kdf_hkdf_sha256(okm, sizeof(okm), rk, KL, dh_out, KL, (const uint8_t *)info_rk,
	                         sizeof(info_rk) - 1);
	if (rc == 0) {
		memcpy(rk, okm, KL);
		memcpy(ck, okm + KL, KL);
		memcpy(nhk, okm + 2 * KL, KL);
	}
	sodium_memzero(okm, sizeof(okm));
	return rc;
}

/* KDF_CK: MK = HMAC(CK, 0x01), CK' = HMAC(CK, 0x02). */
static void kdf_ck(uint8_t ck[static KL], uint8_t mk[static KL])
{
	static const uint8_t one = 1, two = 2;
	kdf_hmac_sha256(ck, KL, &one, 1, NULL, 0, mk);
	kdf_hmac_sha256(ck, KL, &two, 1, NULL, 0, ck);
}

/* The per-message AEAD material: body key, body nonce and header nonce from MK. */
struct msg_keys {
	uint8_t key[KL];
	uint8_t body_nonce[RATCHET_NONCE_LEN];
	uint8_t header_nonce[RATCHET_NONCE_LEN];
};

static int msg_keys_derive(struct msg_keys *k, const uint8_t mk[static KL])
{
	return kdf_hkdf_sha256((uint8_t *)k, sizeof(*k), NULL, 0, mk, KL, (const uint8_t *)info_mk,
	                       sizeof(info_mk) - 1);
}

/*
 * The associated data of one message (section 8.4): AD || EAD for the header; AD || EAD ||
 * header_nonce || enc_header for the body. One buffer holds the longer; the header's is its
 * start. None of it is secret.
 */
struct msg_ad {
	uint8_t b[RATCHET_AD_LEN + RATCHET_EAD_MAX + RATCHET_NONCE_LEN + RATCHET_ENC_HEADER_LEN];
	size_t header_len, body_len;
};

/* AD || EAD; the caller has checked EAD_LEN <= RATCHET_EAD_MAX. */
static void msg_ad_init(struct msg_ad *a, const uint8_t ad[static RATCHET_AD_LEN],
                        const uint8_t *ead, size_t ead_len)
{
	memcpy(a->b, ad, RATCHET_AD_LEN);
	if (ead_len > 0)
		memcpy(a->b + RATCHET_AD_LEN, ead, ead_len);
	a->header_len = RATCHET_AD_LEN + ead_len;
	a->body_len = a->header_len + RATCHET_NONCE_LEN + RATCHET_ENC_HEADER_LEN;
}

/* Appends the header nonce and encrypted header (the start of MSG) for the body's AD. */
static void msg_ad_header(struct msg_ad *a, const uint8_t *msg)
{
	memcpy(a->b + a->header_len, msg, RATCHET_NONCE_LEN + RATCHET_ENC_HEADER_LEN);
}

static int dh(uint8_t out[static KL], const uint8_t priv[static KL], const uint8_t pub[static KL])
{
	return crypto_scalarmult(out, priv, pub) == 0 ? 0 : CAIRN_ECRYPTO;
}

static void store_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t load_u32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void new_key_pair(struct ratchet *r, const struct e2e_rng *rng)
{
	e2e_rng_fill(rng, r->dhs_priv, KL);
	crypto_scalarmult_base(r->dhs_pub, r->dhs_priv);
}

int ratchet_new_initiator(struct ratchet **out, const struct ratchet_init *k,
                          const uint8_t remote_dh[static RATCHET_KEY_LEN],
                          const struct e2e_rng *rng)
{
	uint8_t shared[KL];
	*out = NULL;
	struct ratchet *r = ratchet_alloc(0);
	if (r == NULL)
		return CAIRN_ENOMEM;
	new_key_pair(r, rng);
	memcpy(r->dhr, remote_dh, KL);
	memcpy(r->rk, k->rk, KL);
	memcpy(r->hks, k->hka, KL);
	memcpy(r->nhkr, k->nhkb, KL);
	memcpy(r->ad, k->ad, RATCHET_AD_LEN);
	int rc = dh(shared, r->dhs_priv, r->dhr);
	if (rc == 0)
		rc = kdf_rk(r->rk, shared, r->cks, r->nhks);
	sodium_memzero(shared, sizeof(shared));
	if (rc != 0) {
		ratchet_free(r);
		return rc;
	}
	r->flags = HAS_DHR | HAS_CKS | HAS_HKS;
	*out = r;
	return 0;
}

int ratchet_new_responder(struct ratchet **out, const struct ratchet_init *k,
                          const uint8_t dh_private[static RATCHET_KEY_LEN])
{
	*out = NULL;
	struct ratchet *r = ratchet_alloc(0);
	if (r == NULL)
		return CAIRN_ENOMEM;
	memcpy(r->dhs_priv, dh_private, KL);
	crypto_scalarmult_base(r->dhs_pub, r->dhs_priv);
	memcpy(r->rk, k->rk, KL);
	memcpy(r->nhks, k->nhkb, KL);
	memcpy(r->nhkr, k->hka, KL);
	memcpy(r->ad, k->ad, RATCHET_AD_LEN);
	*out = r;
	return 0;
}

size_t ratchet_skipped_count(const struct ratchet *r)
{
	return r->nskipped;
}

int ratchet_encrypt(struct ratchet *r, const uint8_t *ead, size_t ead_len, const uint8_t *pt,
                    size_t len, uint8_t *out, size_t cap, size_t *outlen)
{
	uint8_t ck[KL], mk[KL], header[RATCHET_HEADER_LEN];
	struct msg_ad ad;
	struct msg_keys k;
	int rc;

	*outlen = 0;
	if (ead_len > RATCHET_EAD_MAX)
		return CAIRN_EINVAL;
	if ((r->flags & (HAS_CKS | HAS_HKS)) != (HAS_CKS | HAS_HKS))
		return CAIRN_ESTATE;
	if (r->ns == UINT32_MAX)
		return CAIRN_ENONCE;
	if (cap < RATCHET_OVERHEAD || len > cap - RATCHET_OVERHEAD)
		return CAIRN_ENOBUFS;

	/* EAD may lie just before OUT (the envelope's type and prefix): copy it first. */
	msg_ad_init(&ad, r->ad, ead, ead_len);
	memcpy(ck, r->cks, KL);
	kdf_ck(ck, mk);
	rc = msg_keys_derive(&k, mk);
	if (rc != 0)
		goto out;
	memcpy(header, r->dhs_pub, KL);
	store_u32(header + KL, r->pn);
	store_u32(header + KL + 4, r->ns);

	uint8_t *nonce = out, *eh = out + RATCHET_NONCE_LEN;
	uint8_t *body = eh + RATCHET_ENC_HEADER_LEN;
	memcpy(nonce, k.header_nonce, RATCHET_NONCE_LEN);
	crypto_aead_xchacha20poly1305_ietf_encrypt(eh, NULL, header, sizeof(header), ad.b,
	                                           ad.header_len, NULL, nonce, r->hks);
	msg_ad_header(&ad, out);
	crypto_aead_xchacha20poly1305_ietf_encrypt(body, NULL, pt, len, ad.b, ad.body_len, NULL,
	                                           k.body_nonce, k.key);
	memcpy(r->cks, ck, KL);
	r->ns++;
	*outlen = RATCHET_OVERHEAD + len;
out:
	sodium_memzero(ck, sizeof(ck));
	sodium_memzero(mk, sizeof(mk));
	sodium_memzero(&k, sizeof(k));
	sodium_memzero(header, sizeof(header));
	return rc;
}

/* Decrypts the 40-byte header of MSG with HK, under AD's header part; 0 or -1. */
static int header_open(const uint8_t *msg, const uint8_t hk[static KL], const struct msg_ad *ad,
                       uint8_t header[static RATCHET_HEADER_LEN])
{
	return crypto_aead_xchacha20poly1305_ietf_decrypt(
	    header, NULL, NULL, msg + RATCHET_NONCE_LEN, RATCHET_ENC_HEADER_LEN, ad->b,
	    ad->header_len, msg, hk);
}

/*
 * Decrypts the body of MSG (LEN >= OVERHEAD) with message key MK into OUT, under AD's body part
 * (msg_ad_header done); 0 or CAIRN_EAUTH.
 */
static int body_open(const uint8_t *msg, size_t len, const uint8_t mk[static KL],
                     const struct msg_ad *ad, uint8_t *out)
{
	struct msg_keys k;
	int rc = msg_keys_derive(&k, mk);
	if (rc != 0)
		goto out;
	/* The header nonce on the wire must be the one MK implies, so a message has one form. */
	if (sodium_memcmp(k.header_nonce, msg, RATCHET_NONCE_LEN) != 0) {
		rc = CAIRN_EAUTH;
		goto out;
	}
	const size_t off = RATCHET_NONCE_LEN + RATCHET_ENC_HEADER_LEN;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, NULL, NULL, msg + off, len - off, ad->b,
	                                               ad->body_len, k.body_nonce, k.key) != 0)
		rc = CAIRN_EAUTH;
out:
	sodium_memzero(&k, sizeof(k));
	return rc;
}

/* Grows R's skipped-key array (never past the total cap), wiping the old copy. */
static int skipped_grow(struct ratchet *r)
{
	size_t cap = r->skipped_cap < 16 ? 16 : 2 * r->skipped_cap;
	if (cap > RATCHET_SKIPPED_MAX)
		cap = RATCHET_SKIPPED_MAX;
	struct skipped *p = calloc(cap, sizeof(*p));
	if (p == NULL)
		return CAIRN_ENOMEM;
	if (r->skipped != NULL) {
		memcpy(p, r->skipped, r->nskipped * sizeof(*p));
		sodium_memzero(r->skipped, r->skipped_cap * sizeof(*p));
		free(r->skipped);
	}
	r->skipped = p;
	r->skipped_cap = cap;
	return 0;
}

/* Stores one skipped key, evicting the oldest when RATCHET_SKIPPED_MAX are stored. */
static int skipped_push(struct ratchet *r, const uint8_t hk[static KL], uint32_t n,
                        const uint8_t mk[static KL])
{
	if (r->nskipped == RATCHET_SKIPPED_MAX) {
		sodium_memzero(&r->skipped[0], sizeof(r->skipped[0]));
		memmove(r->skipped, r->skipped + 1, (r->nskipped - 1) * sizeof(*r->skipped));
		r->nskipped--;
	} else if (r->nskipped == r->skipped_cap) {
		int rc = skipped_grow(r);
		if (rc != 0)
			return rc;
	}
	struct skipped *e = &r->skipped[r->nskipped++];
	memcpy(e->hk, hk, KL);
	memcpy(e->mk, mk, KL);
	e->n = n;
	return 0;
}

/* SkipMessageKeysHE: stores keys of the receiving chain up to (not including) UNTIL. */
static int skip_keys(struct ratchet *r, uint32_t until)
{
	uint8_t mk[KL];
	int rc = 0;
	if ((uint64_t)until > (uint64_t)r->nr + RATCHET_MAX_SKIP)
		return CAIRN_ELIMIT;
	if ((r->flags & HAS_CKR) == 0)
		return 0;
	while (rc == 0 && r->nr < until) {
		kdf_ck(r->ckr, mk);
		rc = skipped_push(r, r->hkr, r->nr, mk);
		r->nr++;
	}
	sodium_memzero(mk, sizeof(mk));
	return rc;
}

/* DHRatchetHE. */
static int dh_ratchet(struct ratchet *r, const uint8_t header[static RATCHET_HEADER_LEN],
                      const struct e2e_rng *rng)
{
	uint8_t shared[KL];
	r->pn = r->ns;
	r->ns = 0;
	r->nr = 0;
	memcpy(r->hks, r->nhks, KL);
	memcpy(r->hkr, r->nhkr, KL);
	memcpy(r->dhr, header, KL);
	int rc = dh(shared, r->dhs_priv, r->dhr);
	if (rc == 0)
		rc = kdf_rk(r->rk, shared, r->ckr, r->nhkr);
	if (rc == 0) {
		new_key_pair(r, rng);
		rc = dh(shared, r->dhs_priv, r->dhr);
	}
	if (rc == 0)
		rc = kdf_rk(r->rk, shared, r->cks, r->nhks);
	sodium_memzero(shared, sizeof(shared));
	r->flags = HAS_ALL;
	return rc;
}

/* TrySkippedMessageKeysHE on R itself: on success the used key is removed (that is the only
 * change). Returns 0, 1 when no stored key matches, or CAIRN_EAUTH for a bad body. */
static int try_skipped(struct ratchet *r, const struct msg_ad *ad, const uint8_t *msg, size_t len,
                       uint8_t *out)
{
	uint8_t header[RATCHET_HEADER_LEN];
	int found = 1;
	size_t i = 0;
	while (i < r->nskipped && found == 1) {
		/* Keys of one chain share a header key and sit together: open the header once per
		 * run of equal header keys. */
		size_t end = i + 1;
		while (end < r->nskipped &&
		       sodium_memcmp(r->skipped[end].hk, r->skipped[i].hk, KL) == 0)
			end++;
		if (header_open(msg, r->skipped[i].hk, ad, header) == 0) {
			uint32_t n = load_u32(header + KL + 4);
			for (size_t j = i; j < end; j++) {
				if (r->skipped[j].n != n)
					continue;
				found = body_open(msg, len, r->skipped[j].mk, ad, out);
				if (found == 0) {
					sodium_memzero(&r->skipped[j], sizeof(r->skipped[j]));
					memmove(&r->skipped[j], &r->skipped[j + 1],
					        (r->nskipped - j - 1) * sizeof(*r->skipped));
					r->nskipped--;
					sodium_memzero(&r->skipped[r->nskipped],
					               sizeof(r->skipped[0]));
				}
				break;
			}
		}
		i = end;
	}
	sodium_memzero(header, sizeof(header));
	return found;
}

/* The main path of RatchetDecryptHE, on a copy T of the state. */
static int decrypt_on_copy(struct ratchet *t, const struct msg_ad *ad, const uint8_t *msg,
                           size_t len, uint8_t *out, const struct e2e_rng *rng)
{
	uint8_t header[RATCHET_HEADER_LEN], mk[KL];
	int rc;
	if ((t->flags & HAS_HKR) && header_open(msg, t->hkr, ad, header) == 0) {
		uint32_t n = load_u32(header + KL + 4);
		rc = n < t->nr ? CAIRN_EREPLAY : skip_keys(t, n);
	} else if (header_open(msg, t->nhkr, ad, header) == 0) {
		rc = skip_keys(t, load_u32(header + KL));
		if (rc == 0)
			rc = dh_ratchet(t, header, rng);
		if (rc == 0)
			rc = skip_keys(t, load_u32(header + KL + 4));
	} else {
		rc = CAIRN_EAUTH;
	}
	if (rc == 0) {
		kdf_ck(t->ckr, mk);
		t->nr++;
		rc = body_open(msg, len, mk, ad, out);
	}
	sodium_memzero(header, sizeof(header));
	sodium_memzero(mk, sizeof(mk));
	return rc;
}

int ratchet_decrypt(struct ratchet *r, const uint8_t *ead, size_t ead_len, const uint8_t *msg,
                    size_t len, uint8_t *out, size_t cap, size_t *outlen, const struct e2e_rng *rng)
{
	*outlen = 0;
	if (ead_len > RATCHET_EAD_MAX) {
		sodium_memzero(out, cap);
		return CAIRN_EINVAL;
	}
	if (len < RATCHET_OVERHEAD) {
		sodium_memzero(out, cap);
		return CAIRN_EAUTH;
	}
	size_t ptlen = len - RATCHET_OVERHEAD;
	if (cap < ptlen)
		return CAIRN_ENOBUFS;

	/* One AD for every trial: the state's AD never changes, and EAD is the envelope's own. */
	struct msg_ad ad;
	msg_ad_init(&ad, r->ad, ead, ead_len);
	msg_ad_header(&ad, msg);
	int rc = try_skipped(r, &ad, msg, len, out);
	if (rc == 0) {
		*outlen = ptlen;
		return 0;
	}
	if (rc == 1) {
		struct ratchet *t = ratchet_clone(r);
		if (t == NULL) {
			rc = CAIRN_ENOMEM;
		} else {
			rc = decrypt_on_copy(t, &ad, msg, len, out, rng);
			if (rc == 0) {
				/* Commit: swap contents so R keeps its address. */
				struct ratchet tmp;
				memcpy(&tmp, r, sizeof(tmp));
				memcpy(r, t, sizeof(*r));
				memcpy(t, &tmp, sizeof(*t));
				sodium_memzero(&tmp, sizeof(tmp));
				*outlen = ptlen;
			}
			ratchet_free(t);
		}
	}
	if (rc != 0)
		sodium_memzero(out, cap);
	return rc;
}

/*
 * Serialized state (section 8.5): version, flags, DHs private, DHr, RK, CKs, CKr, HKs, HKr,
 * NHKs, NHKr, Ns, Nr, PN, AD, skipped count, then per skipped key HK || N || MK.
 */
size_t ratchet_serialized_len(const struct ratchet *r)
{
	return RATCHET_STATE_FIXED_LEN + r->nskipped * RATCHET_STATE_ENTRY_LEN;
}

/* The seven symmetric keys, in serialization order, with the flag that makes each present. */
#define RATCHET_SYM_KEYS 7
static void sym_keys(struct ratchet *r, uint8_t *keys[static RATCHET_SYM_KEYS],
                     unsigned flags[static RATCHET_SYM_KEYS])
{
	uint8_t *k[RATCHET_SYM_KEYS] = {r->rk, r->cks, r->ckr, r->hks, r->hkr, r->nhks, r->nhkr};
	const unsigned f[RATCHET_SYM_KEYS] = {0, HAS_CKS, HAS_CKR, HAS_HKS, HAS_HKR, 0, 0};
	memcpy(keys, k, sizeof(k));
	memcpy(flags, f, sizeof(f));
}

int ratchet_serialize(const struct ratchet *r, uint8_t *out, size_t cap, size_t *outlen)
{
	*outlen = 0;
	size_t need = ratchet_serialized_len(r);
	if (cap < need)
		return CAIRN_ENOBUFS;
	uint8_t *keys[RATCHET_SYM_KEYS];
	unsigned flags[RATCHET_SYM_KEYS];
	sym_keys((struct ratchet *)r, keys, flags);

	uint8_t *p = out;
	*p++ = RATCHET_STATE_VERSION;
	*p++ = (uint8_t)r->flags;
	memcpy(p, r->dhs_priv, KL);
	p += KL;
	memcpy(p, r->dhr, KL); /* zero when absent: the state keeps absent keys zeroed */
	p += KL;
	for (size_t i = 0; i < RATCHET_SYM_KEYS; i++, p += KL)
		memcpy(p, keys[i], KL);
	store_u32(p, r->ns);
	store_u32(p + 4, r->nr);
	store_u32(p + 8, r->pn);
	p += 12;
	memcpy(p, r->ad, RATCHET_AD_LEN);
	p += RATCHET_AD_LEN;
	*p++ = (uint8_t)(r->nskipped >> 8);
	*p++ = (uint8_t)r->nskipped;
	for (size_t i = 0; i < r->nskipped; i++) {
		memcpy(p, r->skipped[i].hk, KL);
		store_u32(p + KL, r->skipped[i].n);
		memcpy(p + KL + 4, r->skipped[i].mk, KL);
		p += RATCHET_STATE_ENTRY_LEN;
	}
	*outlen = need;
	return 0;
}

/* Flag combinations a real state can have: a chain key comes with its header key and DHr. */
static bool flags_valid(unsigned f)
{
	if (f & ~(unsigned)HAS_ALL)
		return false;
	if ((f & HAS_CKS) && (f & (HAS_HKS | HAS_DHR)) != (HAS_HKS | HAS_DHR))
		return false;
	if (((f & HAS_CKR) != 0) != ((f & HAS_HKR) != 0))
		return false;
	if ((f & HAS_CKR) && !(f & HAS_DHR))
		return false;
	return true;
}

int ratchet_deserialize(struct ratchet **out, const uint8_t *in, size_t len)
{
	*out = NULL;
	if (len < RATCHET_STATE_FIXED_LEN || in[0] != RATCHET_STATE_VERSION || !flags_valid(in[1]))
		return CAIRN_EINVAL;
	const uint8_t *cnt = in + RATCHET_STATE_FIXED_LEN - 2;
	size_t count = ((size_t)cnt[0] << 8) | cnt[1];
	if (count > RATCHET_SKIPPED_MAX ||
	    (len - RATCHET_STATE_FIXED_LEN) != count * RATCHET_STATE_ENTRY_LEN)
		return CAIRN_EINVAL;

	struct ratchet *r = ratchet_alloc(count);
	if (r == NULL)
		return CAIRN_ENOMEM;
	uint8_t *keys[RATCHET_SYM_KEYS];
	unsigned flags[RATCHET_SYM_KEYS];
	sym_keys(r, keys, flags);
	r->flags = in[1];
	const uint8_t *p = in + 2;
	memcpy(r->dhs_priv, p, KL);
	crypto_scalarmult_base(r->dhs_pub, r->dhs_priv);
	p += KL;
	memcpy(r->dhr, p, KL);
	bool ok = (r->flags & HAS_DHR) || sodium_is_zero(r->dhr, KL);
	p += KL;
	for (size_t i = 0; i < RATCHET_SYM_KEYS; i++, p += KL) {
		memcpy(keys[i], p, KL);
		if (flags[i] != 0 && !(r->flags & flags[i]) && !sodium_is_zero(keys[i], KL))
			ok = false;
	}
	r->ns = load_u32(p);
	r->nr = load_u32(p + 4);
	r->pn = load_u32(p + 8);
	p += 12;
	memcpy(r->ad, p, RATCHET_AD_LEN);
	p += RATCHET_AD_LEN + 2;
	for (size_t i = 0; i < count; i++, p += RATCHET_STATE_ENTRY_LEN) {
		memcpy(r->skipped[i].hk, p, KL);
		r->skipped[i].n = load_u32(p + KL);
		memcpy(r->skipped[i].mk, p + KL + 4, KL);
	}
	r->nskipped = count;
	if (!ok) {
		ratchet_free(r);
		return CAIRN_EINVAL;
	}
	*out = r;
	return 0;
}
