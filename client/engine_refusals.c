/* SPDX-License-Identifier: MIT */
/*
 * The engine's lists of (outbox entry, session) pairs (engine_state.h): where an entry was
 * refused, so the dispatch passes that relay over, and where its work was refused, so it is
 * not solved again there at once. The outbox dispatch and the intake sending both keep them.
 */
#include <stdlib.h>
#include <string.h>

#include "engine_state.h"

bool engine_noted(const struct refusal *l, size_t n, const uint8_t outbox_id[16], size_t session)
{
	for (size_t i = 0; i < n; i++)
		if (l[i].session == session && memcmp(l[i].outbox_id, outbox_id, 16) == 0)
			return true;
	return false;
}

void engine_note(struct refusal **l, size_t *n, size_t *cap, const uint8_t outbox_id[16],
                 size_t session)
{
	if (*n == *cap) {
		size_t ncap = *cap ? 2 * *cap : 16;
		struct refusal *p = realloc(*l, ncap * sizeof(*p));
		if (p == NULL)
			return; /* then it is simply tried there again */
		*l = p;
		*cap = ncap;
	}
	memcpy((*l)[*n].outbox_id, outbox_id, 16);
	(*l)[(*n)++].session = session;
}

void engine_refuse(struct engine *e, const uint8_t outbox_id[16], const struct session *s)
{
	engine_note(&e->refused, &e->nrefused, &e->caprefused, outbox_id, (size_t)(s - e->s));
}
