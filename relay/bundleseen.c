/* SPDX-License-Identifier: MIT */
/*
 * The seen set of bundle items (bundleseen.h): a linear-probing table of `E`s, grown by
 * doubling, removal by backward shift.
 */
#include "bundleseen.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cairn/error.h"

#define FIRST_SLOTS 1024u

static uint32_t home_of(const struct bundleseen *t, const uint8_t e[CAIRN_KEY_LEN])
{
	uint8_t h[crypto_shorthash_BYTES];
	crypto_shorthash(h, e, CAIRN_KEY_LEN, t->hash_key);
	uint64_t v;
	memcpy(&v, h, sizeof(v));
	return (uint32_t)(v & t->mask);
}

/* The slot holding E, or the empty slot where it would go; NULL when T has no slots. */
static struct bundleseen_entry *slot_of(const struct bundleseen *t, const uint8_t e[CAIRN_KEY_LEN])
{
	if (t->slots == NULL)
		return NULL;
	uint32_t i = home_of(t, e);
	while (t->slots[i].used && memcmp(t->slots[i].e, e, CAIRN_KEY_LEN) != 0)
		i = (i + 1) & t->mask;
	return &t->slots[i];
}

enum bundleseen_state bundleseen_find(const struct bundleseen *t,
                                      const uint8_t e[static CAIRN_KEY_LEN])
{
	const struct bundleseen_entry *s = slot_of(t, e);
	if (s == NULL || !s->used)
		return BUNDLE_UNSEEN;
	return s->pending ? BUNDLE_PENDING : BUNDLE_STORED;
}

/* Moves T into a table of SLOTS slots (a power of two). */
static int resize(struct bundleseen *t, uint32_t slots)
{
	struct bundleseen_entry *fresh = calloc(slots, sizeof(*fresh));
	if (fresh == NULL)
		return CAIRN_ENOMEM;
	struct bundleseen old = *t;
	if (old.slots == NULL)
		randombytes_buf(t->hash_key, sizeof(t->hash_key));
	t->slots = fresh;
	t->mask = slots - 1;
	t->sweep = 0;
	for (uint32_t i = 0; old.slots != NULL && i <= old.mask; i++) {
		if (old.slots[i].used)
			*slot_of(t, old.slots[i].e) = old.slots[i];
	}
	if (old.slots != NULL) {
		sodium_memzero(old.slots, ((size_t)old.mask + 1) * sizeof(*old.slots));
		free(old.slots);
	}
	return 0;
}

int bundleseen_insert(struct bundleseen *t, const uint8_t e[static CAIRN_KEY_LEN],
                      int64_t not_after, bool pending, uint32_t max)
{
	struct bundleseen_entry *s = slot_of(t, e);
	if (s != NULL && s->used)
		return 0;
	if (t->count >= max)
		return CAIRN_ECAPACITY;
	/* At most three quarters full after this insert. */
	uint64_t slots = t->slots != NULL ? (uint64_t)t->mask + 1 : 0;
	if (4 * ((uint64_t)t->count + 1) > 3 * slots) {
		uint64_t want = slots != 0 ? 2 * slots : FIRST_SLOTS;
		if (want > ((uint64_t)1 << 31))
			return CAIRN_ECAPACITY;
		int rc = resize(t, (uint32_t)want);
		if (rc != 0)
			return rc;
		s = slot_of(t, e);
	}
	memcpy(s->e, e, CAIRN_KEY_LEN);
	s->not_after = not_after;
	s->used = 1;
	s->pending = pending ? 1 : 0;
	t->count++;
	return 0;
}

void bundleseen_settle(struct bundleseen *t, const uint8_t e[static CAIRN_KEY_LEN])
{
	struct bundleseen_entry *s = slot_of(t, e);
	if (s != NULL && s->used)
		s->pending = 0;
}

/* Empties slot I and shifts back the entries after it that probed past it. */
static void remove_at(struct bundleseen *t, uint32_t i)
{
	uint32_t j = i;
	for (;;) {
		j = (j + 1) & t->mask;
		if (!t->slots[j].used)
			break;
		uint32_t k = home_of(t, t->slots[j].e);
		/* Whether J's home K lies cyclically in (I, J]: then it stays. */
		bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
		if (stays)
			continue;
		t->slots[i] = t->slots[j];
		i = j;
	}
	sodium_memzero(&t->slots[i], sizeof(t->slots[i]));
	t->count--;
}

void bundleseen_remove(struct bundleseen *t, const uint8_t e[static CAIRN_KEY_LEN])
{
	struct bundleseen_entry *s = slot_of(t, e);
	if (s != NULL && s->used)
		remove_at(t, (uint32_t)(s - t->slots));
}

size_t bundleseen_expire(struct bundleseen *t, int64_t now, size_t steps)
{
	size_t gone = 0;
	if (t->slots == NULL)
		return 0;
	for (size_t n = 0; n < steps && t->count > 0; n++) {
		struct bundleseen_entry *s = &t->slots[t->sweep];
		if (s->used && !s->pending && s->not_after < now) {
			/* The shift may bring another entry here: look at this slot again. */
			remove_at(t, t->sweep);
			gone++;
			continue;
		}
		t->sweep = (t->sweep + 1) & t->mask;
	}
	return gone;
}

void bundleseen_free(struct bundleseen *t)
{
	if (t->slots != NULL) {
		sodium_memzero(t->slots, ((size_t)t->mask + 1) * sizeof(*t->slots));
		free(t->slots);
	}
	sodium_memzero(t, sizeof(*t));
}
