/* SPDX-License-Identifier: MIT */
/*
 * End-to-end envelope payloads (docs/PROTOCOL.md section 8.6): what a client puts into a relay
 * envelope. A type byte, then for a first message the X3DH prefix, then one ratchet message
 * whose plaintext is padded so that every envelope has one of a few sizes. The type byte and
 * prefix are authenticated with the ratchet message (its EAD, section 8.4).
 */
#ifndef CAIRN_PROTO_E2E_H
#define CAIRN_PROTO_E2E_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/error.h"
#include "ratchet.h"
#include "x3dh.h"

#define E2E_TYPE_FIRST       1 /* accepter to inviter until the inviter's first reply arrives */
#define E2E_TYPE_MESSAGE     2
#define E2E_TYPE_INTAKE      3 /* a requester's first message through an intake address (10.4) */
#define E2E_MESSAGE_OVERHEAD (1 + RATCHET_OVERHEAD)                   /* 97 */
#define E2E_FIRST_OVERHEAD   (1 + X3DH_PREFIX_LEN + RATCHET_OVERHEAD) /* 209 */
#define E2E_REPLY_MAX        1024 /* the accepter's reply data (its mailbox address) */
/* The largest message that fits one envelope; longer ones the client splits. */
#define E2E_MESSAGE_MAX (CAIRN_ENVELOPE_MAX - E2E_MESSAGE_OVERHEAD - 2)

/* What an opened envelope holds; pointers into the caller's buffer. */
struct e2e_opened {
	int type;             /* E2E_TYPE_FIRST, E2E_TYPE_MESSAGE or E2E_TYPE_INTAKE */
	const uint8_t *reply; /* types 1 and 3 only, else NULL */
	size_t reply_len;
	const uint8_t *message;
	size_t message_len;
};

/*
 * Accepter: seals a first message (type 1) with the session from x3dh_initiate: PREFIX, then
 * a ratchet message of u16 REPLY_LEN || REPLY || MSG, padded. REPLY is opaque here (the client
 * puts its own mailbox address and credential in it). Writes into OUT (capacity CAP, at least
 * the bucket size; CAIRN_ENVELOPE_MAX always suffices). REPLY and MSG must not overlap OUT. Returns
 * 0, CAIRN_EINVAL (REPLY over E2E_REPLY_MAX), CAIRN_ETOOBIG, CAIRN_ENOBUFS, or a ratchet_encrypt
 * error.
 */
CAIRN_WARN_UNUSED int e2e_seal_first(struct ratchet *r,
                                     const uint8_t prefix[static X3DH_PREFIX_LEN],
                                     const uint8_t *reply, size_t reply_len, const uint8_t *msg,
                                     size_t msg_len, uint8_t *out, size_t cap, size_t *outlen);

/* Seals an ordinary message (type 2); as above. */
CAIRN_WARN_UNUSED int e2e_seal(struct ratchet *r, const uint8_t *msg, size_t msg_len, uint8_t *out,
                               size_t cap, size_t *outlen);

/*
 * The one-time public key a first message names, into OPK, so the inviter can find it.
 * Returns 0, or CAIRN_EINVAL (not a first message, or too short; OPK zeroed).
 */
CAIRN_WARN_UNUSED int e2e_first_onetime(const uint8_t *env, size_t len,
                                        uint8_t opk[static CAIRN_KEY_LEN]);

/*
 * Inviter: opens a first message ENV with its identity and the one-time key OTK it names.
 * On success: *SESSION is the new state (owned by the caller), PEER_IDENTITY the accepter's
 * identity key, RES points into BUF (capacity CAP; LEN bytes suffice), and OTK is marked used
 * with its private key wiped (store it so). On failure nothing changes. Returns 0;
 * CAIRN_EREPLAY (OTK already used); CAIRN_EAUTH; CAIRN_EPADDING; CAIRN_EINVAL (not a first
 * message); CAIRN_ENOBUFS; CAIRN_ENOMEM.
 */
CAIRN_WARN_UNUSED int e2e_open_first(const uint8_t my_identity_sk[static X3DH_IDENTITY_SK_LEN],
                                     struct x3dh_onetime *otk, const uint8_t *env, size_t len,
                                     uint8_t *buf, size_t cap, struct e2e_opened *res,
                                     uint8_t peer_identity[static X3DH_IDENTITY_PK_LEN],
                                     struct ratchet **session, const struct e2e_rng *rng);

/*
 * Opens ENV with an existing session: a type 2 message, or a further type 1 message from an
 * accepter that has not yet heard back (no X3DH step; the ratchet authenticates the message
 * with its type byte and prefix, so a changed type or prefix is CAIRN_EAUTH).
 * RES points into BUF (capacity CAP). On failure the session is unchanged and the client drops
 * the envelope silently. Returns 0 or a ratchet_decrypt error, CAIRN_EPADDING, CAIRN_EINVAL.
 */
CAIRN_WARN_UNUSED int e2e_open(struct ratchet *r, const uint8_t *env, size_t len, uint8_t *buf,
                               size_t cap, struct e2e_opened *res, const struct e2e_rng *rng);

/*
 * Intake (PROTOCOL.md 10.4). e2e_seal_intake seals a type 3 envelope as e2e_seal_first seals a
 * type 1. e2e_intake_keys copies the ephemeral key EK and the prekey SPK a type 3 envelope
 * names (CAIRN_EINVAL if ENV is not one). e2e_open_intake opens a type 3 envelope as
 * e2e_open_first opens a type 1, with the prekey SPK it names, which it leaves unchanged (the
 * caller keeps the EK against replays). e2e_open also opens further type 3 envelopes of a
 * session it holds (RES->type E2E_TYPE_INTAKE, with the reply).
 */
CAIRN_WARN_UNUSED int e2e_seal_intake(struct ratchet *r,
                                      const uint8_t prefix[static X3DH_PREFIX_LEN],
                                      const uint8_t *reply, size_t reply_len, const uint8_t *msg,
                                      size_t msg_len, uint8_t *out, size_t cap, size_t *outlen);
CAIRN_WARN_UNUSED int e2e_intake_keys(const uint8_t *env, size_t len,
                                      uint8_t ek[static CAIRN_KEY_LEN],
                                      uint8_t spk[static CAIRN_KEY_LEN]);
CAIRN_WARN_UNUSED int e2e_open_intake(const uint8_t my_identity_sk[static X3DH_IDENTITY_SK_LEN],
                                      const struct x3dh_onetime *spk, const uint8_t *env,
                                      size_t len, uint8_t *buf, size_t cap,
                                      struct e2e_opened *res,
                                      uint8_t peer_identity[static X3DH_IDENTITY_PK_LEN],
                                      struct ratchet **session, const struct e2e_rng *rng);

#endif
