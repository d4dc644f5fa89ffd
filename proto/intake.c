/* SPDX-License-Identifier: MIT */
/*
 * Intake addresses and prekey bundles (docs/PROTOCOL.md 10.1 and 10.3), with strict parsing.
 * An address is walked whole before any relay text is parsed, then its relays and identity are
 * checked as an invite's are (invite.c's helpers). A bundle's signature covers the log it was
 * appended to, so a bundle copied into another intake's log does not verify there.
 */
#include <string.h>

#include <sodium.h>

#include "intake.h"
#include "invite.h"
#include "work.h"

#define KL CAIRN_KEY_LEN

/* Offsets of the fixed part of an address. */
#define ADDR_IDENTITY 1
#define ADDR_COUNT    (1 + KL)
#define ADDR_POINTS   (2 + KL)

static const char bundle_label[] = "cairn/1 intake bundle";
#define BUNDLE_LABEL_LEN (sizeof(bundle_label) - 1) /* 21 */
#define BUNDLE_TBS_LEN   (BUNDLE_LABEL_LEN + CAIRN_LOG_ID_LEN + BUNDLE_SIGNED_LEN)

static void point_relays(const struct intake_address *a, const char *relay[INTAKE_POINTS_MAX])
{
	for (size_t i = 0; i < a->count; i++)
		relay[i] = a->point[i].relay;
}

int intake_encode(const struct intake_address *a, uint8_t *out, size_t cap, size_t *outlen)
{
	const char *relay[INTAKE_POINTS_MAX];
	size_t need = ADDR_POINTS;
	int rc;

	*outlen = 0;
	if (a->count == 0 || a->count > INTAKE_POINTS_MAX)
		return CAIRN_EINVAL;
	for (size_t i = 0; i < a->count; i++) {
		size_t rlen = strnlen(a->point[i].relay, sizeof(a->point[i].relay));
		if (rlen == 0 || rlen > CAIRN_ADDRESS_MAX)
			return CAIRN_EADDRESS;
		need += INTAKE_POINT_FIXED + rlen;
	}
	point_relays(a, relay);
	if ((rc = relay_texts_check(relay, a->count)) != 0)
		return rc;
	if (identity_key_check(a->identity) != 0)
		return CAIRN_EINVAL;
	if (cap < need)
		return CAIRN_ENOBUFS;
	uint8_t *p = out;
	*p++ = INTAKE_VERSION;
	memcpy(p, a->identity, KL);
	p += KL;
	*p++ = a->count;
	for (size_t i = 0; i < a->count; i++) {
		const struct intake_point *pt = &a->point[i];
		size_t rlen = strlen(pt->relay);
		memcpy(p, pt->sender_id, CAIRN_MAILBOX_ID_LEN);
		p += CAIRN_MAILBOX_ID_LEN;
		memcpy(p, pt->log_id, CAIRN_LOG_ID_LEN);
		p += CAIRN_LOG_ID_LEN;
		*p++ = (uint8_t)(rlen >> 8);
		*p++ = (uint8_t)rlen;
		memcpy(p, pt->relay, rlen);
		p += rlen;
	}
	*outlen = need;
	return 0;
}

/*
 * The structure of 10.1 (count, each point, nothing after the last) into *OUT, every length
 * checked against the bytes left; sets *NUL when a relay text holds a NUL, which would hide
 * bytes from the address parser. The texts themselves are the caller's to check afterwards.
 */
static int points_read(const uint8_t *in, size_t len, struct intake_address *out, int *nul)
{
	uint8_t count = in[ADDR_COUNT];
	size_t off = ADDR_POINTS;
	if (count == 0 || count > INTAKE_POINTS_MAX)
		return CAIRN_EINVAL;
	for (size_t i = 0; i < count; i++) {
		struct intake_point *pt = &out->point[i];
		if (len - off < INTAKE_POINT_FIXED)
			return CAIRN_EINVAL;
		memcpy(pt->sender_id, in + off, CAIRN_MAILBOX_ID_LEN);
		off += CAIRN_MAILBOX_ID_LEN;
		memcpy(pt->log_id, in + off, CAIRN_LOG_ID_LEN);
		off += CAIRN_LOG_ID_LEN;
		size_t rlen = ((size_t)in[off] << 8) | in[off + 1];
		off += 2;
		if (rlen == 0 || rlen > CAIRN_ADDRESS_MAX || rlen > len - off)
			return CAIRN_EINVAL;
		*nul |= memchr(in + off, 0, rlen) != NULL;
		memcpy(pt->relay, in + off, rlen);
		pt->relay[rlen] = '\0';
		off += rlen;
	}
	if (off != len)
		return CAIRN_EINVAL;
	out->count = count;
	return 0;
}

int intake_parse(const uint8_t *in, size_t len, struct intake_address *out)
{
	const char *relay[INTAKE_POINTS_MAX];
	int rc, nul = 0;

	memset(out, 0, sizeof(*out));
	if (len < INTAKE_MIN_LEN || len > INTAKE_MAX_LEN || in[0] != INTAKE_VERSION)
		return CAIRN_EINVAL;
	if ((rc = points_read(in, len, out, &nul)) != 0)
		goto fail;
	point_relays(out, relay);
	if ((rc = nul ? CAIRN_EADDRESS : relay_texts_check(relay, out->count)) != 0)
		goto fail;
	memcpy(out->identity, in + ADDR_IDENTITY, KL);
	if ((rc = identity_key_check(out->identity)) != 0)
		goto fail;
	return 0;
fail:
	sodium_memzero(out, sizeof(*out));
	return rc;
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* What a bundle's fields must satisfy, signed or read (10.3). */
static int bundle_fields_check(const struct intake_bundle *b)
{
	if (b->expires <= b->created || b->work_bits < WORK_BITS_MIN ||
	    b->work_bits > WORK_BITS_MAX)
		return CAIRN_EINVAL;
	return 0;
}

/* The bytes an owner signs for LOG_ID: label || log_id || the BUNDLE_SIGNED_LEN bytes BODY. */
static void bundle_tbs(const uint8_t log_id[static CAIRN_LOG_ID_LEN], const uint8_t *body,
                       uint8_t tbs[static BUNDLE_TBS_LEN])
{
	memcpy(tbs, bundle_label, BUNDLE_LABEL_LEN);
	memcpy(tbs + BUNDLE_LABEL_LEN, log_id, CAIRN_LOG_ID_LEN);
	memcpy(tbs + BUNDLE_LABEL_LEN + CAIRN_LOG_ID_LEN, body, BUNDLE_SIGNED_LEN);
}

int bundle_sign(const struct intake_bundle *b, const uint8_t log_id[static CAIRN_LOG_ID_LEN],
                const uint8_t identity_sk[static 64], uint8_t out[static BUNDLE_LEN])
{
	uint8_t pk[KL], sk[64], tbs[BUNDLE_TBS_LEN];
	int rc = CAIRN_EINVAL;

	memset(out, 0, BUNDLE_LEN);
	if (bundle_fields_check(b) != 0)
		return CAIRN_EINVAL;
	/* The public half of a libsodium secret key is only stored beside the seed: derive it,
	 * so a bundle never carries a signature that its identity field does not verify. */
	crypto_sign_seed_keypair(pk, sk, identity_sk);
	if (memcmp(pk, b->identity, KL) != 0 || memcmp(pk, identity_sk + 32, KL) != 0)
		goto out;
	uint8_t *p = out;
	*p++ = BUNDLE_VERSION;
	memcpy(p, b->identity, KL);
	p += KL;
	memcpy(p, b->prekey, KL);
	p += KL;
	put_u64(p, b->created);
	put_u64(p + 8, b->expires);
	p[16] = b->work_bits;
	bundle_tbs(log_id, out, tbs);
	crypto_sign_detached(out + BUNDLE_SIGNED_LEN, NULL, tbs, sizeof(tbs), sk);
	rc = 0;
out:
	sodium_memzero(sk, sizeof(sk));
	return rc;
}

int bundle_open(const uint8_t *in, size_t len, const uint8_t identity[static CAIRN_KEY_LEN],
                const uint8_t log_id[static CAIRN_LOG_ID_LEN], struct intake_bundle *out)
{
	uint8_t tbs[BUNDLE_TBS_LEN];
	int rc = CAIRN_EINVAL;

	memset(out, 0, sizeof(*out));
	if (len != BUNDLE_LEN || in[0] != BUNDLE_VERSION || memcmp(in + 1, identity, KL) != 0)
		return CAIRN_EINVAL;
	memcpy(out->identity, in + 1, KL);
	memcpy(out->prekey, in + 1 + KL, KL);
	out->created = get_u64(in + 1 + 2 * KL);
	out->expires = get_u64(in + 1 + 2 * KL + 8);
	out->work_bits = in[1 + 2 * KL + 16];
	if (bundle_fields_check(out) != 0)
		goto fail;
	bundle_tbs(log_id, in, tbs);
	rc = CAIRN_EAUTH;
	if (crypto_sign_verify_detached(in + BUNDLE_SIGNED_LEN, tbs, sizeof(tbs), identity) != 0)
		goto fail;
	return 0;
fail:
	memset(out, 0, sizeof(*out));
	return rc;
}
