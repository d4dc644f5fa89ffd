/* SPDX-License-Identifier: MIT */
/*
 * The engine's outbox dispatch (engine.h): each outbox entry goes to the first of its
 * contact's mailboxes whose relay answers and accepts it; if the connection breaks or the
 * relay refuses before its OK, the same bytes go to the next mailbox (docs/PROTOCOL.md section
 * 8.10). A relay's OK takes the entry out of the outbox, and once no entry of a message waits
 * any more the application hears that it was sent.
 *
 * With private routing (cairn_set_private_routing, PROTOCOL.md 5.11), an entry for a mailbox
 * on a relay that holds none of ours goes as a FORWARD, sealed for that relay, on the first of
 * our receiving sessions that is up and has proved a mailbox (subscribed); with none up, that
 * mailbox is skipped for now. This is the one place where the route is chosen.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cairn/address.h"
#include "engine_state.h"
#include "forward.h"
#include "work.h"

static bool in_flight(const struct engine *e, const uint8_t outbox_id[16])
{
	for (size_t i = 0; i < e->n; i++)
		for (size_t j = 0; j < e->s[i].nsends; j++)
			if (memcmp(e->s[i].sends[j].outbox_id, outbox_id, 16) == 0)
				return true;
	return false;
}

static bool refused(const struct engine *e, const uint8_t outbox_id[16], size_t session)
{
	return engine_noted(e->refused, e->nrefused, outbox_id, session);
}

/* The mailboxes of each contact with something in the outbox, read once per pass. */
struct peers {
	uint8_t contact[RECORD_ID_LEN];
	bool found;
	struct mailbox_list list;
	bool intake[CAIRN_MAILBOXES_MAX]; /* an intake mailbox: SEND_WORK at BITS */
	uint8_t bits[CAIRN_MAILBOXES_MAX];
};

struct dispatch {
	struct engine *e;
	int64_t now;
	struct peers *cache;
	size_t ncache, capcache;
	int rc;
};

static const struct peers *peers_of(struct dispatch *d, const uint8_t contact[RECORD_ID_LEN])
{
	for (size_t i = 0; i < d->ncache; i++)
		if (memcmp(d->cache[i].contact, contact, RECORD_ID_LEN) == 0)
			return &d->cache[i];
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
	if (client_load_contact_id(d->e->c, contact, &k) == 0) {
		memcpy(p->contact, k.id, RECORD_ID_LEN);
		p->found = true;
		p->list = k.peer;
		for (size_t i = 0; i < k.peer.count && i < CAIRN_MAILBOXES_MAX; i++) {
			p->intake[i] = contact_peer_intake(&k, i);
			p->bits[i] = k.peer_work_bits[i];
		}
		d->ncache++;
	}
	contact_wipe(&k);
	return p->found ? p : NULL;
}

/* Whether the relay of S was found down by either of its sessions. */
static bool relay_down(const struct engine *e, const struct session *s)
{
	for (size_t i = 0; i < e->n; i++)
		if (e->s[i].down && e->s[i].net == NULL && strcmp(e->s[i].relay, s->relay) == 0)
			return true;
	return false;
}

/* Whether the other session to S's relay is connecting: its outcome comes first, so that a
 * relay found down is not tried twice (as when connecting waited). */
static bool relay_connecting(const struct engine *e, const struct session *s)
{
	for (size_t i = 0; i < e->n; i++)
		if (&e->s[i] != s && e->s[i].net != NULL && !cnet_open(e->s[i].net) &&
		    strcmp(e->s[i].relay, s->relay) == 0)
			return true;
	return false;
}

/* Whether the engine may try to connect S now: once per sync, after the pause in listen. */
static bool may_connect(const struct engine *e, const struct session *s, int64_t now)
{
	if (e->listen)
		return now >= s->retry_ms;
	return !s->tried && !relay_down(e, s);
}

/* Room for one more of S's sends: the new record (zeroed), or NULL when out of memory. */
static struct pending_send *pending_add(struct session *s)
{
	if (s->nsends == s->capsends) {
		size_t ncap = s->capsends ? s->capsends * 2 : 16;
		struct pending_send *p = realloc(s->sends, ncap * sizeof(*p));
		if (p == NULL)
			return NULL;
		s->sends = p;
		s->capsends = ncap;
	}
	struct pending_send *ps = &s->sends[s->nsends];
	memset(ps, 0, sizeof(*ps));
	return ps;
}

/* Fills PS, queued with request id RID, for entry OE to mailbox I of PEERS. */
static void pending_fill(struct pending_send *ps, uint32_t rid, const struct peers *peers, size_t i,
                         const struct outbox_entry *oe)
{
	ps->rid = rid;
	ps->kind = oe->kind;
	memcpy(ps->outbox_id, oe->outbox_id, 16);
	memcpy(ps->message_id, oe->message_id, APPMSG_ID_LEN);
	memcpy(ps->conv, oe->conv, RECORD_ID_LEN);
	ps->work = peers->intake[i];
	ps->peer = (uint8_t)i;
	memcpy(ps->contact, oe->contact, RECORD_ID_LEN);
}

/* The SEND (or SEND_WORK, with WORK solved now) of OE to mailbox I of PEERS, request id RID.
 * Returns 0 or a local error. */
static int send_msg(struct dispatch *d, const struct peers *peers, size_t i,
                    const struct outbox_entry *oe, uint32_t rid, uint8_t work[WORK_LEN],
                    struct cairn_msg *m)
{
	const struct mailbox_addr *to = &peers->list.box[i];
	*m = (struct cairn_msg){.type = CAIRN_CMD_SEND,
	                        .request_id = rid,
	                        .sender_id = to->sender_id,
	                        .credential = to->credential,
	                        .envelope = oe->envelope,
	                        .envelope_len = oe->envelope_len};
	if (peers->intake[i]) {
		int wrc = client_intake_work(d->e->c, to->sender_id, oe->envelope, oe->envelope_len,
		                             peers->bits[i], work);
		if (wrc != 0)
			return wrc;
		m->type = CAIRN_CMD_SEND_WORK;
		m->credential = NULL;
		m->work = work;
	}
	return 0;
}

/* Puts E into S's sends, to the mailbox I of PEERS: a SEND, or to an intake mailbox a
 * SEND_WORK with work solved now (which blocks the engine's thread for 2^bits hashes, about
 * 0.3 s at 20 bits: engine_intake.c). Returns 0 or a local error. */
static int send_on(struct dispatch *d, struct session *s, const struct peers *peers, size_t i,
                   const struct outbox_entry *oe)
{
	struct pending_send *ps = pending_add(s);
	if (ps == NULL)
		return CAIRN_ENOMEM;
	struct cairn_msg m;
	uint8_t work[WORK_LEN];
	int rc = send_msg(d, peers, i, oe, cnet_next_id(s->net), work, &m);
	if (rc != 0)
		return rc;
	rc = cnet_queue(s->net, &m);
	if (rc != 0) {
		session_failed(d->e, s, d->now, rc);
		return 0;
	}
	pending_fill(ps, m.request_id, peers, i, oe);
	s->nsends++;
	return 0;
}

/* ---- private routing (PROTOCOL.md 5.11) ------------------------------------------------ */

/* Whether RELAY holds one of our mailboxes (a receiving session goes there). */
static bool own_relay(const struct engine *e, const char *relay)
{
	for (size_t i = 0; i < e->n; i++)
		if (e->s[i].role == ROLE_RECEIVE && strcmp(e->s[i].relay, relay) == 0)
			return true;
	return false;
}

/* The first receiving session that is up and has proved a mailbox there (one subscribed),
 * and has not refused OUTBOX_ID this round; NULL if none. */
static struct session *forward_via(struct engine *e, const uint8_t outbox_id[16])
{
	for (size_t i = 0; i < e->n; i++) {
		struct session *v = &e->s[i];
		if (v->role != ROLE_RECEIVE || !session_up(v) || refused(e, outbox_id, i))
			continue;
		for (size_t k = 0; k < v->nsubs; k++)
			if (v->subs[k].rid != 0)
				return v;
	}
	return NULL;
}

/*
 * Puts OE into VIA's sends as a FORWARD to mailbox I of PEERS, whose relay's sending session
 * is DEST: the SEND sealed with a fresh ephemeral key for that relay's key. Returns 0, a
 * local error, or CAIRN_EADDRESS when that relay cannot be forwarded to (not a direct
 * address): the caller skips that mailbox.
 */
static int forward_on(struct dispatch *d, struct session *via, size_t dest,
                      const struct peers *peers, size_t i, const struct outbox_entry *oe)
{
	const struct mailbox_addr *to = &peers->list.box[i];
	struct cairn_address addr;
	if (cairn_address_parse(to->relay, &addr) != 0 || addr.transport != CAIRN_TRANSPORT_DIRECT)
		return CAIRN_EADDRESS;
	struct pending_send *ps = pending_add(via);
	if (ps == NULL)
		return CAIRN_ENOMEM;
	struct cairn_msg inner;
	uint8_t work[WORK_LEN];
	int rc = send_msg(d, peers, i, oe, 0, work, &inner);
	uint8_t *buf = malloc(CAIRN_MSG_ENCODED_MAX), *sealed = malloc(FORWARD_SEALED_MAX);
	size_t len = 0, slen = 0;
	if (rc == 0 && (buf == NULL || sealed == NULL))
		rc = CAIRN_ENOMEM;
	if (rc == 0)
		rc = cairn_msg_encode(&inner, buf, CAIRN_MSG_ENCODED_MAX, &len);
	if (rc == 0)
		rc = forward_seal(addr.key, buf, len, sealed, FORWARD_SEALED_MAX, &slen, ps->k_rep);
	if (buf != NULL) {
		sodium_memzero(buf, CAIRN_MSG_ENCODED_MAX); /* the credential */
		free(buf);
	}
	if (rc == 0) {
		struct cairn_msg f = {.type = CAIRN_CMD_FORWARD,
		                      .request_id = cnet_next_id(via->net),
		                      .relay = (const uint8_t *)to->relay,
		                      .relay_len = strlen(to->relay),
		                      .sealed = sealed,
		                      .sealed_len = slen};
		int qrc = cnet_queue(via->net, &f);
		if (qrc != 0) {
			sodium_memzero(ps->k_rep, sizeof(ps->k_rep));
			session_failed(d->e, via, d->now, qrc);
		} else {
			pending_fill(ps, f.request_id, peers, i, oe);
			ps->forwarded = true;
			ps->dest = dest;
			via->nsends++;
		}
	}
	free(sealed);
	return rc;
}

void engine_forward_reply(struct engine *e, struct session *via, struct pending_send *ps,
                          const struct cairn_msg *m)
{
	uint8_t inner[FORWARD_REPLY_INNER];
	const uint8_t *r;
	size_t rlen;
	struct cairn_msg reply;
	bool opened =
	    m->type == CAIRN_REPLY_SEALED &&
	    forward_reply_open(ps->k_rep, m->sealed, m->sealed_len, inner, &r, &rlen) == 0 &&
	    cairn_msg_decode(r, rlen, NULL, &reply, NULL) == 0 &&
	    (reply.type == CAIRN_REPLY_OK || reply.type == CAIRN_REPLY_ERROR);
	sodium_memzero(ps->k_rep, sizeof(ps->k_rep));
	e->redispatch = true;
	if (!opened) {
		/* Not sent: `unreachable`, a FORWARD refused, or a reply that does not open. It
		 * waits (the next mailbox may take it; listen tries this relay again later). */
		engine_refuse(e, ps->outbox_id, via);
		return;
	}
	struct session *dest = &e->s[ps->dest];
	if (reply.type == CAIRN_REPLY_OK)
		engine_send_accepted(e, ps);
	else if (!(ps->work && cairn_wire_error(reply.code) == CAIRN_EWORK &&
	           engine_intake_work_refused(e, dest, ps)))
		engine_refuse(e, ps->outbox_id, dest); /* as a direct SEND's refusal */
}

/*
 * Queues one outbox entry that is not in flight on the first of its contact's mailboxes
 * whose relay is connected (or connects now) and has not refused it in this round.
 */
static int dispatch_entry(void *vctx, const uint8_t *v, size_t vlen)
{
	struct dispatch *d = vctx;
	struct engine *e = d->e;
	struct outbox_entry oe;
	if (outbox_parse(v, vlen, &oe) != 0 || in_flight(e, oe.outbox_id))
		return 0;
	const struct peers *p = peers_of(d, oe.contact);
	if (p == NULL)
		return d->rc != 0;
	for (size_t i = 0; i < p->list.count; i++) {
		const struct mailbox_addr *to = &p->list.box[i];
		struct session *s = session_for(e, to->relay, ROLE_SEND);
		if (s == NULL) {
			d->rc = CAIRN_ENOMEM;
			return 1;
		}
		if (refused(e, oe.outbox_id, (size_t)(s - e->s)) ||
		    engine_noted(e->workfail, e->nworkfail, oe.outbox_id, (size_t)(s - e->s)))
			continue;
		if (e->c->private_routing && !own_relay(e, to->relay) &&
		    !(p->intake[i] && p->bits[i] == 0)) {
			struct session *via = forward_via(e, oe.outbox_id);
			if (via == NULL)
				continue; /* not directly: it waits for a relay of ours */
			int frc = forward_on(d, via, (size_t)(s - e->s), p, i, &oe);
			if (frc == CAIRN_EADDRESS)
				continue;
			if ((d->rc = frc) != 0)
				return 1;
			if (via->net == NULL)
				continue;
			return 0;
		}
		if (s->net == NULL && relay_connecting(e, s))
			return 0; /* dispatched again once that connection is up or down */
		if (s->net == NULL && may_connect(e, s, d->now))
			session_open(e, s, d->now);
		if (s->net == NULL)
			continue;
		/* Still connecting: the entry waits for the outcome (dispatched again once the
		 * connection is up, or has failed and the next mailbox's turn has come). */
		if (!cnet_open(s->net))
			return 0;
		if (p->intake[i] && p->bits[i] == 0) {
			/* Its bundle log is read after this pass (not inside the store's
			 * listing), then the entry comes here again. */
			engine_intake_need(e, oe.outbox_id, oe.contact, i, s);
			return 0;
		}
		if ((d->rc = send_on(d, s, p, i, &oe)) != 0)
			return 1;
		if (s->net == NULL)
			continue; /* the queueing broke the connection: the next mailbox */
		return 0;
	}
	return 0; /* no mailbox reachable: it waits */
}

int engine_dispatch(struct engine *e, int64_t now)
{
	struct dispatch d = {.e = e, .now = now};
	int rc = cstate_list(e->c->st, REC_OUTBOX, dispatch_entry, &d);
	if (d.cache != NULL) {
		sodium_memzero(d.cache, d.capcache * sizeof(*d.cache)); /* credentials */
		free(d.cache);
	}
	if (e->nneeds > 0)
		engine_intake_read(e);
	for (size_t i = 0; i < e->n; i++) {
		struct session *s = &e->s[i];
		int frc;
		/* Receiving sessions carry the FORWARDs of private routing. */
		bool sends = s->role == ROLE_SEND || (e->c->private_routing && s->nsends > 0);
		if (sends && session_up(s) && (frc = cnet_flush(s->net)) != 0)
			session_failed(e, s, now, frc);
	}
	return rc < 0 ? rc : d.rc;
}

void engine_send_accepted(struct engine *e, const struct pending_send *ps)
{
	struct cairn *c = e->c;
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
	if (rc != 0 || cstate_commit(c->st) != 0) {
		cstate_rollback(c->st);
		return;
	}
	if (ps->kind == APPMSG_MAILBOXES)
		return; /* the client's own business, never reported */
	e->res.sent++;
	/* A long message is several entries: it is sent once the last of them is. */
	unsigned left = 0;
	if (ps->kind == APPMSG_TEXT && e->cb.delivery != NULL &&
	    client_outbox_count(c, ps->message_id, &left) == 0 && left == 0)
		e->cb.delivery(e->ctx, ps->message_id, CAIRN_DELIVERY_SENT);
}

struct count_ctx {
	const uint8_t *id;
	unsigned n;
};

static int count_one(void *vctx, const uint8_t *v, size_t vlen)
{
	struct count_ctx *x = vctx;
	struct outbox_entry oe;
	if (outbox_parse(v, vlen, &oe) != 0)
		return 0;
	if (x->id != NULL ? memcmp(oe.message_id, x->id, APPMSG_ID_LEN) == 0
	                  : oe.kind != APPMSG_MAILBOXES)
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
