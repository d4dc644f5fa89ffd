/* SPDX-License-Identifier: MIT */
/*
 * The relay's table of used work (docs/PROTOCOL.md 5.10, check 4): the work digests of the
 * SEND_WORKs it accepted, each kept for a fixed life (2 x work_window), at most a fixed
 * number of them. Loop thread only; never written to disk and never logged.
 *
 * Every entry lives equally long, so insertion order is expiry order: the entries sit in a
 * ring (oldest at the head) and an open-addressing index of ring positions finds them by
 * digest. Insert and lookup are O(1) expected; expiry pops from the head, a bounded number
 * per call, so no callback walks a million entries. Memory is bounded by the maximum and
 * allocated once, at the first insert (a relay that never sees SEND_WORK pays nothing).
 */
#ifndef CAIRN_RELAY_WORKTABLE_H
#define CAIRN_RELAY_WORKTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WORKTABLE_DIGEST_LEN 32
/* Bytes of the digest kept per entry. The digest's first bytes are zero by construction (the
 * work), so the table keys on its last 16: uniform, and 128 bits make a false "reused" for
 * an honest sender a 2^-128 event (a truncated key never causes a false "fresh"). */
#define WORKTABLE_KEY_LEN 16

struct work_entry {
	uint8_t key[WORKTABLE_KEY_LEN];
	int64_t expires; /* the relay's wall clock: live while now <= expires */
};

struct worktable {
	uint32_t max;            /* entries at most (work_seen_max) */
	int64_t life;            /* seconds an entry lives (2 x work_window) */
	struct work_entry *ring; /* max entries, oldest at head; NULL until the first insert */
	uint32_t head, len;
	uint32_t *index; /* ring position + 1, or 0 for an empty slot; linear probing */
	uint32_t mask;   /* index slots - 1: a power of two, at least 2 x max */
	uint8_t hash_key[16];
};

/* Sets T up for at most MAX entries living LIFE seconds each; allocates nothing. */
void worktable_init(struct worktable *t, uint32_t max, int64_t life);
/* Frees T's memory (wiped first); T may be initialised again. */
void worktable_free(struct worktable *t);

/* Whether DIGEST was inserted and its entry is still live at NOW. */
bool worktable_seen(const struct worktable *t, const uint8_t digest[static WORKTABLE_DIGEST_LEN],
                    int64_t now);

/*
 * Remembers DIGEST from NOW until NOW + life, first expiring up to two entries (so inserts
 * alone keep expired entries from filling the table). Returns 0, CAIRN_ECAPACITY when MAX
 * live entries are held (nothing inserted), or CAIRN_ENOMEM when the first allocation failed.
 */
int worktable_insert(struct worktable *t, const uint8_t digest[static WORKTABLE_DIGEST_LEN],
                     int64_t now);

/* Removes at most STEPS entries expired at NOW, from the oldest; returns how many. */
size_t worktable_expire(struct worktable *t, int64_t now, size_t steps);

#endif
