/* SPDX-License-Identifier: MIT */
/*
 * Relay sessions for sync, send and listen. One session per relay and role: a receiving one
 * for the relays that hold our mailboxes (AUTH, SUBSCRIBE, then deliveries) and a sending one
 * for the relays an outbox entry goes to (SEND). An outbox entry goes to the first of its
 * contact's mailboxes whose relay answers and accepts it; if the connection breaks or the
 * relay refuses before its OK, the same bytes go to the next mailbox (docs/PROTOCOL.md section
 * 8.10). An envelope is acknowledged only after receive.c has stored what it carried; one that
 * does not open is acknowledged too, so the relay does not hold it forever. A sync ends once every
 * relay answered its PING, every send, acknowledgement and deletion is answered, and nothing
 * arrived for QUIET_MS.
 */
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "client.h"

#define QUIET_MS 400 /* a drained relay stays silent this long */
/* listen: below the relay's idle timeout, and how soon a dead path is noticed (plus the
 * connection timeout) */
#define PING_EVERY_MS  30000
#define TICK_MS        2000 /* listen: moves, new mailboxes, the outbox of other processes */
#define BACKOFF_MAX_MS 60000

struct sub {
	uint32_t rid;                   /* of the SUBSCRIBE; 0 until subscribed */
	uint32_t delete_rid;            /* of a DELETE in flight, or 0 */
	uint8_t contact[RECORD_ID_LEN]; /* whose mailbox */
	uint8_t recipient_id[CAIRN_MAILBOX_ID_LEN];
};

struct pending_send {
	uint32_t rid;
	uint8_t outbox_id[16];
	uint8_t message_id[APPMSG_ID_LEN];
	uint8_t kind;
	uint8_t conv[RECORD_ID_LEN];
};

/* An outbox entry a session's relay refused: it goes to the contact's next mailbox. */
struct refusal {
	uint8_t outbox_id[16];
	size_t session;
};

/*
 * Each relay gets up to two connections: one that manages our mailboxes there (AUTH,
 * SUBSCRIBE, ACK, DELETE) and one that only sends. On one connection, the relay could link
 * "the owner of these mailboxes" with "writes to that mailbox", i.e. learn who talks to whom.
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
	int64_t ping_due_ms; /* an unanswered PING by then means the path is dead */
	size_t acks, deletes;
	bool tried;          /* sync: connecting was tried in this run */
	bool down;           /* the last attempt to connect failed */
	bool retire_checked; /* retired mailboxes looked for since the last change */
	int64_t last_ms, next_ping_ms, retry_ms, backoff_ms;
};

struct run {
	struct cairn *c;
	struct session *s; /* grows: hold no pointer into it across session_for */
	size_t n;
	bool receive, listen;
	bool redispatch; /* outbox entries may need a (new) relay */
	bool recheck;    /* a contact moved: look for mailboxes to delete again */
	struct refusal *refused;
	size_t nrefused, caprefused;
	struct cairn_sync_result *res;
	int local_rc; /* the first local failure (storing a delivery): what sync reports */
	cairn_message_cb on_message;
	void *ctx;
};

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

/* Closes S's connection. Sends in flight there are forgotten: redispatched elsewhere. */
static void session_close(struct run *run, struct session *s)
{
	cnet_close(s->net);
	s->net = NULL;
	if (s->nsends > 0)
		run->redispatch = true;
	s->nsends = 0;
	s->acks = 0;
	s->deletes = 0;
	for (size_t i = 0; i < s->nsubs; i++)
		s->subs[i].rid = s->subs[i].delete_rid = 0;
	s->ping_done = false;
	s->retire_checked = false;
}

/* S could not connect or broke: counted, and (listen) retried after a growing pause. */
static void session_failed(struct run *run, struct session *s, int64_t now)
{
	run->res->relays_failed++;
	s->down = true;
	s->backoff_ms = s->backoff_ms ? 2 * s->backoff_ms : 1000;
	if (s->backoff_ms > BACKOFF_MAX_MS)
		s->backoff_ms = BACKOFF_MAX_MS;
	s->retry_ms = now + s->backoff_ms;
}

/* Whether the relay of S was found down in this run by either of its sessions. */
static bool relay_down(const struct run *run, const struct session *s)
{
	for (size_t i = 0; i < run->n; i++)
		if (run->s[i].down && run->s[i].net == NULL &&
		    strcmp(run->s[i].relay, s->relay) == 0)
			return true;
	return false;
}

/* Whether some relay that holds our mailboxes is down: a move, which needs every relay of an
 * invite, then waits rather than spend a connection timeout on it. */
static bool any_down(const struct run *run)
{
	for (size_t i = 0; i < run->n; i++)
		if (run->s[i].role == ROLE_RECEIVE && run->s[i].down && run->s[i].net == NULL)
			return true;
	return false;
}

/* Queues AUTH and SUBSCRIBE for SUB on S's connection (the caller flushes). A mailbox that
 * is no longer ours is skipped. */
static int subscribe(struct run *run, struct session *s, struct sub *sub)
{
	struct contact k;
	if (client_load_contact_id(run->c, sub->contact, &k) != 0)
		return 0;
	int at = contact_find_mine(&k, sub->recipient_id), rc = 0;
	if (at >= 0) {
		uint8_t sig[64];
		client_auth_signature(s->net, &k.mine[at], sig);
		struct cairn_msg auth = {.type = CAIRN_CMD_AUTH,
		                         .request_id = cnet_next_id(s->net),
		                         .recipient_id = sub->recipient_id,
		                         .signature = sig};
		struct cairn_msg m = {.type = CAIRN_CMD_SUBSCRIBE,
		                      .request_id = cnet_next_id(s->net),
		                      .recipient_id = sub->recipient_id};
		rc = cnet_queue(s->net, &auth);
		if (rc == 0 && (rc = cnet_queue(s->net, &m)) == 0)
			sub->rid = m.request_id;
	}
	contact_wipe(&k);
	return rc;
}

/* Connects S and queues its AUTH, SUBSCRIBE and PING commands. */
static int session_start(struct run *run, struct session *s)
{
	s->tried = true;
	int rc = client_connect(run->c, s->relay, &s->net);
	if (rc != 0)
		return rc;
	s->down = false;
	for (size_t i = 0; run->receive && i < s->nsubs && rc == 0; i++)
		rc = subscribe(run, s, &s->subs[i]);
	struct cairn_msg ping = {.type = CAIRN_CMD_PING, .request_id = cnet_next_id(s->net)};
	s->ping_rid = ping.request_id;
	s->ping_done = false;
	if (rc == 0)
		rc = cnet_queue(s->net, &ping);
	if (rc == 0)
		rc = cnet_flush(s->net);
	s->last_ms = client_mono_ms(run->c);
	s->next_ping_ms = s->last_ms + PING_EVERY_MS;
	s->ping_due_ms = s->last_ms + (int64_t)run->c->timeout_ms;
	if (rc != 0)
		session_close(run, s);
	return rc;
}

static void session_open(struct run *run, struct session *s, int64_t now)
{
	if (session_start(run, s) != 0)
		session_failed(run, s, now);
	else
		s->backoff_ms = 0;
}

/* ---- planning: our mailboxes, on which relays --------------------------------------- */

/* Adds a subscription for every mailbox of one contact that has none yet; on a connected
 * session (listen, after a move or a new invite) it subscribes at once. */
static int plan_contact(void *vctx, const uint8_t *v, size_t vlen)
{
	struct run *run = vctx;
	struct contact k;
	if (contact_parse(v, vlen, &k) != 0)
		return 0; /* a damaged record must not stop the others */
	for (size_t i = 0; i < k.nmine; i++) {
		struct session *s = session_for(run, k.mine[i].relay, ROLE_RECEIVE);
		if (s == NULL)
			break;
		bool have = false;
		for (size_t j = 0; j < s->nsubs && !have; j++)
			have = memcmp(s->subs[j].recipient_id, k.mine[i].recipient_id,
			              CAIRN_MAILBOX_ID_LEN) == 0;
		if (have)
			continue;
		struct sub *p = realloc(s->subs, (s->nsubs + 1) * sizeof(*p));
		if (p == NULL)
			break;
		s->subs = p;
		struct sub *sub = &p[s->nsubs++];
		memset(sub, 0, sizeof(*sub));
		memcpy(sub->contact, k.id, RECORD_ID_LEN);
		memcpy(sub->recipient_id, k.mine[i].recipient_id, CAIRN_MAILBOX_ID_LEN);
		if (s->net != NULL && (subscribe(run, s, sub) != 0 || cnet_flush(s->net) != 0)) {
			session_close(run, s);
			session_failed(run, s, client_mono_ms(run->c));
		}
	}
	contact_wipe(&k);
	return 0;
}

/* ---- sending ------------------------------------------------------------------------- */

static bool in_flight(const struct run *run, const uint8_t outbox_id[16])
{
	for (size_t i = 0; i < run->n; i++)
		for (size_t j = 0; j < run->s[i].nsends; j++)
			if (memcmp(run->s[i].sends[j].outbox_id, outbox_id, 16) == 0)
				return true;
	return false;
}

static bool refused(const struct run *run, const uint8_t outbox_id[16], size_t session)
{
	for (size_t i = 0; i < run->nrefused; i++)
		if (run->refused[i].session == session &&
		    memcmp(run->refused[i].outbox_id, outbox_id, 16) == 0)
			return true;
	return false;
}

static void refuse(struct run *run, const uint8_t outbox_id[16], size_t session)
{
	if (run->nrefused == run->caprefused) {
		size_t ncap = run->caprefused ? 2 * run->caprefused : 16;
		struct refusal *p = realloc(run->refused, ncap * sizeof(*p));
		if (p == NULL)
			return; /* then it is simply tried there again */
		run->refused = p;
		run->caprefused = ncap;
	}
	memcpy(run->refused[run->nrefused].outbox_id, outbox_id, 16);
	run->refused[run->nrefused++].session = session;
}

/* The mailboxes of each contact with something in the outbox, read once per pass. */
struct peers {
	uint8_t contact[RECORD_ID_LEN];
	bool found;
	struct mailbox_list list;
};

struct dispatch {
	struct run *run;
	int64_t now;
	struct peers *cache;
	size_t ncache, capcache;
	int rc;
};

static const struct mailbox_list *peers_of(struct dispatch *d, const uint8_t contact[RECORD_ID_LEN])
{
	for (size_t i = 0; i < d->ncache; i++)
		if (memcmp(d->cache[i].contact, contact, RECORD_ID_LEN) == 0)
			return &d->cache[i].list;
	if (d->ncache == d->capcache) {
		size_t ncap = d->capcache ? 2 * d->capcache : 8;
		struct peers *p = realloc(d->cache, ncap * sizeof(*p));
		if (p == NULL) {
			d->rc = CAIRN_ENOMEM;
			return NULL;
		}
		d->cache = p;
		d->capcache = ncap;
	}
	struct peers *p = &d->cache[d->ncache];
	struct contact k;
	memset(p, 0, sizeof(*p));
	if (client_load_contact_id(d->run->c, contact, &k) == 0) {
		memcpy(p->contact, k.id, RECORD_ID_LEN);
		p->found = true;
		p->list = k.peer;
		d->ncache++;
	}
	contact_wipe(&k);
	return p->found ? &p->list : NULL;
}

/* Whether this run may try to connect S now: once per sync, after the pause in listen. */
static bool may_connect(const struct run *run, const struct session *s, int64_t now)
{
	if (run->listen)
		return now >= s->retry_ms;
	return !s->tried && !relay_down(run, s);
}

/*
 * Queues one outbox entry that is not in flight on the first of its contact's mailboxes
 * whose relay is connected (or connects now) and has not refused it in this round.
 */
static int dispatch_entry(void *vctx, const uint8_t *v, size_t vlen)
{
	struct dispatch *d = vctx;
	struct run *run = d->run;
	struct outbox_entry e;
	if (outbox_parse(v, vlen, &e) != 0 || in_flight(run, e.outbox_id))
		return 0;
	const struct mailbox_list *peers = peers_of(d, e.contact);
	if (peers == NULL)
		return d->rc != 0;
	for (size_t i = 0; i < peers->count; i++) {
		const struct mailbox_addr *to = &peers->box[i];
		struct session *s = session_for(run, to->relay, ROLE_SEND);
		if (s == NULL) {
			d->rc = CAIRN_ENOMEM;
			return 1;
		}
		if (refused(run, e.outbox_id, (size_t)(s - run->s)))
			continue;
		if (s->net == NULL && may_connect(run, s, d->now))
			session_open(run, s, d->now);
		if (s->net == NULL)
			continue;
		if (s->nsends == s->capsends) {
			size_t ncap = s->capsends ? s->capsends * 2 : 16;
			struct pending_send *p = realloc(s->sends, ncap * sizeof(*p));
			if (p == NULL) {
				d->rc = CAIRN_ENOMEM;
				return 1;
			}
			s->sends = p;
			s->capsends = ncap;
		}
		struct cairn_msg m = {.type = CAIRN_CMD_SEND,
		                      .request_id = cnet_next_id(s->net),
		                      .sender_id = to->sender_id,
		                      .credential = to->credential,
		                      .envelope = e.envelope,
		                      .envelope_len = e.envelope_len};
		if (cnet_queue(s->net, &m) != 0) {
			session_close(run, s);
			session_failed(run, s, d->now);
			continue;
		}
		struct pending_send *ps = &s->sends[s->nsends++];
		ps->rid = m.request_id;
		ps->kind = e.kind;
		memcpy(ps->outbox_id, e.outbox_id, 16);
		memcpy(ps->message_id, e.message_id, APPMSG_ID_LEN);
		memcpy(ps->conv, e.conv, RECORD_ID_LEN);
		return 0;
	}
	return 0; /* no mailbox reachable: it waits */
}

/* Sends every outbox entry not in flight, in outbox order (see dispatch_entry). */
static int dispatch(struct run *run, int64_t now)
{
	struct dispatch d = {.run = run, .now = now};
	int rc = cstate_list(run->c->st, REC_OUTBOX, dispatch_entry, &d);
	if (d.cache != NULL) {
		sodium_memzero(d.cache, d.capcache * sizeof(*d.cache)); /* credentials */
		free(d.cache);
	}
	for (size_t i = 0; i < run->n; i++) {
		struct session *s = &run->s[i];
		if (s->role == ROLE_SEND && s->net != NULL && cnet_flush(s->net) != 0) {
			session_close(run, s);
			session_failed(run, s, now);
		}
	}
	return rc < 0 ? rc : d.rc;
}

/* A relay accepted an outbox entry: it leaves the outbox, and our copy of the message
 * records when. */
static void send_accepted(struct run *run, const struct pending_send *ps)
{
	struct cairn *c = run->c;
	if (cstate_begin(c->st) != 0)
		return;
	int rc = cstate_del(c->st, REC_OUTBOX, ps->outbox_id, 16);
	uint8_t key[RECORD_KEY_MAX], *v = NULL;
	size_t klen = message_key(key, ps->conv, ps->message_id), vlen = 0;
	struct stored_message m;
	if (rc == 0 && cstate_get(c->st, REC_MESSAGE, key, klen, &v, &vlen) == 0 &&
	    message_parse(v, vlen, &m) == 0 && m.received_at == 0) {
		m.received_at = client_now_s(c);
		uint8_t *nv = NULL;
		size_t nlen = 0;
		if (message_encode(&m, &nv, &nlen) == 0)
			rc = cstate_put_scoped(c->st, REC_MESSAGE, key, klen, m.conv, RECORD_ID_LEN,
			                       nv, nlen);
		free(nv);
	}
	cstate_free_value(v, vlen);
	if (rc == 0 && cstate_commit(c->st) == 0) {
		if (ps->kind != APPMSG_MAILBOXES)
			run->res->sent++;
	} else {
		cstate_rollback(c->st);
	}
}

/* ---- retiring mailboxes -------------------------------------------------------------- */

/*
 * Once S's relay has delivered everything waiting (the session is drained), deletes there
 * every retired mailbox of a contact that has moved to the fresh ones: nothing more can
 * arrive in it, and an invite seen later then opens nothing.
 */
static void retire_check(struct run *run, struct session *s)
{
	s->retire_checked = true;
	bool queued = false;
	for (size_t i = 0; i < s->nsubs; i++) {
		struct sub *sub = &s->subs[i];
		struct contact k;
		if (sub->rid == 0 || sub->delete_rid != 0 ||
		    client_load_contact_id(run->c, sub->contact, &k) != 0)
			continue;
		int at = contact_find_mine(&k, sub->recipient_id);
		if (at >= 0 && (k.mine[at].flags & MAILBOX_RETIRED) && k.move == MOVE_CONFIRMED) {
			struct cairn_msg del = {.type = CAIRN_CMD_DELETE,
			                        .request_id = cnet_next_id(s->net),
			                        .recipient_id = sub->recipient_id};
			if (cnet_queue(s->net, &del) == 0) {
				sub->delete_rid = del.request_id;
				s->deletes++;
				queued = true;
			}
		}
		contact_wipe(&k);
	}
	if (queued && cnet_flush(s->net) != 0) {
		session_close(run, s);
		session_failed(run, s, client_mono_ms(run->c));
	}
}

/* The relay deleted our mailbox of S->subs[I]: it leaves the contact (and the session). */
static void mailbox_gone(struct run *run, struct session *s, size_t i)
{
	struct cairn *c = run->c;
	struct contact k;
	if (cstate_begin(c->st) != 0)
		return;
	int rc = client_load_contact_id(c, s->subs[i].contact, &k);
	if (rc == 0) {
		int at = contact_find_mine(&k, s->subs[i].recipient_id);
		if (at >= 0) {
			memmove(&k.mine[at], &k.mine[at + 1],
			        (size_t)(k.nmine - at - 1) * sizeof(k.mine[0]));
			k.nmine--;
			sodium_memzero(&k.mine[k.nmine], sizeof(k.mine[0]));
		}
		bool retired = false;
		for (size_t j = 0; j < k.nmine; j++)
			retired |= (k.mine[j].flags & MAILBOX_RETIRED) != 0;
		if (!retired && k.move == MOVE_CONFIRMED)
			k.move = MOVE_NONE;
		rc = client_store_contact(c, &k);
	}
	contact_wipe(&k);
	if (rc == 0 && cstate_commit(c->st) == 0) {
		s->subs[i] = s->subs[--s->nsubs];
	} else {
		cstate_rollback(c->st);
	}
}

/* ---- the session loop ---------------------------------------------------------------- */

/* Handles one message from S's relay. Returns non-zero when the session must close. */
static int session_handle(struct run *run, struct session *s, const struct cairn_msg *m)
{
	s->last_ms = client_mono_ms(run->c);
	if (m->type == CAIRN_REPLY_ENVELOPE) {
		for (size_t i = 0; i < s->nsubs; i++) {
			if (s->subs[i].rid == 0 || s->subs[i].rid != m->request_id)
				continue;
			uint8_t rid[CAIRN_MAILBOX_ID_LEN];
			memcpy(rid, s->subs[i].recipient_id, sizeof(rid));
			struct receive_effects fx = {0};
			int rc = client_receive_envelope(run->c, s->subs[i].contact, rid,
			                                 m->envelope, m->envelope_len,
			                                 run->on_message, run->ctx, &fx);
			run->res->received += fx.received;
			run->redispatch |= fx.redispatch;
			run->recheck |= fx.recheck;
			if (rc != 0) {
				/* Not stored, so not acknowledged: redelivered later. The
				 * session closes, but the failure was ours, not the relay's:
				 * sync reports it as it is. */
				if (run->local_rc == 0)
					run->local_rc = rc;
				return rc;
			}
			struct cairn_msg ack = {.type = CAIRN_CMD_ACK,
			                        .request_id = cnet_next_id(s->net),
			                        .recipient_id = rid,
			                        .envelope_id = m->envelope_id};
			s->acks++;
			rc = cnet_queue(s->net, &ack);
			return rc ? rc : cnet_flush(s->net);
		}
		return 0;
	}
	if (m->type == CAIRN_REPLY_END)
		return 0; /* the next session subscribes again; code 0 follows our DELETE */
	if (m->request_id == s->ping_rid) {
		s->ping_done = true;
		return 0;
	}
	for (size_t i = 0; i < s->nsends; i++) {
		if (s->sends[i].rid != m->request_id)
			continue;
		if (m->type == CAIRN_REPLY_OK) {
			send_accepted(run, &s->sends[i]);
		} else {
			/* Refused (quota, storage, a full relay, a mailbox that is gone, or a
			 * code this client does not know): the contact's next
			 * mailbox gets it; in listen this relay gets it again next round. */
			refuse(run, s->sends[i].outbox_id, (size_t)(s - run->s));
			run->redispatch = true;
		}
		s->sends[i] = s->sends[--s->nsends];
		return 0;
	}
	for (size_t i = 0; i < s->nsubs; i++) {
		if (s->subs[i].delete_rid == 0 || s->subs[i].delete_rid != m->request_id)
			continue;
		s->deletes--;
		s->subs[i].delete_rid = 0;
		/* "denied": no such mailbox any more, or never again ours to manage. */
		if (m->type == CAIRN_REPLY_OK ||
		    (m->type == CAIRN_REPLY_ERROR && cairn_wire_error(m->code) == CAIRN_EDENIED))
			mailbox_gone(run, s, i);
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
	       (s->ping_done && s->nsends == 0 && s->acks == 0 && s->deletes == 0 &&
	        (s->nsubs == 0 || now - s->last_ms >= QUIET_MS));
}

struct count_ctx {
	const uint8_t *id;
	unsigned n;
};

static int count_one(void *vctx, const uint8_t *v, size_t vlen)
{
	struct count_ctx *x = vctx;
	struct outbox_entry e;
	if (outbox_parse(v, vlen, &e) != 0)
		return 0;
	if (x->id != NULL ? memcmp(e.message_id, x->id, APPMSG_ID_LEN) == 0
	                  : e.kind != APPMSG_MAILBOXES)
		x->n++;
	return 0;
}

int client_outbox_count(struct cairn *c, const uint8_t *id, unsigned *n)
{
	struct count_ctx x = {id, 0};
	int rc = cstate_list(c->st, REC_OUTBOX, count_one, &x);
	*n = x.n;
	return rc < 0 ? rc : 0;
}

int client_run(struct cairn *c, struct cairn_sync_result *res, cairn_message_cb on_message,
               void *ctx, volatile sig_atomic_t *stop, bool receive)
{
	memset(res, 0, sizeof(*res));
	struct run run = {.c = c,
	                  .receive = receive,
	                  .listen = stop != NULL,
	                  .res = res,
	                  .on_message = on_message,
	                  .ctx = ctx};
	int rc = 0;
	if (receive && (rc = cstate_list(c->st, REC_CONTACT, plan_contact, &run)) < 0)
		goto out;
	rc = 0;
	for (size_t i = 0; i < run.n; i++)
		session_open(&run, &run.s[i], client_mono_ms(c));
	run.redispatch = true;
	int64_t deadline = client_mono_ms(c) + 4 * (int64_t)c->timeout_ms;
	int64_t next_tick = client_mono_ms(c) + TICK_MS;
	for (;;) {
		int64_t now = client_mono_ms(c);
		if (run.listen && now >= next_tick) {
			/* Contacts to move, mailboxes and contacts added meanwhile (by a move,
			 * `cairn invite`), messages queued by `cairn send`; refusals expire. A
			 * failure here is simply retried at the next tick. */
			next_tick = now + TICK_MS;
			bool moved = false;
			if (receive && !any_down(&run)) {
				int moving = client_move_contacts(c, &moved);
				(void)moving;
			}
			if (receive) {
				int planned = cstate_list(c->st, REC_CONTACT, plan_contact, &run);
				(void)planned;
			}
			run.nrefused = 0;
			run.redispatch = run.recheck = true;
			now = client_mono_ms(c);
		}
		if (run.recheck) {
			run.recheck = false;
			for (size_t i = 0; i < run.n; i++)
				run.s[i].retire_checked = false;
		}
		if (run.redispatch) {
			run.redispatch = false;
			if ((rc = dispatch(&run, now)) < 0)
				break;
		}
		bool all_drained = true;
		struct pollfd pfd[64];
		size_t np = 0;
		for (size_t i = 0; i < run.n; i++) {
			struct session *s = &run.s[i];
			/* listen: a receiving session reconnects with backoff; a sending one when
			 * the outbox needs it. */
			if (s->net == NULL && run.listen && s->role == ROLE_RECEIVE &&
			    now >= s->retry_ms)
				session_open(&run, s, now);
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
				session_close(&run, s);
				session_failed(&run, s, now);
				continue;
			}
			/* A path that drops everything without a reset (a blackhole, a NAT that
			 * forgot us, a changed network) shows only as a PING left unanswered:
			 * reconnect rather than wait for TCP to give up (about 15 minutes). */
			if (run.listen && !s->ping_done && now >= s->ping_due_ms) {
				session_close(&run, s);
				session_failed(&run, s, now);
				continue;
			}
			if (run.listen && now >= s->next_ping_ms) {
				struct cairn_msg ping = {.type = CAIRN_CMD_PING,
				                         .request_id = cnet_next_id(s->net)};
				s->ping_rid = ping.request_id;
				s->ping_done = false;
				s->ping_due_ms = now + (int64_t)c->timeout_ms;
				s->next_ping_ms = now + PING_EVERY_MS;
				if (cnet_queue(s->net, &ping) != 0 || cnet_flush(s->net) != 0) {
					session_close(&run, s);
					session_failed(&run, s, now);
					continue;
				}
			}
			if (receive && s->role == ROLE_RECEIVE && !s->retire_checked &&
			    session_drained(s, now)) {
				retire_check(&run, s);
				if (s->net == NULL)
					continue;
			}
			if (!session_drained(s, now))
				all_drained = false;
			if (np < 64) {
				pfd[np] = (struct pollfd){.fd = cnet_fd(s->net), .events = POLLIN};
				np++;
			}
		}
		if (run.redispatch || run.recheck)
			all_drained = false;
		if (!run.listen && (all_drained || now >= deadline))
			break;
		if (run.listen && *stop)
			break;
		poll(pfd, np, np ? 100 : 200);
	}
out:
	for (size_t i = 0; i < run.n; i++) {
		cnet_close(run.s[i].net);
		free(run.s[i].subs);
		free(run.s[i].sends);
	}
	free(run.s);
	free(run.refused);
	unsigned pending = 0;
	if (client_outbox_count(c, NULL, &pending) == 0)
		res->pending = pending;
	if (rc == 0 && run.local_rc != 0 && !run.listen)
		rc = run.local_rc;
	return rc < 0 ? rc : 0;
}

int cairn_sync(struct cairn *c, struct cairn_sync_result *result, cairn_message_cb on_message,
               void *ctx)
{
	int rc = client_run(c, result, on_message, ctx, NULL, true);
	/* A contact that has just answered our invite moves to fresh mailboxes: made now, and
	 * announced at once. That needs every relay of the invite, so it waits for a sync that
	 * reached all our relays. */
	bool moved = false;
	if (rc == 0 && result->relays_failed == 0)
		rc = client_move_contacts(c, &moved);
	if (rc == 0 && moved) {
		struct cairn_sync_result more;
		rc = client_run(c, &more, NULL, NULL, NULL, false);
		result->sent += more.sent;
		result->pending = more.pending;
		result->relays_failed += more.relays_failed;
	}
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
