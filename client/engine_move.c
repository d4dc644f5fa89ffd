/* SPDX-License-Identifier: MIT */
/*
 * Moving contacts out of our invite mailboxes inside the engine (engine.h; PROTOCOL.md section
 * 8.10), without waiting: for a contact that answered our invite, a CREATE and then a SECURE
 * go to the relay of each invite mailbox on the engine's receiving session there (managing
 * our mailboxes is that session's role), and once every relay has made its fresh mailbox the
 * move is committed (client_move_commit: retired, added, the mailboxes message queued). A move
 * that cannot complete (a refusal, a session lost) deletes the mailboxes it made, on the same
 * sessions, and is tried again at a later tick.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "engine_state.h"

enum box_state { BOX_CREATING, BOX_SECURING, BOX_MADE, BOX_FAILED };

/* One fresh mailbox of a move, on the receiving session E->s[SESSION]. */
struct move_box {
	size_t session;
	uint32_t gen; /* the session's connection (its gen) that the box's commands went on */
	uint32_t rid; /* of the CREATE or SECURE in flight */
	enum box_state state;
	bool exists; /* the relay made it: deleted if the move does not happen */
	struct my_mailbox mb;
};

struct move {
	uint8_t contact[RECORD_ID_LEN];
	struct move_box box[CAIRN_MAILBOXES_MAX];
	size_t n;
};

static void move_wipe(struct move *mv)
{
	sodium_memzero(mv, sizeof(*mv)); /* signing keys and credentials */
}

void engine_moves_free(struct engine *e)
{
	for (size_t i = 0; i < e->nmoves; i++)
		move_wipe(&e->moves[i]);
	free(e->moves);
	e->moves = NULL;
	e->nmoves = 0;
}

static bool moving(const struct engine *e, const uint8_t id[RECORD_ID_LEN])
{
	for (size_t i = 0; i < e->nmoves; i++)
		if (memcmp(e->moves[i].contact, id, RECORD_ID_LEN) == 0)
			return true;
	return false;
}

/* Plans the move of contact ID into *MV: one fresh mailbox beside each invite mailbox, on the
 * receiving session of its relay, which must be up. Returns whether the move can start. */
static bool move_plan(struct engine *e, const uint8_t id[RECORD_ID_LEN], struct move *mv)
{
	struct contact k;
	if (client_load_contact_id(e->c, id, &k) != 0)
		return false;
	bool ok = k.move == MOVE_WANTED && k.state == CONTACT_ESTABLISHED;
	memset(mv, 0, sizeof(*mv));
	memcpy(mv->contact, id, RECORD_ID_LEN);
	for (size_t i = 0; ok && i < k.nmine; i++) {
		if ((k.mine[i].flags & (MAILBOX_INVITE | MAILBOX_RETIRED)) != MAILBOX_INVITE)
			continue;
		struct session *s = session_for(e, k.mine[i].relay, ROLE_RECEIVE);
		ok = s != NULL && session_up(s) && mv->n < CAIRN_MAILBOXES_MAX &&
		     k.nmine + mv->n < CONTACT_MINE_MAX;
		if (ok) {
			struct move_box *b = &mv->box[mv->n++];
			b->session = (size_t)(s - e->s);
			b->gen = s->gen;
			strcpy(b->mb.relay, s->relay);
		}
	}
	contact_wipe(&k);
	return ok && mv->n > 0;
}

/* Queues B's CREATE on its session (the caller flushes). */
static int box_create(struct engine *e, struct move_box *b)
{
	struct session *s = &e->s[b->session];
	char relay[sizeof(b->mb.relay)];
	memcpy(relay, b->mb.relay, sizeof(relay));
	uint8_t pk[32];
	client_mailbox_keys(&b->mb, pk);
	memcpy(b->mb.relay, relay, sizeof(relay));
	struct cairn_msg m = {
	    .type = CAIRN_CMD_CREATE, .request_id = cnet_next_id(s->net), .recipient_key = pk};
	b->rid = m.request_id;
	b->state = BOX_CREATING;
	return cnet_queue(s->net, &m);
}

void engine_moves_start(struct engine *e)
{
	uint8_t(*ids)[RECORD_ID_LEN] = NULL;
	size_t n = 0;
	if (client_moves_wanted(e->c, &ids, &n) != 0)
		return; /* tried again at the next tick */
	for (size_t i = 0; i < n; i++) {
		struct move mv;
		if (moving(e, ids[i]) || !move_plan(e, ids[i], &mv)) {
			move_wipe(&mv);
			continue;
		}
		struct move *p = realloc(e->moves, (e->nmoves + 1) * sizeof(*p));
		if (p == NULL) {
			move_wipe(&mv);
			break;
		}
		e->moves = p;
		struct move *m = &e->moves[e->nmoves++];
		*m = mv;
		move_wipe(&mv);
		int64_t now = client_mono_ms(e->c);
		for (size_t j = 0; j < m->n; j++) {
			struct session *s = &e->s[m->box[j].session];
			int rc = session_up(s) ? box_create(e, &m->box[j]) : CAIRN_EIO;
			if (rc == 0)
				rc = cnet_flush(s->net);
			if (rc != 0 && s->net != NULL)
				session_failed(e, s, now, rc); /* its boxes are lost */
			else if (rc != 0)
				m->box[j].state = BOX_FAILED;
		}
	}
	free(ids);
}

bool engine_move_reply(struct engine *e, struct session *s, const struct cairn_msg *m)
{
	size_t at = (size_t)(s - e->s);
	for (size_t i = 0; i < e->nmoves; i++) {
		for (size_t j = 0; j < e->moves[i].n; j++) {
			struct move_box *b = &e->moves[i].box[j];
			if (b->session != at || b->gen != s->gen || b->rid == 0 ||
			    b->rid != m->request_id ||
			    (b->state != BOX_CREATING && b->state != BOX_SECURING))
				continue;
			b->rid = 0;
			if (b->state == BOX_SECURING) {
				b->state = m->type == CAIRN_REPLY_OK ? BOX_MADE : BOX_FAILED;
				return true;
			}
			if (m->type != CAIRN_REPLY_CREATED) {
				b->state = BOX_FAILED;
				return true;
			}
			uint8_t digest[CAIRN_CREDENTIAL_LEN];
			client_mailbox_created(e->c, &b->mb, m, digest);
			b->exists = true;
			struct cairn_msg sec = {.type = CAIRN_CMD_SECURE,
			                        .request_id = cnet_next_id(s->net),
			                        .recipient_id = b->mb.recipient_id,
			                        .credential = digest};
			b->rid = sec.request_id;
			b->state = BOX_SECURING;
			int rc = cnet_queue(s->net, &sec);
			if (rc == 0)
				rc = cnet_flush(s->net);
			if (rc != 0)
				b->state =
				    BOX_FAILED; /* the session closes on the caller's return */
			return true;
		}
	}
	return false;
}

/* Whether B waits for an answer on a connection that is gone (its session closed since):
 * then the answer never comes, and the box has failed. */
static bool box_lost(const struct engine *e, const struct move_box *b)
{
	return (b->state == BOX_CREATING || b->state == BOX_SECURING) &&
	       e->s[b->session].gen != b->gen;
}

/* A mailbox made for a move that did not happen would only sit on its relay: AUTH and
 * DELETE on the session that made it, if it is still up (best effort). */
static void box_delete(struct engine *e, struct move_box *b)
{
	struct session *s = &e->s[b->session];
	if (!b->exists || !session_up(s))
		return;
	uint8_t sig[64];
	client_auth_signature(s->net, &b->mb, sig);
	struct cairn_msg auth = {.type = CAIRN_CMD_AUTH,
	                         .request_id = cnet_next_id(s->net),
	                         .recipient_id = b->mb.recipient_id,
	                         .signature = sig};
	struct cairn_msg del = {.type = CAIRN_CMD_DELETE,
	                        .request_id = cnet_next_id(s->net),
	                        .recipient_id = b->mb.recipient_id};
	int rc = cnet_queue(s->net, &auth);
	if (rc == 0)
		rc = cnet_queue(s->net, &del);
	if (rc == 0)
		rc = cnet_flush(s->net);
	if (rc != 0)
		session_failed(e, s, client_mono_ms(e->c), rc);
}

void engine_moves_finish(struct engine *e)
{
	for (size_t i = 0; i < e->nmoves;) {
		struct move *m = &e->moves[i];
		bool done = true, made = true;
		for (size_t j = 0; j < m->n; j++) {
			if (box_lost(e, &m->box[j]))
				m->box[j].state = BOX_FAILED;
			done &= m->box[j].state == BOX_MADE || m->box[j].state == BOX_FAILED;
			made &= m->box[j].state == BOX_MADE;
		}
		if (!done) {
			i++;
			continue;
		}
		int committed = 0;
		if (made) {
			struct my_mailbox fresh[CAIRN_MAILBOXES_MAX];
			for (size_t j = 0; j < m->n; j++)
				fresh[j] = m->box[j].mb;
			committed = client_move_commit(e->c, m->contact, fresh, m->n);
			sodium_memzero(fresh, sizeof(fresh));
		}
		if (committed == 1) {
			/* The mailboxes message goes out, and the fresh mailboxes are read. */
			e->redispatch = true;
			int planned = cstate_list(e->c->st, REC_CONTACT, engine_plan_contact, e);
			(void)planned; /* else at the next tick */
		} else {
			for (size_t j = 0; j < m->n; j++)
				box_delete(e, &m->box[j]);
		}
		/* E->moves may have been touched by nothing above: M is still valid. */
		move_wipe(m);
		e->moves[i] = e->moves[--e->nmoves];
	}
}
