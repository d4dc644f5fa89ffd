/* SPDX-License-Identifier: MIT */
/*
 * The change feed, loop side (feed.h): this node's memory follows what the other nodes
 * commit. A wake from the engine (a NOTIFY, on another thread) or the one-second timer asks
 * for a read; one STORAGE_FEED job is out at a time, and a wake meanwhile, or a read that
 * left rows waiting (`more`), reads again when it is back. Each row is decoded once to check
 * it, then applied op by op as the start-up load and the commands would: so relay-wide
 * counts (mailboxes, stored bytes) are the whole store's, off by the feed's lag.
 *
 * A row that does not decode, or a feed this node can no longer follow (CAIRN_ESTATE: it was
 * cut off for longer than the feed is kept), stops the relay with an error: its memory would
 * drift from the store, and a restart reloads it. A failed read is tried again at the next
 * wake or tick.
 */
#include <stdlib.h>
#include <string.h>

#include "cairn/error.h"
#include "command_layer.h"
#include "feed.h"
#include "feed_codec.h"
#include "log.h"
#include "relay.h"

#define FEED_TIMER_MS 1000

/* ---- applying ops -------------------------------------------------------------------- */

static void apply_mailbox_put(struct relay *relay, const struct store_mailbox *rec)
{
	struct mailbox_index *ix = &relay->mailboxes;
	if (mailbox_by_store_id(ix, rec->id) == NULL &&
	    mailbox_by_recipient(ix, rec->recipient_id) == NULL &&
	    mailbox_by_sender(ix, rec->sender_id) == NULL)
		(void)mailbox_add(ix, rec);
}

/* SECURE and INTAKE carry the whole record: the fields they set are copied. */
static void apply_mailbox_change(struct relay *relay, const struct store_op *op)
{
	struct mailbox *mb = mailbox_by_store_id(&relay->mailboxes, op->mailbox->id);
	if (mb == NULL)
		return;
	if (op->kind == STORE_MAILBOX_SECURE) {
		memcpy(mb->rec.credential_digest, op->mailbox->credential_digest,
		       CAIRN_CREDENTIAL_LEN);
		mb->rec.secured = true;
	} else {
		mb->rec.work_bits = op->mailbox->work_bits;
	}
}

static void apply_mailbox_touch(struct relay *relay, const struct store_op *op)
{
	struct mailbox *mb = mailbox_by_store_id(&relay->mailboxes, op->mailbox_id);
	if (mb != NULL && op->stored_at > mb->rec.touched) {
		mb->rec.touched = op->stored_at;
		mailbox_touched(&relay->mailboxes, mb);
	}
}

/* The live entries of MB before offset END: what its subscriber has in flight when the
 * cursor is at END. */
static uint32_t live_before(const struct mailbox *mb, size_t end)
{
	uint32_t n = 0;
	for (size_t i = 0; i < end; i++)
		n += !mailbox_at(mb, i)->acked;
	return n;
}

/*
 * Another node's envelope: queued in id order (its id may be below one this node gave just
 * before), dated for expiry, and delivered at once to a subscriber here, its body read from
 * the store as a loaded envelope's is. One that lands before the delivery cursor would
 * otherwise wait for the next SUBSCRIBE: the cursor moves back to it, and what followed is
 * delivered again (at least once; clients drop duplicates).
 */
static void apply_envelope_put(struct relay *relay, const struct store_op *op)
{
	ids_seen(relay, op->envelope_id);
	if (op->bundle_e != NULL)
		bundles_load_seen(relay, op->bundle_e, op->bundle_until);
	struct mailbox *mb = mailbox_by_store_id(&relay->mailboxes, op->mailbox_id);
	size_t pos;
	/* Below what expiry already removed here: its range delete takes it on disk too. */
	if (mb == NULL || op->envelope_id < relay->logs.expired_below ||
	    mailbox_insert(&relay->mailboxes, mb, op->envelope_id, op->len, &pos) != 0)
		return;
	add_time_mark(relay, op->stored_at, op->envelope_id + 1);
	if (pos < mb->cursor) {
		mb->cursor = pos;
		mb->inflight = live_before(mb, pos);
	}
	deliver(relay, mb);
}

static void apply_envelope_delete(struct relay *relay, const struct store_op *op)
{
	struct mailbox *mb = mailbox_by_store_id(&relay->mailboxes, op->mailbox_id);
	long i = mb != NULL ? mailbox_find(mb, op->envelope_id) : -1;
	if (i < 0)
		return;
	/* Its body in memory, or its read back in flight, goes (envelope.h DROP). */
	struct envelope *env = mailbox_ack(&relay->mailboxes, mb, (size_t)i);
	if (env != NULL)
		envelope_drop(env);
	deliver(relay, mb);
}

static void apply_expire(struct relay *relay, uint64_t cutoff)
{
	if (cutoff <= relay->logs.expired_below)
		return;
	(void)envelopes_expire_below(relay, cutoff, false);
	logs_expire_below(relay, cutoff);
}

static int apply_op(void *ctx, const struct store_op *op)
{
	struct relay *relay = ctx;
	switch (op->kind) {
	case STORE_MAILBOX_PUT:
		if (op->mailbox != NULL)
			apply_mailbox_put(relay, op->mailbox);
		break;
	case STORE_MAILBOX_SECURE:
	case STORE_MAILBOX_INTAKE:
		if (op->mailbox != NULL)
			apply_mailbox_change(relay, op);
		break;
	case STORE_MAILBOX_TOUCH:
		apply_mailbox_touch(relay, op);
		break;
	case STORE_MAILBOX_DELETE: {
		struct mailbox *mb = mailbox_by_store_id(&relay->mailboxes, op->mailbox_id);
		if (mb != NULL)
			mailbox_forget(relay, mb);
		break;
	}
	case STORE_ENVELOPE_PUT:
		apply_envelope_put(relay, op);
		break;
	case STORE_ENVELOPE_DELETE:
		apply_envelope_delete(relay, op);
		break;
	case STORE_EXPIRE:
		apply_expire(relay, op->envelope_id);
		break;
	case STORE_LOG_PUT:
		if (op->log != NULL)
			logs_apply_put(relay, op->log);
		break;
	case STORE_LOG_TOUCH:
		logs_apply_touch(relay, op->log_key, op->stored_at);
		break;
	case STORE_LOG_DELETE:
		logs_apply_delete(relay, op->log_key);
		break;
	case STORE_LOG_ENTRY_PUT: {
		struct store_log_entry_info info = {.id = op->envelope_id,
		                                    .log = op->log_key,
		                                    .seq = op->seq,
		                                    .len = op->len,
		                                    .stored_at = op->stored_at};
		logs_apply_entry(relay, &info);
		break;
	}
	/* Another node's id mark covers its own ids (their low byte is its node): raising this
	 * node's past it would take a minute of clock each time, and their marks would leapfrog.
	 * Its ids are raised past the ids it sees instead. The seen rows' expiry is each node's
	 * own sweep of its memory (bundleseen.h). */
	case STORE_ID_MARK:
	case STORE_BUNDLE_EXPIRE:
		break;
	}
	return 0;
}

static int check_op(void *ctx, const struct store_op *op)
{
	(void)ctx;
	(void)op;
	return 0;
}

int feed_apply(struct relay *relay, const uint8_t *ops, size_t len)
{
	/* Decoded twice, so that a row is applied whole or not at all. */
	int rc = feed_decode(ops, len, check_op, NULL);
	return rc != 0 ? rc : feed_decode(ops, len, apply_op, relay);
}

/* ---- reading -------------------------------------------------------------------------- */

/* This node's memory can no longer follow the store: stop (the relay exits with an error,
 * and a restart loads the store afresh). */
static void feed_lost(struct relay *relay, int code)
{
	relay->exit_code = code;
	if (relay->feed_lost != NULL)
		relay->feed_lost(relay);
}

static void on_feed_done(struct storage_job *job)
{
	struct relay *relay = job->data;
	struct store_feed feed = job->feed;
	memset(&job->feed, 0, sizeof(job->feed));
	relay->feed_reading = false;
	if (relay->stopping || relay->exit_code != 0) {
		store_feed_free(&feed);
		return;
	}
	const char *what = relay->node != 0 ? "change feed" : "store";
	if (job->status == CAIRN_ESTATE) {
		log_error("change feed: this node was cut off from the store for longer than the "
		          "feed is kept; stopping, to start again from the store");
		feed_lost(relay, CAIRN_ESTATE);
	} else if (job->status == CAIRN_EEXIST) {
		/* Writes could only fail from now on, and its memory no longer follows the store:
		 * stopping says why, and lets a supervisor or the balancer move on. */
		log_error(
		    "store: another relay took this store while this one was cut off from the "
		    "database (a failover?); stopping");
		feed_lost(relay, CAIRN_EEXIST);
	} else if (job->status != 0) {
		/* Tried again at the next wake or tick; said once, not once a second. */
		if (!relay->feed_failing)
			log_warn("%s: cannot read it: %s (trying again every second)", what,
			         cairn_strerror(job->status));
		relay->feed_failing = true;
	} else {
		if (relay->feed_failing)
			log_warn("%s: read again", what);
		relay->feed_failing = false;
		for (size_t i = 0; i < feed.n; i++) {
			int rc = feed_apply(relay, feed.rows[i].ops, feed.rows[i].len);
			if (rc != 0) {
				log_error("change feed: a row of node %u cannot be applied: %s; "
				          "stopping, to start again from the store",
				          (unsigned)feed.rows[i].node, cairn_strerror(rc));
				feed_lost(relay, rc);
				break;
			}
		}
		if (feed.more)
			relay->feed_again = true;
	}
	store_feed_free(&feed);
	if (relay->feed_again)
		feed_poll(relay);
}

void feed_poll(struct relay *relay)
{
	/* A relay alone reads only when feed_start gave it the timer (its store's check). */
	if ((relay->node == 0 && !relay->feed_handles) || relay->storage == NULL ||
	    relay->stopping || relay->exit_code != 0)
		return;
	if (relay->feed_reading) {
		relay->feed_again = true;
		return;
	}
	relay->feed_again = false;
	relay->feed_reading = true;
	memset(&relay->feed_job, 0, sizeof(relay->feed_job));
	relay->feed_job.kind = STORAGE_FEED;
	relay->feed_job.done = on_feed_done;
	relay->feed_job.data = relay;
	relay_submit(relay, &relay->feed_job);
}

/* ---- waking ---------------------------------------------------------------------------- */

/* Any thread (the engine's listener): uv_async_send is the one libuv call that may be made
 * from another thread, and several sends before the loop runs make one callback. */
static void wake_from_engine(void *arg)
{
	struct relay *relay = arg;
	uv_async_send(&relay->feed_wake);
}

static void on_wake(uv_async_t *h)
{
	feed_poll(h->data);
}

static void on_timer(uv_timer_t *t)
{
	feed_poll(t->data);
}

int feed_start(struct relay *relay, uv_loop_t *loop, const struct store_engine *engine,
               struct store_params *params)
{
	if (relay->node == 0 && engine->feed_read == NULL)
		return 0;
	if (uv_async_init(loop, &relay->feed_wake, on_wake) != 0)
		return CAIRN_ENOMEM;
	uv_timer_init(loop, &relay->feed_timer);
	relay->feed_wake.data = relay->feed_timer.data = relay;
	relay->feed_handles = true;
	uv_timer_start(&relay->feed_timer, on_timer, FEED_TIMER_MS, FEED_TIMER_MS);
	if (relay->node != 0) {
		params->feed_wake = wake_from_engine;
		params->feed_wake_arg = relay;
	}
	return 0;
}

void feed_pause(struct relay *relay)
{
	if (relay->feed_handles)
		uv_timer_stop(&relay->feed_timer);
}

static void close_once(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

void feed_stop(struct relay *relay)
{
	if (!relay->feed_handles)
		return;
	close_once((uv_handle_t *)&relay->feed_wake);
	close_once((uv_handle_t *)&relay->feed_timer);
}
