/* SPDX-License-Identifier: MIT */
/*
 * The Double Ratchet with header encryption (Signal's specification, revision 1, section 4;
 * docs/PROTOCOL.md section 8.4), with a bounded store of skipped message keys and a byte
 * serialization of the state. Randomness comes in through struct e2e_rng, so tests replay a
 * conversation exactly. A failed decrypt leaves the state exactly as it was.
 */
#ifndef CAIRN_PROTO_RATCHET_H
#define CAIRN_PROTO_RATCHET_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/error.h"
#include "cairn/limits.h"

#define RATCHET_KEY_LEN        32
#define RATCHET_AD_LEN         64   /* accepter identity || inviter identity (section 8.3) */
#define RATCHET_MAX_SKIP       1000 /* skipped keys one message may add per chain */
#define RATCHET_SKIPPED_MAX    2000 /* stored skipped keys in all; the oldest is evicted */
#define RATCHET_NONCE_LEN      24   /* XChaCha20-Poly1305 */
#define RATCHET_HEADER_LEN     40   /* dh(32) || pn(u32) || n(u32) */
#define RATCHET_ENC_HEADER_LEN (RATCHET_HEADER_LEN + CAIRN_AEAD_TAG_LEN)
/* Envelope associated data (section 8.4): the envelope bytes before the ratchet message, which
 * the ratchet authenticates but does not carry. A first message has 1 + 112. */
#define RATCHET_EAD_MAX 128
/* A ratchet message is header_nonce || encrypted header || body ciphertext (with tag). */
#define RATCHET_OVERHEAD (RATCHET_NONCE_LEN + RATCHET_ENC_HEADER_LEN + CAIRN_AEAD_TAG_LEN)

/* Serialized state: fixed part, then 68 bytes per skipped key. */
#define RATCHET_STATE_VERSION   1
#define RATCHET_STATE_FIXED_LEN 368
#define RATCHET_STATE_ENTRY_LEN 68
#define RATCHET_STATE_MAX       (RATCHET_STATE_FIXED_LEN + RATCHET_SKIPPED_MAX * RATCHET_STATE_ENTRY_LEN)

/* A source of random bytes. A NULL rng, or a NULL fill, means libsodium's randombytes_buf. */
struct e2e_rng {
	void (*fill)(void *ctx, uint8_t *out, size_t len);
	void *ctx;
};

/* Fills OUT from RNG (see above). */
void e2e_rng_fill(const struct e2e_rng *rng, uint8_t *out, size_t len);

/* What session setup (x3dh.h) hands the ratchet: root key, the two shared header keys, AD. */
struct ratchet_init {
	uint8_t rk[RATCHET_KEY_LEN];
	uint8_t hka[RATCHET_KEY_LEN];  /* accepter's first sending header key */
	uint8_t nhkb[RATCHET_KEY_LEN]; /* inviter's first sending header key */
	uint8_t ad[RATCHET_AD_LEN];
};

struct ratchet; /* opaque; owned by the caller, freed with ratchet_free */

/*
 * The side that sends first (the accepter; Signal's RatchetInitAliceHE): draws its first
 * ratchet key pair from RNG and performs the first DH ratchet against REMOTE_DH, the
 * inviter's one-time key. K is borrowed. On success *OUT is a new state (owned by the caller).
 * Returns 0, CAIRN_ENOMEM, or CAIRN_ECRYPTO if REMOTE_DH gives an all-zero DH.
 */
CAIRN_WARN_UNUSED int ratchet_new_initiator(struct ratchet **out, const struct ratchet_init *k,
                                            const uint8_t remote_dh[static RATCHET_KEY_LEN],
                                            const struct e2e_rng *rng);

/*
 * The side that receives first (the inviter; RatchetInitBobHE): DH_PRIVATE is its one-time
 * private key, which serves as its first ratchet key and is replaced at the first DH ratchet.
 * Returns 0 or CAIRN_ENOMEM. Both arguments are borrowed and copied.
 */
CAIRN_WARN_UNUSED int ratchet_new_responder(struct ratchet **out, const struct ratchet_init *k,
                                            const uint8_t dh_private[static RATCHET_KEY_LEN]);

/* Wipes and frees a state; NULL is fine. */
void ratchet_free(struct ratchet *r);

/*
 * RatchetEncryptHE: writes RATCHET_OVERHEAD + LEN bytes into OUT (capacity CAP) and sets
 * *OUTLEN. EAD (EAD_LEN bytes, at most RATCHET_EAD_MAX; NULL when 0) is authenticated with the
 * header and the body but not written: the envelope bytes that will precede the message
 * (section 8.4); it is read before OUT is written, so it may lie just before OUT. PT must not
 * overlap OUT, except that PT may be exactly OUT + RATCHET_NONCE_LEN + RATCHET_ENC_HEADER_LEN
 * (the body is then encrypted in place). Returns 0; CAIRN_ESTATE if this side cannot send yet
 * (an inviter before its first received message); CAIRN_EINVAL (EAD too long), CAIRN_ENOBUFS
 * or CAIRN_ENONCE (2^32 - 1 messages in one chain) with the state unchanged.
 */
CAIRN_WARN_UNUSED int ratchet_encrypt(struct ratchet *r, const uint8_t *ead, size_t ead_len,
                                      const uint8_t *pt, size_t len, uint8_t *out, size_t cap,
                                      size_t *outlen);

/*
 * RatchetDecryptHE: decrypts MSG (LEN bytes) into OUT (capacity CAP, at least LEN -
 * RATCHET_OVERHEAD) and sets *OUTLEN. EAD (EAD_LEN bytes, at most RATCHET_EAD_MAX; NULL when
 * 0) must be the bytes that preceded MSG in its envelope as received; every header trial and
 * the body are checked against it. RNG supplies a new key pair when the message starts a new
 * DH ratchet step. On any failure the state is unchanged, OUT is zeroed up to CAP (or untouched
 * when too small) and *OUTLEN is 0. Returns 0; CAIRN_EAUTH (not a message of this session, or
 * tampered, EAD included); CAIRN_EREPLAY (its key was already used: a replay or duplicate);
 * CAIRN_ELIMIT (it would skip more than RATCHET_MAX_SKIP keys); CAIRN_EINVAL (EAD too long);
 * CAIRN_ENOBUFS; CAIRN_ENOMEM; CAIRN_ECRYPTO (the peer sent a DH key giving an all-zero
 * result).
 */
CAIRN_WARN_UNUSED int ratchet_decrypt(struct ratchet *r, const uint8_t *ead, size_t ead_len,
                                      const uint8_t *msg, size_t len, uint8_t *out, size_t cap,
                                      size_t *outlen, const struct e2e_rng *rng);

/* Number of stored skipped message keys (tests and diagnostics). */
size_t ratchet_skipped_count(const struct ratchet *r);

/* Length ratchet_serialize will write: FIXED_LEN + ENTRY_LEN x skipped keys. */
size_t ratchet_serialized_len(const struct ratchet *r);

/*
 * Writes the state (section 8.5) into OUT (capacity CAP). The bytes are secret: the caller
 * seals them before storing and wipes them after. Returns 0 or CAIRN_ENOBUFS.
 */
CAIRN_WARN_UNUSED int ratchet_serialize(const struct ratchet *r, uint8_t *out, size_t cap,
                                        size_t *outlen);

/*
 * Reads a serialized state (IN, LEN bytes, borrowed) into a new *OUT. Strict: wrong version,
 * unknown or inconsistent flags, non-zero bytes in absent fields, a count over
 * RATCHET_SKIPPED_MAX, or a length that is not exactly FIXED_LEN + ENTRY_LEN x count give
 * CAIRN_EINVAL with *OUT NULL. CAIRN_ENOMEM on allocation failure.
 */
CAIRN_WARN_UNUSED int ratchet_deserialize(struct ratchet **out, const uint8_t *in, size_t len);

#endif
