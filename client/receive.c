/* SPDX-License-Identifier: MIT */
/*
 * Receiving (client.h, client_receive_envelope): opening an envelope that a relay delivered,
 * with the first message's X3DH or the contact's ratchet, and storing what it holds, in one
 * transaction with the ratchet step, so that an envelope is acknowledged only once stored.
 * The session loop in sync.c calls it for each delivery.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "client.h"
#include "group.h"
#include "e2e.h"
#include "files.h"

/* One call of client_receive_envelope: where messages are reported and effects recorded. */
struct receiver {
	struct cairn *c;
	cairn_message_cb on_message;
	void *ctx;
	struct receive_effects *fx;
	uint8_t gkind; /* a group kind that came whole: for groups.c before the commit */
	uint8_t *gdata;
	size_t glen;
};

static int report(struct receiver *rv, const struct contact *k, const struct appmsg *am,
                  const uint8_t *text, size_t len)
{
	if (k->state == CONTACT_REQUEST) /* not a contact's message: cairn_requests shows it */
		return 0;
	rv->fx->received++;
	if (rv->on_message == NULL)
		return 0;
	struct cairn_message m = {.contact = k->name,
	                          .outgoing = 0,
	                          .text = text,
	                          .len = len,
	                          .sent_at = (int64_t)am->sent_at,
	                          .received_at = client_now_s(rv->c)};
	memcpy(m.id, am->id, APPMSG_ID_LEN);
	rv->on_message(rv->ctx, &m);
	return 0;
}

int client_join_parts(struct cairn *c, const uint8_t conv[static RECORD_ID_LEN], size_t part_max,
                      const struct appmsg *am, const uint8_t *raw, size_t rawlen, uint8_t **text,
                      size_t *len)
{
	uint8_t key[RECORD_KEY_MAX];
	size_t klen = part_key(key, conv, am->id, am->part_index);
	int rc = cstate_put(c->st, REC_PART, key, klen, raw, rawlen);
	if (rc != 0)
		return rc;
	size_t total = 0;
	uint8_t *buf = malloc((size_t)am->part_count * part_max);
	if (buf == NULL)
		return CAIRN_ENOMEM;
	for (uint16_t i = 0; i < am->part_count && rc == 0; i++) {
		uint8_t *v = NULL;
		size_t vlen = 0;
		struct appmsg p;
		klen = part_key(key, conv, am->id, i);
		rc = cstate_get(c->st, REC_PART, key, klen, &v, &vlen);
		if (rc == 0 && (appmsg_parse(v, vlen, &p) != 0 || p.kind != am->kind ||
		                p.part_count != am->part_count || p.sent_at != am->sent_at ||
		                p.data_len > part_max))
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
	/* Parts that disagree (CAIRN_EINVAL), a part record that no longer opens
	 * (CAIRN_ECORRUPT: it never will) and parts that join to more than a message may hold
	 * drop the message. Any other failure (the store busy or full, memory) passes, so that
	 * what carried the part stays on the relay for another try rather than being lost. */
	bool drop = rc == CAIRN_EINVAL || rc == CAIRN_ECORRUPT;
	for (uint16_t i = 0; i < am->part_count && (rc == 0 || drop); i++) {
		klen = part_key(key, conv, am->id, i);
		int del = cstate_del(c->st, REC_PART, key, klen);
		if (del != 0) {
			rc = del; /* a store failure: rolled back and offered again */
			drop = false;
		}
	}
	if (rc != 0 || total > CAIRN_MESSAGE_MAX) {
		free(buf);
		return drop || rc == 0 ? 0 : rc;
	}
	*text = buf;
	*len = total;
	return 1;
}

/*
 * A mailboxes message from K (PROTOCOL.md section 8.9): from now on we write to the mailboxes
 * it names, outbox entries not yet sent included, unless a later one was applied already.
 */
static void apply_mailboxes(struct receiver *rv, struct contact *k, const struct appmsg *am)
{
	uint32_t serial;
	struct mailbox_list l;
	if (am->part_count == 1 &&
	    appmsg_mailboxes_parse(am->data, am->data_len, &serial, &l) == 0 &&
	    serial > k->peer_serial) {
		k->peer = l;
		k->peer_serial = serial;
		/* Intake mailboxes and their bundle logs go with the list they were in: we
		 * write to the new one with SEND (PROTOCOL.md 10.4). */
		memset(k->peer_work_bits, 0, sizeof(k->peer_work_bits));
		memset(k->peer_log_id, 0, sizeof(k->peer_log_id));
		rv->fx->redispatch = true;
	}
	sodium_memzero(&l, sizeof(l));
}

/* A group kind over 1:1 (9.8): an offer, a join or a welcome (up to APPMSG_PARTS_MAX parts),
 * kept whole in RV for groups.c once the contact's new state is stored (an offer's answer is
 * sealed with the ratchet this envelope moved), still inside this envelope's transaction. */
static int deliver_group(struct receiver *rv, struct contact *k, const uint8_t *raw, size_t len,
                         const struct appmsg *am)
{
	if (appmsg_check(am, APPMSG_DIRECT) != 0)
		return 0;
	rv->gkind = am->kind;
	if (am->part_count > 1) {
		int rc = client_join_parts(rv->c, k->conv, APPMSG_PART_MAX, am, raw, len,
		                           &rv->gdata, &rv->glen);
		return rc < 0 ? rc : 0;
	}
	if ((rv->gdata = malloc(am->data_len ? am->data_len : 1)) == NULL)
		return CAIRN_ENOMEM;
	memcpy(rv->gdata, am->data, am->data_len);
	rv->glen = am->data_len;
	return 0;
}

/* A file message (section 11): an offered file and its line in the conversation. */
static int deliver_file(struct receiver *rv, struct contact *k, const struct appmsg *am,
                        uint8_t **text, size_t *tlen)
{
	char line[512];
	size_t n = 0;
	if (appmsg_check(am, APPMSG_DIRECT) != 0)
		return 0;
	int rc = cfile_offered(rv->c, k->conv, false, NULL, k->id, am->id, am->sent_at, am->data,
	                       am->data_len, line, sizeof(line), &n);
	if (rc == 1)
		rc = client_store_message(rv->c, k, 0, am->id, (int64_t)am->sent_at,
		                          client_now_s(rv->c), (const uint8_t *)line, n);
	if (rc == 1 && (*text = malloc(n ? n : 1)) != NULL) {
		memcpy(*text, line, n);
		*tlen = n;
	}
	return rc < 0 ? rc : 0;
}

/* Handles the application message inside an opened envelope (transaction held). */
static int deliver_appmsg(struct receiver *rv, struct contact *k, const uint8_t *raw, size_t len,
                          struct appmsg *am, uint8_t **text, size_t *tlen)
{
	*text = NULL;
	if (appmsg_parse(raw, len, am) != 0)
		return 0;
	if (am->kind == APPMSG_MAILBOXES)
		apply_mailboxes(rv, k, am);
	if (am->kind >= APPMSG_GROUP_OFFER && am->kind <= APPMSG_GROUP_WELCOME)
		return deliver_group(rv, k, raw, len, am);
	if (am->kind == APPMSG_FILE)
		return deliver_file(rv, k, am, text, tlen);
	if (am->kind != APPMSG_TEXT)
		return 0; /* hello, mailboxes, or a kind from a later version: nothing to store */
	if (am->part_count == 1) {
		int rc = client_store_message(rv->c, k, 0, am->id, (int64_t)am->sent_at,
		                              client_now_s(rv->c), am->data, am->data_len);
		if (rc == 1) {
			*text = malloc(am->data_len ? am->data_len : 1);
			if (*text != NULL)
				memcpy(*text, am->data, am->data_len);
			*tlen = am->data_len;
		}
		return rc < 0 ? rc : 0;
	}
	uint8_t *joined = NULL;
	size_t jlen = 0;
	int rc = client_join_parts(rv->c, k->conv, APPMSG_PART_MAX, am, raw, len, &joined, &jlen);
	if (rc == 1) {
		rc = client_store_message(rv->c, k, 0, am->id, (int64_t)am->sent_at,
		                          client_now_s(rv->c), joined, jlen);
		if (rc == 1) {
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

int client_receive_envelope(struct cairn *c, const uint8_t contact[RECORD_ID_LEN],
                            const uint8_t recipient_id[CAIRN_MAILBOX_ID_LEN], const uint8_t *env,
                            size_t len, cairn_message_cb on_message, void *ctx,
                            struct receive_effects *fx)
{
	struct receiver receiver = {c, on_message, ctx, fx, 0, NULL, 0}, *rv = &receiver;
	/* Per call, never static: two struct cairn on two threads must not share it. */
	uint8_t *buf = malloc(CAIRN_ENVELOPE_MAX);
	struct contact k;
	struct ratchet *r = NULL;
	struct e2e_opened op;
	struct appmsg am;
	uint8_t *text = NULL;
	size_t tlen = 0;
	if (buf == NULL)
		return CAIRN_ENOMEM;
	int rc = cstate_begin(c->st);
	if (rc != 0) {
		free(buf);
		return rc;
	}
	rc = client_load_contact_id(c, contact, &k);
	if (rc != 0) {
		cstate_rollback(c->st);
		free(buf);
		return rc == CAIRN_ENOTFOUND ? 0 : rc;
	}
	int open_rc;
	bool answered = false; /* the first message that answers our invite */
	if (k.state == CONTACT_INVITED) {
		uint8_t opk[CAIRN_KEY_LEN];
		open_rc = e2e_first_onetime(env, len, opk);
		if (open_rc == 0 && sodium_memcmp(opk, k.onetime.pub, CAIRN_KEY_LEN) != 0)
			open_rc = CAIRN_EAUTH;
		if (open_rc == 0)
			open_rc =
			    e2e_open_first(c->identity_sk, &k.onetime, env, len, buf,
			                   CAIRN_ENVELOPE_MAX, &op, k.peer_identity, &r, NULL);
		struct mailbox_list reply;
		if (open_rc == 0 &&
		    (open_rc = appmsg_reply_parse(op.reply, op.reply_len, &reply)) == 0) {
			k.peer = reply;
			k.peer_serial = 0;
			k.state = CONTACT_ESTABLISHED;
			answered = true;
			/* Time to move them out of the mailboxes the invite named. */
			for (size_t i = 0; i < k.nmine; i++)
				if (k.mine[i].flags & MAILBOX_INVITE)
					k.move = MOVE_WANTED;
		}
		sodium_memzero(&reply, sizeof(reply));
	} else {
		open_rc = ratchet_deserialize(&r, k.ratchet, k.ratchet_len);
		if (open_rc == 0)
			open_rc = e2e_open(r, env, len, buf, CAIRN_ENVELOPE_MAX, &op, NULL);
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
	/* A message in a mailbox our mailboxes message announced: they have moved, so the
	 * mailboxes it replaced can go once drained. */
	int at = contact_find_mine(&k, recipient_id);
	if (k.move == MOVE_SENT && at >= 0 && !(k.mine[at].flags & MAILBOX_INVITE)) {
		k.move = MOVE_CONFIRMED;
		rv->fx->recheck = true;
	}
	rc = keep_ratchet(&k, r);
	/* A group invite's first message carries a join: it comes as an offer's answer. */
	if (rc == 0 && answered)
		rc = group_invite_opened(c, &k);
	if (rc == 0)
		rc = deliver_appmsg(rv, &k, op.message, op.message_len, &am, &text, &tlen);
	if (rc == 0)
		rc = client_store_contact(c, &k);
	/* The group effect in the envelope's transaction: a crash keeps both the ratchet step
	 * and the effect or neither. A refusal was undone alone (a savepoint, state.h); a
	 * store failure rolls back the envelope, which the relay offers again. */
	if (rc == 0 && rv->gdata != NULL)
		rc = client_group_appmsg(c, k.id, rv->gkind, rv->gdata, rv->glen, fx);
	if (rc == 0)
		rc = cstate_commit(c->st);
	else
		cstate_rollback(c->st);
	if (rc == 0 && text != NULL)
		report(rv, &k, &am, text, tlen);
out:
	if (rv->gdata != NULL) {
		sodium_memzero(rv->gdata, rv->glen);
		free(rv->gdata);
	}
	if (text != NULL) {
		sodium_memzero(text, tlen);
		free(text);
	}
	sodium_memzero(buf, CAIRN_ENVELOPE_MAX);
	free(buf);
	ratchet_free(r);
	contact_wipe(&k);
	return rc;
}
