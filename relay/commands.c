/* SPDX-License-Identifier: MIT */
/*
 * Mailbox semantics. A SEND is answered OK only once its envelope is durable, or once its
 * owner has acknowledged it (then the write is cancelled before it reaches the disk: online
 * traffic costs no storage I/O). Delivery is in id order with a window of unacknowledged
 * envelopes; bodies not in memory are read back by the storage thread, in order.
 *
 * "No such mailbox", "not authenticated" and "wrong credential" share one reply and one
 * code path, and do the same cryptographic work, so a peer cannot tell them apart.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "admission.h"
#include "cairn/error.h"
#include "commands.h"
#include "log.h"
#include "port.h"
#include "relay.h"

#define AUTH_CONTEXT     "cairn/1 auth"
#define AUTH_CONTEXT_LEN 12

/*
 * The command layer's state of one connection (port.h): what it may manage and what it is
 * subscribed to. Lives as long as the connection's memory (the handler's open to free), so a
 * request that holds a reference on the connection may use it after the connection closed.
 */
struct peer {
	struct relay *relay;
	struct conn *conn;        /* opaque: reached only through relay->port */
	struct peer *prev, *next; /* relay->peers, while the connection is open */
	bool open;
	uint32_t inflight; /* requests waiting for the storage thread */
	uint64_t *authed;  /* store ids of mailboxes this connection may manage */
	uint32_t authed_len;
	struct mailbox **subs; /* mailboxes this connection is subscribed to */
	uint32_t subs_len;
	struct admission_budget budget; /* CREATE/SECURE */
};

/* A storage job for a request that is not an envelope's own write. */
struct request {
	struct storage_job job;
	struct relay *relay;
	struct peer *peer; /* holds a reference on its connection; NULL for the relay's own jobs */
	uint32_t request_id;
	struct store_mailbox rec;
	uint64_t *ids; /* STORE_MAILBOX_DELETE's envelope ids, freed with the request */
};

static void deliver(struct relay *relay, struct mailbox *mb);
static bool peer_is_authed(const struct peer *p, uint64_t store_id);
static int peer_grant(struct peer *p, uint64_t store_id);
static int grow_array(void **array, size_t elem, uint32_t len, uint32_t max);
static void unsubscribe(struct relay *relay, struct mailbox *mb, int code);

/* Fixed values that make the denied paths do the same work as the accepted ones. */
static uint8_t dummy_key[CAIRN_KEY_LEN];
static uint8_t dummy_digest[CAIRN_CREDENTIAL_LEN];

/* ---- replies ------------------------------------------------------------------------- */

static void reply(struct peer *p, const struct cairn_msg *m)
{
	p->relay->port->reply(p->conn, m);
}

static void reply_ok(struct peer *p, uint32_t request_id)
{
	struct cairn_msg m = {.type = CAIRN_REPLY_OK, .request_id = request_id};
	reply(p, &m);
}

/* CODE is a CAIRN_E* code in the wire range. */
static void reply_error(struct peer *p, uint32_t request_id, int code)
{
	struct cairn_msg m = {
	    .type = CAIRN_REPLY_ERROR, .request_id = request_id, .code = (uint32_t)-code};
	reply(p, &m);
}

/* A request of P's waits for the store: P's connection stays in memory until peer_release. */
static void peer_hold(struct peer *p)
{
	p->relay->port->ref(p->conn);
	p->inflight++;
}

static void peer_release(struct peer *p)
{
	p->inflight--;
	p->relay->port->unref(p->conn); /* may free P */
}

/* ---- requests ------------------------------------------------------------------------ */

static struct request *request_new(struct peer *p, uint32_t request_id,
                                   void (*done)(struct storage_job *))
{
	struct request *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->peer = p;
	r->request_id = request_id;
	r->job.kind = STORAGE_WRITE;
	r->job.done = done;
	r->job.data = r;
	if (p != NULL)
		peer_hold(p);
	return r;
}

/* Answers and frees a request whose reply is a plain OK or a storage error. */
static void request_finish(struct request *r)
{
	if (r->peer != NULL) {
		if (r->job.status == 0)
			reply_ok(r->peer, r->request_id);
		else
			reply_error(r->peer, r->request_id, CAIRN_ESTORAGE);
		peer_release(r->peer);
	}
	free(r->ids);
	free(r);
}

static void request_done(struct storage_job *job)
{
	request_finish(job->data);
}

static void submit(struct relay *relay, struct storage_job *job)
{
	storage_submit(relay->storage, job);
}

/* ---- time ---------------------------------------------------------------------------- */

/* The expiry grain: about a thousand of them span the TTL, whatever it is. */
static int64_t expiry_grain(const struct relay *relay)
{
	return (int64_t)relay->cfg->ttl_s / 1000 + 1;
}

/*
 * What the store keeps of a time: T rounded up to the expiry grain. Expiry needs no more, a
 * seized disk shows no more, and rounding up makes expiry late, never early.
 */
static int64_t coarse_time(const struct relay *relay, int64_t t)
{
	int64_t g = expiry_grain(relay);
	return t <= 0 ? 0 : (t + g - 1) / g * g;
}

/* ---- envelope ids -------------------------------------------------------------------- */

/*
 * Envelope ids must never repeat, even across crashes: clients use them to tell envelopes
 * apart. The largest id on disk is not enough (acknowledged envelopes are deleted, and some
 * are never written at all), so a durable mark covers every id handed out: the first block is
 * committed before any connection is accepted, and the next one when half is used.
 */
#define ID_BLOCK ((uint64_t)1 << 21)

static void on_ids_reserved(struct storage_job *job)
{
	struct request *r = job->data;
	struct relay *relay = r->relay;
	int status = job->status;
	uint64_t mark = job->op.envelope_id;
	free(r); /* JOB lives inside R: nothing below may touch it */
	relay->id_reserving = false;
	if (status == 0 && mark > relay->id_limit)
		relay->id_limit = mark;
	else if (status != 0)
		log_error("storage: cannot reserve envelope ids: %s", cairn_strerror(status));
	if (status == 0 && relay->on_ids_ready != NULL) {
		void (*ready)(struct relay *) = relay->on_ids_ready;
		relay->on_ids_ready = NULL;
		ready(relay);
	}
}

static void reserve_ids(struct relay *relay)
{
	if (relay->id_reserving || relay->storage == NULL)
		return;
	struct request *r = request_new(NULL, 0, on_ids_reserved);
	if (r == NULL)
		return; /* tried again with the next send */
	r->relay = relay;
	r->job.op.kind = STORE_ID_MARK;
	r->job.op.envelope_id = relay->next_envelope_id + ID_BLOCK;
	relay->id_reserving = true;
	submit(relay, &r->job);
}

/* ---- envelopes ----------------------------------------------------------------------- */

static void envelope_maybe_free(struct envelope *env)
{
	if (env->queued || env->io != ENV_IO_NONE || env->del_pending)
		return;
	if (env->body_owned)
		free(env->body);
	free(env);
}

/* Sends the sender its answer for ENV (once). */
static void envelope_answer_sender(struct envelope *env, int status)
{
	struct peer *s = env->sender;
	if (s == NULL)
		return;
	env->sender = NULL;
	if (status == 0)
		reply_ok(s, env->sender_rid);
	else
		reply_error(s, env->sender_rid, status);
	peer_release(s);
}

/* ENV leaves its mailbox's queue. Invariant: env->mailbox is set exactly while queued. */
static void envelope_detach(struct envelope *env)
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
static bool envelope_leave(struct relay *relay, struct envelope *env)
{
	struct mailbox *mb = env->mailbox;
	envelope_detach(env);
	switch (env->io) {
	case ENV_IO_NONE:
		return env->durable;
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

static void on_put_done(struct storage_job *job)
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
	env->durable = true;
	envelope_answer_sender(env, 0);
	if (mb != NULL)
		envelope_park(relay, mb, env);
	else
		envelope_maybe_free(env);
}

static void on_delete_done(struct storage_job *job)
{
	struct envelope *env = job->data;
	env->del_pending = false;
	if (job->status != 0)
		log_warn("storage: an acknowledged envelope could not be deleted: %s",
		         cairn_strerror(job->status));
	envelope_maybe_free(env);
}

static struct envelope *envelope_new(struct relay *relay, struct mailbox *mb, uint64_t id,
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

/* ---- delivery ------------------------------------------------------------------------ */

static void on_read_done(struct storage_job *job)
{
	struct envelope *env = job->data;
	struct relay *relay = env->relay;
	struct mailbox *mb = env->mailbox; /* NULL if it left the queue meanwhile */
	env->io = ENV_IO_NONE;
	if (mb != NULL)
		mb->reads--;
	if (job->status == 0) {
		env->body = job->read_body;
		env->body_owned = true;
	} else {
		free(job->read_body);
		long i = mb ? mailbox_find(mb, env->id) : -1;
		if (i >= 0) {
			mailbox_at(mb, (size_t)i)->env = NULL;
			envelope_detach(env);
			if (job->status == CAIRN_EDENIED) {
				/* Gone from the disk (expired meanwhile): undeliverable. */
				mailbox_ack(&relay->mailboxes, mb, (size_t)i);
			} else if (job->status != CAIRN_ESHUTDOWN && mb->subscriber != NULL) {
				/* Still on disk, so still queued. Asking again at once could spin
				 * on a failing disk: end the subscription, and the owner retries
				 * later. */
				log_warn("storage: an envelope could not be read back: %s",
				         cairn_strerror(job->status));
				unsubscribe(relay, mb, -CAIRN_ESTORAGE);
			}
		}
		envelope_maybe_free(env);
		if (mb != NULL)
			deliver(relay, mb);
		return;
	}
	long i = mb != NULL && mb->subscriber == NULL ? mailbox_find(mb, env->id) : -1;
	if (i >= 0 && mailbox_at(mb, (size_t)i)->env == env) {
		/* Its subscriber left while it was read: offline mailboxes keep no bodies (nor
		 * would anything free this one before the next subscriber, or at exit). */
		mailbox_at(mb, (size_t)i)->env = NULL;
		envelope_detach(env);
	}
	if (mb != NULL)
		deliver(relay, mb);
	envelope_maybe_free(env);
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
		env->durable = true;
		env->queued = true;
		env->io = ENV_IO_READ;
		env->io_job.kind = STORAGE_READ;
		env->io_job.read_id = p->id;
		env->io_job.done = on_read_done;
		p->env = env;
		mb->reads++;
		submit(relay, &env->io_job);
	}
}

static void deliver(struct relay *relay, struct mailbox *mb)
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
		reply(sub, &m);
		mb->cursor++;
		mb->inflight++;
		relay->stats.envelopes_delivered++;
	}
	read_ahead(relay, mb);
}

/* Ends MB's subscription (telling the subscriber with CODE unless CODE < 0) and forgets
 * what was in flight: it is delivered again on the next SUBSCRIBE. Keeps the bodies in memory,
 * for a subscriber that takes over at once. */
static void end_subscription(struct relay *relay, struct mailbox *mb, int code)
{
	struct peer *sub = mb->subscriber;
	if (sub == NULL)
		return;
	if (code >= 0) {
		struct cairn_msg m = {
		    .type = CAIRN_REPLY_END, .request_id = mb->sub_rid, .code = (uint32_t)code};
		reply(sub, &m);
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
static void unsubscribe(struct relay *relay, struct mailbox *mb, int code)
{
	if (mb->subscriber == NULL)
		return;
	end_subscription(relay, mb, code);
	for (size_t i = 0; i < mb->q_len; i++) {
		struct pending *p = mailbox_at(mb, i);
		struct envelope *env = p->env;
		if (env != NULL && env->durable && env->io == ENV_IO_NONE) {
			p->env = NULL;
			envelope_detach(env);
			envelope_maybe_free(env);
		}
	}
}

/* ---- command handlers ---------------------------------------------------------------- */

/* The mailbox C names by recipient id, if C is authenticated for it; NULL otherwise. */
static struct mailbox *owned_mailbox(struct peer *p, const uint8_t *recipient_id)
{
	struct mailbox *mb = mailbox_by_recipient(&p->relay->mailboxes, recipient_id);
	if (mb == NULL || !peer_is_authed(p, mb->rec.id))
		return NULL;
	return mb;
}

/* Drops an envelope leaving its mailbox for good (deleted or expired): the store operation
 * that follows (STORE_MAILBOX_DELETE, STORE_EXPIRE) deletes it on disk. */
static void drop_envelope(void *ctx, struct envelope *env)
{
	struct relay *relay = ctx;
	if (env == NULL)
		return;
	(void)envelope_leave(relay, env);
	envelope_maybe_free(env);
}

/*
 * MB was just touched by its owner or a sender. The store keeps the time only to the expiry
 * grain, so this writes at most once a grain per mailbox: the hot path gains no writes. If
 * the write cannot be queued, the time stays as it was and the next touch tries again.
 */
static void mailbox_touch(struct relay *relay, struct mailbox *mb)
{
	int64_t t = coarse_time(relay, relay_now(relay));
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
	submit(relay, &r->job);
}

/* A new mailbox's store id: random (mailboxes created together are not adjacent on disk),
 * positive for SQLite, and not any live mailbox's. */
static uint64_t new_store_id(const struct relay *relay)
{
	uint64_t id;
	do {
		randombytes_buf(&id, sizeof(id));
		id &= (uint64_t)INT64_MAX;
	} while (id == 0 || mailbox_by_store_id(&relay->mailboxes, id) != NULL);
	return id;
}

/*
 * Removes MB and its envelopes: from memory now, from the store with one operation that names
 * the envelopes MB holds, so its cost is what MB holds and not what the store holds. Answers
 * C's request REQUEST_ID once that is durable (if C is set). Returns 0, or CAIRN_ENOMEM with
 * MB untouched (C has been answered with an error).
 */
static int mailbox_destroy(struct relay *relay, struct mailbox *mb, struct peer *p,
                           uint32_t request_id)
{
	struct request *r = request_new(p, request_id, request_done);
	if (r == NULL) {
		if (p != NULL)
			reply_error(p, request_id, CAIRN_ESTORAGE);
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
	unsubscribe(relay, mb, 0);
	mailbox_expire(&relay->mailboxes, mb, UINT64_MAX, drop_envelope, relay);
	r->job.op.kind = STORE_MAILBOX_DELETE;
	r->job.op.mailbox_id = mb->rec.id;
	r->job.op.envelope_ids = r->ids;
	r->job.op.n_envelope_ids = n;
	mailbox_remove(&relay->mailboxes, mb);
	submit(relay, &r->job);
	return 0;
}

static void on_create_done(struct storage_job *job)
{
	struct request *r = job->data;
	struct relay *relay = r->peer->relay;
	if (job->status == 0) {
		struct cairn_msg m = {.type = CAIRN_REPLY_CREATED,
		                      .request_id = r->request_id,
		                      .recipient_id = r->rec.recipient_id,
		                      .sender_id = r->rec.sender_id};
		reply(r->peer, &m);
		peer_release(r->peer);
		free(r);
		return;
	}
	struct mailbox *mb = mailbox_by_recipient(&relay->mailboxes, r->rec.recipient_id);
	if (mb != NULL && mb->q_len == 0 && mb->subscriber == NULL)
		mailbox_remove(&relay->mailboxes, mb);
	request_finish(r);
}

static void cmd_create(struct peer *p, const struct cairn_msg *m)
{
	struct relay *relay = p->relay;
	if (p->authed_len >= relay->cfg->mailboxes_per_connection) {
		reply_error(p, m->request_id, CAIRN_ELIMIT);
		return;
	}
	/* The relay as a whole first: a refusal then costs the connection nothing. */
	int rc = admission_room_for_mailbox(relay);
	if (rc == 0)
		rc = admission_take(p->relay, &p->budget);
	if (rc != 0) {
		reply_error(p, m->request_id, rc);
		return;
	}
	struct request *r = request_new(p, m->request_id, on_create_done);
	if (r == NULL) {
		reply_error(p, m->request_id, CAIRN_ESTORAGE);
		return;
	}
	/* Two independent random ids; a collision with a live mailbox is astronomically
	 * unlikely, but checking costs two lookups. */
	do {
		randombytes_buf(r->rec.recipient_id, CAIRN_MAILBOX_ID_LEN);
		randombytes_buf(r->rec.sender_id, CAIRN_MAILBOX_ID_LEN);
	} while (mailbox_by_recipient(&relay->mailboxes, r->rec.recipient_id) != NULL ||
	         mailbox_by_sender(&relay->mailboxes, r->rec.sender_id) != NULL);
	r->rec.id = new_store_id(relay);
	r->rec.touched = coarse_time(relay, relay_now(relay));
	memcpy(r->rec.recipient_key, m->recipient_key, CAIRN_KEY_LEN);
	struct mailbox *mb = mailbox_add(&relay->mailboxes, &r->rec);
	if (mb == NULL || peer_grant(p, r->rec.id) != 0) {
		if (mb != NULL)
			mailbox_remove(&relay->mailboxes, mb);
		r->job.status = CAIRN_ESTORAGE;
		request_finish(r);
		return;
	}
	r->job.op.kind = STORE_MAILBOX_PUT;
	r->job.op.mailbox = &r->rec;
	submit(relay, &r->job);
}

/*
 * AUTH: an Ed25519 verification (~53 µs) per command, which a peer could send ~690 of in one
 * frame. It runs on the thread pool (conn_defer), one at a time per connection, while the
 * connection's later commands wait: they may depend on it (AUTH then SUBSCRIBE in one batch).
 * "No such mailbox" takes the same path and does the same work, against a dummy key.
 */
struct auth_task {
	struct conn_task task;
	struct peer *peer; /* valid until DONE: the task holds a reference on its connection */
	uint32_t request_id;
	bool found;        /* the mailbox existed when the AUTH was read */
	uint64_t store_id; /* its store id then */
	bool ok;           /* the signature verified */
	uint8_t recipient_id[CAIRN_MAILBOX_ID_LEN];
	uint8_t key[CAIRN_KEY_LEN];
	uint8_t signature[CAIRN_SIGNATURE_LEN];
	uint8_t signed_msg[AUTH_CONTEXT_LEN + CAIRN_HASH_LEN + CAIRN_MAILBOX_ID_LEN];
};

/* Thread pool: touches only the task. */
static void auth_run(struct conn_task *t)
{
	struct auth_task *a = (struct auth_task *)t;
	a->ok = crypto_sign_verify_detached(a->signature, a->signed_msg, sizeof(a->signed_msg),
	                                    a->key) == 0;
}

static void auth_done(struct conn_task *t, bool closed)
{
	struct auth_task *a = (struct auth_task *)t;
	struct peer *p = a->peer;
	if (!closed) {
		/* The mailbox may have been deleted while the signature was checked. */
		struct mailbox *mb = mailbox_by_recipient(&p->relay->mailboxes, a->recipient_id);
		if (!a->ok || !a->found || mb == NULL || mb->rec.id != a->store_id)
			reply_error(p, a->request_id, CAIRN_EDENIED);
		else if (peer_grant(p, mb->rec.id) != 0)
			reply_error(p, a->request_id, CAIRN_ELIMIT);
		else
			reply_ok(p, a->request_id);
	}
	free(a);
}

static void cmd_auth(struct peer *p, const struct cairn_msg *m)
{
	struct mailbox *mb = mailbox_by_recipient(&p->relay->mailboxes, m->recipient_id);
	struct auth_task *a = malloc(sizeof(*a));
	if (a == NULL) {
		reply_error(p, m->request_id, CAIRN_ESTORAGE);
		return;
	}
	memset(&a->task, 0, sizeof(a->task));
	a->task.run = auth_run;
	a->task.done = auth_done;
	a->peer = p;
	a->request_id = m->request_id;
	a->found = mb != NULL;
	a->store_id = mb != NULL ? mb->rec.id : 0;
	a->ok = false;
	memcpy(a->recipient_id, m->recipient_id, CAIRN_MAILBOX_ID_LEN);
	/* Verify even when there is no such mailbox, so both cost the same. */
	memcpy(a->key, mb != NULL ? mb->rec.recipient_key : dummy_key, CAIRN_KEY_LEN);
	memcpy(a->signature, m->signature, CAIRN_SIGNATURE_LEN);
	memcpy(a->signed_msg, AUTH_CONTEXT, AUTH_CONTEXT_LEN);
	memcpy(a->signed_msg + AUTH_CONTEXT_LEN, p->relay->port->handshake_hash(p->conn),
	       CAIRN_HASH_LEN);
	memcpy(a->signed_msg + AUTH_CONTEXT_LEN + CAIRN_HASH_LEN, m->recipient_id,
	       CAIRN_MAILBOX_ID_LEN);
	p->relay->port->defer(p->conn, &a->task);
}

static void cmd_secure(struct peer *p, const struct cairn_msg *m)
{
	struct relay *relay = p->relay;
	struct mailbox *mb = owned_mailbox(p, m->recipient_id);
	if (mb == NULL) {
		reply_error(p, m->request_id, CAIRN_EDENIED);
		return;
	}
	/* Each SECURE is a write to the store: it draws on the same budget as CREATE. */
	if (admission_take(p->relay, &p->budget) != 0) {
		reply_error(p, m->request_id, CAIRN_ELIMIT);
		return;
	}
	struct request *r = request_new(p, m->request_id, request_done);
	if (r == NULL) {
		reply_error(p, m->request_id, CAIRN_ESTORAGE);
		return;
	}
	mailbox_touch(relay, mb);
	/* In force at once: sends after this command need the credential. */
	memcpy(mb->rec.credential_digest, m->credential, CAIRN_CREDENTIAL_LEN);
	mb->rec.secured = true;
	r->rec = mb->rec;
	r->job.op.kind = STORE_MAILBOX_SECURE;
	r->job.op.mailbox = &r->rec;
	submit(relay, &r->job);
}

static void cmd_subscribe(struct peer *p, const struct cairn_msg *m)
{
	struct relay *relay = p->relay;
	struct mailbox *mb = owned_mailbox(p, m->recipient_id);
	if (mb == NULL) {
		reply_error(p, m->request_id, CAIRN_EDENIED);
		return;
	}
	if (mb->subscriber != p) {
		uint32_t max = relay->cfg->mailboxes_per_connection;
		if (p->subs_len >= max) {
			reply_error(p, m->request_id, CAIRN_ELIMIT);
			return;
		}
		if (grow_array((void **)&p->subs, sizeof(*p->subs), p->subs_len, max) != 0) {
			reply_error(p, m->request_id, CAIRN_ESTORAGE);
			return;
		}
		/* A subscription elsewhere is taken over (docs/PROTOCOL.md 5.4). The bodies in
		 * memory stay for the new subscriber, so a takeover walks no more than any
		 * SUBSCRIBE does. */
		end_subscription(relay, mb, -CAIRN_ELIMIT);
		p->subs[p->subs_len++] = mb;
		mb->subscriber = p;
	}
	/* (Re)start from the oldest unacknowledged envelope. deliver() walks over tombstones
	 * from the head on the loop thread: rewinding leaves at most a window of them. */
	mb->sub_rid = m->request_id;
	mailbox_rewind(mb, relay->cfg->delivery_window);
	mailbox_touch(relay, mb);
	reply_ok(p, m->request_id);
	deliver(relay, mb);
}

static void cmd_ack(struct peer *p, const struct cairn_msg *m)
{
	struct relay *relay = p->relay;
	struct mailbox *mb = owned_mailbox(p, m->recipient_id);
	if (mb == NULL) {
		reply_error(p, m->request_id, CAIRN_EDENIED);
		return;
	}
	mailbox_touch(relay, mb);
	long i = mailbox_find(mb, m->envelope_id);
	if (i < 0) {
		reply_ok(p, m->request_id); /* acknowledged already */
		return;
	}
	relay->stats.envelopes_acknowledged++;
	/*
	 * The ACK is answered at once; the delete becomes durable with the next batch. If the
	 * relay crashes before that, the envelope is delivered again, which at-least-once
	 * delivery allows and clients drop as a duplicate. Waiting would make every ACK count
	 * against the connection's requests in flight for no gain to the owner.
	 */
	reply_ok(p, m->request_id);
	struct envelope *env = mailbox_ack(&relay->mailboxes, mb, (size_t)i);
	if (env == NULL) {
		/* Not in memory (acknowledged without this connection's delivery). */
		struct request *r = request_new(NULL, 0, request_done);
		if (r != NULL) {
			r->job.op.kind = STORE_ENVELOPE_DELETE;
			r->job.op.envelope_id = m->envelope_id;
			submit(relay, &r->job);
		}
	} else {
		if (envelope_leave(relay, env) && !env->del_pending) {
			env->del_pending = true;
			submit(relay, &env->del_job);
		}
		envelope_maybe_free(env);
	}
	deliver(relay, mb);
}

static void cmd_delete(struct peer *p, const struct cairn_msg *m)
{
	struct mailbox *mb = owned_mailbox(p, m->recipient_id);
	if (mb == NULL) {
		reply_error(p, m->request_id, CAIRN_EDENIED);
		return;
	}
	(void)mailbox_destroy(p->relay, mb, p, m->request_id);
}

/*
 * Records that every envelope below NEXT_ID was stored at or before NOW. Marks are kept per
 * time grain (about a thousand of them span the TTL, whatever it is): within a grain the last
 * mark moves forward, so expiry is exact to the envelope and memory stays bounded.
 */
static void add_time_mark(struct relay *relay, int64_t now, uint64_t next_id)
{
	int64_t grain = expiry_grain(relay);
	struct time_mark *last = relay->marks_len ? &relay->marks[relay->marks_len - 1] : NULL;
	if (last != NULL && last->time / grain == now / grain) {
		if (now > last->time)
			last->time = now;
		if (next_id > last->next_id)
			last->next_id = next_id;
		return;
	}
	if (relay->marks_len == relay->marks_cap) {
		size_t ncap = relay->marks_cap ? relay->marks_cap * 2 : 64;
		struct time_mark *p = realloc(relay->marks, ncap * sizeof(*p));
		if (p == NULL)
			return; /* expiry waits for the next mark: late, never early */
		relay->marks = p;
		relay->marks_cap = ncap;
	}
	relay->marks[relay->marks_len++] = (struct time_mark){.time = now, .next_id = next_id};
}

static void cmd_send(struct peer *p, const struct cairn_msg *m)
{
	struct relay *relay = p->relay;
	const struct relay_config *cfg = relay->cfg;
	struct mailbox *mb = mailbox_by_sender(&relay->mailboxes, m->sender_id);

	/* The same work whether or not the mailbox exists or is secured. */
	static const uint8_t no_credential[CAIRN_CREDENTIAL_LEN];
	uint8_t digest[CAIRN_CREDENTIAL_LEN];
	crypto_generichash(digest, sizeof(digest), m->credential ? m->credential : no_credential,
	                   CAIRN_CREDENTIAL_LEN, m->sender_id, CAIRN_MAILBOX_ID_LEN);
	const uint8_t *expected = mb && mb->rec.secured ? mb->rec.credential_digest : dummy_digest;
	int match = sodium_memcmp(digest, expected, sizeof(digest)) == 0;
	bool allowed = mb != NULL && (!mb->rec.secured || (m->credential != NULL && match));
	if (!allowed) {
		reply_error(p, m->request_id, CAIRN_EDENIED);
		return;
	}
	if (m->envelope_len > CAIRN_ENVELOPE_MAX) {
		reply_error(p, m->request_id, CAIRN_ETOOBIG);
		return;
	}
	if (mb->count + 1 > cfg->mailbox_max_envelopes ||
	    mb->bytes + m->envelope_len > cfg->mailbox_max_bytes) {
		reply_error(p, m->request_id, CAIRN_EQUOTA);
		return;
	}
	/* Refused before anything is stored: an envelope is never accepted, then dropped. */
	if (admission_room_for_envelope(relay, m->envelope_len) != 0) {
		reply_error(p, m->request_id, CAIRN_ECAPACITY);
		return;
	}
	if (relay->id_limit - relay->next_envelope_id < ID_BLOCK / 2)
		reserve_ids(relay);
	if (relay->next_envelope_id >= relay->id_limit) {
		/* Only if a million sends outran one commit: the sender retries. */
		reply_error(p, m->request_id, CAIRN_ESTORAGE);
		return;
	}
	uint64_t id = relay->next_envelope_id;
	struct envelope *env =
	    envelope_new(relay, mb, id, m->envelope ? m->envelope : (const uint8_t *)"",
	                 (uint32_t)m->envelope_len);
	if (env == NULL || mailbox_push(&relay->mailboxes, mb, id, env->len, env) != 0) {
		free(env);
		reply_error(p, m->request_id, CAIRN_ESTORAGE);
		return;
	}
	relay->next_envelope_id++;
	int64_t now = relay_now(relay);
	add_time_mark(relay, now, id + 1);
	mailbox_touch(relay, mb);
	env->stored_at = now;
	env->queued = true;
	env->sender = p;
	env->sender_rid = m->request_id;
	peer_hold(p);
	env->io = ENV_IO_WRITE;
	env->io_job.kind = STORAGE_WRITE;
	env->io_job.done = on_put_done;
	env->io_job.op = (struct store_op){.kind = STORE_ENVELOPE_PUT,
	                                   .mailbox_id = mb->rec.id,
	                                   .envelope_id = id,
	                                   .body = env->body,
	                                   .len = env->len,
	                                   .stored_at = coarse_time(relay, now)};
	/* An online owner usually acknowledges within milliseconds, which cancels the write:
	 * holding it back a little keeps online traffic off the disk even when the round
	 * trip is longer than the storage thread's gathering time. */
	if (mb->subscriber != NULL)
		storage_submit_held(relay->storage, &env->io_job, cfg->online_write_hold_ms);
	else
		submit(relay, &env->io_job);
	relay->stats.envelopes_accepted++;
	deliver(relay, mb);
}

static void on_command(void *peer, const struct cairn_msg *m)
{
	struct peer *p = peer;
	if (p->relay->stopping) {
		reply_error(p, m->request_id, CAIRN_ESHUTDOWN);
		return;
	}
	if (p->inflight >= p->relay->cfg->inflight_requests && m->type != CAIRN_CMD_PING) {
		reply_error(p, m->request_id, CAIRN_ELIMIT);
		return;
	}
	switch (m->type) {
	case CAIRN_CMD_PING:
		reply_ok(p, m->request_id);
		break;
	case CAIRN_CMD_CREATE:
		cmd_create(p, m);
		break;
	case CAIRN_CMD_AUTH:
		cmd_auth(p, m);
		break;
	case CAIRN_CMD_SECURE:
		cmd_secure(p, m);
		break;
	case CAIRN_CMD_SUBSCRIBE:
		cmd_subscribe(p, m);
		break;
	case CAIRN_CMD_ACK:
		cmd_ack(p, m);
		break;
	case CAIRN_CMD_DELETE:
		cmd_delete(p, m);
		break;
	case CAIRN_CMD_SEND:
		cmd_send(p, m);
		break;
	default:
		/* A reply type sent by a client. */
		reply_error(p, m->request_id, CAIRN_EUNKNOWN);
		break;
	}
}

/* ---- connection events --------------------------------------------------------------- */

/* Makes room for element LEN of *ARRAY (ELEM bytes each, at most MAX elements), growing the
 * allocation when LEN reaches its capacity (4, 8, 16, ...): connections that use one mailbox
 * pay for four, not for the limit. Returns 0 or CAIRN_ENOMEM. */
static int grow_array(void **array, size_t elem, uint32_t len, uint32_t max)
{
	/* Capacity doubles from 4 at each power of two, so it is implied by LEN. */
	if (len >= 4 && (len & (len - 1)) != 0)
		return 0;
	if (len > 0 && len < 4)
		return 0;
	size_t cap = len == 0 ? 4 : (size_t)len * 2;
	if (cap > max)
		cap = max;
	void *q = realloc(*array, cap * elem);
	if (q == NULL)
		return CAIRN_ENOMEM;
	*array = q;
	return 0;
}

/* Whether P may manage mailbox STORE_ID. */
static bool peer_is_authed(const struct peer *p, uint64_t store_id)
{
	for (uint32_t i = 0; i < p->authed_len; i++)
		if (p->authed[i] == store_id)
			return true;
	return false;
}

/* Lets P manage mailbox STORE_ID: 0, or CAIRN_ELIMIT when P manages as many as it may. */
static int peer_grant(struct peer *p, uint64_t store_id)
{
	if (peer_is_authed(p, store_id))
		return 0;
	uint32_t max = p->relay->cfg->mailboxes_per_connection;
	if (p->authed_len >= max)
		return CAIRN_ELIMIT;
	int rc = grow_array((void **)&p->authed, sizeof(*p->authed), p->authed_len, max);
	if (rc != 0)
		return rc;
	p->authed[p->authed_len++] = store_id;
	return 0;
}

static void *on_open(struct relay *relay, struct conn *c)
{
	struct peer *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->relay = relay;
	p->conn = c;
	p->open = true;
	admission_budget_init(relay, &p->budget);
	p->next = relay->peers;
	if (p->next != NULL)
		p->next->prev = p;
	relay->peers = p;
	return p;
}

static void on_closed(void *peer)
{
	struct peer *p = peer;
	struct relay *relay = p->relay;
	while (p->subs_len > 0)
		unsubscribe(relay, p->subs[p->subs_len - 1], -1);
	if (!p->open)
		return;
	p->open = false;
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		relay->peers = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	p->prev = p->next = NULL;
}

static void on_drained(void *peer)
{
	struct peer *p = peer;
	for (uint32_t i = 0; i < p->subs_len; i++)
		deliver(p->relay, p->subs[i]);
}

static bool is_busy(const void *peer)
{
	const struct peer *p = peer;
	return p->inflight >= p->relay->cfg->inflight_requests;
}

static void on_free(void *peer)
{
	struct peer *p = peer;
	free(p->authed);
	free(p->subs);
	free(p);
}

const struct conn_handler commands_handler = {
    .open = on_open,
    .command = on_command,
    .closed = on_closed,
    .drained = on_drained,
    .busy = is_busy,
    .free = on_free,
};

void commands_shutdown(struct relay *relay)
{
	for (struct peer *p = relay->peers; p != NULL; p = p->next)
		while (p->subs_len > 0)
			unsubscribe(relay, p->subs[p->subs_len - 1], -CAIRN_ESHUTDOWN);
}

/* ---- expiry -------------------------------------------------------------------------- */

/* Mailbox work one expiry pass may do on the loop: a mailbox costs one plus its envelopes. */
#define IDLE_EXPIRY_BUDGET 65536

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
	expire_idle_mailboxes(relay, now);
	int64_t limit = now - (int64_t)relay->cfg->ttl_s;
	size_t k = 0;
	while (k < relay->marks_len && relay->marks[k].time <= limit)
		k++;
	if (k == 0)
		return;
	/* Every envelope below the newest expired mark's id was stored by that mark's time. */
	uint64_t cutoff = relay->marks[k - 1].next_id;
	/* Marks used up: the same range is never deleted twice. */
	memmove(relay->marks, relay->marks + k, (relay->marks_len - k) * sizeof(*relay->marks));
	relay->marks_len -= k;
	size_t dropped = 0;
	struct mailbox_index *ix = &relay->mailboxes;
	for (size_t b = 0; b < ix->buckets; b++)
		for (struct mailbox *mb = ix->by_recipient[b]; mb != NULL;
		     mb = mb->next_by_recipient)
			dropped += mailbox_expire(ix, mb, cutoff, drop_envelope, relay);
	relay->stats.envelopes_expired += dropped;
	struct request *r = request_new(NULL, 0, request_done);
	if (r == NULL)
		return; /* the next expiry pass covers this range too */
	r->job.op.kind = STORE_EXPIRE;
	r->job.op.envelope_id = cutoff;
	submit(relay, &r->job);
	/* Their subscribers may now have room in their windows. */
	for (size_t b = 0; b < ix->buckets; b++)
		for (struct mailbox *mb = ix->by_recipient[b]; mb != NULL;
		     mb = mb->next_by_recipient)
			if (mb->subscriber != NULL)
				deliver(relay, mb);
}

/* ---- loading ------------------------------------------------------------------------- */

static int cmp_mailbox_id(const void *a, const void *b)
{
	uint64_t x = (*(struct mailbox *const *)a)->rec.id;
	uint64_t y = (*(struct mailbox *const *)b)->rec.id;
	return x < y ? -1 : x > y;
}

static void load_mailbox(void *ctx, const struct store_mailbox *rec)
{
	struct relay *relay = ctx;
	struct relay_load *l = &relay->load;
	struct mailbox *mb = mailbox_add(&relay->mailboxes, rec);
	if (mb == NULL)
		return;
	if (l->len == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 256;
		struct mailbox **p = realloc(l->by_id, ncap * sizeof(*p));
		if (p == NULL)
			return;
		l->by_id = p;
		l->cap = ncap;
	}
	l->by_id[l->len++] = mb;
}

static void load_envelope(void *ctx, const struct store_envelope_info *info)
{
	struct relay *relay = ctx;
	struct relay_load *l = &relay->load;
	if (!l->sorted) {
		if (l->len > 0)
			qsort(l->by_id, l->len, sizeof(*l->by_id), cmp_mailbox_id);
		l->sorted = true;
	}
	size_t lo = 0, hi = l->len;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (l->by_id[mid]->rec.id < info->mailbox_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (info->id >= relay->next_envelope_id)
		relay->next_envelope_id = info->id + 1;
	add_time_mark(relay, info->stored_at, info->id + 1);
	if (lo < l->len && l->by_id[lo]->rec.id == info->mailbox_id)
		(void)mailbox_push(&relay->mailboxes, l->by_id[lo], info->id, info->len, NULL);
}

static void load_id_mark(void *ctx, uint64_t mark)
{
	struct relay *relay = ctx;
	if (mark > relay->next_envelope_id)
		relay->next_envelope_id = mark;
}

const struct store_load_cb commands_load_cb = {
    .mailbox = load_mailbox,
    .envelope = load_envelope,
    .id_mark = load_id_mark,
};

void commands_load_finish(struct relay *relay, void (*ready)(struct relay *relay))
{
	free(relay->load.by_id);
	memset(&relay->load, 0, sizeof(relay->load));
	if (relay->next_envelope_id == 0)
		relay->next_envelope_id = 1;
	/* Any Ed25519 key works as the dummy for the denied path; derive a fixed one. */
	uint8_t seed[crypto_sign_SEEDBYTES] = {0}, sk[crypto_sign_SECRETKEYBYTES];
	crypto_sign_seed_keypair(dummy_key, sk, seed);
	sodium_memzero(sk, sizeof(sk));
	randombytes_buf(dummy_digest, sizeof(dummy_digest));
	relay->id_limit = relay->next_envelope_id; /* nothing may be handed out yet */
	relay->on_ids_ready = ready;
	reserve_ids(relay);
}
