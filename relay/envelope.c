/* SPDX-License-Identifier: MIT */
/*
 * The life of an envelope in memory (envelope.h), from SEND to ACK: its write (answered once
 * durable, or cancelled when its owner acknowledges first), its body kept or dropped once
 * durable, its delete, and its memory freed once nothing refers to it. Every step goes through
 * envelope_enter.
 */
#include <stdlib.h>
#include <string.h>

#include "cairn/error.h"
#include "command_layer.h"
#include "log.h"
#include "relay.h"

#define TO(s) (1u << (s))

/* The table of envelope.h: the states each state may step to. Final states step nowhere. */
static const uint16_t legal_steps[ENV_STATES] = {
    [ENV_NEW] = TO(ENV_WRITING) | TO(ENV_READING) | TO(ENV_GONE),
    [ENV_WRITING] = TO(ENV_STORED) | TO(ENV_GONE) | TO(ENV_CANCELLED) | TO(ENV_WRITING_ACKED) |
                    TO(ENV_WRITING_LEFT),
    [ENV_STORED] = TO(ENV_EVICTED) | TO(ENV_DELETING) | TO(ENV_GONE),
    [ENV_READING] = TO(ENV_STORED) | TO(ENV_EVICTED) | TO(ENV_GONE) | TO(ENV_DELETING) |
                    TO(ENV_READING_ACKED) | TO(ENV_READING_LEFT),
    [ENV_WRITING_ACKED] = TO(ENV_DELETING),
    [ENV_WRITING_LEFT] = TO(ENV_GONE),
    [ENV_READING_ACKED] = TO(ENV_DELETING),
    [ENV_READING_LEFT] = TO(ENV_GONE),
    [ENV_DELETING] = TO(ENV_GONE),
};

bool envelope_step_legal(enum envelope_state from, enum envelope_state to)
{
	return (unsigned)from < ENV_STATES && (unsigned)to < ENV_STATES &&
	       (legal_steps[from] & TO(to)) != 0;
}

const char *envelope_state_name(enum envelope_state s)
{
	static const char *const names[ENV_STATES] = {
	    [ENV_NEW] = "NEW",
	    [ENV_WRITING] = "WRITING",
	    [ENV_STORED] = "STORED",
	    [ENV_READING] = "READING",
	    [ENV_WRITING_ACKED] = "WRITING_ACKED",
	    [ENV_WRITING_LEFT] = "WRITING_LEFT",
	    [ENV_READING_ACKED] = "READING_ACKED",
	    [ENV_READING_LEFT] = "READING_LEFT",
	    [ENV_DELETING] = "DELETING",
	    [ENV_CANCELLED] = "CANCELLED",
	    [ENV_EVICTED] = "EVICTED",
	    [ENV_GONE] = "GONE",
	};
	return (unsigned)s < ENV_STATES ? names[s] : "?";
}

void envelope_enter(struct envelope *env, enum envelope_state to)
{
#if !defined(NDEBUG) || defined(CAIRN_CHECK_STATES)
	if (!envelope_step_legal(env->state, to)) {
		log_error("envelope %llu: illegal step %s -> %s", (unsigned long long)env->id,
		          envelope_state_name(env->state), envelope_state_name(to));
		abort();
	}
#endif
	env->state = to;
	if (to >= ENV_WRITING_ACKED)
		env->mailbox = NULL; /* out of its queue */
	if (to >= ENV_CANCELLED) {
		if (env->read_back)
			env->relay->read_back_bytes -= env->len; /* drain */
		free(env->bundle);
		if (env->body != NULL && env->body != (uint8_t *)(env + 1))
			free(env->body); /* read back from the store */
		free(env);
	}
}

/* Sends the sender its answer for ENV (once). */
void envelope_answer_sender(struct envelope *env, int status)
{
	struct peer *s = env->sender;
	if (s == NULL)
		return;
	env->sender = NULL;
	if (status == 0)
		peer_reply_ok(s, env->sender_rid);
	else
		peer_reply_error(s, env->sender_rid, status);
	peer_release(s);
}

/*
 * Takes ENV's PUT back if the storage has not taken it yet: it never reaches the disk, and
 * its sender is answered now (its owner has it, or it expired or its mailbox went: either
 * way it was accepted). Returns whether it was taken back.
 */
static bool cancel_write(struct envelope *env)
{
	struct relay *relay = env->relay;
	/* A bundled envelope's write carries its seen row: it goes to the disk, then the
	 * delete follows it (5.12 rule 3). */
	if (env->bundle != NULL || !storage_cancel(relay->storage, &env->job))
		return false;
	relay->stats.writes_cancelled++;
	envelope_answer_sender(env, 0);
	return true;
}

/* Takes ENV's read back if the storage has not taken it yet. The read no longer counts
 * towards its mailbox's delivery either way. */
static bool cancel_read(struct envelope *env)
{
	if (env->mailbox != NULL)
		env->mailbox->reads--;
	return storage_cancel(env->relay->storage, &env->job);
}

void envelope_ack(struct envelope *env)
{
	struct relay *relay = env->relay;
	switch (env->state) {
	case ENV_WRITING:
		if (cancel_write(env)) {
			envelope_enter(env, ENV_CANCELLED);
			return;
		}
		/* Taken: it will be on disk, so the delete follows it. */
		envelope_enter(env, ENV_WRITING_ACKED);
		break;
	case ENV_READING:
		/* It was being read because it is on disk: delete it there either way. */
		envelope_enter(env, cancel_read(env) ? ENV_DELETING : ENV_READING_ACKED);
		break;
	default:
		envelope_enter(env, ENV_DELETING);
		break;
	}
	relay_submit(relay, &env->del_job);
}

void envelope_drop(struct envelope *env)
{
	switch (env->state) {
	case ENV_WRITING:
		envelope_enter(env, cancel_write(env) ? ENV_CANCELLED : ENV_WRITING_LEFT);
		break;
	case ENV_READING:
		envelope_enter(env, cancel_read(env) ? ENV_GONE : ENV_READING_LEFT);
		break;
	default:
		envelope_enter(env, ENV_GONE);
		break;
	}
}

/*
 * ENV has just become durable. Its body stays in memory while it is about to be delivered
 * (the owner is subscribed and it is within two windows of the delivery cursor) or is in
 * flight waiting for its ACK; otherwise it is dropped and delivery reads it back later. This
 * bounds memory per mailbox to two windows of envelopes while keeping online delivery off
 * the disk.
 */
static void envelope_park(struct relay *relay, struct mailbox *mb, struct envelope *env)
{
	long i = mailbox_find(mb, env->id);
	size_t ahead = 2 * (size_t)relay->cfg->delivery_window;
	if (i < 0 || (size_t)i < mb->cursor ||
	    (mb->subscriber != NULL && (size_t)i < mb->cursor + ahead))
		return;
	mailbox_at(mb, (size_t)i)->env = NULL;
	envelope_enter(env, ENV_EVICTED);
}

static void on_put_done(struct storage_job *job)
{
	struct envelope *env = job->data;
	struct relay *relay = env->relay;
	struct mailbox *mb = env->mailbox;
	if (env->bundle != NULL)
		bundle_mark_done(relay, env->bundle, job->status);
	admission_write_done(relay, job->status);
	if (job->status == CAIRN_ECAPACITY) {
		/* The disk had no room: nothing of it was stored, and the full state's one log
		 * line says so (admission.c); the sender may try another relay or later. */
		envelope_answer_sender(env, CAIRN_ECAPACITY);
	} else if (job->status != 0) {
		/* admission_write_done logged the failure once for all of them. */
		envelope_answer_sender(env, CAIRN_ESTORAGE);
	} else {
		envelope_answer_sender(env, 0);
	}
	switch (env->state) {
	case ENV_WRITING_ACKED:
		envelope_enter(env, ENV_DELETING);
		return;
	case ENV_WRITING_LEFT:
		envelope_enter(env, ENV_GONE);
		return;
	default:
		break;
	}
	if (job->status != 0) {
		long i = mailbox_find(mb, env->id);
		/* Not stored, so it is not accepted: take it out of the mailbox. */
		if (i >= 0)
			mailbox_ack(&relay->mailboxes, mb, (size_t)i);
		envelope_enter(env, ENV_GONE);
		return;
	}
	envelope_enter(env, ENV_STORED);
	envelope_park(relay, mb, env);
}

static void on_delete_done(struct storage_job *job)
{
	struct envelope *env = job->data;
	/* Not deleted even with the reserve's room (storage.c): it stays on disk until expiry
	 * or a restart redelivers it, which clients drop as a duplicate. */
	admission_write_done(env->relay, job->status); /* a failure is logged there, once */
	envelope_enter(env, ENV_GONE);
}

void envelope_write(struct envelope *env, struct peer *sender, uint32_t request_id, int64_t now)
{
	struct relay *relay = env->relay;
	struct mailbox *mb = env->mailbox;
	env->stored_at = now;
	env->sender = sender;
	env->sender_rid = request_id;
	peer_hold(sender);
	env->job.kind = STORAGE_WRITE;
	env->job.done = on_put_done;
	env->job.op = (struct store_op){.kind = STORE_ENVELOPE_PUT,
	                                .mailbox_id = mb->rec.id,
	                                .envelope_id = env->id,
	                                .body = env->body,
	                                .len = env->len,
	                                .stored_at = coarse_time(relay, now)};
	if (env->bundle != NULL) {
		env->job.op.bundle_e = env->bundle->e;
		env->job.op.bundle_until = coarse_time(relay, env->bundle->not_after);
	}
	envelope_enter(env, ENV_WRITING);
	/* An online owner usually acknowledges within milliseconds, which cancels the write:
	 * holding it back a little keeps online traffic off the disk even when the round
	 * trip is longer than the storage thread's gathering time. */
	if (mb->subscriber != NULL && env->bundle == NULL)
		storage_submit_held(relay->storage, &env->job, relay->cfg->online_write_hold_ms);
	else
		relay_submit(relay, &env->job);
}

struct envelope *envelope_new(struct relay *relay, struct mailbox *mb, uint64_t id,
                              const uint8_t *body, uint32_t len)
{
	struct envelope *env = malloc(sizeof(*env) + (body ? len : 0));
	if (env == NULL)
		return NULL;
	memset(env, 0, sizeof(*env)); /* the body is copied over below; state NEW */
	env->relay = relay;
	env->id = id;
	env->mailbox = mb;
	env->len = len;
	if (body != NULL) {
		env->body = (uint8_t *)(env + 1);
		memcpy(env->body, body, len);
	}
	env->job.data = env;
	env->del_job.data = env;
	env->del_job.kind = STORAGE_WRITE;
	env->del_job.op.kind = STORE_ENVELOPE_DELETE;
	env->del_job.op.envelope_id = id;
	env->del_job.op.mailbox_id = mb->rec.id;
	env->del_job.done = on_delete_done;
	return env;
}
