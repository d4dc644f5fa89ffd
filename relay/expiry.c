/* SPDX-License-Identifier: MIT */
/*
 * Time in the command layer: the coarse times the store keeps, a mailbox's touched time, and
 * the removal of a mailbox (DELETE, or idle for the TTL) and of expired envelopes (by id
 * range, through the time marks of ids.c).
 */
#include <stdlib.h>
#include <string.h>

#include "cairn/error.h"
#include "command_layer.h"
#include "commands.h"
#include "log.h"
#include "relay.h"

/* Drops an envelope leaving its mailbox for good (deleted or expired): the store operation
 * that follows (STORE_MAILBOX_DELETE, STORE_EXPIRE) deletes it on disk. */
static void drop_envelope(void *ctx, struct envelope *env)
{
	(void)ctx;
	if (env != NULL)
		envelope_drop(env);
}

/*
 * MB was just touched by its owner or a sender. The store keeps the time only to the expiry
 * grain, so this writes at most once a grain per mailbox: the hot path gains no writes. If
 * the write cannot be queued, the time stays as it was and the next touch tries again.
 */
void mailbox_touch(struct relay *relay, struct mailbox *mb)
{
	int64_t t = coarse_time(relay, relay_stamp(relay));
	if (t <= mb->rec.touched)
		return;
	struct request *r = request_new(NULL, 0, request_done);
	if (r == NULL)
		return;
	mb->rec.touched = t;
	mailbox_touched(&relay->mailboxes, mb);
	r->job.op.kind = STORE_MAILBOX_TOUCH;
	r->job.op.mailbox_id = mb->rec.id;
	r->job.op.stored_at = t;
	relay_submit(relay, &r->job);
}

/*
 * Removes MB and its envelopes: from memory now, from the store with one operation that names
 * the envelopes MB holds, so its cost is what MB holds and not what the store holds. Answers
 * C's request REQUEST_ID once that is durable (if C is set). Returns 0, or CAIRN_ENOMEM with
 * MB untouched (C has been answered with an error).
 */
int mailbox_destroy(struct relay *relay, struct mailbox *mb, struct peer *p, uint32_t request_id)
{
	struct request *r = request_new(p, request_id, request_done);
	if (r == NULL) {
		if (p != NULL)
			peer_reply_error(p, request_id, CAIRN_ESTORAGE);
		return CAIRN_ENOMEM;
	}
	size_t n = 0;
	if (mb->count > 0 && (r->ids = malloc(mb->count * sizeof(*r->ids))) == NULL) {
		r->job.status = CAIRN_ESTORAGE;
		request_finish(r);
		return CAIRN_ENOMEM;
	}
	for (size_t i = 0; i < mb->q_len; i++)
		if (!mailbox_at(mb, i)->acked)
			r->ids[n++] = mailbox_at(mb, i)->id;
	r->job.op.kind = STORE_MAILBOX_DELETE;
	r->job.op.mailbox_id = mb->rec.id;
	r->job.op.envelope_ids = r->ids;
	r->job.op.n_envelope_ids = n;
	mailbox_forget(relay, mb);
	relay_submit(relay, &r->job);
	return 0;
}

void mailbox_forget(struct relay *relay, struct mailbox *mb)
{
	unsubscribe(relay, mb, 0);
	mailbox_expire(&relay->mailboxes, mb, UINT64_MAX, drop_envelope, relay);
	mailbox_remove(&relay->mailboxes, mb);
}

/* Mailbox work one expiry pass may do on the loop: a mailbox costs one plus its envelopes. */
#define IDLE_EXPIRY_BUDGET 65536

/* Used-work entries expired per tick, at most: a few milliseconds of the loop. */
#define WORK_EXPIRE_PER_TICK 65536

/*
 * Removes mailboxes that neither their owner nor a sender has touched for the TTL, least
 * recently touched first, within a budget per pass (the rest wait for the next pass, a second
 * later). A subscribed owner is online: its mailbox counts as touched.
 */
static void expire_idle_mailboxes(struct relay *relay, int64_t now)
{
	int64_t limit = now - (int64_t)relay->cfg->ttl_s;
	struct mailbox_index *ix = &relay->mailboxes;
	size_t budget = IDLE_EXPIRY_BUDGET;
	struct mailbox *mb;
	while (budget > 0 && (mb = ix->idle_head) != NULL && mb->rec.touched <= limit) {
		size_t cost = 1 + (size_t)mb->count;
		if (mb->subscriber != NULL) {
			mailbox_touch(relay, mb);
			if (ix->idle_head == mb)
				mailbox_touched(ix,
				                mb); /* not written, but not in the way either */
		} else if (mailbox_destroy(relay, mb, NULL, 0) != 0) {
			return; /* out of memory: the next pass tries again */
		} else {
			relay->stats.mailboxes_expired++;
		}
		budget = cost < budget ? budget - cost : 0;
	}
}

void commands_expire(struct relay *relay, int64_t now)
{
	/* The pass's reading is the high water of relay_stamp too, so that a step back right
	 * after an idle spell still dates new envelopes after the old ones. Expiry itself goes
	 * by NOW: a step forward expires what that time says is past its TTL, a step back
	 * expires nothing until the clock is past the marks again. */
	if (now > relay->stamp_high)
		relay->stamp_high = now;
	ids_keep_ahead(relay);
	spares_tick(&relay->requests, free); /* a relay that runs no command keeps none */
	expire_idle_mailboxes(relay, now);
	/* Used work, a bounded number a tick (inserts expire some too): a table that filled
	 * in a burst empties over a few ticks instead of stalling the loop in one. */
	(void)worktable_expire(&relay->work, now, WORK_EXPIRE_PER_TICK);
	bundles_expire(relay, now);
	int64_t limit = now - (int64_t)relay->cfg->ttl_s;
	size_t k = 0;
	while (k < relay->marks_len && relay->marks[k].time <= limit)
		k++;
	/* Every envelope (and log entry) below the newest expired mark's id was stored by that
	 * mark's time. */
	uint64_t cutoff = k > 0 ? relay->marks[k - 1].next_id : 0;
	logs_expire(relay, now, cutoff);
	if (k == 0)
		return;
	/* Marks used up: the same range is never deleted twice. */
	memmove(relay->marks, relay->marks + k, (relay->marks_len - k) * sizeof(*relay->marks));
	relay->marks_len -= k;
	relay->stats.envelopes_expired += envelopes_expire_below(relay, cutoff, true);
}

size_t envelopes_expire_below(struct relay *relay, uint64_t cutoff, bool store)
{
	size_t dropped = 0;
	struct mailbox_index *ix = &relay->mailboxes;
	for (size_t b = 0; b < ix->buckets; b++)
		for (struct mailbox *mb = ix->by_recipient[b]; mb != NULL;
		     mb = mb->next_by_recipient)
			dropped += mailbox_expire(ix, mb, cutoff, drop_envelope, relay);
	if (store) {
		struct request *r = request_new(NULL, 0, request_done);
		if (r == NULL)
			return dropped; /* the next expiry pass covers this range too */
		r->job.op.kind = STORE_EXPIRE;
		r->job.op.envelope_id = cutoff;
		relay_submit(relay, &r->job);
	}
	/* Their subscribers may now have room in their windows. */
	for (size_t b = 0; b < ix->buckets; b++)
		for (struct mailbox *mb = ix->by_recipient[b]; mb != NULL;
		     mb = mb->next_by_recipient)
			if (mb->subscriber != NULL)
				deliver(relay, mb);
	return dropped;
}
