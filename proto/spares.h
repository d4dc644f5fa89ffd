/* SPDX-License-Identifier: MIT */
/*
 * Spare blocks of one kind, kept for reuse by a caller on one thread that makes and drops many
 * of them: a bounded stack of pointers. A relay keeps its idle connections' buffer sets
 * (chanpool.h), finished handshake states (channel.h) and storage requests (relay/peer.c) this
 * way, so that the next connection reuses their memory instead of cutting malloc's free space
 * into holes nothing else fits (docs/PERFORMANCE.md, idle memory). It never holds more blocks
 * than were in use at once; spares_tick, called now and then (a relay: once a second), drops
 * them all when none was asked for since the last call, so that an idle caller holds none.
 * What goes in must already be wiped: that is the caller's, who knows what the block holds.
 * Not thread-safe; a zeroed struct spares is empty and ready.
 */
#ifndef CAIRN_PROTO_SPARES_H
#define CAIRN_PROTO_SPARES_H

#include <stdbool.h>
#include <stdint.h>

#define SPARES_MAX 1024 /* the most blocks one struct spares keeps */

struct spares {
	void *slot[SPARES_MAX];
	uint32_t count; /* blocks kept, in slot[0] to slot[count - 1] */
	uint32_t asked; /* spares_take calls since the last spares_tick */
};

/* The block kept last, or NULL when none is (the caller makes one). */
void *spares_take(struct spares *s);

/* Keeps BLOCK when S holds fewer than LIMIT (at most SPARES_MAX) blocks: true; else false, and
 * BLOCK is still the caller's to free. */
bool spares_keep(struct spares *s, void *block, uint32_t limit);

/* When nothing was taken since the last call, drops every block kept (DROP frees one). */
void spares_tick(struct spares *s, void (*drop)(void *));

/* Drops every block kept; S is empty and ready again. */
void spares_free(struct spares *s, void (*drop)(void *));

#endif
