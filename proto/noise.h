/* SPDX-License-Identifier: MIT */
/*
 * Noise Protocol Framework (revision 34) SymmetricState and HandshakeState, generic over the
 * message patterns Cairn needs or tests against: NN, NK, XX, XK, IK, NKpsk2 and NNpsk0, with
 * DH 25519, cipher ChaChaPoly and hash BLAKE2b or SHA256. The state is a plain struct so that
 * callers can embed it; every secret in it is wiped by noise_handshake_wipe().
 */
#ifndef CAIRN_PROTO_NOISE_H
#define CAIRN_PROTO_NOISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cairn/error.h"
#include "cairn/limits.h"
#include "cipher.h"

#define NOISE_DH_LEN       32
#define NOISE_HASH_MAX_LEN 64 /* BLAKE2b; SHA256 uses the first 32 bytes */
#define NOISE_MSG_MAX      CAIRN_NOISE_MSG_MAX
#define NOISE_PSK_LEN      32

enum noise_role { NOISE_INITIATOR, NOISE_RESPONDER };
enum noise_hash_alg { NOISE_HASH_BLAKE2B, NOISE_HASH_SHA256 };

struct noise_pattern; /* private to noise.c */

struct noise_handshake {
	/* SymmetricState */
	enum noise_hash_alg hash;
	size_t hashlen;
	uint8_t ck[NOISE_HASH_MAX_LEN];
	uint8_t h[NOISE_HASH_MAX_LEN];
	struct noise_cipher cipher;
	/* HandshakeState */
	const struct noise_pattern *pattern;
	bool initiator;
	unsigned msg_index; /* next message of the pattern to write or read */
	bool failed;        /* a read failed: the state is unusable (Noise aborts) */
	bool split;         /* Split() ran: only h remains */
	bool has_s, has_e, has_rs, has_re, has_psk;
	uint8_t s_priv[NOISE_DH_LEN], s_pub[NOISE_DH_LEN];
	uint8_t e_priv[NOISE_DH_LEN], e_pub[NOISE_DH_LEN];
	uint8_t rs[NOISE_DH_LEN], re[NOISE_DH_LEN];
	uint8_t psk[NOISE_PSK_LEN];
};

/*
 * Initialize(). PROTOCOL_NAME is "Noise_<PATTERN>_25519_ChaChaPoly_<BLAKE2b|SHA256>".
 * S_PRIVATE is the local static private key (S_PUBLIC may give its public half, or be NULL to
 * derive it); RS_PUBLIC the peer's static key when the pattern pre-shares it; PSK the 32-byte
 * pre-shared key for psk patterns. All keys are borrowed and copied into HS. A pattern that
 * needs a key the caller did not pass, or an unknown name, is CAIRN_EINVAL (HS is wiped).
 */
CAIRN_WARN_UNUSED int noise_handshake_init(struct noise_handshake *hs, const char *protocol_name,
                                           enum noise_role role, const uint8_t *prologue,
                                           size_t prologue_len, const uint8_t *s_private,
                                           const uint8_t *s_public, const uint8_t *rs_public,
                                           const uint8_t *psk);

/* Fixes the local ephemeral key (tests and vectors). Must come before the "e" token is
 * written; otherwise a fresh key is generated then. Returns CAIRN_ESTATE if e is in use. */
CAIRN_WARN_UNUSED int noise_handshake_set_ephemeral(struct noise_handshake *hs,
                                                    const uint8_t private_key[static NOISE_DH_LEN]);

/*
 * WriteMessage(): writes the next handshake message carrying PAYLOAD into OUT (capacity CAP)
 * and sets *OUTLEN. Returns 0; CAIRN_ESTATE when it is not this side's turn or the handshake
 * is over; CAIRN_ENOBUFS (state unchanged) if OUT is too small; CAIRN_EINVAL if the message
 * would exceed 65535 bytes; CAIRN_ECRYPTO if a DH result is all zeros (state then unusable).
 */
CAIRN_WARN_UNUSED int noise_handshake_write_message(struct noise_handshake *hs,
                                                    const uint8_t *payload, size_t len,
                                                    uint8_t *out, size_t cap, size_t *outlen);

/*
 * ReadMessage(): reads the next handshake message MSG and writes its payload into PAYLOAD
 * (capacity CAP). Returns 0; CAIRN_ESTATE out of turn; CAIRN_ENOBUFS (state unchanged) if
 * PAYLOAD is too small; CAIRN_EAUTH if the message is too short or fails to decrypt, and
 * CAIRN_ECRYPTO for an all-zero DH result; after either of those HS is wiped and unusable.
 */
CAIRN_WARN_UNUSED int noise_handshake_read_message(struct noise_handshake *hs, const uint8_t *msg,
                                                   size_t len, uint8_t *payload, size_t cap,
                                                   size_t *payload_len);

/* True once every message of the pattern has been written or read. */
bool noise_handshake_is_done(const struct noise_handshake *hs);

/*
 * Split(): C1 is the initiator-to-responder cipher, C2 the reverse. Then wipes every secret in
 * HS; the handshake hash stays readable. CAIRN_ESTATE before the handshake is done.
 */
CAIRN_WARN_UNUSED int noise_handshake_split(struct noise_handshake *hs, struct noise_cipher *c1,
                                            struct noise_cipher *c2);

/* Copies the handshake hash h into OUT and returns HASHLEN (64 or 32). */
size_t noise_handshake_hash(const struct noise_handshake *hs,
                            uint8_t out[static NOISE_HASH_MAX_LEN]);

/* The peer's ephemeral public key, or NULL if none has been read yet. Borrowed from HS. */
const uint8_t *noise_handshake_remote_ephemeral(const struct noise_handshake *hs);

/* Wipes the whole state; HS must be initialized again before use. */
void noise_handshake_wipe(struct noise_handshake *hs);

#endif
