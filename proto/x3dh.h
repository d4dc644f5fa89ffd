/* SPDX-License-Identifier: MIT */
/*
 * Session setup between an inviter and an accepter (docs/PROTOCOL.md section 8.3): an
 * X3DH-style agreement against the invite's identity key and one-time key. The accepter's
 * identity key travels encrypted, and its DH with the one-time key authenticates it to the
 * inviter. The result initializes the Double Ratchet on both sides.
 */
#ifndef CAIRN_PROTO_X3DH_H
#define CAIRN_PROTO_X3DH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cairn/error.h"
#include "ratchet.h"

#define X3DH_IDENTITY_PK_LEN 32 /* Ed25519 public key */
#define X3DH_IDENTITY_SK_LEN 64 /* libsodium Ed25519 secret key: seed || public key */
#define X3DH_BOX_LEN         (X3DH_IDENTITY_PK_LEN + CAIRN_AEAD_TAG_LEN)
/* The X3DH prefix of a first message: ek || opk || box(accepter identity). */
#define X3DH_PREFIX_LEN (2 * CAIRN_KEY_LEN + X3DH_BOX_LEN)

/*
 * An inviter's one-time key. USED is set (and PRIV wiped) once a first message has been
 * accepted with it; the client stores the record and deletes it then.
 */
struct x3dh_onetime {
	uint8_t pub[CAIRN_KEY_LEN];
	uint8_t priv[CAIRN_KEY_LEN];
	bool used;
};

/* Draws a fresh one-time key pair from RNG. */
void x3dh_onetime_generate(struct x3dh_onetime *k, const struct e2e_rng *rng);

/*
 * Accepter: agrees on a session with the inviter's INVITER_IDENTITY (Ed25519 public key) and
 * INVITER_ONETIME (X25519) as their invite states, using MY_IDENTITY_SK. Draws, in this order,
 * the ephemeral private key and the first ratchet private key from RNG. Writes the prefix that
 * every first message carries into PREFIX and a new sending state into *SESSION (owned by the
 * caller). Returns 0, CAIRN_EINVAL for an identity key that is not a valid Ed25519 point,
 * CAIRN_ECRYPTO for an all-zero DH, or CAIRN_ENOMEM; *SESSION is NULL on failure.
 */
CAIRN_WARN_UNUSED int x3dh_initiate(const uint8_t inviter_identity[static X3DH_IDENTITY_PK_LEN],
                                    const uint8_t inviter_onetime[static CAIRN_KEY_LEN],
                                    const uint8_t my_identity_sk[static X3DH_IDENTITY_SK_LEN],
                                    const struct e2e_rng *rng,
                                    uint8_t prefix[static X3DH_PREFIX_LEN],
                                    struct ratchet **session);

/*
 * Inviter: reads PREFIX against MY_IDENTITY_SK and the one-time key OTK it names (the caller
 * found OTK by x3dh_prefix_onetime). Writes the accepter's identity key into PEER_IDENTITY and
 * a new receiving state into *SESSION. OTK is not marked used here: the session is confirmed
 * only when its first ratchet message decrypts (e2e_open_first does both). Returns 0;
 * CAIRN_EREPLAY if OTK is already used; CAIRN_EAUTH if PREFIX names another key, its box does
 * not open or holds an invalid identity; CAIRN_ECRYPTO; CAIRN_ENOMEM. Outputs are zero/NULL
 * on failure.
 */
CAIRN_WARN_UNUSED int x3dh_respond(const uint8_t my_identity_sk[static X3DH_IDENTITY_SK_LEN],
                                   const struct x3dh_onetime *otk,
                                   const uint8_t prefix[static X3DH_PREFIX_LEN],
                                   uint8_t peer_identity[static X3DH_IDENTITY_PK_LEN],
                                   struct ratchet **session);

/*
 * The same agreement through an intake address (PROTOCOL.md 10.4): the bundle's signed prekey
 * SPK in the one-time key's place, with the intake labels. As x3dh_initiate and x3dh_respond;
 * x3dh_respond_intake ignores SPK->used (a prekey serves many requesters: replays are the
 * caller's to refuse by the ephemeral key, 10.4).
 */
CAIRN_WARN_UNUSED int x3dh_initiate_intake(const uint8_t owner_identity[static X3DH_IDENTITY_PK_LEN],
                                           const uint8_t spk[static CAIRN_KEY_LEN],
                                           const uint8_t my_identity_sk[static X3DH_IDENTITY_SK_LEN],
                                           const struct e2e_rng *rng,
                                           uint8_t prefix[static X3DH_PREFIX_LEN],
                                           struct ratchet **session);
CAIRN_WARN_UNUSED int x3dh_respond_intake(const uint8_t my_identity_sk[static X3DH_IDENTITY_SK_LEN],
                                          const struct x3dh_onetime *spk,
                                          const uint8_t prefix[static X3DH_PREFIX_LEN],
                                          uint8_t peer_identity[static X3DH_IDENTITY_PK_LEN],
                                          struct ratchet **session);

/* The one-time public key a prefix names (borrowed pointer into PREFIX). */
const uint8_t *x3dh_prefix_onetime(const uint8_t prefix[static X3DH_PREFIX_LEN]);

#endif
