/* SPDX-License-Identifier: MIT */
/*
 * The life of an envelope in memory, from SEND to ACK: its write (answered once durable, or
 * cancelled when its owner acknowledges first), its body kept or dropped (parked) once
 * durable, its delete, and its memory freed once nothing refers to it.
 */
#include <stdlib.h>
#include <string.h>

#include "cairn/error.h"
#include "command_layer.h"
#include "log.h"
#include "relay.h"

void envelope_maybe_free(struct envelope *env)
{
	if (env->queued || env->io != ENV_IO_NONE || env->disk == ENV_DISK_DELETING)
		return;
	if (env->body_owned)
		free(env->body);
	free(env);
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

/* ENV leaves its mailbox's queue. Invariant: env->mailbox is set exactly while queued. */
void envelope_detach(struct envelope *env)
{
	env->queued = false;
	env->mailbox = NULL;
}

/*
 * ENV leaves its mailbox's queue (acknowledged, expired or its mailbox deleted). Its storage
 * job is cancelled if the storage thread has not taken it yet: a write then never reaches the
 * disk (and its sender can be answered now), a read for delivery is no longer wanted. Returns
 * true if the envelope is or will be on disk: whoever took it out of the queue must then
 * delete it there too. (A cancelled read is no reason to think it is not stored: it was being
 * read because it is.)
 */
bool envelope_leave(struct relay *relay, struct envelope *env)
{
	struct mailbox *mb = env->mailbox;
	envelope_detach(env);
	switch (env->io) {
	case ENV_IO_NONE:
		return env->disk == ENV_DISK_STORED;
	case ENV_IO_READ:
		/* No longer counts towards its mailbox's delivery, cancelled or not. */
		if (mb != NULL)
			mb->reads--;
		if (storage_cancel(relay->storage, &env->io_job))
			env->io = ENV_IO_NONE;
		return true;
	case ENV_IO_WRITE:
		if (!storage_cancel(relay->storage, &env->io_job))
			return true; /* taken: it will be on disk, so the delete follows it */
		env->io = ENV_IO_NONE;
		relay->stats.writes_cancelled++;
		envelope_answer_sender(env, 0);
		return false;
	}
	return true;
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
	envelope_detach(env);
	envelope_maybe_free(env);
}

void on_put_done(struct storage_job *job)
{
	struct envelope *env = job->data;
	struct relay *relay = env->relay;
	struct mailbox *mb = env->mailbox;
	env->io = ENV_IO_NONE;
	if (job->status != 0) {
		log_error("storage: an envelope could not be stored: %s",
		          cairn_strerror(job->status));
		envelope_answer_sender(env, CAIRN_ESTORAGE);
		long i = mb ? mailbox_find(mb, env->id) : -1;
		if (i >= 0) {
			/* Not stored, so it is not accepted: take it out of the mailbox. */
			mailbox_ack(&relay->mailboxes, mb, (size_t)i);
			envelope_detach(env);
		}
		envelope_maybe_free(env);
		return;
	}
	if (env->disk == ENV_DISK_NONE)
		env->disk = ENV_DISK_STORED; /* else acknowledged meanwhile: DELETING already */
	envelope_answer_sender(env, 0);
	if (mb != NULL)
		envelope_park(relay, mb, env);
	else
		envelope_maybe_free(env);
}

static void on_delete_done(struct storage_job *job)
{
	struct envelope *env = job->data;
	env->disk = ENV_DISK_DELETED;
	if (job->status != 0)
		log_warn("storage: an acknowledged envelope could not be deleted: %s",
		         cairn_strerror(job->status));
	envelope_maybe_free(env);
}

void envelope_delete(struct relay *relay, struct envelope *env)
{
	if (env->disk == ENV_DISK_DELETING || env->disk == ENV_DISK_DELETED)
		return;
	env->disk = ENV_DISK_DELETING;
	relay_submit(relay, &env->del_job);
}

struct envelope *envelope_new(struct relay *relay, struct mailbox *mb, uint64_t id,
                              const uint8_t *body, uint32_t len)
{
	struct envelope *env = malloc(sizeof(*env) + (body ? len : 0));
	if (env == NULL)
		return NULL;
	memset(env, 0, sizeof(*env)); /* the body is copied over below */
	env->relay = relay;
	env->id = id;
	env->mailbox = mb;
	env->len = len;
	if (body != NULL) {
		env->body = (uint8_t *)(env + 1);
		memcpy(env->body, body, len);
	}
	env->io_job.data = env;
	env->del_job.data = env;
	env->del_job.kind = STORAGE_WRITE;
	env->del_job.op.kind = STORE_ENVELOPE_DELETE;
	env->del_job.op.envelope_id = id;
	env->del_job.done = on_delete_done;
	return env;
}
