/* SPDX-License-Identifier: MIT */
/*
 * The engine's relay sessions (engine.h): one per relay and role, a receiving one for the
 * relays that hold our mailboxes (AUTH, SUBSCRIBE, then deliveries) and a sending one for the
 * relays an outbox entry goes to (SEND). Connecting, subscribing, reconnecting with backoff,
 * and handling what a relay says: an envelope is acknowledged only after receive.c has stored
 * what it carried; one that does not open is acknowledged too, so the relay does not hold it
 * forever. Each change of a connection's state is reported to the application.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "engine_state.h"
#include "intakes.h"
#include "policies.h"

struct session *session_for(struct engine *e, const char *relay, enum session_role role)
{
	for (size_t i = 0; i < e->n; i++)
		if (e->s[i].role == role && strcmp(e->s[i].relay, relay) == 0)
			return &e->s[i];
	struct session *p = realloc(e->s, (e->n + 1) * sizeof(*p));
	if (p == NULL)
		return NULL;
	e->s = p;
	struct session *s = &e->s[e->n++];
	memset(s, 0, sizeof(*s));
	strcpy(s->relay, relay);
	s->role = role;
	return s;
}

static void report_state(struct engine *e, const struct session *s, enum cairn_relay_state st,
                         int err)
{
	if (e->cb.relay == NULL)
		return;
	struct cairn_relay_event ev = {
	    .relay = s->relay, .receiving = s->role == ROLE_RECEIVE, .state = st, .error = err};
	e->cb.relay(e->ctx, &ev);
}

void session_close(struct engine *e, struct session *s)
{
	cnet_close(s->net);
	s->net = NULL;
	/* Sends in flight there, or entries that waited for it to connect, go elsewhere. */
	e->redispatch = true;
	if (s->sends != NULL) /* forwarded sends hold reply keys */
		sodium_memzero(s->sends, s->nsends * sizeof(*s->sends));
	s->nsends = 0;
	s->acks = 0;
	s->deletes = 0;
	for (size_t i = 0; i < s->nsubs; i++)
		s->subs[i].rid = s->subs[i].delete_rid = 0;
	s->ping_done = false;
	s->policy_rid = 0;
	s->retire_checked = false;
	s->gen++; /* what was asked on this connection is lost (engine_move.c) */
}

void session_failed(struct engine *e, struct session *s, int64_t now, int err)
{
	session_close(e, s);
	e->res.relays_failed++;
	s->down = true;
	s->backoff_ms = s->backoff_ms ? 2 * s->backoff_ms : 1000;
	if (s->backoff_ms > ENGINE_BACKOFF_MAX_MS)
		s->backoff_ms = ENGINE_BACKOFF_MAX_MS;
	s->retry_ms = now + s->backoff_ms;
	report_state(e, s, CAIRN_RELAY_DOWN, err < 0 ? err : CAIRN_EIO);
}

/* Queues AUTH and SUBSCRIBE for SUB on S's connection (the caller flushes). A mailbox that
 * is no longer ours is skipped. */
static int subscribe(struct engine *e, struct session *s, struct sub *sub)
{
	struct contact k;
	struct my_mailbox mb;
	int at = -1, rc = 0;
	memset(&k, 0, sizeof(k));
	if (sub->intake) {
		if (intake_mailbox(e->c, sub->contact, sub->recipient_id, &mb) != 0)
			return 0;
	} else {
		if (client_load_contact_id(e->c, sub->contact, &k) != 0)
			return 0;
		if ((at = contact_find_mine(&k, sub->recipient_id)) >= 0)
			mb = k.mine[at];
	}
	if (sub->intake || at >= 0) {
		uint8_t sig[64];
		client_auth_signature(s->net, &mb, sig);
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
		sodium_memzero(&mb, sizeof(mb));
	}
	contact_wipe(&k);
	return rc;
}

/* S's connection has just opened: AUTH and SUBSCRIBE for each of our mailboxes there, on a
 * relay that holds them the POLICY of PROTOCOL.md 5.13 with the digest we hold, and a PING
 * (whose answer tells that the relay has handled everything before it). */
static void session_connected(struct engine *e, struct session *s, int64_t now)
{
	int rc = 0;
	s->down = false;
	for (size_t i = 0; e->receive && i < s->nsubs && rc == 0; i++)
		rc = subscribe(e, s, &s->subs[i]);
	if (rc == 0 && s->role == ROLE_RECEIVE) {
		uint8_t have[32];
		struct cairn_msg pm;
		/* A store that cannot be read asks with nil: the answer is then a body, and the
		 * answer's handling reads the store again. */
		(void)client_policy_command(e->c, s->relay, cnet_next_id(s->net), have, &pm);
		if ((rc = cnet_queue(s->net, &pm)) == 0)
			s->policy_rid = pm.request_id;
	}
	struct cairn_msg ping = {.type = CAIRN_CMD_PING, .request_id = cnet_next_id(s->net)};
	s->ping_rid = ping.request_id;
	s->ping_done = false;
	if (rc == 0)
		rc = cnet_queue(s->net, &ping);
	if (rc == 0)
		rc = cnet_flush(s->net);
	if (rc != 0) {
		session_failed(e, s, now, rc);
		return;
	}
	s->last_ms = s->opened_ms = client_mono_ms(e->c);
	s->next_ping_ms = s->last_ms + ENGINE_PING_EVERY_MS;
	s->ping_due_ms = s->last_ms + (int64_t)e->c->timeout_ms;
	s->backoff_ms = 0;
	e->redispatch = true; /* outbox entries that waited for this connection */
	report_state(e, s, CAIRN_RELAY_UP, 0);
}

void session_advance(struct engine *e, struct session *s, int64_t now)
{
	int rc = cnet_advance(s->net);
	if (rc < 0)
		session_failed(e, s, now, rc);
	else if (rc == 0)
		session_connected(e, s, now);
}

void session_open(struct engine *e, struct session *s, int64_t now)
{
	report_state(e, s, CAIRN_RELAY_CONNECTING, 0);
	s->tried = true;
	int rc = client_connect_start(e->c, s->relay, &s->net);
	if (rc != 0)
		session_failed(e, s, now, rc);
	else
		session_advance(e, s, now);
}

/* ---- planning: our mailboxes, on which relays --------------------------------------- */

/* Adds a subscription for mailbox RECIPIENT_ID of OWNER (a contact or, with INTAKE, an
 * intake) on RELAY unless it has one; on a connected session (listen, after a move or a new
 * invite) it subscribes at once. Returns false when out of memory. */
static bool plan_sub(struct engine *e, const char *relay, const uint8_t owner[RECORD_ID_LEN],
                     const uint8_t recipient_id[CAIRN_MAILBOX_ID_LEN], bool intake)
{
	struct session *s = session_for(e, relay, ROLE_RECEIVE);
	if (s == NULL)
		return false;
	for (size_t j = 0; j < s->nsubs; j++)
		if (memcmp(s->subs[j].recipient_id, recipient_id, CAIRN_MAILBOX_ID_LEN) == 0)
			return true;
	struct sub *p = realloc(s->subs, (s->nsubs + 1) * sizeof(*p));
	if (p == NULL)
		return false;
	s->subs = p;
	struct sub *sub = &p[s->nsubs++];
	memset(sub, 0, sizeof(*sub));
	memcpy(sub->contact, owner, RECORD_ID_LEN);
	memcpy(sub->recipient_id, recipient_id, CAIRN_MAILBOX_ID_LEN);
	sub->intake = intake;
	int rc = 0;
	if (session_up(s) && ((rc = subscribe(e, s, sub)) != 0 || (rc = cnet_flush(s->net)) != 0))
		session_failed(e, s, client_mono_ms(e->c), rc);
	return true;
}

int engine_plan_contact(void *vctx, const uint8_t *v, size_t vlen)
{
	struct engine *e = vctx;
	struct contact k;
	if (contact_parse(v, vlen, &k) != 0)
		return 0; /* a damaged record must not stop the others */
	for (size_t i = 0; i < k.nmine; i++) {
		/* A copy of an intake mailbox: subscribed once, as the intake's. */
		if (k.mine[i].flags & MAILBOX_INTAKE)
			continue;
		if (!plan_sub(e, k.mine[i].relay, k.id, k.mine[i].recipient_id, false))
			break;
	}
	contact_wipe(&k);
	return 0;
}

static int plan_intake(void *vctx, const struct intake *in)
{
	for (size_t i = 0; i < (size_t)in->n + in->nold; i++) {
		const struct intake_box *b = i < in->n ? &in->cur[i] : &in->old[i - in->n];
		if (!plan_sub(vctx, b->mb.relay, in->id, b->mb.recipient_id, true))
			break;
	}
	return 0;
}

int engine_plan_intakes(struct engine *e)
{
	return intake_each(e->c, plan_intake, e);
}

/* Only deliveries arrive unasked, so a session with no subscription (send, accept) is done as
 * soon as everything it asked is answered: waiting ENGINE_QUIET_MS there only slows every
 * send. */
bool session_drained(const struct session *s, int64_t now)
{
	return s->net == NULL ||
	       (s->ping_done && s->nsends == 0 && s->acks == 0 && s->deletes == 0 &&
	        (s->nsubs == 0 || now - s->last_ms >= ENGINE_QUIET_MS));
}
