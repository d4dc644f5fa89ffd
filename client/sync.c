/* SPDX-License-Identifier: MIT */
/*
 * Relay sessions for sync, send and listen. One session per relay with work: our mailboxes
 * there (AUTH, SUBSCRIBE, then deliveries) and outbox entries addressed there (SEND). An
 * envelope is acknowledged only after what it carried is stored, in one transaction with the
 * ratchet step that opened it; an envelope that does not open is dropped silently (and
 * acknowledged, so the relay does not hold it forever). A sync ends once every relay answered
 * its PING, every send and acknowledgement is answered, and nothing arrived for QUIET_MS.
 */
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "client.h"
#include "e2e.h"

#define QUIET_MS        400   /* a drained relay stays silent this long */
#define PING_EVERY_MS   60000 /* listen: below the relay's idle timeout */
#define OUTBOX_EVERY_MS 2000  /* listen: pick up messages queued by other processes */
#define BACKOFF_MAX_MS  60000

struct sub {
	uint32_t rid;
	char name[CAIRN_NAME_MAX + 1];
	uint8_t recipient_id[CAIRN_MAILBOX_ID_LEN];
};

struct pending_send {
	uint32_t rid;
	uint8_t outbox_id[16];
	uint8_t message_id[APPMSG_ID_LEN];
	char contact[CAIRN_NAME_MAX + 1];
};

/*
 * Each relay gets up to two connections: one that manages our mailboxes there (AUTH,
 * SUBSCRIBE, ACK) and one that only sends. On one connection, the relay could link "the owner
 * of these mailboxes" with "writes to that mailbox", i.e. learn who talks to whom.
 */
enum session_role { ROLE_RECEIVE, ROLE_SEND };

struct session {
	char relay[CAIRN_ADDRESS_MAX + 1];
	enum session_role role;
	struct cnet *net;
	struct sub *subs;
	size_t nsubs;
	struct pending_send *sends;
	size_t nsends, capsends;
	uint32_t ping_rid;
	bool ping_done;
	size_t acks;
	int64_t last_ms, next_ping_ms, retry_ms, backoff_ms;
};

struct run {
	struct cairn *c;
	struct session *s;
	size_t n;
	bool receive;
	struct cairn_sync_result *res;
	cairn_message_cb on_message;
	void *ctx;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct session *session_for(struct run *run, const char *relay, enum session_role role)
{
	for (size_t i = 0; i < run->n; i++)
		if (run->s[i].role == role && strcmp(run->s[i].relay, relay) == 0)
			return &run->s[i];
	struct session *p = realloc(run->s, (run->n + 1) * sizeof(*p));
	if (p == NULL)
		return NULL;
	run->s = p;
	struct session *s = &run->s[run->n++];
	memset(s, 0, sizeof(*s));
	strcpy(s->relay, relay);
	s->role = role;
	return s;
}

static void session_close(struct session *s)
{
	cnet_close(s->net);
	s->net = NULL;
	s->nsends = 0;
	s->acks = 0;
	s->ping_done = false;
}

/* ---- planning: which relays, which mailboxes, which sends ---------------------------- */

static int plan_contact(void *vctx, const uint8_t *v, size_t vlen)
{
	struct run *run = vctx;
	struct contact k;
	if (contact_parse(v, vlen, &k) != 0)
		return 0; /* a damaged record must not stop the others */
	struct session *s = session_for(run, k.mine.relay, ROLE_RECEIVE);
	if (s != NULL) {
		struct sub *p = realloc(s->subs, (s->nsubs + 1) * sizeof(*p));
		if (p != NULL) {
			s->subs = p;
			memset(&p[s->nsubs], 0, sizeof(*p));
			strcpy(p[s->nsubs].name, k.name);
			memcpy(p[s->nsubs].recipient_id, k.mine.recipient_id,
			       CAIRN_MAILBOX_ID_LEN);
			s->nsubs++;
		}
	}
	contact_wipe(&k);
	return 0;
}

static int plan_outbox(void *vctx, const uint8_t *v, size_t vlen)
{
	struct run *run = vctx;
	struct outbox_entry e;
	if (outbox_parse(v, vlen, &e) == 0)
		(void)session_for(run, e.to.relay, ROLE_SEND);
	return 0;
}

/* ---- sending ------------------------------------------------------------------------- */

static bool send_pending(const struct session *s, const uint8_t outbox_id[16])
{
	for (size_t i = 0; i < s->nsends; i++)
		if (memcmp(s->sends[i].outbox_id, outbox_id, 16) == 0)
			return true;
	return false;
}

struct queue_ctx {
	struct run *run;
	struct session *s;
	int rc;
};

/* Queues a SEND for every outbox entry addressed to this session's relay, in outbox order. */
static int queue_outbox_entry(void *vctx, const uint8_t *v, size_t vlen)
{
	struct queue_ctx *q = vctx;
	struct session *s = q->s;
	struct outbox_entry e;
	if (outbox_parse(v, vlen, &e) != 0 || strcmp(e.to.relay, s->relay) != 0 ||
	    send_pending(s, e.outbox_id))
		return 0;
	if (s->nsends == s->capsends) {
		size_t ncap = s->capsends ? s->capsends * 2 : 16;
		struct pending_send *p = realloc(s->sends, ncap * sizeof(*p));
		if (p == NULL) {
			q->rc = CAIRN_ENOMEM;
			return 1;
		}
		s->sends = p;
		s->capsends = ncap;
	}
	struct pending_send *ps = &s->sends[s->nsends];
	struct cairn_msg m = {.type = CAIRN_CMD_SEND,
			      .request_id = cnet_next_id(s->net),
			      .sender_id = e.to.sender_id,
			      .credential = e.to.credential,
			      .envelope = e.envelope,
			      .envelope_len = e.envelope_len};
	q->rc = cnet_queue(s->net, &m);
	if (q->rc != 0)
		return 1;
	ps->rid = m.request_id;
	memcpy(ps->outbox_id, e.outbox_id, 16);
	memcpy(ps->message_id, e.message_id, APPMSG_ID_LEN);
	strcpy(ps->contact, e.contact);
	s->nsends++;
	return 0;
}

static int queue_outbox(struct run *run, struct session *s)
{
	struct queue_ctx q = {run, s, 0};
	int rc = cstate_list(run->c->st, REC_OUTBOX, queue_outbox_entry, &q);
	return rc < 0 ? rc : q.rc;
}

/* The relay accepted an outbox entry: it leaves the outbox, and our copy of the message
 * records when. */
static void send_accepted(struct run *run, const struct pending_send *ps)
{
	struct cairn *c = run->c;
	if (cstate_begin(c->st) != 0)
		return;
	int rc = cstate_del(c->st, REC_OUTBOX, ps->outbox_id, 16);
	uint8_t key[RECORD_KEY_MAX], *v = NULL;
	size_t klen = message_key(key, ps->contact, ps->message_id), vlen = 0;
	struct stored_message m;
	if (rc == 0 && cstate_get(c->st, REC_MESSAGE, key, klen, &v, &vlen) == 0 &&
	    message_parse(v, vlen, &m) == 0 && m.received_at == 0) {
		m.received_at = (int64_t)time(NULL);
		uint8_t *nv = NULL;
		size_t nlen = 0;
		if (message_encode(&m, &nv, &nlen) == 0)
			rc = cstate_put(c->st, REC_MESSAGE, key, klen, nv, nlen);
		free(nv);
	}
	cstate_free_value(v, vlen);
	if (rc == 0 && cstate_commit(c->st) == 0)
		run->res->sent++;
	else
		cstate_rollback(c->st);
}

/* ---- receiving ----------------------------------------------------------------------- */

static int report(struct run *run, const struct contact *k, const struct appmsg *am,
		  const uint8_t *text, size_t len)
{
	run->res->received++;
	if (run->on_message == NULL)
		return 0;
	struct cairn_message m = {.contact = k->name, .outgoing = 0, .text = text, .len = len,
				  .sent_at = (int64_t)am->sent_at,
				  .received_at = (int64_t)time(NULL)};
	memcpy(m.id, am->id, APPMSG_ID_LEN);
	run->on_message(run->ctx, &m);
	return 0;
}

/*
 * Stores one part of a longer message; when all parts are there, joins them into the
 * message. Returns 1 when the message is complete and new (*TEXT, *LEN malloc'd), 0 while
 * parts are missing, or a negative code.
 */
static int store_part(struct cairn *c, const struct contact *k, const struct appmsg *am,
		      const uint8_t *raw, size_t rawlen, uint8_t **text, size_t *len)
{
	uint8_t key[RECORD_KEY_MAX];
	size_t klen = part_key(key, k->name, am->id, am->part_index);
	int rc = cstate_put(c->st, REC_PART, key, klen, raw, rawlen);
	if (rc != 0)
		return rc;
	size_t total = 0;
	uint8_t *buf = malloc((size_t)am->part_count * APPMSG_PART_MAX);
	if (buf == NULL)
		return CAIRN_ENOMEM;
	for (uint16_t i = 0; i < am->part_count && rc == 0; i++) {
		uint8_t *v = NULL;
		size_t vlen = 0;
		struct appmsg p;
		klen = part_key(key, k->name, am->id, i);
		rc = cstate_get(c->st, REC_PART, key, klen, &v, &vlen);
		if (rc == 0 && (appmsg_parse(v, vlen, &p) != 0 || p.kind != am->kind ||
				p.part_count != am->part_count || p.sent_at != am->sent_at))
			rc = CAIRN_EINVAL; /* parts that disagree: drop the message */
		if (rc == 0) {
			memcpy(buf + total, p.data, p.data_len);
			total += p.data_len;
		}
		cstate_free_value(v, vlen);
	}
	if (rc == CAIRN_ENOTFOUND) {
		free(buf);
		return 0; /* more parts to come */
	}
	for (uint16_t i = 0; i < am->part_count; i++) {
		klen = part_key(key, k->name, am->id, i);
		if (cstate_del(c->st, REC_PART, key, klen) != 0)
			rc = CAIRN_EIO;
	}
	if (rc != 0 || total > CAIRN_MESSAGE_MAX) {
		free(buf);
		return rc == CAIRN_EIO ? rc : 0;
	}
	*text = buf;
	*len = total;
	return 1;
}

/* Handles the application message inside an opened envelope (transaction held). */
static int deliver_appmsg(struct run *run, struct contact *k, const uint8_t *raw, size_t len,
			  struct appmsg *am, uint8_t **text, size_t *tlen)
{
	*text = NULL;
	if (appmsg_parse(raw, len, am) != 0 || am->kind != APPMSG_TEXT)
		return 0; /* hello, or a kind from a later version: nothing to store */
	if (am->part_count == 1) {
		int rc = client_store_message(run->c, k, 0, am->id, (int64_t)am->sent_at,
					      (int64_t)time(NULL), am->data, am->data_len);
		if (rc == 1) {
			k->unread++;
			*text = malloc(am->data_len ? am->data_len : 1);
			if (*text != NULL)
				memcpy(*text, am->data, am->data_len);
			*tlen = am->data_len;
		}
		return rc < 0 ? rc : 0;
	}
	uint8_t *joined = NULL;
	size_t jlen = 0;
	int rc = store_part(run->c, k, am, raw, len, &joined, &jlen);
	if (rc == 1) {
		rc = client_store_message(run->c, k, 0, am->id, (int64_t)am->sent_at,
					  (int64_t)time(NULL), joined, jlen);
		if (rc == 1) {
			k->unread++;
			*text = joined;
			*tlen = jlen;
			joined = NULL;
		}
		free(joined);
	}
	return rc < 0 ? rc : 0;
}

/* Replaces K's stored ratchet with R's state. */
static int keep_ratchet(struct contact *k, const struct ratchet *r)
{
	size_t len = ratchet_serialized_len(r);
	uint8_t *s = malloc(len);
	if (s == NULL)
		return CAIRN_ENOMEM;
	int rc = ratchet_serialize(r, s, len, &len);
	if (rc != 0) {
		free(s);
		return rc;
	}
	if (k->ratchet != NULL) {
		sodium_memzero(k->ratchet, k->ratchet_len);
		free(k->ratchet);
	}
	k->ratchet = s;
	k->ratchet_len = len;
	return 0;
}

/*
 * Opens an envelope from contact NAME's mailbox and stores what it holds. Returns 0 when the
 * envelope may be acknowledged (stored, or dropped as a duplicate or forgery), or a negative
 * code when it must stay on the relay (local storage failed).
 */
static int handle_envelope(struct run *run, const char *name, const uint8_t *env, size_t len)
{
	struct cairn *c = run->c;
	static uint8_t buf[CAIRN_ENVELOPE_MAX];
	struct contact k;
	struct ratchet *r = NULL;
	struct e2e_opened op;
	struct appmsg am;
	uint8_t *text = NULL;
	size_t tlen = 0;
	int rc = cstate_begin(c->st);
	if (rc != 0)
		return rc;
	rc = client_load_contact(c, name, &k);
	if (rc != 0) {
		cstate_rollback(c->st);
		return rc == CAIRN_ENOTFOUND ? 0 : rc;
	}
	int open_rc;
	if (k.state == CONTACT_INVITED) {
		uint8_t opk[CAIRN_KEY_LEN];
		open_rc = e2e_first_onetime(env, len, opk);
		if (open_rc == 0 && sodium_memcmp(opk, k.onetime.pub, CAIRN_KEY_LEN) != 0)
			open_rc = CAIRN_EAUTH;
		if (open_rc == 0)
			open_rc = e2e_open_first(c->identity_sk, &k.onetime, env, len, buf,
						 sizeof(buf), &op, k.peer_identity, &r, NULL);
		struct appmsg_reply reply;
		if (open_rc == 0 &&
		    (open_rc = appmsg_reply_parse(op.reply, op.reply_len, &reply)) == 0) {
			strcpy(k.peer.relay, reply.relay);
			memcpy(k.peer.sender_id, reply.sender_id, CAIRN_MAILBOX_ID_LEN);
			memcpy(k.peer.credential, reply.credential, CAIRN_CREDENTIAL_LEN);
			k.state = CONTACT_ESTABLISHED;
		}
		sodium_memzero(&reply, sizeof(reply));
	} else {
		open_rc = ratchet_deserialize(&r, k.ratchet, k.ratchet_len);
		if (open_rc == 0)
			open_rc = e2e_open(r, env, len, buf, sizeof(buf), &op, NULL);
		/* Anything the inviter sends proves it holds the session. */
		if (open_rc == 0 && k.state == CONTACT_ACCEPTED && op.type == E2E_TYPE_MESSAGE)
			k.state = CONTACT_ESTABLISHED;
	}
	if (open_rc != 0) {
		/* A duplicate, a replay or a forgery: dropped silently, state unchanged. */
		rc = 0;
		cstate_rollback(c->st);
		goto out;
	}
	rc = keep_ratchet(&k, r);
	if (rc == 0)
		rc = deliver_appmsg(run, &k, op.message, op.message_len, &am, &text, &tlen);
	if (rc == 0)
		rc = client_store_contact(c, &k);
	if (rc == 0)
		rc = cstate_commit(c->st);
	else
		cstate_rollback(c->st);
	if (rc == 0 && text != NULL)
		report(run, &k, &am, text, tlen);
out:
	if (text != NULL) {
		sodium_memzero(text, tlen);
		free(text);
	}
	sodium_memzero(buf, sizeof(buf));
	ratchet_free(r);
	contact_wipe(&k);
	return rc;
}

/* ---- the session loop ---------------------------------------------------------------- */

/* Connects S and queues its AUTH, SUBSCRIBE, SEND and PING commands. */
static int session_start(struct run *run, struct session *s)
{
	struct cairn *c = run->c;
	int rc = client_connect(c, s->relay, &s->net);
	if (rc != 0)
		return rc;
	for (size_t i = 0; run->receive && i < s->nsubs && rc == 0; i++) {
		struct contact k;
		if (client_load_contact(c, s->subs[i].name, &k) != 0)
			continue;
		uint8_t sig[64];
		client_auth_signature(s->net, &k.mine, sig);
		struct cairn_msg auth = {.type = CAIRN_CMD_AUTH,
					 .request_id = cnet_next_id(s->net),
					 .recipient_id = k.mine.recipient_id,
					 .signature = sig};
		struct cairn_msg sub = {.type = CAIRN_CMD_SUBSCRIBE,
					.request_id = cnet_next_id(s->net),
					.recipient_id = k.mine.recipient_id};
		s->subs[i].rid = sub.request_id;
		rc = cnet_queue(s->net, &auth);
		if (rc == 0)
			rc = cnet_queue(s->net, &sub);
		contact_wipe(&k);
	}
	if (rc == 0 && s->role == ROLE_SEND)
		rc = queue_outbox(run, s);
	struct cairn_msg ping = {.type = CAIRN_CMD_PING, .request_id = cnet_next_id(s->net)};
	s->ping_rid = ping.request_id;
	s->ping_done = false;
	if (rc == 0)
		rc = cnet_queue(s->net, &ping);
	if (rc == 0)
		rc = cnet_flush(s->net);
	s->last_ms = now_ms();
	s->next_ping_ms = s->last_ms + PING_EVERY_MS;
	if (rc != 0)
		session_close(s);
	return rc;
}

/* Handles one message from S's relay. Returns non-zero when the session must close. */
static int session_handle(struct run *run, struct session *s, const struct cairn_msg *m)
{
	s->last_ms = now_ms();
	if (m->type == CAIRN_REPLY_ENVELOPE) {
		for (size_t i = 0; i < s->nsubs; i++) {
			if (s->subs[i].rid != m->request_id)
				continue;
			int rc = handle_envelope(run, s->subs[i].name, m->envelope,
						 m->envelope_len);
			if (rc != 0)
				return rc; /* not stored, so not acknowledged: redelivered later */
			struct cairn_msg ack = {.type = CAIRN_CMD_ACK,
						.request_id = cnet_next_id(s->net),
						.recipient_id = s->subs[i].recipient_id,
						.envelope_id = m->envelope_id};
			s->acks++;
			rc = cnet_queue(s->net, &ack);
			return rc ? rc : cnet_flush(s->net);
		}
		return 0;
	}
	if (m->type == CAIRN_REPLY_END)
		return 0; /* the next session subscribes again */
	if (m->request_id == s->ping_rid) {
		s->ping_done = true;
		return 0;
	}
	for (size_t i = 0; i < s->nsends; i++) {
		if (s->sends[i].rid != m->request_id)
			continue;
		if (m->type == CAIRN_REPLY_OK)
			send_accepted(run, &s->sends[i]);
		/* An ERROR (quota, storage) leaves the entry in the outbox for a later try. */
		s->sends[i] = s->sends[--s->nsends];
		return 0;
	}
	if (m->type == CAIRN_REPLY_OK && s->acks > 0)
		s->acks--; /* ACK, AUTH and SUBSCRIBE replies; only ACKs are counted */
	return 0;
}

/* Only deliveries arrive unasked, so a session with no subscription (send, accept) is done as
 * soon as everything it asked is answered: waiting QUIET_MS there only slows every send. */
static bool session_drained(const struct session *s, int64_t now)
{
	return s->net == NULL ||
	       (s->ping_done && s->nsends == 0 && s->acks == 0 &&
		(s->nsubs == 0 || now - s->last_ms >= QUIET_MS));
}

static int count_one(void *vctx, const uint8_t *v, size_t vlen)
{
	(*(unsigned *)vctx)++;
	return 0;
}

int client_run(struct cairn *c, struct cairn_sync_result *res, cairn_message_cb on_message,
	       void *ctx, volatile sig_atomic_t *stop, bool receive)
{
	memset(res, 0, sizeof(*res));
	struct run run = {.c = c, .receive = receive, .res = res, .on_message = on_message,
			  .ctx = ctx};
	int rc = 0;
	if (receive && (rc = cstate_list(c->st, REC_CONTACT, plan_contact, &run)) < 0)
		goto out;
	if ((rc = cstate_list(c->st, REC_OUTBOX, plan_outbox, &run)) < 0)
		goto out;
	rc = 0;
	for (size_t i = 0; i < run.n; i++) {
		if (session_start(&run, &run.s[i]) != 0) {
			res->relays_failed++;
			run.s[i].backoff_ms = 1000;
			run.s[i].retry_ms = now_ms() + run.s[i].backoff_ms;
		}
	}
	int64_t deadline = now_ms() + 4 * (int64_t)c->timeout_ms;
	int64_t next_outbox = now_ms() + OUTBOX_EVERY_MS;
	for (;;) {
		int64_t now = now_ms();
		bool all_drained = true;
		/* listen: messages queued meanwhile (by `cairn send`, say) may need a send
		 * connection to a relay we have none to yet; it starts in the loop below. */
		if (stop != NULL && now >= next_outbox) {
			/* A failed read is simply retried at the next tick. */
			int planned = cstate_list(c->st, REC_OUTBOX, plan_outbox, &run);
			(void)planned;
		}
		struct pollfd pfd[64];
		size_t np = 0;
		for (size_t i = 0; i < run.n; i++) {
			struct session *s = &run.s[i];
			if (s->net == NULL && stop != NULL && now >= s->retry_ms) {
				/* listen: reconnect with backoff */
				if (session_start(&run, s) != 0) {
					s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : 1000;
					if (s->backoff_ms > BACKOFF_MAX_MS)
						s->backoff_ms = BACKOFF_MAX_MS;
					s->retry_ms = now_ms() + s->backoff_ms;
				} else {
					s->backoff_ms = 0;
				}
			}
			if (s->net == NULL)
				continue;
			/* Handle everything already received before waiting. */
			struct cairn_msg m;
			int r;
			while ((r = cnet_recv(s->net, &m, 0)) == 0)
				if (session_handle(&run, s, &m) != 0) {
					r = CAIRN_EIO;
					break;
				}
			if (r != CAIRN_ETIMEDOUT) {
				session_close(s);
				res->relays_failed++;
				s->retry_ms = now + (s->backoff_ms ? s->backoff_ms : 1000);
				continue;
			}
			if (stop != NULL && now >= s->next_ping_ms) {
				struct cairn_msg ping = {.type = CAIRN_CMD_PING,
							 .request_id = cnet_next_id(s->net)};
				s->next_ping_ms = now + PING_EVERY_MS;
				if (cnet_queue(s->net, &ping) != 0 || cnet_flush(s->net) != 0) {
					session_close(s);
					continue;
				}
			}
			if (stop != NULL && now >= next_outbox) {
				if (s->role == ROLE_SEND &&
				    (queue_outbox(&run, s) != 0 || cnet_flush(s->net) != 0)) {
					session_close(s);
					continue;
				}
			}
			if (!session_drained(s, now))
				all_drained = false;
			if (np < 64) {
				pfd[np] = (struct pollfd){.fd = cnet_fd(s->net), .events = POLLIN};
				np++;
			}
		}
		if (now >= next_outbox)
			next_outbox = now + OUTBOX_EVERY_MS;
		if (stop == NULL && (all_drained || now >= deadline))
			break;
		if (stop != NULL && *stop)
			break;
		poll(pfd, np, np ? 100 : 200);
	}
out:
	for (size_t i = 0; i < run.n; i++) {
		session_close(&run.s[i]);
		free(run.s[i].subs);
		free(run.s[i].sends);
	}
	free(run.s);
	unsigned pending = 0;
	if (cstate_list(c->st, REC_OUTBOX, count_one, &pending) >= 0)
		res->pending = pending;
	return rc < 0 ? rc : 0;
}

int cairn_sync(struct cairn *c, struct cairn_sync_result *result, cairn_message_cb on_message,
	       void *ctx)
{
	int rc = client_run(c, result, on_message, ctx, NULL, true);
	if (rc == 0 && result->relays_failed > 0)
		rc = CAIRN_ECONNECT;
	return rc;
}

int cairn_listen(struct cairn *c, cairn_message_cb on_message, void *ctx,
		 volatile sig_atomic_t *stop)
{
	struct cairn_sync_result res;
	return client_run(c, &res, on_message, ctx, stop, true);
}
