/* SPDX-License-Identifier: MIT */
/*
 * Delivery to a subscriber: in id order, a window of unacknowledged envelopes at a time,
 * bodies not in memory read back by the storage thread ahead of the cursor, in order; and the
 * end of a subscription.
 */
#include <stdlib.h>
#include <string.h>

#include "cairn/error.h"
#include "command_layer.h"
#include "log.h"
#include "port.h"
#include "relay.h"

static void on_read_done(struct storage_job *job)
{
	struct envelope *env = job->data;
	struct relay *relay = env->relay;
	struct mailbox *mb = env->mailbox; /* NULL if it left the queue meanwhile */
	if (job->status == 0)
		env->body = job->read_body; /* ENV's to free from now on */
	else
		free(job->read_body);
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
	if (job->status != 0) {
		enum envelope_state to = ENV_EVICTED;
		long i = mailbox_find(mb, env->id);
		if (i >= 0) {
			mailbox_at(mb, (size_t)i)->env = NULL;
			if (job->status == CAIRN_EDENIED) {
				/* Gone from the disk (expired meanwhile): undeliverable. */
				mailbox_ack(&relay->mailboxes, mb, (size_t)i);
				to = ENV_GONE;
			} else if (job->status != CAIRN_ESHUTDOWN && mb->subscriber != NULL) {
				/* Still on disk, so still queued. Asking again at once could spin
				 * on a failing disk: end the subscription, and the owner retries
				 * later. */
				log_warn("storage: an envelope could not be read back: %s",
				         cairn_strerror(job->status));
				unsubscribe(relay, mb, -CAIRN_ESTORAGE);
			}
		}
		envelope_enter(env, to);
		deliver(relay, mb);
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
	deliver(relay, mb);
}

/*
 * Reads ahead: once the first entry without a body in memory is within one window of the
 * delivery cursor, asks the storage thread for every missing body in the next two windows, in
 * one batch. (Asking for one body per acknowledgement made a drain cost a storage cycle per
 * envelope.) Two windows is also what envelope_park keeps in memory for a subscriber.
 */
static void read_ahead(struct relay *relay, struct mailbox *mb)
{
	if (mb->subscriber == NULL || mb->reads > 0)
		return;
	size_t window = relay->cfg->delivery_window;
	size_t end = mb->cursor + 2 * window < mb->q_len ? mb->cursor + 2 * window : mb->q_len;
	size_t first = mb->cursor;
	while (first < end && (mailbox_at(mb, first)->acked || mailbox_at(mb, first)->env))
		first++;
	if (first >= end || first >= mb->cursor + window)
		return;
	for (size_t i = first; i < end; i++) {
		struct pending *p = mailbox_at(mb, i);
		if (p->acked || p->env != NULL)
			continue;
		struct envelope *env = envelope_new(relay, mb, p->id, NULL, p->len);
		if (env == NULL)
			break;
		env->job.kind = STORAGE_READ;
		env->job.read_id = p->id;
		env->job.read_mailbox = mb->rec.id;
		env->job.done = on_read_done;
		p->env = env;
		mb->reads++;
		envelope_enter(env, ENV_READING);
		relay_submit(relay, &env->job);
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
