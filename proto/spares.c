/* SPDX-License-Identifier: MIT */
/* Spare blocks kept for reuse (spares.h). */
#include <stddef.h>

#include "spares.h"

void *spares_take(struct spares *s)
{
	s->asked++;
	if (s->count == 0)
		return NULL;
	void *block = s->slot[--s->count];
	s->slot[s->count] = NULL;
	return block;
}

bool spares_keep(struct spares *s, void *block, uint32_t limit)
{
	if (s->count >= limit || s->count >= SPARES_MAX)
		return false;
	s->slot[s->count++] = block;
	return true;
}

void spares_tick(struct spares *s, void (*drop)(void *))
{
	if (s->asked == 0)
		spares_free(s, drop);
	s->asked = 0;
}

void spares_free(struct spares *s, void (*drop)(void *))
{
	while (s->count > 0) {
		drop(s->slot[--s->count]);
		s->slot[s->count] = NULL;
	}
}
