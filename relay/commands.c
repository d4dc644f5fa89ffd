/* SPDX-License-Identifier: MIT */
/*
 * Mailbox semantics: the command handlers, the handler table connections call (port.h) and
 * what a connection's opening, closing and draining mean for its mailboxes. A SEND is
 * answered OK only once its envelope is durable, or once its owner has acknowledged it (then
 * the write is cancelled before it reaches the disk: online traffic costs no storage I/O).
 * Delivery is in id order with a window of unacknowledged envelopes (delivery.c). The rest
 * of the layer is listed in command_layer.h.
 *
 * "No such mailbox", "not authenticated" and "wrong credential" share one reply and one
 * code path, and do the same cryptographic work, so a peer cannot tell them apart; so do
 * "no such mailbox" and "not an intake mailbox" for SEND_WORK. Intake mailboxes (INTAKE,
 * SEND_WORK, docs/PROTOCOL.md 5.10) take proof of work instead of a credential; the work
 * already used is in relay->work (worktable.h).
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "admission.h"
#include "cairn/error.h"
#include "command_layer.h"
#include "commands.h"
#include "log.h"
#include "port.h"
#include "relay.h"
#include "relaypolicy.h"
#include "work.h"

#define AUTH_CONTEXT     "cairn/1 auth"
#define AUTH_CONTEXT_LEN 12

/* Fixed values that make the denied paths do the same work as the accepted ones. */
static uint8_t dummy_key[CAIRN_KEY_LEN];
static uint8_t dummy_digest[CAIRN_CREDENTIAL_LEN];
_Static_assert(CAIRN_CREDENTIAL_LEN == crypto_verify_32_BYTES, "a credential digest is 32 bytes");

void commands_init_dummies(void)
{
	/* Any Ed25519 key works as the dummy for the denied path; derive a fixed one. */
	uint8_t seed[crypto_sign_SEEDBYTES] = {0}, sk[crypto_sign_SECRETKEYBYTES];
	crypto_sign_seed_keypair(dummy_key, sk, seed);
	sodium_memzero(sk, sizeof(sk));
	randombytes_buf(dummy_digest, sizeof(dummy_digest));
}

/* The mailbox C names by recipient id, if C is authenticated for it; NULL otherwise. */
static struct mailbox *owned_mailbox(struct peer *p, const uint8_t *recipient_id)
{
	struct mailbox *mb = mailbox_by_recipient(&p->relay->mailboxes, recipient_id);
	if (mb == NULL || !peer_is_authed(p, mb->rec.id))
		return NULL;
	return mb;
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

static void on_create_done(struct storage_job *job)
{
	struct request *r = job->data;
	struct relay *relay = r->peer->relay;
	if (job->status == 0) {
		struct cairn_msg m = {.type = CAIRN_REPLY_CREATED,
		                      .request_id = r->request_id,
		                      .recipient_id = r->rec.recipient_id,
		                      .sender_id = r->rec.sender_id};
		peer_reply(r->peer, &m);
		peer_release(r->peer);
		request_free(relay, r);
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
		peer_reply_error(p, m->request_id, CAIRN_ELIMIT);
		return;
	}
	/* The relay as a whole first: a refusal then costs the connection nothing. */
	int rc = admission_room_for_mailbox(relay);
	if (rc == 0)
		rc = admission_take(p->relay, &p->budget);
	if (rc != 0) {
		peer_reply_error(p, m->request_id, rc);
		return;
	}
	struct request *r = request_new(p, m->request_id, on_create_done);
	if (r == NULL) {
		peer_reply_error(p, m->request_id, CAIRN_ESTORAGE);
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
	r->rec.touched = coarse_time(relay, relay_stamp(relay));
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
	relay_submit(relay, &r->job);
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
			peer_reply_error(p, a->request_id, CAIRN_EDENIED);
		else if (peer_grant(p, mb->rec.id) != 0)
			peer_reply_error(p, a->request_id, CAIRN_ELIMIT);
		else
			peer_reply_ok(p, a->request_id);
	}
	free(a);
}

static void cmd_auth(struct peer *p, const struct cairn_msg *m)
{
	struct mailbox *mb = mailbox_by_recipient(&p->relay->mailboxes, m->recipient_id);
	struct auth_task *a = malloc(sizeof(*a));
	if (a == NULL) {
		peer_reply_error(p, m->request_id, CAIRN_ESTORAGE);
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

/*
 * The first steps of SECURE and INTAKE, which change the caller's mailbox's record: the
 * mailbox (else `denied`), a token of the create budget, since each is a write to the store
 * (else `limit`), a request whose OK waits for that write (else `storage`), and the mailbox
 * touched. Returns the request with *MB set, or NULL once the command is answered.
 */
static struct request *owner_write(struct peer *p, const struct cairn_msg *m, struct mailbox **mb)
{
	*mb = owned_mailbox(p, m->recipient_id);
	if (*mb == NULL) {
		peer_reply_error(p, m->request_id, CAIRN_EDENIED);
		return NULL;
	}
	if (admission_take(p->relay, &p->budget) != 0) {
		peer_reply_error(p, m->request_id, CAIRN_ELIMIT);
		return NULL;
	}
	struct request *r = request_new(p, m->request_id, request_done);
	if (r == NULL) {
		peer_reply_error(p, m->request_id, CAIRN_ESTORAGE);
		return NULL;
	}
	mailbox_touch(p->relay, *mb);
	return r;
}

/* Writes MB's record, as changed in memory, with the store op KIND for R. */
static void owner_write_submit(struct request *r, const struct mailbox *mb, enum store_op_kind kind)
{
	r->rec = mb->rec;
	r->job.op.kind = kind;
	r->job.op.mailbox = &r->rec;
	relay_submit(r->peer->relay, &r->job);
}

static void cmd_secure(struct peer *p, const struct cairn_msg *m)
{
	struct mailbox *mb;
	struct request *r = owner_write(p, m, &mb);
	if (r == NULL)
		return;
	/* In force at once: sends after this command need the credential. */
	memcpy(mb->rec.credential_digest, m->credential, CAIRN_CREDENTIAL_LEN);
	mb->rec.secured = true;
	owner_write_submit(r, mb, STORE_MAILBOX_SECURE);
}

static void cmd_subscribe(struct peer *p, const struct cairn_msg *m)
{
	struct relay *relay = p->relay;
	struct mailbox *mb = owned_mailbox(p, m->recipient_id);
	if (mb == NULL) {
		peer_reply_error(p, m->request_id, CAIRN_EDENIED);
		return;
	}
	if (mb->subscriber != p) {
		uint32_t max = relay->cfg->mailboxes_per_connection;
		if (p->subs_len >= max) {
			peer_reply_error(p, m->request_id, CAIRN_ELIMIT);
			return;
		}
		if (grow_array_from((void **)&p->subs, &p->subs_one, sizeof(*p->subs), p->subs_len,
		                    max) != 0) {
			peer_reply_error(p, m->request_id, CAIRN_ESTORAGE);
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
	peer_reply_ok(p, m->request_id);
	deliver(relay, mb);
}

static void cmd_ack(struct peer *p, const struct cairn_msg *m)
{
	struct relay *relay = p->relay;
	struct mailbox *mb = owned_mailbox(p, m->recipient_id);
	if (mb == NULL) {
		peer_reply_error(p, m->request_id, CAIRN_EDENIED);
		return;
	}
	mailbox_touch(relay, mb);
	long i = mailbox_find(mb, m->envelope_id);
	if (i < 0) {
		peer_reply_ok(p, m->request_id); /* acknowledged already */
		return;
	}
	relay->stats.envelopes_acknowledged++;
	/*
	 * The ACK is answered at once; the delete becomes durable with the next batch. If the
	 * relay crashes before that, the envelope is delivered again, which at-least-once
	 * delivery allows and clients drop as a duplicate. Waiting would make every ACK count
	 * against the connection's requests in flight for no gain to the owner.
	 */
	peer_reply_ok(p, m->request_id);
	if (mb->acks < UINT32_MAX)
		mb->acks++;
	struct envelope *env = mailbox_ack(&relay->mailboxes, mb, (size_t)i);
	if (env == NULL) {
		/* Not in memory (acknowledged without this connection's delivery). */
		struct request *r = request_new(NULL, 0, request_done);
		if (r != NULL) {
			r->job.op.kind = STORE_ENVELOPE_DELETE;
			r->job.op.envelope_id = m->envelope_id;
			r->job.op.mailbox_id = mb->rec.id;
			relay_submit(relay, &r->job);
		}
	} else {
		envelope_ack(env);
	}
	deliver(relay, mb);
}

static void cmd_delete(struct peer *p, const struct cairn_msg *m)
{
	struct mailbox *mb = owned_mailbox(p, m->recipient_id);
	if (mb == NULL) {
		peer_reply_error(p, m->request_id, CAIRN_EDENIED);
		return;
	}
	(void)mailbox_destroy(p->relay, mb, p, m->request_id);
}

/*
 * The mailbox a SEND or SEND_WORK names, if the command may write to it; else NULL, with
 * the reply sent. SEND needs an ordinary mailbox and its credential, if it has one; SEND_WORK
 * an intake mailbox (5.10). "No such mailbox", "wrong credential" and "not an intake mailbox"
 * are one reply from this one path, so a peer cannot tell them apart (5.5); a SEND to an
 * intake mailbox gets `work`, since its sender id is public anyway.
 */
static struct mailbox *sender_mailbox(struct peer *p, const struct cairn_msg *m)
{
	struct mailbox *mb = mailbox_by_sender(&p->relay->mailboxes, m->sender_id);
	bool intake = mb != NULL && mb->rec.work_bits != 0;
	bool allowed;
	if (m->type == CAIRN_CMD_SEND_WORK) {
		/* No credential to hash: every SEND_WORK does the same work up to here. */
		allowed = intake;
	} else {
		/* The same work whether or not the mailbox exists or is secured. */
		static const uint8_t no_credential[CAIRN_CREDENTIAL_LEN];
		/* A SEND without a credential is hashed every time (no connection named): a
		 * connection that carries several senders' SENDs, a forwarding relay's, would
		 * otherwise tell one of them, by the time it took, that the SEND before its own
		 * went to the same mailbox, which without a credential needs no secret to ask. */
		uint8_t digest[CAIRN_CREDENTIAL_LEN];
		const uint8_t *conn =
		    m->credential ? p->relay->port->handshake_hash(p->conn) : NULL;
		mailbox_send_digest(&p->relay->mailboxes, conn, m->sender_id,
		                    m->credential ? m->credential : no_credential, digest);
		const uint8_t *expected =
		    mb && mb->rec.secured ? mb->rec.credential_digest : dummy_digest;
		/* crypto_verify_32 is constant-time like sodium_memcmp, sixteen bytes at a time
		 * instead of one (callgrind: 279 instructions a SEND against about 30). */
		int match = crypto_verify_32(digest, expected) == 0;
		allowed =
		    mb != NULL && (intake || !mb->rec.secured || (m->credential != NULL && match));
	}
	if (!allowed) {
		peer_reply_error(p, m->request_id, CAIRN_EDENIED);
		return NULL;
	}
	if (intake && m->type != CAIRN_CMD_SEND_WORK) { /* a SEND, or a BUNDLED's (5.12) */
		peer_reply_error(p, m->request_id, CAIRN_EWORK);
		return NULL;
	}
	return mb;
}

/* Whether MB has room for an envelope of LEN bytes, and the relay too: 0, CAIRN_ETOOBIG,
 * CAIRN_EQUOTA (an intake mailbox has quotas of its own) or CAIRN_ECAPACITY. */
static int room_for(struct relay *relay, const struct mailbox *mb, size_t len)
{
	const struct relay_config *cfg = relay->cfg;
	if (len > CAIRN_ENVELOPE_MAX)
		return CAIRN_ETOOBIG;
	bool intake = mb->rec.work_bits != 0;
	uint32_t max_envelopes = intake ? cfg->intake_max_envelopes : cfg->mailbox_max_envelopes;
	uint64_t max_bytes = intake ? cfg->intake_max_bytes : cfg->mailbox_max_bytes;
	if (mb->count + 1 > max_envelopes || mb->bytes + len > max_bytes)
		return CAIRN_EQUOTA;
	/* Refused before anything is stored: an envelope is never accepted, then dropped. */
	if (admission_room_for_envelope(relay, len) != 0)
		return CAIRN_ECAPACITY;
	return 0;
}

/* Stores M's envelope in MB (room_for said yes), answering OK once durable; MARK (a
 * BUNDLED's seen entry, or NULL) is written in the same op and owned by the envelope from
 * then on (dropped here on failure). */
static void accept_envelope_marked(struct peer *p, struct mailbox *mb, const struct cairn_msg *m,
                                   struct bundle_mark *mark)
{
	struct relay *relay = p->relay;
	uint64_t id = ids_take(relay);
	if (id == 0) {
		/* Only if a million sends outran one commit, or the last mark found the disk
		 * full: the sender retries. */
		bundle_mark_drop(relay, mark);
		peer_reply_error(p, m->request_id,
		                 relay->ids_short ? CAIRN_ECAPACITY : CAIRN_ESTORAGE);
		return;
	}
	struct envelope *env =
	    envelope_new(relay, mb, id, m->envelope ? m->envelope : (const uint8_t *)"",
	                 (uint32_t)m->envelope_len);
	if (env == NULL || mailbox_push(&relay->mailboxes, mb, id, env->len, env) != 0) {
		if (env != NULL)
			envelope_enter(env, ENV_GONE);
		bundle_mark_drop(relay, mark);
		peer_reply_error(p, m->request_id, CAIRN_ESTORAGE);
		return;
	}
	env->bundle = mark; /* the envelope owns it from here */
	int64_t now = relay_stamp(relay);
	add_time_mark(relay, now, id + 1);
	mailbox_touch(relay, mb);
	envelope_write(env, p, m->request_id, now);
	relay->stats.envelopes_accepted++;
	deliver(relay, mb);
}

static void accept_envelope(struct peer *p, struct mailbox *mb, const struct cairn_msg *m)
{
	accept_envelope_marked(p, mb, m, NULL);
}

/* The mailbox the SEND, SEND_WORK or BUNDLED M may write to, with room for its envelope, or
 * NULL with P answered (the one path for "no such mailbox" and "wrong credential", 5.5, then
 * `too big`, `quota` or `full`). */
static struct mailbox *send_target(struct peer *p, const struct cairn_msg *m)
{
	struct mailbox *mb = sender_mailbox(p, m);
	if (mb == NULL)
		return NULL;
	int rc = room_for(p->relay, mb, m->envelope_len);
	if (rc != 0) {
		peer_reply_error(p, m->request_id, rc);
		return NULL;
	}
	return mb;
}

static void cmd_send(struct peer *p, const struct cairn_msg *m)
{
	struct mailbox *mb = send_target(p, m);
	if (mb != NULL)
		accept_envelope(p, mb, m);
}

/* INTAKE (5.10): makes the caller's mailbox an intake mailbox, or changes its bits. */
static void cmd_intake(struct peer *p, const struct cairn_msg *m)
{
	/* The codec refuses these too; the handler does not count on it. */
	if (m->work_bits < WORK_BITS_MIN || m->work_bits > WORK_BITS_MAX) {
		peer_reply_error(p, m->request_id, CAIRN_EBADREQ);
		return;
	}
	struct mailbox *mb;
	struct request *r = owner_write(p, m, &mb);
	if (r == NULL)
		return;
	/* In force at once, like SECURE: a SEND read after this command gets `work`. */
	mb->rec.work_bits = m->work_bits;
	owner_write_submit(r, mb, STORE_MAILBOX_INTAKE);
}

/*
 * 5.10 check 2: whether WORK's time is within work_window of NOW and, while the clock is past
 * the start, not before the start. A clock stepped back to before the start would otherwise
 * refuse every sender whose clock agrees with it until it caught up (by the whole step): the
 * table still holds all this process accepted, and what a process before it accepted could
 * come back only from its own sender, inside the channel, like the work dated ahead that 5.10
 * already lets through once across a restart.
 */
static bool work_fresh(const struct relay *relay, const uint8_t *work, int64_t now)
{
	uint64_t t = work_time(work);
	int64_t window = (int64_t)relay->cfg->work_window_s;
	if (t > (uint64_t)INT64_MAX)
		return false;
	int64_t ti = (int64_t)t;
	if (now >= relay->started && ti < relay->started)
		return false;
	return ti <= now + window && ti >= now - window;
}

/*
 * SEND_WORK (5.10): the checks in the spec's order, cheapest first, each refusal storing and
 * remembering nothing; the hashes (the envelope's and one block) come only after the quota,
 * the relay's room and the time have passed.
 */
static void cmd_send_work(struct peer *p, const struct cairn_msg *m)
{
	struct relay *relay = p->relay;
	struct mailbox *mb = send_target(p, m);
	if (mb == NULL)
		return;
	int64_t now = relay_now(relay);
	if (!work_fresh(relay, m->work, now)) {
		peer_reply_error(p, m->request_id, CAIRN_EWORK);
		return;
	}
	uint8_t digest[WORK_HASH_LEN];
	if (!work_verify(m->sender_id, m->envelope ? m->envelope : (const uint8_t *)"",
	                 m->envelope_len, m->work, mb->rec.work_bits, digest)) {
		peer_reply_error(p, m->request_id, CAIRN_EWORK);
		return;
	}
	if (worktable_seen(&relay->work, digest, now)) {
		peer_reply_error(p, m->request_id, CAIRN_EWORK);
		return;
	}
	/* Remembered from here on, whether or not the store succeeds (5.10). */
	int rc = worktable_insert(&relay->work, digest, now);
	if (rc != 0) {
		/* Full: `full` (5.10 check 4). No memory for the table: retry later. */
		rc = rc == CAIRN_ECAPACITY ? admission_work_table_full(relay) : CAIRN_ESTORAGE;
		peer_reply_error(p, m->request_id, rc);
		return;
	}
	accept_envelope(p, mb, m);
}

/* BUNDLED (5.12): only inside a FORWARDED's seal (forwarded.c sets the seal's E), then
 * rules 1 and 2 (bundled.c), then a SEND's checks, the seen entry, the durable write. */
static void cmd_bundled(struct peer *p, const struct cairn_msg *m)
{
	if (p->bundle_e == NULL) {
		peer_reply_error(p, m->request_id, CAIRN_EBADREQ);
		return;
	}
	if (!bundle_check(p, m, p->bundle_e))
		return;
	struct mailbox *mb = send_target(p, m);
	if (mb == NULL)
		return;
	struct bundle_mark *mark = bundle_mark_new(p, m, p->bundle_e);
	if (mark != NULL)
		accept_envelope_marked(p, mb, m, mark);
}

static void on_command(void *peer, const struct cairn_msg *m)
{
	struct peer *p = peer;
	if (p->relay->stopping) {
		peer_reply_error(p, m->request_id, CAIRN_ESHUTDOWN);
		return;
	}
	/* PING and POLICY answer at once from memory: never limited by requests in flight. */
	if (p->inflight >= p->relay->cfg->inflight_requests && m->type != CAIRN_CMD_PING &&
	    m->type != CAIRN_CMD_POLICY) {
		peer_reply_error(p, m->request_id, CAIRN_ELIMIT);
		return;
	}
	switch (m->type) {
	case CAIRN_CMD_PING:
		peer_reply_ok(p, m->request_id);
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
	case CAIRN_CMD_INTAKE:
		cmd_intake(p, m);
		break;
	case CAIRN_CMD_SEND_WORK:
		cmd_send_work(p, m);
		break;
	case CAIRN_CMD_FORWARD:
		forward_command(p, m);
		break;
	case CAIRN_CMD_FORWARDED:
		forwarded_command(p, m);
		break;
	case CAIRN_CMD_BUNDLED:
		cmd_bundled(p, m);
		break;
	case CAIRN_CMD_POLICY:
		relay_policy_command(p, m);
		break;
	default:
		if (logs_command(p, m))
			break;
		/* A reply type sent by a client. */
		peer_reply_error(p, m->request_id, CAIRN_EUNKNOWN);
		break;
	}
}

/* ---- connection events --------------------------------------------------------------- */

/* A relay holds one per connection, in the connection's own allocation (port.h): conn.c
 * asserts what the two come to (docs/PERFORMANCE.md, idle memory). */
_Static_assert(sizeof(void *) != 8 || sizeof(struct peer) <= 120, "struct peer grew");
_Static_assert(_Alignof(struct peer) <= CONN_PEER_ALIGN, "struct peer needs more alignment");

static void on_open(void *peer, struct relay *relay, struct conn *c)
{
	struct peer *p = peer;
	p->relay = relay;
	p->conn = c;
	p->open = true;
	p->authed = &p->authed_one;
	p->subs = &p->subs_one;
	admission_budget_init(relay, &p->budget);
	p->next = relay->peers;
	if (p->next != NULL)
		p->next->prev = p;
	relay->peers = p;
}

static void on_closed(void *peer)
{
	struct peer *p = peer;
	struct relay *relay = p->relay;
	while (p->subs_len > 0)
		unsubscribe(relay, p->subs[p->subs_len - 1], -1);
	logs_peer_closed(p);
	if (!p->open)
		return;
	p->open = false;
	mailbox_send_forget(&relay->mailboxes, relay->port->handshake_hash(p->conn));
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
	logs_peer_drained(p);
}

static bool is_busy(const void *peer)
{
	const struct peer *p = peer;
	/* A read of P's that waits for the relay's read batches: read no more. */
	return p->inflight >= p->relay->cfg->inflight_requests ||
	       (p->reads != NULL && p->reads->waiting > 0);
}

static void on_free(void *peer)
{
	struct peer *p = peer;
	if (p->authed != &p->authed_one)
		free(p->authed);
	if (p->subs != &p->subs_one)
		free(p->subs);
	free(p->reads);
	peer_seal_free(p);
}

const struct conn_handler commands_handler = {
    .peer_size = sizeof(struct peer),
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
	logs_shutdown(relay);
	worktable_free(&relay->work);
	bundleseen_free(&relay->bundles);
	spares_free(&relay->requests, free);
}
