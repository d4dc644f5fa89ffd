/* SPDX-License-Identifier: MIT */
/*
 * Delivery to a subscriber: in id order, a window of unacknowledged envelopes at a time,
 * bodies not in memory read back by the storage thread ahead of the cursor, in batches of one
 * read transaction each; and the end of a subscription.
 */
#include <stdlib.h>
#include <string.h>

#include "cairn/error.h"
#include "command_layer.h"
#include "log.h"
#include "port.h"
#include "relay.h"

/*
 * One batched read of a mailbox's next envelopes (STORAGE_READ_ENVELOPES, one read
 * transaction). Each envelope in it is READING with its own job never submitted, so an ACK or
 * a DROP meanwhile cannot take its read back and waits in READING_ACKED or READING_LEFT for the
 * batch, whose done() runs before that envelope's DELETE's (the batch was queued first).
 */
struct read_batch {
	struct storage_job job;
	struct relay *relay;
	uint64_t mailbox; /* its store id: the mailbox may be gone when the batch returns */
	size_t n;
	uint64_t ids[STORAGE_READ_ENVELOPES_MAX];
	size_t lens[STORAGE_READ_ENVELOPES_MAX];
	struct envelope *envs[STORAGE_READ_ENVELOPES_MAX];
};

/* ENV's read came back with STATUS (0: BODY, malloc'd, is its own from now on, else NULL).
 * The caller delivers on its mailbox afterwards. */
static void read_back(struct envelope *env, int status, uint8_t *body)
{
	struct relay *relay = env->relay;
	struct mailbox *mb = env->mailbox; /* NULL if it left the queue meanwhile */
	if (status == 0)
		env->body = body; /* ENV's to free from now on */
	switch (env->state) {
	case ENV_READING_ACKED:
		envelope_enter(env, ENV_DELETING);
		return;
	case ENV_READING_LEFT:
		envelope_enter(env, ENV_GONE);
		return;
	default:
		break;
	}
	mb->reads--;
	if (status != 0) {
		enum envelope_state to = ENV_EVICTED;
		long i = mailbox_find(mb, env->id);
		if (i >= 0) {
			mailbox_at(mb, (size_t)i)->env = NULL;
			if (status == CAIRN_EDENIED) {
				/* Gone from the disk (expired meanwhile): undeliverable. */
				mailbox_ack(&relay->mailboxes, mb, (size_t)i);
				to = ENV_GONE;
			} else if (status != CAIRN_ESHUTDOWN && mb->subscriber != NULL) {
				/* Still on disk, so still queued. Asking again at once could spin
				 * on a failing disk: end the subscription, and the owner retries
				 * later. */
				log_warn("storage: an envelope could not be read back: %s",
				         cairn_strerror(status));
				unsubscribe(relay, mb, -CAIRN_ESTORAGE);
			}
		}
		envelope_enter(env, to);
		return;
	}
	envelope_enter(env, ENV_STORED);
	long i = mb->subscriber == NULL ? mailbox_find(mb, env->id) : -1;
	if (i >= 0 && mailbox_at(mb, (size_t)i)->env == env) {
		/* Its subscriber left while it was read: offline mailboxes keep no bodies (nor
		 * would anything free this one before the next subscriber, or at exit). */
		mailbox_at(mb, (size_t)i)->env = NULL;
		envelope_enter(env, ENV_EVICTED);
	}
}

/* The batch came back: each envelope takes its body (its own copy, which the envelope frees)
 * or the batch's error, in id order; then delivery goes on if the mailbox is still there. */
static void on_batch_done(struct storage_job *job)
{
	struct read_batch *b = job->data;
	struct relay *relay = b->relay;
	size_t off = 0;
	for (size_t k = 0; k < b->n; k++) {
		int status = job->status;
		uint8_t *body = NULL;
		size_t len = status == 0 ? b->lens[k] : 0;
		if (status == 0 && len == STORE_ABSENT) {
			status = CAIRN_EDENIED;
		} else if (status == 0 && (len != b->envs[k]->len || len > job->read_len - off)) {
			status = CAIRN_ESTORAGE; /* not the length the relay stored: damaged */
		} else if (status == 0 && (body = malloc(len > 0 ? len : 1)) == NULL) {
			status = CAIRN_ENOMEM;
		} else if (status == 0) {
			memcpy(body, job->read_body + off, len);
		}
		if (len != STORE_ABSENT)
			off += len;
		read_back(b->envs[k], status, body);
	}
	free(job->read_body);
	struct mailbox *mb = mailbox_by_store_id(&relay->mailboxes, b->mailbox);
	free(b);
	if (mb != NULL)
		deliver(relay, mb);
}

/* Envelopes read ahead of the cursor at most, when [limits] read_ahead_bytes has room
 * beyond the two windows every subscriber gets: deep enough that a drain does not wait while
 * the storage thread commits (and fsyncs) the deletes its ACKs queued. */
#define READ_AHEAD_MAX 1024

/* Whether entry I (from the cursor) of MB, subscribed, is read ahead now: within two windows
 * always (what envelope_park keeps in memory for a subscriber too), beyond that up to
 * READ_AHEAD_MAX while the relay's bodies read back stay within read_ahead_bytes, and only as
 * far past two windows as the subscriber has acknowledged since it subscribed: one that
 * never reads (test_it_hostile_resources) holds two windows of bodies, not READ_AHEAD_MAX. */
static bool within_reach(const struct relay *relay, const struct mailbox *mb, size_t from_cursor,
                         uint64_t *extra, uint32_t len)
{
	size_t window = relay->cfg->delivery_window;
	if (from_cursor < 2 * window)
		return true;
	if (from_cursor >= READ_AHEAD_MAX || from_cursor - 2 * window >= mb->acks ||
	    relay->read_back_bytes + *extra + len > relay->cfg->read_ahead_bytes)
		return false;
	*extra += len;
	return true;
}

/* Whether entry I needs no read: acknowledged, or its body in memory or on its way. */
static bool has_body(const struct mailbox *mb, size_t i)
{
	const struct pending *p = mailbox_at(mb, i);
	return p->acked || p->env != NULL;
}

/*
 * Reads ahead: once the first entry without a body in memory is within one window of the
 * delivery cursor (or half of READ_AHEAD_MAX, when the budget lets it read that far), asks the
 * storage thread for every missing body within reach, in batches of
 * STORAGE_READ_ENVELOPES_MAX, each one read transaction. (Asking for one body per
 * acknowledgement made a drain cost a storage cycle per envelope; one job per body, a
 * statement and a lock per envelope.)
 */
static void read_ahead(struct relay *relay, struct mailbox *mb)
{
	if (mb->subscriber == NULL || mb->reads > 0)
		return;
	size_t window = relay->cfg->delivery_window;
	uint64_t extra = 0;
	size_t trigger = window;
	if (READ_AHEAD_MAX / 2 > trigger && within_reach(relay, mb, READ_AHEAD_MAX / 2, &extra, 0))
		trigger = READ_AHEAD_MAX / 2;
	extra = 0;
	if (mb->cursor >= mb->q_len)
		return;
	/* This runs on every ACK: bodies are read in order, so when the cursor's entry and the
	 * one TRIGGER ahead (or the last) have theirs, nothing is read now, without walking the
	 * entries between (callgrind: that walk doubled deliver's instructions). A hole between
	 * them is read once the cursor reaches it. */
	size_t probe = mb->cursor + trigger < mb->q_len ? mb->cursor + trigger - 1 : mb->q_len - 1;
	if (has_body(mb, mb->cursor) && has_body(mb, probe))
		return;
	size_t first = mb->cursor;
	while (first < mb->q_len && has_body(mb, first))
		first++;
	if (first >= mb->q_len || first - mb->cursor >= trigger)
		return;
	struct read_batch *b = NULL;
	for (size_t i = first; i <= mb->q_len; i++) {
		struct pending *p = i < mb->q_len ? mailbox_at(mb, i) : NULL;
		size_t ahead = i - mb->cursor;
		if (p != NULL &&
		    (has_body(mb, i) ? ahead >= 2 * window && ahead >= READ_AHEAD_MAX
		                     : !within_reach(relay, mb, ahead, &extra, p->len)))
			p = NULL; /* out of reach (the walk ends there too): the last batch goes now
			           */
		if (b != NULL && (p == NULL || b->n == STORAGE_READ_ENVELOPES_MAX)) {
			relay_submit(relay, &b->job);
			b = NULL;
		}
		if (p == NULL)
			break;
		if (has_body(mb, i))
			continue;
		if (b == NULL && (b = calloc(1, sizeof(*b))) == NULL)
			break;
		struct envelope *env = envelope_new(relay, mb, p->id, NULL, p->len);
		if (env == NULL) {
			if (b->n == 0)
				free(b);
			else
				relay_submit(relay, &b->job);
			break;
		}
		if (b->n == 0) {
			b->relay = relay;
			b->mailbox = mb->rec.id;
			b->job.kind = STORAGE_READ_ENVELOPES;
			b->job.read_mailbox = mb->rec.id;
			b->job.read_ids = b->ids;
			b->job.read_lens = b->lens;
			b->job.done = on_batch_done;
			b->job.data = b;
		}
		b->ids[b->n] = p->id;
		b->envs[b->n] = env;
		b->n++;
		b->job.n_read = b->n;
		b->job.read_cap += p->len;
		env->read_back = true;
		relay->read_back_bytes += p->len;
		p->env = env;
		mb->reads++;
		envelope_enter(env, ENV_READING);
	}
}

void deliver(struct relay *relay, struct mailbox *mb)
{
	struct peer *sub = mb->subscriber;
	uint32_t window = relay->cfg->delivery_window;
	while (sub != NULL && mb->inflight < window && mb->cursor < mb->q_len &&
	       relay->port->can_deliver(sub->conn)) {
		struct pending *p = mailbox_at(mb, mb->cursor);
		if (p->acked) {
			mb->cursor++;
			continue;
		}
		/* No body yet (read_ahead asks for it below), or its read is on the way: order
		 * matters, so wait. */
		if (p->env == NULL || p->env->body == NULL)
			break;
		struct cairn_msg m = {.type = CAIRN_REPLY_ENVELOPE,
		                      .request_id = mb->sub_rid,
		                      .envelope_id = p->id,
		                      .envelope = p->env->body,
		                      .envelope_len = p->len};
		peer_reply(sub, &m);
		mb->cursor++;
		mb->inflight++;
		relay->stats.envelopes_delivered++;
	}
	read_ahead(relay, mb);
}

/* Ends MB's subscription (telling the subscriber with CODE unless CODE < 0) and forgets
 * what was in flight: it is delivered again on the next SUBSCRIBE. Keeps the bodies in memory,
 * for a subscriber that takes over at once. */
void end_subscription(struct relay *relay, struct mailbox *mb, int code)
{
	struct peer *sub = mb->subscriber;
	if (sub == NULL)
		return;
	if (code >= 0) {
		struct cairn_msg m = {
		    .type = CAIRN_REPLY_END, .request_id = mb->sub_rid, .code = (uint32_t)code};
		peer_reply(sub, &m);
	}
	for (uint32_t i = 0; i < sub->subs_len; i++) {
		if (sub->subs[i] == mb) {
			sub->subs[i] = sub->subs[--sub->subs_len];
			break;
		}
	}
	mb->subscriber = NULL;
	mailbox_rewind(mb, relay->cfg->delivery_window);
}

/* Ends MB's subscription as end_subscription does, and drops the bodies it kept in memory:
 * offline mailboxes keep none. This walks the whole queue. */
void unsubscribe(struct relay *relay, struct mailbox *mb, int code)
{
	if (mb->subscriber == NULL)
		return;
	end_subscription(relay, mb, code);
	for (size_t i = 0; i < mb->q_len; i++) {
		struct pending *p = mailbox_at(mb, i);
		struct envelope *env = p->env;
		if (env != NULL && env->state == ENV_STORED) {
			p->env = NULL;
			envelope_enter(env, ENV_EVICTED);
		}
	}
}
