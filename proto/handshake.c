/* SPDX-License-Identifier: MIT */
/*
 * The Cairn transport handshake (docs/PROTOCOL.md section 2) over the generic Noise state in
 * noise.c, and the relay's replay cache. The relay checks the cheap things first (length),
 * then decrypts, then the payload, and only an authentic, timely message 1 reaches the cache,
 * so a prober cannot fill it with garbage.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "handshake.h"

#define PROTOCOL_NAME "Noise_NK_25519_ChaChaPoly_BLAKE2b"
#define PAYLOAD1_MAX  (CAIRN_HELLO1_FIXED_LEN + CAIRN_HELLO_PAD_MAX)
#define PAYLOAD2_MAX  (CAIRN_HELLO2_FIXED_LEN + CAIRN_HELLO_PAD_MAX)

/* A generation lasts two windows: a key is then remembered for at least 2 x 120 s. */
#define REPLAY_GENERATION_S (2 * (uint64_t)CAIRN_HELLO_WINDOW_S)

static void put_u64be(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t get_u64be(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static int start_noise(struct noise_handshake *hs, enum noise_role role, const uint8_t *s_priv,
                       const uint8_t *s_pub, const uint8_t *rs, const uint8_t *ephemeral)
{
	int rc = noise_handshake_init(hs, PROTOCOL_NAME, role, (const uint8_t *)CAIRN_PROLOGUE,
	                              strlen(CAIRN_PROLOGUE), s_priv, s_pub, rs, NULL);
	if (rc == 0 && ephemeral != NULL)
		rc = noise_handshake_set_ephemeral(hs, ephemeral);
	return rc;
}

/* ReadMessage, with a low-order peer key (all-zero DH) reported as the authentication
 * failure it is, so that callers see one code for every forged message. */
static int read_auth(struct noise_handshake *hs, const uint8_t *msg, size_t len, uint8_t *payload,
                     size_t cap, size_t *plen)
{
	int rc = noise_handshake_read_message(hs, msg, len, payload, cap, plen);
	return rc == CAIRN_ECRYPTO ? CAIRN_EAUTH : rc;
}

/* The cipher both sides use for the transport, per the choice byte (PROTOCOL.md 2.5). */
static void session_use(struct cairn_session *session, uint8_t choice)
{
	if ((choice & CAIRN_HELLO_CIPHER_AESGCM) == 0)
		return;
	noise_cipher_set_alg(&session->send, NOISE_CIPHER_AESGCM);
	noise_cipher_set_alg(&session->recv, NOISE_CIPHER_AESGCM);
}

int cairn_handshake_client_start(struct noise_handshake *hs,
                                 const uint8_t relay_public[static CAIRN_KEY_LEN],
                                 const uint8_t *ephemeral, uint64_t now, size_t pad_len,
                                 uint8_t *out, size_t cap, size_t *outlen)
{
	return cairn_handshake_client_start_ex(hs, relay_public, ephemeral, now, pad_len, 0, out,
	                                       cap, outlen);
}

int cairn_handshake_client_start_ex(struct noise_handshake *hs,
                                    const uint8_t relay_public[static CAIRN_KEY_LEN],
                                    const uint8_t *ephemeral, uint64_t now, size_t pad_len,
                                    uint8_t offer, uint8_t *out, size_t cap, size_t *outlen)
{
	uint8_t payload[PAYLOAD1_MAX] = {0};
	*outlen = 0;
	if (pad_len > CAIRN_HELLO_PAD_MAX) {
		noise_handshake_wipe(hs);
		return CAIRN_EINVAL;
	}
	if (offer != 0 && pad_len == 0)
		pad_len = 1; /* the offer is the first padding byte */
	int rc = start_noise(hs, NOISE_INITIATOR, NULL, NULL, relay_public, ephemeral);
	if (rc != 0)
		goto out;
	payload[0] = CAIRN_HELLO_VERSION;
	put_u64be(payload + 1, now);
	payload[CAIRN_HELLO1_FIXED_LEN] = offer;
	rc = noise_handshake_write_message(hs, payload, CAIRN_HELLO1_FIXED_LEN + pad_len, out, cap,
	                                   outlen);
out:
	if (rc != 0)
		noise_handshake_wipe(hs);
	return rc;
}

int cairn_handshake_client_finish(struct noise_handshake *hs, const uint8_t *msg, size_t len,
                                  struct cairn_session *session)
{
	return cairn_handshake_client_finish_ex(hs, msg, len, 0, session);
}

int cairn_handshake_client_finish_ex(struct noise_handshake *hs, const uint8_t *msg, size_t len,
                                     uint8_t offer, struct cairn_session *session)
{
	uint8_t payload[PAYLOAD2_MAX];
	size_t plen = 0;
	int rc;

	memset(session, 0, sizeof(*session));
	if (len < CAIRN_HANDSHAKE2_MIN || len > CAIRN_HANDSHAKE2_MAX) {
		rc = CAIRN_EFRAME;
		goto out;
	}
	rc = read_auth(hs, msg, len, payload, sizeof(payload), &plen);
	if (rc != 0)
		goto out;
	/* Padding bytes are ignored on receipt (section 2.1), but for the first: the choice. */
	if (plen < CAIRN_HELLO2_FIXED_LEN || payload[0] != CAIRN_HELLO_VERSION) {
		rc = CAIRN_EBADREQ;
		goto out;
	}
	uint8_t choice = plen > CAIRN_HELLO2_FIXED_LEN ? payload[CAIRN_HELLO2_FIXED_LEN] : 0;
	if ((choice & CAIRN_HELLO_CIPHER_AESGCM & ~offer) != 0) {
		rc = CAIRN_EBADREQ; /* a cipher this client did not offer */
		goto out;
	}
	rc = noise_handshake_split(hs, &session->send, &session->recv);
	if (rc != 0)
		goto out;
	session_use(session, choice);
	noise_handshake_hash(hs, session->h);
out:
	if (rc != 0)
		cairn_session_wipe(session);
	noise_handshake_wipe(hs);
	sodium_memzero(payload, sizeof(payload));
	return rc;
}

int cairn_handshake_relay_respond(const uint8_t relay_private[static CAIRN_KEY_LEN],
                                  const uint8_t relay_public[static CAIRN_KEY_LEN],
                                  const uint8_t *ephemeral, struct replay_cache *cache,
                                  uint64_t now, const uint8_t *msg1, size_t len1, size_t pad_len,
                                  uint8_t *out, size_t cap, size_t *outlen,
                                  struct cairn_session *session)
{
	return cairn_handshake_relay_respond_ex(relay_private, relay_public, ephemeral, cache, now,
	                                        msg1, len1, pad_len, 0, out, cap, outlen, session);
}

int cairn_handshake_relay_respond_ex(const uint8_t relay_private[static CAIRN_KEY_LEN],
                                     const uint8_t relay_public[static CAIRN_KEY_LEN],
                                     const uint8_t *ephemeral, struct replay_cache *cache,
                                     uint64_t now, const uint8_t *msg1, size_t len1, size_t pad_len,
                                     uint8_t may_choose, uint8_t *out, size_t cap, size_t *outlen,
                                     struct cairn_session *session)
{
	struct noise_handshake hs;
	uint8_t payload[PAYLOAD1_MAX];
	size_t plen = 0;
	int rc;

	*outlen = 0;
	memset(session, 0, sizeof(*session));
	memset(&hs, 0, sizeof(hs));
	memset(payload, 0, sizeof(payload));
	/* Before any work: the length, then the caller's own arguments. Refusing for a small
	 * output buffer after the cache has recorded the key would burn a good handshake. */
	if (len1 < CAIRN_HANDSHAKE1_MIN || len1 > CAIRN_HANDSHAKE1_MAX) {
		rc = CAIRN_EFRAME;
		goto out;
	}
	if (pad_len > CAIRN_HELLO_PAD_MAX) {
		rc = CAIRN_EINVAL;
		goto out;
	}
	if (may_choose != 0 && pad_len == 0)
		pad_len = 1; /* the choice is the first padding byte */
	if (cap < CAIRN_HANDSHAKE2_MIN + pad_len) {
		rc = CAIRN_ENOBUFS;
		goto out;
	}
	rc = start_noise(&hs, NOISE_RESPONDER, relay_private, relay_public, NULL, ephemeral);
	if (rc != 0)
		goto out;
	rc = read_auth(&hs, msg1, len1, payload, sizeof(payload), &plen);
	if (rc != 0)
		goto out;
	if (plen < CAIRN_HELLO1_FIXED_LEN || payload[0] != CAIRN_HELLO_VERSION) {
		rc = CAIRN_EBADREQ;
		goto out;
	}
	uint64_t ts = get_u64be(payload + 1);
	if ((ts > now ? ts - now : now - ts) > CAIRN_HELLO_WINDOW_S) {
		rc = CAIRN_ECLOCK;
		goto out;
	}
	/* Last check: only an authentic, timely message 1 may take a cache slot. */
	if (cache != NULL) {
		rc = replay_cache_add(cache, noise_handshake_remote_ephemeral(&hs), now);
		if (rc != 0)
			goto out;
	}

	/* Unknown offer bits are ignored: only a cipher both sides have is chosen. */
	uint8_t offer = plen > CAIRN_HELLO1_FIXED_LEN ? payload[CAIRN_HELLO1_FIXED_LEN] : 0;
	uint8_t choice = offer & may_choose & CAIRN_HELLO_CIPHER_AESGCM;
	memset(payload, 0, CAIRN_HELLO2_FIXED_LEN + pad_len);
	payload[0] = CAIRN_HELLO_VERSION;
	if (pad_len > 0)
		payload[CAIRN_HELLO2_FIXED_LEN] = choice;
	rc = noise_handshake_write_message(&hs, payload, CAIRN_HELLO2_FIXED_LEN + pad_len, out, cap,
	                                   outlen);
	if (rc != 0)
		goto out;
	/* The relay receives with the first cipher state and sends with the second. */
	rc = noise_handshake_split(&hs, &session->recv, &session->send);
	if (rc != 0)
		goto out;
	session_use(session, choice);
	noise_handshake_hash(&hs, session->h);
out:
	if (rc != 0) {
		cairn_session_wipe(session);
		if (*outlen > 0)
			sodium_memzero(out, *outlen);
		*outlen = 0;
	}
	noise_handshake_wipe(&hs);
	sodium_memzero(payload, sizeof(payload));
	return rc;
}

void cairn_session_wipe(struct cairn_session *session)
{
	sodium_memzero(session, sizeof(*session));
}

/* ---- Replay cache ------------------------------------------------------------------------ */

/*
 * Each generation is an open-addressing table of 64-bit fingerprints (0 marks an empty slot),
 * kept at most three quarters full: a miss, which every new handshake is (twice, one per
 * generation), probes 8.5 slots on average there (2.5 at half full), one or two cache lines,
 * and the memory is half of a half-full table's at the same count (the relay's idle memory per
 * connection counts it, docs/PERFORMANCE.md). It starts small and doubles as keys arrive, up
 * to 4/3 of its capacity, so the memory follows the handshakes actually seen in the
 * window rather than the largest number allowed (16 MiB per generation at the default 2^20).
 * Fingerprints are SipHash under a key drawn at creation: a peer cannot aim ephemeral keys at
 * one probe chain.
 */
#define REPLAY_SLOTS_MIN 1024

struct replay_generation {
	uint64_t *slots;
	size_t mask; /* slots - 1 */
	size_t count;
};

struct replay_cache {
	uint8_t key[crypto_shorthash_KEYBYTES];
	size_t capacity;  /* entries per generation */
	size_t slots_max; /* the smallest power of two >= 4/3 * capacity */
	uint64_t started; /* when the current generation began */
	bool clock_set;
	struct replay_generation cur, prev;
};

/* Gives G an empty table of SLOTS slots (a power of two). Returns 0 or CAIRN_ENOMEM. */
static int generation_reset(struct replay_generation *g, size_t slots)
{
	uint64_t *p = calloc(slots, sizeof(uint64_t));
	if (p == NULL)
		return CAIRN_ENOMEM;
	free(g->slots);
	g->slots = p;
	g->mask = slots - 1;
	g->count = 0;
	return 0;
}

/* Returns the slot holding FP, or the empty slot where it would go. */
static uint64_t *generation_find(const struct replay_generation *g, uint64_t fp)
{
	size_t i = (size_t)fp & g->mask;
	while (g->slots[i] != 0 && g->slots[i] != fp)
		i = (i + 1) & g->mask;
	return &g->slots[i];
}

/* Doubles G's table, keeping its fingerprints. Returns 0 or CAIRN_ENOMEM (G unchanged). */
static int generation_grow(struct replay_generation *g)
{
	struct replay_generation bigger = {0};
	if (generation_reset(&bigger, 2 * (g->mask + 1)) != 0)
		return CAIRN_ENOMEM;
	for (size_t i = 0; i <= g->mask; i++)
		if (g->slots[i] != 0)
			*generation_find(&bigger, g->slots[i]) = g->slots[i];
	bigger.count = g->count;
	free(g->slots);
	*g = bigger;
	return 0;
}

struct replay_cache *replay_cache_new(size_t capacity)
{
	if (capacity == 0 || capacity > ((size_t)1 << 30) || sodium_init() < 0)
		return NULL;
	struct replay_cache *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->slots_max = 1;
	while (3 * c->slots_max < 4 * capacity)
		c->slots_max <<= 1;
	size_t first = c->slots_max < REPLAY_SLOTS_MIN ? c->slots_max : REPLAY_SLOTS_MIN;
	if (generation_reset(&c->cur, first) != 0 || generation_reset(&c->prev, first) != 0) {
		replay_cache_free(c);
		return NULL;
	}
	c->capacity = capacity;
	randombytes_buf(c->key, sizeof(c->key));
	return c;
}

void replay_cache_free(struct replay_cache *cache)
{
	if (cache == NULL)
		return;
	free(cache->cur.slots);
	free(cache->prev.slots);
	sodium_memzero(cache, sizeof(*cache));
	free(cache);
}

/* Empties G, shrinking it back to the first size; if that allocation fails, clears it. */
static void generation_clear(const struct replay_cache *c, struct replay_generation *g)
{
	size_t first = c->slots_max < REPLAY_SLOTS_MIN ? c->slots_max : REPLAY_SLOTS_MIN;
	if (g->mask + 1 == first || generation_reset(g, first) != 0) {
		memset(g->slots, 0, (g->mask + 1) * sizeof(uint64_t));
		g->count = 0;
	}
}

/*
 * Starts a new generation once the current one is REPLAY_GENERATION_S old: the previous one,
 * whose newest key is then at least that old, is forgotten. Ages count from the latest time
 * seen (STARTED never goes back), because the window is checked against the clock: after a
 * step back, a message 1 accepted before it passes the window again until the clock is past
 * its time plus the window, so its key is kept until then (restarting the age at the step,
 * as this once did, forgot it a generation or two later). One generation goes per rotation,
 * also after a long gap or a step forward, so if the clock is then put back, the keys
 * accepted just before the step are still there.
 */
static void replay_rotate(struct replay_cache *c, uint64_t now)
{
	if (!c->clock_set) {
		c->started = now;
		c->clock_set = true;
		return;
	}
	if (now < c->started || now - c->started < REPLAY_GENERATION_S)
		return;
	struct replay_generation old = c->prev;
	c->prev = c->cur;
	c->cur = old;
	generation_clear(c, &c->cur);
	c->started = now;
}

size_t replay_cache_slots(const struct replay_cache *cache)
{
	return cache->cur.mask + 1;
}

int replay_cache_add(struct replay_cache *cache, const uint8_t key[static CAIRN_KEY_LEN],
                     uint64_t now)
{
	uint8_t out[crypto_shorthash_BYTES];
	crypto_shorthash(out, key, CAIRN_KEY_LEN, cache->key);
	uint64_t fp = 0;
	for (int i = 0; i < 8; i++)
		fp |= (uint64_t)out[i] << (8 * i);
	if (fp == 0)
		fp = 1; /* 0 marks an empty slot */

	replay_rotate(cache, now);
	if (*generation_find(&cache->prev, fp) == fp)
		return CAIRN_EREPLAY;
	struct replay_generation *g = &cache->cur;
	uint64_t *slot = generation_find(g, fp);
	if (*slot == fp)
		return CAIRN_EREPLAY;
	if (g->count >= cache->capacity) {
		/* Full: start the next generation now, forgetting the older one. Refusing instead
		 * would let anyone who can fill the cache lock every client out for minutes, and
		 * filling it takes valid handshakes, that is, the relay's key: such a peer learns
		 * nothing from a replay that it could not learn by connecting (PROTOCOL.md 2.2). */
		struct replay_generation old = cache->prev;
		cache->prev = cache->cur;
		cache->cur = old;
		generation_clear(cache, &cache->cur);
		if (now > cache->started)
			cache->started = now; /* never back: replay_rotate */
		g = &cache->cur;
		slot = generation_find(g, fp);
	}
	if (4 * (g->count + 1) > 3 * (g->mask + 1)) {
		/* Growing is bounded by slots_max >= 4/3 * capacity; failing to grow refuses the
		 * handshake rather than overfilling the table. */
		if (g->mask + 1 >= cache->slots_max || generation_grow(g) != 0)
			return CAIRN_EFULL;
		slot = generation_find(g, fp);
	}
	*slot = fp;
	g->count++;
	return 0;
}
