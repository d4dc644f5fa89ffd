/* SPDX-License-Identifier: MIT */
/*
 * The Cairn transport handshake (docs/PROTOCOL.md section 2): Noise_NK with prologue
 * "cairn/1", a timestamped and randomly padded first message, a padded second message, and a
 * replay cache of accepted ephemeral keys on the relay. Clock and randomness come in as
 * arguments so a test can replay a handshake exactly.
 */
#ifndef CAIRN_PROTO_HANDSHAKE_H
#define CAIRN_PROTO_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/error.h"
#include "cairn/limits.h"
#include "cipher.h"
#include "noise.h"

/* What a completed handshake leaves: one cipher state per direction and the handshake hash. */
struct cairn_session {
	struct noise_cipher send;
	struct noise_cipher recv;
	uint8_t h[CAIRN_HASH_LEN];
};

/*
 * Client, step 1: starts NK against RELAY_PUBLIC and writes message 1 (the Noise message, not
 * framed) with timestamp NOW and PAD_LEN (0..255) zero padding bytes into OUT. EPHEMERAL may
 * be NULL (fresh key) or a fixed private key for tests. HS is initialized here.
 */
CAIRN_WARN_UNUSED int cairn_handshake_client_start(struct noise_handshake *hs,
						   const uint8_t relay_public[static CAIRN_KEY_LEN],
						   const uint8_t *ephemeral, uint64_t now,
						   size_t pad_len, uint8_t *out, size_t cap,
						   size_t *outlen);

/* Client, step 2: reads message 2 and completes SESSION. Wipes HS either way. */
CAIRN_WARN_UNUSED int cairn_handshake_client_finish(struct noise_handshake *hs,
						    const uint8_t *msg, size_t len,
						    struct cairn_session *session);

/*
 * The transport cipher (PROTOCOL.md 2.5): a bit per cipher in payload1's first padding byte
 * (the client's offer) and payload2's (the relay's choice). ChaCha20-Poly1305 has no bit: it
 * is what no offer, or no choice, means.
 */
#define CAIRN_HELLO_CIPHER_AESGCM 0x01u

/*
 * As cairn_handshake_client_start, offering the ciphers of OFFER (CAIRN_HELLO_CIPHER_* bits,
 * 0 for none; the caller offers only what its CPU has: noise_aesgcm_available()). An offer
 * takes the first padding byte, so PAD_LEN 0 becomes 1 when OFFER is not 0.
 */
CAIRN_WARN_UNUSED int
cairn_handshake_client_start_ex(struct noise_handshake *hs,
                                const uint8_t relay_public[static CAIRN_KEY_LEN],
                                const uint8_t *ephemeral, uint64_t now, size_t pad_len,
                                uint8_t offer, uint8_t *out, size_t cap, size_t *outlen);

/*
 * As cairn_handshake_client_finish, after an offer of OFFER: SESSION's two cipher states use
 * the relay's choice. A choice of a cipher not offered is CAIRN_EBADREQ; unknown bits are
 * ignored.
 */
CAIRN_WARN_UNUSED int cairn_handshake_client_finish_ex(struct noise_handshake *hs,
                                                       const uint8_t *msg, size_t len,
                                                       uint8_t offer,
                                                       struct cairn_session *session);

struct replay_cache;

/*
 * Relay: reads message 1 with the relay's static key pair; checks version, |timestamp - NOW|
 * <= CAIRN_HELLO_WINDOW_S, and (if CACHE is non-NULL) records the ephemeral key, refusing a
 * repeat; then writes message 2 with PAD_LEN padding into OUT and completes SESSION.
 * EPHEMERAL as for the client. Returns 0, or on any failure CAIRN_EHANDSHAKE-class codes
 * (CAIRN_EFRAME, CAIRN_EAUTH, CAIRN_ECLOCK, CAIRN_EREPLAY, CAIRN_EFULL, CAIRN_EBADREQ) which
 * the relay must treat identically (section 2.2). All secrets are wiped before returning.
 */
CAIRN_WARN_UNUSED int cairn_handshake_relay_respond(
	const uint8_t relay_private[static CAIRN_KEY_LEN],
	const uint8_t relay_public[static CAIRN_KEY_LEN], const uint8_t *ephemeral,
	struct replay_cache *cache, uint64_t now, const uint8_t *msg1, size_t len1,
	size_t pad_len, uint8_t *out, size_t cap, size_t *outlen, struct cairn_session *session);

/*
 * As cairn_handshake_relay_respond, choosing a transport cipher: one the client offered that
 * MAY_CHOOSE (CAIRN_HELLO_CIPHER_* bits: what this CPU has) also has, else ChaCha20-Poly1305.
 * The choice takes payload2's first padding byte, so PAD_LEN 0 becomes 1 when MAY_CHOOSE is
 * not 0. SESSION's cipher states use the choice.
 */
CAIRN_WARN_UNUSED int cairn_handshake_relay_respond_ex(
    const uint8_t relay_private[static CAIRN_KEY_LEN],
    const uint8_t relay_public[static CAIRN_KEY_LEN], const uint8_t *ephemeral,
    struct replay_cache *cache, uint64_t now, const uint8_t *msg1, size_t len1, size_t pad_len,
    uint8_t may_choose, uint8_t *out, size_t cap, size_t *outlen, struct cairn_session *session);

/* Wipes a session's keys. */
void cairn_session_wipe(struct cairn_session *session);

/*
 * Replay cache: remembers accepted ephemeral keys for 2 x CAIRN_HELLO_WINDOW_S. Two
 * generations of keyed 64-bit fingerprints; CAPACITY bounds entries per generation. Memory is
 * allocated once, at creation.
 */
struct replay_cache *replay_cache_new(size_t capacity);
void replay_cache_free(struct replay_cache *cache);
/* Returns 0 and records KEY, or CAIRN_EREPLAY if seen. A full current generation makes way by
 * forgetting the older one; CAIRN_EFULL only if memory for a growing table cannot be had. */
CAIRN_WARN_UNUSED int replay_cache_add(struct replay_cache *cache,
				       const uint8_t key[static CAIRN_KEY_LEN], uint64_t now);
/* The slots of the current generation's table (8 bytes each): at least 4/3 of its keys. */
size_t replay_cache_slots(const struct replay_cache *cache);

#endif
