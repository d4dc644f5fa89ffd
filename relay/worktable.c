/* SPDX-License-Identifier: MIT */
/*
 * The used-work table (worktable.h): a ring of entries in insertion order and a linear-probing
 * index of ring positions, at most half full, whose slot is SipHash of the entry's key under a
 * random key (a sender could otherwise grind nonces to pile its digests into one cluster).
 * Removal is by backward shift, so the index never holds tombstones and a lookup stops at the
 * first empty slot.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cairn/error.h"
#include "worktable.h"

/* Entries expired by an insert before it looks for room. */
#define INSERT_EXPIRE_STEPS 2

void worktable_init(struct worktable *t, uint32_t max, int64_t life)
{
	memset(t, 0, sizeof(*t));
	t->max = max > 0 ? max : 1;
	t->life = life;
}

void worktable_free(struct worktable *t)
{
	if (t->ring != NULL) {
		sodium_memzero(t->ring, (size_t)t->max * sizeof(*t->ring));
		free(t->ring);
	}
	if (t->index != NULL) {
		sodium_memzero(t->index, ((size_t)t->mask + 1) * sizeof(*t->index));
		free(t->index);
	}
	uint32_t max = t->max;
	int64_t life = t->life;
	sodium_memzero(t, sizeof(*t));
	t->max = max;
	t->life = life;
}

static const uint8_t *key_of(const uint8_t digest[WORKTABLE_DIGEST_LEN])
{
	return digest + WORKTABLE_DIGEST_LEN - WORKTABLE_KEY_LEN;
}

static uint32_t home_of(const struct worktable *t, const uint8_t key[WORKTABLE_KEY_LEN])
{
	uint8_t h[crypto_shorthash_BYTES];
	crypto_shorthash(h, key, WORKTABLE_KEY_LEN, t->hash_key);
	uint64_t v;
	memcpy(&v, h, sizeof(v));
	return (uint32_t)(v & t->mask);
}

/* The first use: the ring and an index of at least twice as many slots, both at once. */
static int allocate(struct worktable *t)
{
	size_t slots = 2;
	while (slots < 2 * (size_t)t->max)
		slots *= 2;
	t->ring = malloc((size_t)t->max * sizeof(*t->ring));
	t->index = calloc(slots, sizeof(*t->index));
	if (t->ring == NULL || t->index == NULL) {
		free(t->ring);
		free(t->index);
		t->ring = NULL;
		t->index = NULL;
		return CAIRN_ENOMEM;
	}
	t->mask = (uint32_t)(slots - 1);
	t->head = t->len = 0;
	randombytes_buf(t->hash_key, sizeof(t->hash_key));
	return 0;
}

bool worktable_seen(const struct worktable *t, const uint8_t digest[static WORKTABLE_DIGEST_LEN],
                    int64_t now)
{
	if (t->ring == NULL)
		return false;
	const uint8_t *key = key_of(digest);
	/* A digest inserted again after its first entry expired has two entries: any live one
	 * counts. The index is at most half full, so the walk ends at an empty slot. */
	for (uint32_t i = home_of(t, key); t->index[i] != 0; i = (i + 1) & t->mask) {
		const struct work_entry *e = &t->ring[t->index[i] - 1];
		if (memcmp(e->key, key, WORKTABLE_KEY_LEN) == 0 && now <= e->expires)
			return true;
	}
	return false;
}

/* Removes the head entry from the index (backward shift) and the ring. */
static void pop_head(struct worktable *t)
{
	uint32_t pos = t->head + 1;
	uint32_t i = home_of(t, t->ring[t->head].key);
	while (t->index[i] != pos)
		i = (i + 1) & t->mask;
	/* Close the gap: an entry further along the cluster moves back into it unless its home
	 * lies cyclically in (i, j], where it would then be unreachable. */
	for (uint32_t j = (i + 1) & t->mask; t->index[j] != 0; j = (j + 1) & t->mask) {
		uint32_t k = home_of(t, t->ring[t->index[j] - 1].key);
		bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
		if (stays)
			continue;
		t->index[i] = t->index[j];
		i = j;
	}
	t->index[i] = 0;
	sodium_memzero(&t->ring[t->head], sizeof(t->ring[t->head]));
	t->head = t->head + 1 == t->max ? 0 : t->head + 1;
	t->len--;
}

size_t worktable_expire(struct worktable *t, int64_t now, size_t steps)
{
	size_t n = 0;
	while (n < steps && t->len > 0 && now > t->ring[t->head].expires) {
		pop_head(t);
		n++;
	}
	return n;
}

int worktable_insert(struct worktable *t, const uint8_t digest[static WORKTABLE_DIGEST_LEN],
                     int64_t now)
{
	if (t->ring == NULL && allocate(t) != 0)
		return CAIRN_ENOMEM;
	(void)worktable_expire(t, now, INSERT_EXPIRE_STEPS);
	/* Full only with a live head: entries expire in ring order (unless the wall clock went
	 * back, when they stay longer, which refuses more, never less). */
	if (t->len == t->max)
		return CAIRN_ECAPACITY;
	uint32_t pos = t->head + t->len;
	if (pos >= t->max)
		pos -= t->max;
	struct work_entry *e = &t->ring[pos];
	memcpy(e->key, key_of(digest), WORKTABLE_KEY_LEN);
	e->expires = now + t->life;
	uint32_t i = home_of(t, e->key);
	while (t->index[i] != 0)
		i = (i + 1) & t->mask;
	t->index[i] = pos + 1;
	t->len++;
	return 0;
}
