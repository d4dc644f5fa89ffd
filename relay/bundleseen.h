/* SPDX-License-Identifier: MIT */
/*
 * The relay's seen set of bundle items (docs/PROTOCOL.md 5.12 rule 2): the seal's `E` of every
 * BUNDLED it stored, kept until the item's `not_after`, so that an item delivered twice, by
 * two couriers or by a courier and the operator's import, stores its envelope once. An entry
 * is PENDING from the item's acceptance until the batch that writes its envelope and its row
 * (store.h, STORE_ENVELOPE_PUT with bundle_e) is durable; a duplicate meanwhile gets
 * `storage` (try again), after it OK.
 *
 * Open addressing with linear probing, at most three quarters full, the slot SipHash of `E`
 * under a random key (a courier chooses `E`, and could otherwise grind keys into one
 * cluster); removal by backward shift, so no tombstones. Entries live for different times, so
 * expiry sweeps the slots a bounded number per call. Memory grows by doubling up to what
 * MAX entries need: 48 bytes a slot. Loop thread only; nothing here is logged.
 */
#ifndef CAIRN_RELAY_BUNDLESEEN_H
#define CAIRN_RELAY_BUNDLESEEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cairn/limits.h"

struct bundleseen_entry {
	uint8_t e[CAIRN_KEY_LEN];
	int64_t not_after;
	uint32_t used;    /* 0: an empty slot */
	uint32_t pending; /* its first delivery is still being written */
};

struct bundleseen {
	struct bundleseen_entry *slots; /* mask + 1 of them; NULL until the first insert */
	uint32_t mask;
	uint32_t count;
	uint32_t sweep; /* where the next expiry step looks */
	uint8_t hash_key[16];
};

enum bundleseen_state { BUNDLE_UNSEEN, BUNDLE_PENDING, BUNDLE_STORED };

/* Whether E is held, and how. */
enum bundleseen_state bundleseen_find(const struct bundleseen *t,
                                      const uint8_t e[static CAIRN_KEY_LEN]);

/*
 * Remembers E until NOT_AFTER, PENDING or not. Returns 0 (also when E is already held: its
 * entry is left as it is), CAIRN_ECAPACITY when MAX entries are held (nothing inserted), or
 * CAIRN_ENOMEM.
 */
int bundleseen_insert(struct bundleseen *t, const uint8_t e[static CAIRN_KEY_LEN],
                      int64_t not_after, bool pending, uint32_t max);

/* E's write is durable: its entry is no longer pending (nothing if E is not held). */
void bundleseen_settle(struct bundleseen *t, const uint8_t e[static CAIRN_KEY_LEN]);

/* Forgets E (its write failed, so a later delivery must store it). */
void bundleseen_remove(struct bundleseen *t, const uint8_t e[static CAIRN_KEY_LEN]);

/* Looks at up to STEPS slots from where the last call stopped and forgets every settled entry
 * whose not_after is before NOW; returns how many it forgot. */
size_t bundleseen_expire(struct bundleseen *t, int64_t now, size_t steps);

/* Frees T's memory (wiped first); T is empty and usable again. */
void bundleseen_free(struct bundleseen *t);

#endif
