/* SPDX-License-Identifier: MIT */
/*
 * X3DH-style session setup (docs/PROTOCOL.md section 8.3). Identity keys are Ed25519 keys used
 * for DH through their X25519 form; the invite's one-time key serves as the signed prekey of
 * Signal's X3DH (the invite itself travels over a trusted channel, so nothing needs signing).
 * Intake addresses (10.4) run the same agreement with a bundle's signed prekey and their own
 * labels, so that neither kind of first message can be taken for the other.
 */
#include <string.h>

#include <sodium.h>

#include "kdf.h"
#include "x3dh.h"

#define KL CAIRN_KEY_LEN

/* The HKDF info strings of one kind of agreement: the identity box's, then the session's. */
struct x3dh_labels {
	const char *box, *sk;
};

static const struct x3dh_labels invite_labels = {"cairn/1 x3dh identity", "cairn/1 x3dh"};
static const struct x3dh_labels intake_labels = {"cairn/1 intake identity", "cairn/1 intake x3dh"};

void x3dh_onetime_generate(struct x3dh_onetime *k, const struct e2e_rng *rng)
{
	e2e_rng_fill(rng, k->priv, KL);
	crypto_scalarmult_base(k->pub, k->priv);
	k->used = false;
}

const uint8_t *x3dh_prefix_onetime(const uint8_t prefix[static X3DH_PREFIX_LEN])
{
	return prefix + KL;
}

/* The three DH results, as X3DH's F || DH1 || DH2 || DH3 input keying material. */
struct x3dh_ikm {
	uint8_t f[KL];
	uint8_t dh1[KL]; /* accepter identity x inviter one-time */
	uint8_t dh2[KL]; /* accepter ephemeral x inviter identity */
	uint8_t dh3[KL]; /* accepter ephemeral x inviter one-time */
};

/* The key of the identity box: HKDF(F || DH2 || DH3). */
static int box_key(const struct x3dh_ikm *m, const struct x3dh_labels *l, uint8_t key[static KL])
{
	uint8_t ikm[3 * KL];
	memcpy(ikm, m->f, KL);
	memcpy(ikm + KL, m->dh2, KL);
	memcpy(ikm + 2 * KL, m->dh3, KL);
	int rc = kdf_hkdf_sha256(key, KL, NULL, 0, ikm, sizeof(ikm), (const uint8_t *)l->box,
	                         strlen(l->box));
	sodium_memzero(ikm, sizeof(ikm));
	return rc;
}

/* SK material: HKDF(F || DH1 || DH2 || DH3) = RK || HKa || NHKb; AD = IKa || IKi. */
static int session_keys(const struct x3dh_ikm *m, const struct x3dh_labels *l,
                        const uint8_t ik_a[static KL], const uint8_t ik_i[static KL],
                        struct ratchet_init *k)
{
	uint8_t okm[3 * KL];
	int rc = kdf_hkdf_sha256(okm, sizeof(okm), NULL, 0, (const uint8_t *)m, sizeof(*m),
	                         (const uint8_t *)l->sk, strlen(l->sk));
	memcpy(k->rk, okm, KL);
	memcpy(k->hka, okm + KL, KL);
	memcpy(k->nhkb, okm + 2 * KL, KL);
	memcpy(k->ad, ik_a, KL);
	memcpy(k->ad + KL, ik_i, KL);
	sodium_memzero(okm, sizeof(okm));
	return rc;
}

/* The box's associated data: ek || opk || inviter identity. */
static void box_ad(const uint8_t *prefix, const uint8_t ik_i[static KL], uint8_t ad[static 3 * KL])
{
	memcpy(ad, prefix, 2 * KL);
	memcpy(ad + 2 * KL, ik_i, KL);
}

static int dh(uint8_t out[static KL], const uint8_t priv[static KL], const uint8_t pub[static KL])
{
	return crypto_scalarmult(out, priv, pub) == 0 ? 0 : CAIRN_ECRYPTO;
}

/* x3dh_initiate under the labels L (the one-time key or the prekey in INVITER_ONETIME). */
static int initiate(const struct x3dh_labels *l,
                    const uint8_t inviter_identity[static X3DH_IDENTITY_PK_LEN],
                    const uint8_t inviter_onetime[static CAIRN_KEY_LEN],
                    const uint8_t my_identity_sk[static X3DH_IDENTITY_SK_LEN],
                    const struct e2e_rng *rng, uint8_t prefix[static X3DH_PREFIX_LEN],
                    struct ratchet **session)
{
	static const uint8_t zero_nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	struct x3dh_ikm m;
	struct ratchet_init k;
	uint8_t ik_i_x[KL], ik_a_x[KL], ek[KL], key[KL], ad[3 * KL];
	const uint8_t *ik_a = my_identity_sk + 32;
	int rc = CAIRN_EINVAL;

	*session = NULL;
	memset(prefix, 0, X3DH_PREFIX_LEN);
	memset(m.f, 0xff, KL);
	if (crypto_sign_ed25519_pk_to_curve25519(ik_i_x, inviter_identity) != 0 ||
	    crypto_sign_ed25519_sk_to_curve25519(ik_a_x, my_identity_sk) != 0)
		goto out;
	e2e_rng_fill(rng, ek, KL);
	crypto_scalarmult_base(prefix, ek);
	memcpy(prefix + KL, inviter_onetime, KL);
	if ((rc = dh(m.dh1, ik_a_x, inviter_onetime)) != 0 || (rc = dh(m.dh2, ek, ik_i_x)) != 0 ||
	    (rc = dh(m.dh3, ek, inviter_onetime)) != 0)
		goto out;
	if ((rc = box_key(&m, l, key)) != 0)
		goto out;
	box_ad(prefix, inviter_identity, ad);
	crypto_aead_xchacha20poly1305_ietf_encrypt(prefix + 2 * KL, NULL, ik_a, KL, ad, sizeof(ad),
	                                           NULL, zero_nonce, key);
	if ((rc = session_keys(&m, l, ik_a, inviter_identity, &k)) != 0)
		goto out;
	rc = ratchet_new_initiator(session, &k, inviter_onetime, rng);
out:
	if (rc != 0)
		sodium_memzero(prefix, X3DH_PREFIX_LEN);
	sodium_memzero(&m, sizeof(m));
	sodium_memzero(&k, sizeof(k));
	sodium_memzero(ik_a_x, sizeof(ik_a_x));
	sodium_memzero(ek, sizeof(ek));
	sodium_memzero(key, sizeof(key));
	return rc;
}

/*
 * x3dh_respond under the labels L. With ONCE, a used key is refused (an invite's one-time key);
 * without, its use is the caller's to track (an intake prekey, by the ephemeral keys, 10.4).
 */
static int respond(const struct x3dh_labels *l, bool once,
                   const uint8_t my_identity_sk[static X3DH_IDENTITY_SK_LEN],
                   const struct x3dh_onetime *otk, const uint8_t prefix[static X3DH_PREFIX_LEN],
                   uint8_t peer_identity[static X3DH_IDENTITY_PK_LEN], struct ratchet **session)
{
	static const uint8_t zero_nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	struct x3dh_ikm m;
	struct ratchet_init k;
	uint8_t ik_i_x[KL], ik_a_x[KL], key[KL], ad[3 * KL];
	const uint8_t *ik_i = my_identity_sk + 32, *ek = prefix;
	int rc = CAIRN_EREPLAY;

	*session = NULL;
	memset(peer_identity, 0, X3DH_IDENTITY_PK_LEN);
	memset(m.f, 0xff, KL);
	if (once && otk->used)
		goto out;
	rc = CAIRN_EAUTH;
	if (sodium_memcmp(x3dh_prefix_onetime(prefix), otk->pub, KL) != 0)
		goto out;
	if (crypto_sign_ed25519_sk_to_curve25519(ik_i_x, my_identity_sk) != 0) {
		rc = CAIRN_EINVAL;
		goto out;
	}
	if ((rc = dh(m.dh2, ik_i_x, ek)) != 0 || (rc = dh(m.dh3, otk->priv, ek)) != 0 ||
	    (rc = box_key(&m, l, key)) != 0)
		goto out;
	box_ad(prefix, ik_i, ad);
	rc = CAIRN_EAUTH;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(peer_identity, NULL, NULL, prefix + 2 * KL,
	                                               X3DH_BOX_LEN, ad, sizeof(ad), zero_nonce,
	                                               key) != 0)
		goto out;
	if (crypto_sign_ed25519_pk_to_curve25519(ik_a_x, peer_identity) != 0)
		goto out;
	if ((rc = dh(m.dh1, otk->priv, ik_a_x)) != 0)
		goto out;
	if ((rc = session_keys(&m, l, peer_identity, ik_i, &k)) != 0)
		goto out;
	rc = ratchet_new_responder(session, &k, otk->priv);
out:
	if (rc != 0)
		sodium_memzero(peer_identity, X3DH_IDENTITY_PK_LEN);
	sodium_memzero(&m, sizeof(m));
	sodium_memzero(&k, sizeof(k));
	sodium_memzero(ik_i_x, sizeof(ik_i_x));
	sodium_memzero(key, sizeof(key));
	return rc;
}

int x3dh_initiate(const uint8_t inviter_identity[static X3DH_IDENTITY_PK_LEN],
                  const uint8_t inviter_onetime[static CAIRN_KEY_LEN],
                  const uint8_t my_identity_sk[static X3DH_IDENTITY_SK_LEN],
                  const struct e2e_rng *rng, uint8_t prefix[static X3DH_PREFIX_LEN],
                  struct ratchet **session)
{
	return initiate(&invite_labels, inviter_identity, inviter_onetime, my_identity_sk, rng,
	                prefix, session);
}

int x3dh_respond(const uint8_t my_identity_sk[static X3DH_IDENTITY_SK_LEN],
                 const struct x3dh_onetime *otk, const uint8_t prefix[static X3DH_PREFIX_LEN],
                 uint8_t peer_identity[static X3DH_IDENTITY_PK_LEN], struct ratchet **session)
{
	return respond(&invite_labels, true, my_identity_sk, otk, prefix, peer_identity, session);
}

int x3dh_initiate_intake(const uint8_t owner_identity[static X3DH_IDENTITY_PK_LEN],
                         const uint8_t spk[static CAIRN_KEY_LEN],
                         const uint8_t my_identity_sk[static X3DH_IDENTITY_SK_LEN],
                         const struct e2e_rng *rng, uint8_t prefix[static X3DH_PREFIX_LEN],
                         struct ratchet **session)
{
	return initiate(&intake_labels, owner_identity, spk, my_identity_sk, rng, prefix, session);
}

int x3dh_respond_intake(const uint8_t my_identity_sk[static X3DH_IDENTITY_SK_LEN],
                        const struct x3dh_onetime *spk,
                        const uint8_t prefix[static X3DH_PREFIX_LEN],
                        uint8_t peer_identity[static X3DH_IDENTITY_PK_LEN],
                        struct ratchet **session)
{
	return respond(&intake_labels, false, my_identity_sk, spk, prefix, peer_identity, session);
}
