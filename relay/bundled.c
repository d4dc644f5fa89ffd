/* SPDX-License-Identifier: MIT */
/*
 * BUNDLED in the command layer (docs/PROTOCOL.md 5.12): a SEND sealed days earlier and carried
 * by hand, opened by forwarded.c like any FORWARDED and run by commands.c (cmd_bundled), its
 * answers unsealed (the courier that delivers it must learn what became of each item). Here
 * are the parts of the seen set of seal `E`s (bundleseen.h) the command layer uses: rules 1
 * and 2 (`not_after` against the relay's clock, then seen before), the pending entry a new
 * item takes before SEND's own checks have passed and its write, settled or forgotten when
 * the write is done, its load at start and its expiry. Below commands.c: it calls nothing
 * there.
 *
 * Cost: the X25519 and the AEAD are forwarded.c's (off the loop thread, bounded like
 * FORWARDED); here one table lookup and, for a new item, one entry of about 48 bytes, at most
 * bundle_seen_max of them. Nothing here logs an E, a mailbox, a time or a size.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cairn/error.h"
#include "command_layer.h"
#include "relay.h"

/* Seen entries looked at per tick, and how often the stored rows are expired. */
#define BUNDLE_SWEEP_PER_TICK 65536
#define BUNDLE_STORE_EXPIRE_S 60

bool bundle_check(struct peer *p, const struct cairn_msg *m, const uint8_t e[static CAIRN_KEY_LEN])
{
	struct relay *relay = p->relay;
	/* 1: its age. A not_after past 2^63 is as far off as one past 30 days. */
	int64_t now = relay_now(relay);
	if (m->not_after < (uint64_t)(now < 0 ? 0 : now)) {
		peer_reply_error(p, m->request_id, CAIRN_EEXPIRED);
		return false;
	}
	if (m->not_after > (uint64_t)now + CAIRN_BUNDLE_LIFETIME_MAX_S) {
		peer_reply_error(p, m->request_id, CAIRN_EBADREQ);
		return false;
	}
	/* 2: seen before. */
	switch (bundleseen_find(&relay->bundles, e)) {
	case BUNDLE_STORED:
		peer_reply_ok(p, m->request_id);
		return false;
	case BUNDLE_PENDING:
		peer_reply_error(p, m->request_id, CAIRN_ESTORAGE);
		return false;
	case BUNDLE_UNSEEN:
		break;
	}
	return true;
}

struct bundle_mark *bundle_mark_new(struct peer *p, const struct cairn_msg *m,
                                    const uint8_t e[static CAIRN_KEY_LEN])
{
	struct relay *relay = p->relay;
	struct bundle_mark *mark = malloc(sizeof(*mark));
	if (mark == NULL) {
		peer_reply_error(p, m->request_id, CAIRN_ESTORAGE);
		return NULL;
	}
	memcpy(mark->e, e, CAIRN_KEY_LEN);
	mark->not_after = (int64_t)m->not_after;
	int rc = bundleseen_insert(&relay->bundles, e, mark->not_after, true,
	                           relay->cfg->bundle_seen_max);
	if (rc != 0) {
		free(mark);
		peer_reply_error(p, m->request_id,
		                 rc == CAIRN_ECAPACITY ? admission_bundle_table_full(relay)
		                                       : CAIRN_ESTORAGE);
		return NULL;
	}
	return mark;
}

void bundle_mark_drop(struct relay *relay, struct bundle_mark *mark)
{
	if (mark == NULL)
		return;
	bundleseen_remove(&relay->bundles, mark->e);
	sodium_memzero(mark, sizeof(*mark));
	free(mark);
}

void bundle_mark_done(struct relay *relay, const struct bundle_mark *mark, int status)
{
	if (status == 0)
		bundleseen_settle(&relay->bundles, mark->e);
	else
		bundleseen_remove(&relay->bundles, mark->e); /* not stored: a later delivery is */
}

void bundles_load_seen(void *ctx, const uint8_t e[CAIRN_KEY_LEN], int64_t not_after)
{
	struct relay *relay = ctx;
	/* Every stored row is loaded, even past bundle_seen_max (lowered since they were
	 * written): forgetting one would store its envelope twice. Out of memory: start
	 * anyway, a duplicate is dropped by its recipient (8.10). */
	(void)bundleseen_insert(&relay->bundles, e, not_after, false, UINT32_MAX);
}

static void on_bundle_expired(struct storage_job *job)
{
	struct relay *relay = job->data;
	relay->bundle_expiring = false;
}

void bundles_expire(struct relay *relay, int64_t now)
{
	(void)bundleseen_expire(&relay->bundles, now, BUNDLE_SWEEP_PER_TICK);
	/* The stored rows: one range delete a minute, at most one at a time, and none while the
	 * relay has never held an item (rows of an earlier run are loaded into the set, which
	 * allocates it). */
	if (relay->bundle_expiring || relay->bundles.slots == NULL ||
	    now - relay->bundle_expired_at < BUNDLE_STORE_EXPIRE_S || relay->storage == NULL)
		return;
	relay->bundle_expired_at = now;
	relay->bundle_expiring = true;
	struct storage_job *job = &relay->bundle_expire_job;
	memset(job, 0, sizeof(*job));
	job->kind = STORAGE_WRITE;
	job->op.kind = STORE_BUNDLE_EXPIRE;
	job->op.stored_at = now;
	job->done = on_bundle_expired;
	job->data = relay;
	relay_submit(relay, job);
}
