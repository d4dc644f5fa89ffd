/* SPDX-License-Identifier: MIT */
/*
 * The engine's step (engine.h) and the public non-blocking API (cairn.h, cairn_engine_*).
 * A step does what is due and returns: it reads what the relays sent, dispatches the outbox,
 * pings, reconnects after the backoff, ticks (listen: moves, new mailboxes, other processes'
 * outbox) and looks for mailboxes to retire. Between steps the owner of the loop waits on the
 * descriptors and the deadline engine_fds gives; every time the engine reads comes from the
 * injected environment (client/env.h), so a test can drive it with a fake clock.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "engine.h"
#include "group.h"
#include "intakes.h"
#include "logio.h"
#include "policies.h"

int engine_new(struct cairn *c, const struct engine_options *opt, struct engine **out)
{
	struct engine *e = calloc(1, sizeof(*e));
	*out = NULL;
	if (e == NULL)
		return CAIRN_ENOMEM;
	e->c = c;
	e->receive = opt->receive;
	e->listen = opt->listen;
	e->logs_only = opt->logs_only;
	e->cb = opt->cb;
	e->ctx = opt->ctx;
	if (e->receive)
		c->reporting = e; /* group messages read by its logio come to its callback */
	*out = e;
	return 0;
}

void engine_free(struct engine *e)
{
	if (e == NULL)
		return;
	if (e->c->reporting == e)
		e->c->reporting = NULL;
	for (size_t i = 0; i < e->n; i++) {
		cnet_close(e->s[i].net);
		free(e->s[i].subs);
		free(e->s[i].sends);
	}
	free(e->s);
	free(e->refused);
	free(e->reworked);
	free(e->workfail);
	free(e->needs);
	engine_moves_free(e);
	logio_free(e->logs);
	free(e);
}

/* The first step: which relays hold our mailboxes, connecting to them, then the outbox. */
static int engine_begin(struct engine *e)
{
	struct cairn *c = e->c;
	e->started = true;
	int rc;
	/* Group logs ride along on connections of their own (logio.c): read to the end in a
	 * sync, followed in listen. */
	if (e->receive && c->group_h != NULL &&
	    (rc = logio_new(c, c->group_h, c->group_ctx, e->listen, &e->logs)) < 0)
		return rc;
	if (e->receive && !e->logs_only &&
	    (rc = cstate_list(c->st, REC_CONTACT, engine_plan_contact, e)) < 0)
		return rc;
	if (e->receive && !e->logs_only && (rc = engine_plan_intakes(e)) < 0)
		return rc;
	for (size_t i = 0; i < e->n; i++)
		session_open(e, &e->s[i], client_mono_ms(c));
	e->redispatch = true;
	e->deadline_ms = client_mono_ms(c) + 4 * (int64_t)c->timeout_ms;
	e->next_tick_ms = client_mono_ms(c) + ENGINE_TICK_MS;
	e->work_retry_ms = client_mono_ms(c) + ENGINE_WORK_RETRY_MS;
	return 0;
}

/* Contacts to move (on the receiving sessions, engine_move.c), mailboxes and contacts added
 * meanwhile (by a move, `cairn invite`), messages queued by `cairn send`; refusals expire. A
 * failure here is simply retried at the next tick. */
static void engine_tick(struct engine *e, int64_t now)
{
	struct cairn *c = e->c;
	e->next_tick_ms = now + ENGINE_TICK_MS;
	if (e->receive)
		engine_moves_start(e);
	if (e->receive) {
		int planned = cstate_list(c->st, REC_CONTACT, engine_plan_contact, e);
		if (planned >= 0)
			planned = engine_plan_intakes(e);
		(void)planned;
	}
	e->nrefused = 0;
	if (now >= e->work_retry_ms) {
		e->nreworked = e->nworkfail = 0;
		e->work_retry_ms = now + ENGINE_WORK_RETRY_MS;
	}
	e->redispatch = e->recheck = true;
	/* What the clock asks of the groups (key updates, rotations, old logs) and the welcomes
	 * our completed commits made; a failure is tried again at the next tick. */
	if (e->receive && e->logs != NULL && client_groups_tick(c) == 0)
		logio_relist(e->logs);
	/* What the clock asks of our intakes, without waiting: bundles ride the group outbox. */
	if (e->receive && e->logs != NULL) {
		int ticked = client_intake_tick(c);
		(void)ticked; /* tried again at the next tick; logio_wake below sends them */
	}
	if (e->logs != NULL)
		logio_wake(e->logs); /* items queued by another process, or refused before */
	/* Disappearing messages whose time has come (8.11); a failure is tried again. */
	client_expire_due(c);
}

/* Whether the owner of the loop says FD may have something: not listed (a step on a timeout
 * or a descriptor new since engine_fds), or listed with events. */
static bool fd_ready(const struct pollfd *fds, size_t nfds, int fd)
{
	for (size_t i = 0; fds != NULL && i < nfds; i++)
		if (fds[i].fd == fd)
			return fds[i].revents != 0;
	return true;
}

/* ---- what a relay says ---------------------------------------------------------------- */

/* An envelope arrived for S->subs[I]: stored, then acknowledged. */
static int handle_envelope(struct engine *e, struct session *s, size_t i, const struct cairn_msg *m)
{
	uint8_t rid[CAIRN_MAILBOX_ID_LEN];
	memcpy(rid, s->subs[i].recipient_id, sizeof(rid));
	struct receive_effects fx = {0};
	int rc = s->subs[i].intake
	             ? client_receive_intake(e->c, s->subs[i].contact, rid, m->envelope,
	                                     m->envelope_len, e->cb.message, e->ctx, &fx)
	             : client_receive_envelope(e->c, s->subs[i].contact, rid, m->envelope,
	                                       m->envelope_len, e->cb.message, e->ctx, &fx);
	e->res.received += fx.received;
	e->redispatch |= fx.redispatch;
	e->recheck |= fx.recheck;
	if (fx.groups && e->logs != NULL) {
		/* A join committed (its parts queued) or a welcome entered (a new log to read). */
		logio_relist(e->logs);
		logio_wake(e->logs);
	}
	if (rc != 0) {
		/* Not stored, so not acknowledged: redelivered later. The session closes, but
		 * the failure was ours, not the relay's: sync reports it as it is. */
		if (e->local_rc == 0)
			e->local_rc = rc;
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

/*
 * Whether M keeps S from looking drained (session_drained's quiet period). Everything does,
 * except, once the session has been open ENGINE_INTAKE_BUSY_MS, an intake mailbox's
 * deliveries and the answers to ACKs (an OK while ACKs are outstanding counts as one, as
 * session_handle does; an ordinary delivery refreshed the quiet period itself, and a drained
 * session waits for its ACKs anyway). A flooded intake mailbox then never holds a sync open;
 * what it still holds waits for the next sync.
 */
static bool is_activity(const struct session *s, const struct cairn_msg *m, int64_t now)
{
	if (now - s->opened_ms < ENGINE_INTAKE_BUSY_MS)
		return true;
	if (m->type == CAIRN_REPLY_ENVELOPE) {
		for (size_t i = 0; i < s->nsubs; i++)
			if (s->subs[i].rid != 0 && s->subs[i].rid == m->request_id)
				return !s->subs[i].intake;
		return true;
	}
	return !(m->type == CAIRN_REPLY_OK && s->acks > 0);
}

static int session_handle(struct engine *e, struct session *s, const struct cairn_msg *m)
{
	int64_t now = client_mono_ms(e->c);
	if (is_activity(s, m, now))
		s->last_ms = now;
	if (m->type == CAIRN_REPLY_ENVELOPE) {
		for (size_t i = 0; i < s->nsubs; i++)
			if (s->subs[i].rid != 0 && s->subs[i].rid == m->request_id)
				return handle_envelope(e, s, i, m);
		return 0;
	}
	if (m->type == CAIRN_REPLY_END)
		return 0; /* the next session subscribes again; code 0 follows our DELETE */
	if (s->policy_rid != 0 && m->request_id == s->policy_rid) {
		s->policy_rid = 0;
		/* A policy that does not verify is not stored and changes nothing; a store error
		 * leaves the held one, and the next connection asks again. */
		(void)client_policy_answer(e->c, s->relay, m);
		return 0;
	}
	if (engine_move_reply(e, s, m))
		return 0;
	if (m->request_id == s->ping_rid) {
		s->ping_done = true;
		return 0;
	}
	for (size_t i = 0; i < s->nsends; i++) {
		if (s->sends[i].rid != m->request_id)
			continue;
		struct pending_send ps = s->sends[i];
		s->sends[i] = s->sends[--s->nsends];
		sodium_memzero(&s->sends[s->nsends], sizeof(ps));
		if (ps.forwarded) {
			engine_forward_reply(e, s, &ps, m);
		} else if (m->type == CAIRN_REPLY_OK) {
			engine_send_accepted(e, &ps);
		} else if (ps.work && m->type == CAIRN_REPLY_ERROR &&
		           cairn_wire_error(m->code) == CAIRN_EWORK &&
		           engine_intake_work_refused(e, s, &ps)) {
			e->redispatch = true; /* the same bytes again, solved for the new bits */
		} else {
			/* Refused (quota, storage, a full relay, a mailbox that is gone, or a
			 * code this client does not know): the contact's next mailbox gets it;
			 * in listen this relay gets it again next round. */
			engine_refuse(e, ps.outbox_id, s);
			e->redispatch = true;
		}
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
			engine_mailbox_gone(e, s, i);
		return 0;
	}
	if (m->type == CAIRN_REPLY_OK && s->acks > 0)
		s->acks--; /* ACK, AUTH and SUBSCRIBE replies; only ACKs are counted */
	return 0;
}

/* What is due on S's connection. Returns false when S is (now) disconnected. */
static bool session_step(struct engine *e, struct session *s, int64_t now, bool ready)
{
	struct cairn *c = e->c;
	/* Everything already received is handled, so that a level-triggered wait on the
	 * descriptor is exact: nothing stays buffered here unseen. */
	struct cairn_msg m;
	int r = CAIRN_ETIMEDOUT;
	while (ready && (r = cnet_recv(s->net, &m, 0)) == 0)
		if (session_handle(e, s, &m) != 0) {
			r = CAIRN_EIO;
			break;
		}
	if (r != CAIRN_ETIMEDOUT) {
		session_failed(e, s, now, r);
		return false;
	}
	/* A path that drops everything without a reset (a blackhole, a NAT that forgot us, a
	 * changed network) shows only as a PING left unanswered: reconnect rather than wait
	 * for TCP to give up (about 15 minutes). */
	if (e->listen && !s->ping_done && now >= s->ping_due_ms) {
		session_failed(e, s, now, CAIRN_ETIMEDOUT);
		return false;
	}
	if (e->listen && now >= s->next_ping_ms) {
		struct cairn_msg ping = {.type = CAIRN_CMD_PING,
		                         .request_id = cnet_next_id(s->net)};
		s->ping_rid = ping.request_id;
		s->ping_done = false;
		s->ping_due_ms = now + (int64_t)c->timeout_ms;
		s->next_ping_ms = now + ENGINE_PING_EVERY_MS;
		int rc = cnet_queue(s->net, &ping);
		if (rc == 0)
			rc = cnet_flush(s->net);
		if (rc != 0) {
			session_failed(e, s, now, rc);
			return false;
		}
	}
	if (e->receive && s->role == ROLE_RECEIVE && !s->retire_checked &&
	    session_drained(s, now)) {
		engine_retire_check(e, s);
		if (s->net == NULL)
			return false;
	}
	return true;
}

int engine_step(struct engine *e, const struct pollfd *fds, size_t nfds)
{
	struct cairn *c = e->c;
	int rc;
	if (!e->started && (rc = engine_begin(e)) < 0) {
		e->finished = true;
		return rc;
	}
	int64_t now = client_mono_ms(c);
	if (e->listen && now >= e->next_tick_ms) {
		engine_tick(e, now);
		now = client_mono_ms(c);
	}
	if (e->recheck) {
		e->recheck = false;
		for (size_t i = 0; i < e->n; i++)
			e->s[i].retire_checked = false;
	}
	if (e->redispatch) {
		e->redispatch = false;
		if ((rc = engine_dispatch(e, now)) < 0)
			return rc;
	}
	/* What is due was decided at NOW: engine_fds counts the next deadlines from it. */
	e->step_ms = now;
	bool all_drained = true;
	for (size_t i = 0; i < e->n; i++) {
		struct session *s = &e->s[i];
		/* listen: a receiving session reconnects with backoff; a sending one when the
		 * outbox needs it. */
		if (s->net == NULL && e->listen && s->role == ROLE_RECEIVE && now >= s->retry_ms)
			session_open(e, s, now);
		if (s->net == NULL)
			continue;
		bool ready = fd_ready(fds, nfds, cnet_fd(s->net));
		if (!cnet_open(s->net)) {
			/* Connecting: a step never waits for it; the deadline is checked here. */
			if (ready || now >= cnet_deadline_ms(s->net))
				session_advance(e, s, now);
			if (s->net != NULL && !cnet_open(s->net))
				all_drained = false;
			if (!session_up(s))
				continue;
			ready = true; /* just opened: what came with the handshake */
		}
		if (!session_step(e, s, now, ready))
			continue;
		if (!session_drained(s, now))
			all_drained = false;
	}
	engine_moves_finish(e);
	if (e->logs != NULL) {
		if ((rc = logio_step(e->logs, fds, nfds)) < 0)
			return rc;
		if (!logio_done(e->logs))
			all_drained = false;
	}
	if (e->redispatch || e->recheck)
		all_drained = false;
	if (!e->listen && (all_drained || now >= e->deadline_ms))
		e->finished = true;
	return 0;
}

/* Lowers *AT to T when T was still to come at the last step (NOW): one already past then was
 * handled by that step. Counting from the step's time, not from a fresh reading, matters: a
 * deadline that passed between the step and this call still wakes the loop at once. */
static void earliest(int64_t *at, int64_t t, int64_t now)
{
	if (t > now && t < *at)
		*at = t;
}

int engine_fds(const struct engine *e, struct pollfd *fds, size_t cap, size_t *n, int *timeout_ms)
{
	int64_t now = e->step_ms, at = INT64_MAX;
	size_t count = 0;
	if (e->listen)
		earliest(&at, e->next_tick_ms, now);
	else
		earliest(&at, e->deadline_ms, now);
	for (size_t i = 0; i < e->n; i++) {
		const struct session *s = &e->s[i];
		if (s->net == NULL) {
			if (e->listen && s->role == ROLE_RECEIVE)
				earliest(&at, s->retry_ms, now);
			continue;
		}
		if (count < cap)
			fds[count] =
			    (struct pollfd){.fd = cnet_fd(s->net), .events = cnet_events(s->net)};
		count++;
		if (!cnet_open(s->net)) {
			earliest(&at, cnet_deadline_ms(s->net), now);
			continue;
		}
		if (e->listen) {
			if (!s->ping_done)
				earliest(&at, s->ping_due_ms, now);
			earliest(&at, s->next_ping_ms, now);
		}
		/* When a subscribed session counts as drained (sync's end, retiring). */
		if (s->nsubs > 0)
			earliest(&at, s->last_ms + ENGINE_QUIET_MS, now);
	}
	if (e->logs != NULL) {
		int64_t lat = INT64_MAX;
		logio_fds(e->logs, fds, cap, &count, &lat);
		if (lat <= now)
			lat = now + 1; /* due now: wake at once */
		earliest(&at, lat, now);
	}
	*n = count;
	if (!e->started || e->redispatch || e->recheck)
		*timeout_ms = 0;
	else if (e->finished || at == INT64_MAX)
		*timeout_ms = -1;
	else {
		int64_t left = at - client_mono_ms(e->c);
		*timeout_ms = left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
	}
	return count > cap ? CAIRN_ENOBUFS : 0;
}

void client_set_group_handler(struct cairn *c, const struct logio_handler *h, void *ctx)
{
	c->group_h = h;
	c->group_ctx = ctx;
}

/* ---- the public API (cairn.h) --------------------------------------------------------- */

int cairn_engine_start(struct cairn *c, const struct cairn_engine_callbacks *cb, void *ctx)
{
	if (c == NULL)
		return CAIRN_EINVAL;
	if (c->engine != NULL)
		return CAIRN_ESTATE;
	struct engine_options opt = {.receive = true, .listen = true, .ctx = ctx};
	if (cb != NULL)
		opt.cb = *cb;
	return engine_new(c, &opt, &c->engine);
}

int cairn_engine_fds(struct cairn *c, struct pollfd *fds, size_t cap, size_t *n, int *timeout_ms)
{
	if (c == NULL || n == NULL || timeout_ms == NULL || (fds == NULL && cap > 0))
		return CAIRN_EINVAL;
	if (c->engine == NULL || c->engine->in_step)
		return CAIRN_ESTATE;
	return engine_fds(c->engine, fds, cap, n, timeout_ms);
}

int cairn_engine_step(struct cairn *c, const struct pollfd *fds, size_t n)
{
	if (c == NULL || (fds == NULL && n > 0))
		return CAIRN_EINVAL;
	struct engine *e = c->engine;
	if (e == NULL || e->in_step)
		return CAIRN_ESTATE;
	e->in_step = true;
	int rc = engine_step(e, fds, n);
	e->in_step = false;
	if (e->stop_asked) {
		engine_free(e);
		c->engine = NULL;
	}
	return rc;
}

void cairn_engine_stop(struct cairn *c)
{
	if (c == NULL || c->engine == NULL)
		return;
	if (c->engine->in_step) {
		c->engine->stop_asked = true; /* freed once the step unwinds */
		return;
	}
	engine_free(c->engine);
	c->engine = NULL;
}
