/* SPDX-License-Identifier: MIT */
/*
 * Requests (cairn.h; PROTOCOL.md 10.4, 10.6): receiving in an intake mailbox, where a type 3
 * envelope either continues the request or contact its ephemeral key started, or becomes a new
 * request (a contact record in state CONTACT_REQUEST: no name, not listed, nothing ever sent
 * to it), in one store transaction; and listing, accepting, rejecting and blocking requests.
 * An accepted request moves to fresh mailboxes through the invite move (mailbox.c,
 * engine_move.c): its copies of the intake mailboxes (MAILBOX_INTAKE) play the invite
 * mailboxes' part, except that nothing ever deletes them.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "e2e.h"
#include "intakes.h"

int intake_mailbox(struct cairn *c, const uint8_t id[RECORD_ID_LEN],
                   const uint8_t recipient_id[CAIRN_MAILBOX_ID_LEN], struct my_mailbox *mb)
{
	struct intake *in = malloc(sizeof(*in));
	memset(mb, 0, sizeof(*mb));
	if (in == NULL)
		return CAIRN_ENOMEM;
	int rc = intake_load(c, id, in);
	if (rc == 0) {
		rc = CAIRN_ENOTFOUND;
		for (size_t i = 0; i < in->n + in->nold; i++) {
			const struct intake_box *b = i < in->n ? &in->cur[i] : &in->old[i - in->n];
			if (sodium_memcmp(b->mb.recipient_id, recipient_id, CAIRN_MAILBOX_ID_LEN) ==
			    0) {
				*mb = b->mb;
				rc = 0;
				break;
			}
		}
	}
	intake_wipe(in);
	free(in);
	return rc;
}

/* Stores the text message AM of a new request K (its first message, whole or one part). */
static int store_first(struct cairn *c, const struct contact *k, const uint8_t *raw, size_t len)
{
	struct appmsg am;
	if (appmsg_parse(raw, len, &am) != 0 || am.kind != APPMSG_TEXT)
		return 0; /* nothing to keep: the request still stands */
	if (am.part_count == 1) {
		int rc = client_store_message(c, k, 0, am.id, (int64_t)am.sent_at, client_now_s(c),
		                              am.data, am.data_len);
		return rc < 0 ? rc : 0;
	}
	uint8_t *joined = NULL;
	size_t jlen = 0;
	int rc = client_join_parts(c, k->conv, APPMSG_PART_MAX, &am, raw, len, &joined, &jlen);
	if (rc == 1)
		rc = client_store_message(c, k, 0, am.id, (int64_t)am.sent_at, client_now_s(c),
		                          joined, jlen);
	if (joined != NULL) {
		sodium_memzero(joined, jlen);
		free(joined);
	}
	return rc < 0 ? rc : 0;
}

/*
 * A first message that opened with a new EK under prekey SPK of IN: the request, with its
 * session R, the requester's identity PEER and what OP holds, inside the caller's
 * transaction. Returns 0 (stored, or dropped: a blocked identity, a full list, a reply that
 * does not parse) or a store error.
 */
static int new_request(struct cairn *c, const struct intake *in, const uint8_t spk[CAIRN_KEY_LEN],
                       const uint8_t ek[CAIRN_KEY_LEN], const uint8_t peer[CAIRN_KEY_LEN],
                       const struct ratchet *r, const struct e2e_opened *op)
{
	struct intake_ek e = {.kind = INTAKE_EK_REJECTED};
	int rc = intake_blocked(c, peer);
	if (rc != 0) /* blocked: its EK is dropped without cryptography from now on */
		return rc < 0 ? rc : intake_ek_put(c, spk, ek, &e);
	uint32_t pending;
	uint64_t dropped;
	if ((rc = intake_meta_get(c, &pending, &dropped)) != 0)
		return rc;
	if (pending >= INTAKE_REQUESTS_MAX)
		return intake_meta_put(c, pending, dropped + 1);
	struct contact k;
	memset(&k, 0, sizeof(k));
	if (op->reply == NULL || appmsg_reply_parse(op->reply, op->reply_len, &k.peer) != 0)
		return 0; /* a requester we could never answer */
	client_random(c, k.id, RECORD_ID_LEN);
	client_random(c, k.conv, RECORD_ID_LEN);
	k.state = CONTACT_REQUEST;
	memcpy(k.peer_identity, peer, CAIRN_KEY_LEN);
	memcpy(k.intake, in->id, RECORD_ID_LEN);
	memcpy(k.ek, ek, CAIRN_KEY_LEN);
	/* Where an accepted request is moved from: the intake's relays, in its order. */
	for (size_t i = 0; i < in->n; i++) {
		struct my_mailbox *m = &k.mine[k.nmine++];
		strcpy(m->relay, in->cur[i].mb.relay);
		memcpy(m->recipient_id, in->cur[i].mb.recipient_id, CAIRN_MAILBOX_ID_LEN);
		memcpy(m->sender_id, in->cur[i].mb.sender_id, CAIRN_MAILBOX_ID_LEN);
		m->flags = MAILBOX_INVITE | MAILBOX_INTAKE;
	}
	rc = client_keep_session(&k, r);
	uint8_t member[1][RECORD_ID_LEN];
	memcpy(member[0], k.id, RECORD_ID_LEN);
	struct conversation v = {.kind = CONV_DIRECT, .nmembers = 1, .members = member};
	memcpy(v.id, k.conv, RECORD_ID_LEN);
	if (rc == 0)
		rc = client_store_contact(c, &k);
	if (rc == 0)
		rc = client_store_conversation(c, &v);
	if (rc == 0)
		rc = store_first(c, &k, op->message, op->message_len);
	e.kind = INTAKE_EK_CONTACT;
	memcpy(e.contact, k.id, RECORD_ID_LEN);
	if (rc == 0)
		rc = intake_ek_put(c, spk, ek, &e);
	if (rc == 0)
		rc = intake_meta_put(c, pending + 1, dropped);
	contact_wipe(&k);
	return rc;
}

int client_receive_intake(struct cairn *c, const uint8_t intake[RECORD_ID_LEN],
                          const uint8_t recipient_id[CAIRN_MAILBOX_ID_LEN], const uint8_t *env,
                          size_t len, cairn_message_cb on_message, void *ctx,
                          struct receive_effects *fx)
{
	uint8_t ek[CAIRN_KEY_LEN], spk[CAIRN_KEY_LEN], peer[CAIRN_KEY_LEN];
	struct intake *in = malloc(sizeof(*in));
	uint8_t *buf = malloc(CAIRN_ENVELOPE_MAX);
	struct ratchet *r = NULL;
	int rc = in == NULL || buf == NULL ? CAIRN_ENOMEM : cstate_begin(c->st);
	if (rc != 0) {
		free(in);
		free(buf);
		return rc;
	}
	bool keep = false; /* commit: something was recorded */
	rc = intake_load(c, intake, in);
	if (rc == CAIRN_ENOTFOUND || rc == CAIRN_ECORRUPT)
		rc = 0; /* revoked meanwhile, or unreadable: nothing to open it with */
	else if (rc == 0 && len > 0 && env[0] == E2E_TYPE_INTAKE &&
	         e2e_intake_keys(env, len, ek, spk) == 0) {
		int at = -1;
		for (size_t i = 0; i < in->nprekeys && at < 0; i++)
			if (sodium_memcmp(in->pk[i].pub, spk, CAIRN_KEY_LEN) == 0)
				at = (int)i;
		struct intake_ek e;
		int found = at < 0 ? CAIRN_ENOTFOUND : intake_ek_get(c, spk, ek, &e);
		if (at < 0) {
			/* An unknown or deleted prekey: dropped. */
		} else if (found == 0 && e.kind == INTAKE_EK_CONTACT) {
			/* A request or contact of ours writes again: its own session opens it (a
			 * replay then fails like any ratchet replay). */
			rc = client_receive_envelope(c, e.contact, recipient_id, env, len,
			                             on_message, ctx, fx);
			keep = rc == 0;
		} else if (found == 0 || found == CAIRN_ECORRUPT) {
			/* Rejected: dropped without cryptography. */
		} else if (found != CAIRN_ENOTFOUND) {
			rc = found;
		} else {
			struct x3dh_onetime otk = {.used = false};
			struct e2e_opened op;
			memcpy(otk.pub, in->pk[at].pub, CAIRN_KEY_LEN);
			memcpy(otk.priv, in->pk[at].priv, CAIRN_KEY_LEN);
			if (e2e_open_intake(c->identity_sk, &otk, env, len, buf, CAIRN_ENVELOPE_MAX,
			                    &op, peer, &r, NULL) == 0) {
				rc = new_request(c, in, spk, ek, peer, r, &op);
				keep = rc == 0;
			}
			sodium_memzero(&otk, sizeof(otk));
		}
	}
	/* Anything else in an intake mailbox (another type, a forgery) is dropped. */
	if (keep)
		rc = cstate_commit(c->st);
	else
		cstate_rollback(c->st);
	ratchet_free(r);
	sodium_memzero(buf, CAIRN_ENVELOPE_MAX);
	free(buf);
	intake_wipe(in);
	free(in);
	sodium_memzero(peer, sizeof(peer));
	return rc;
}

/* ---- listing and deciding --------------------------------------------------------------- */

static void request_id_text(const uint8_t id[RECORD_ID_LEN], char out[CAIRN_REQUEST_ID_LEN + 1])
{
	sodium_bin2hex(out, CAIRN_REQUEST_ID_LEN + 1, id, CAIRN_REQUEST_ID_LEN / 2);
}

/* The requests, in the order they came: contact ids. */
struct req_list {
	uint8_t (*id)[RECORD_ID_LEN];
	size_t n, cap;
	const char *want; /* only the one with this request id (then stop) */
	int rc;
};

static int collect_request(void *vctx, const uint8_t *v, size_t vlen)
{
	struct req_list *x = vctx;
	struct contact k;
	if (contact_parse(v, vlen, &k) != 0)
		return 0;
	bool take = k.state == CONTACT_REQUEST;
	if (take && x->want != NULL) {
		char hex[CAIRN_REQUEST_ID_LEN + 1];
		request_id_text(k.id, hex);
		take = strcmp(hex, x->want) == 0;
	}
	if (take && x->n == x->cap) {
		size_t ncap = x->cap ? 2 * x->cap : 16;
		void *p = realloc(x->id, ncap * sizeof(*x->id));
		if (p == NULL) {
			x->rc = CAIRN_ENOMEM;
			take = false;
		} else {
			x->id = p;
			x->cap = ncap;
		}
	}
	if (take)
		memcpy(x->id[x->n++], k.id, RECORD_ID_LEN);
	contact_wipe(&k);
	return x->rc != 0 || (take && x->want != NULL);
}

/* What a request's conversation holds: its message count, the first one's start and time. */
struct conv_summary {
	unsigned n;
	uint8_t preview[CAIRN_PREVIEW_MAX];
	size_t plen;
	int64_t first_at;
	uint8_t (*ids)[APPMSG_ID_LEN]; /* with COLLECT: every message id, to delete them */
	bool collect;
	int rc;
};

static int summarize(void *vctx, const uint8_t *v, size_t vlen)
{
	struct conv_summary *x = vctx;
	struct stored_message m;
	if (message_parse(v, vlen, &m) != 0)
		return 0;
	if (x->collect) {
		void *p = realloc(x->ids, (x->n + 1) * sizeof(*x->ids));
		if (p == NULL) {
			x->rc = CAIRN_ENOMEM;
			return 1;
		}
		x->ids = p;
		memcpy(x->ids[x->n], m.id, APPMSG_ID_LEN);
	}
	if (x->n++ == 0) {
		size_t n = m.len < CAIRN_PREVIEW_MAX ? m.len : CAIRN_PREVIEW_MAX;
		/* Cut at a character's start, never inside a UTF-8 sequence. */
		while (n < m.len && n > 0 && (m.text[n] & 0xc0) == 0x80)
			n--;
		memcpy(x->preview, m.text, n);
		x->plen = n;
		x->first_at = m.received_at;
	}
	return 0;
}

int cairn_requests(struct cairn *c, cairn_request_cb cb, void *ctx)
{
	if (c == NULL || cb == NULL)
		return CAIRN_EINVAL;
	struct req_list x = {0};
	int rc = cstate_list(c->st, REC_CONTACT, collect_request, &x);
	rc = rc < 0 ? rc : x.rc;
	struct intake *in = malloc(sizeof(*in));
	if (in == NULL && rc == 0)
		rc = CAIRN_ENOMEM;
	for (size_t i = 0; rc == 0 && i < x.n; i++) {
		struct contact k;
		struct conv_summary s = {0};
		if (client_load_contact_id(c, x.id[i], &k) != 0)
			continue; /* decided by another process meanwhile */
		int lr =
		    cstate_list_scope(c->st, REC_MESSAGE, k.conv, RECORD_ID_LEN, summarize, &s);
		if (lr < 0)
			rc = lr;
		char hex[CAIRN_REQUEST_ID_LEN + 1];
		request_id_text(k.id, hex);
		bool named = intake_load(c, k.intake, in) == 0;
		struct cairn_request out = {.id = hex,
		                            .intake = named ? in->label : "",
		                            .preview = s.preview,
		                            .preview_len = s.plen,
		                            .messages = s.n,
		                            .first_at = s.first_at};
		if (rc == 0)
			rc = cb(ctx, &out);
		intake_wipe(in);
		sodium_memzero(&s, sizeof(s));
		contact_wipe(&k);
	}
	free(in);
	free(x.id);
	return rc;
}

int cairn_requests_dropped(struct cairn *c, uint64_t *dropped)
{
	uint32_t pending;
	if (c == NULL || dropped == NULL)
		return CAIRN_EINVAL;
	return intake_meta_get(c, &pending, dropped);
}

/* Loads the pending request ID into K, inside the caller's transaction. */
static int load_request(struct cairn *c, const char *id, struct contact *k)
{
	struct req_list x = {.want = id};
	memset(k, 0, sizeof(*k));
	if (id == NULL || strlen(id) != CAIRN_REQUEST_ID_LEN)
		return CAIRN_ENOTFOUND;
	int rc = cstate_list(c->st, REC_CONTACT, collect_request, &x);
	rc = rc < 0 ? rc : x.rc != 0 ? x.rc : x.n == 0 ? CAIRN_ENOTFOUND : 0;
	if (rc == 0)
		rc = client_load_contact_id(c, x.id[0], k);
	free(x.id);
	return rc;
}

/* One request fewer pending (inside the caller's transaction). */
static int pending_done(struct cairn *c)
{
	uint32_t pending;
	uint64_t dropped;
	int rc = intake_meta_get(c, &pending, &dropped);
	return rc != 0 ? rc : intake_meta_put(c, pending > 0 ? pending - 1 : 0, dropped);
}

int cairn_request_accept(struct cairn *c, const char *id, const char *name)
{
	if (c == NULL)
		return CAIRN_EINVAL;
	if (!client_valid_name(name))
		return CAIRN_EINVAL;
	struct contact k;
	struct conversation v;
	memset(&v, 0, sizeof(v));
	int rc = cstate_begin(c->st);
	if (rc != 0)
		return rc;
	rc = load_request(c, id, &k);
	if (rc == 0)
		rc = client_name_claim(c, name, NAME_CONTACT, k.id);
	if (rc == 0) {
		strcpy(k.name, name);
		k.state = CONTACT_ESTABLISHED;
		/* Out of the shared intake mailboxes into fresh ones of its own (8.10), by the
		 * next sync, listen or engine step. */
		k.move = MOVE_WANTED;
		rc = client_store_contact(c, &k);
	}
	if (rc == 0 && (rc = client_load_conversation(c, k.conv, &v)) == 0) {
		strcpy(v.label, name);
		rc = client_store_conversation(c, &v);
	}
	if (rc == 0)
		rc = pending_done(c);
	if (rc == 0)
		rc = cstate_commit(c->st);
	else
		cstate_rollback(c->st);
	conversation_wipe(&v);
	contact_wipe(&k);
	if (rc == 0)
		client_engine_wake(c);
	return rc;
}

/* Marks K's EK rejected under whichever of its intake's prekeys holds it (none if the intake
 * is gone: its mailboxes are then gone too). */
static int reject_ek(struct cairn *c, const struct contact *k)
{
	struct intake *in = malloc(sizeof(*in));
	if (in == NULL)
		return CAIRN_ENOMEM;
	int rc = intake_load(c, k->intake, in);
	rc = rc == CAIRN_ENOTFOUND ? 0 : rc;
	for (size_t i = 0; rc == 0 && i < in->nprekeys; i++) {
		struct intake_ek e;
		int got = intake_ek_get(c, in->pk[i].pub, k->ek, &e);
		if (got == 0 && sodium_memcmp(e.contact, k->id, RECORD_ID_LEN) == 0) {
			e.kind = INTAKE_EK_REJECTED;
			rc = intake_ek_put(c, in->pk[i].pub, k->ek, &e);
		} else if (got != 0 && got != CAIRN_ENOTFOUND) {
			rc = got;
		}
	}
	intake_wipe(in);
	free(in);
	return rc;
}

static int reject(struct cairn *c, const char *id, bool block)
{
	if (c == NULL)
		return CAIRN_EINVAL;
	struct contact k;
	struct conv_summary s = {.collect = true};
	int rc = cstate_begin(c->st);
	if (rc != 0)
		return rc;
	rc = load_request(c, id, &k);
	if (rc == 0 &&
	    (rc = cstate_list_scope(c->st, REC_MESSAGE, k.conv, RECORD_ID_LEN, summarize, &s)) >= 0)
		rc = s.rc;
	for (size_t i = 0; rc == 0 && i < s.n; i++) {
		uint8_t key[RECORD_KEY_MAX];
		size_t klen = message_key(key, k.conv, s.ids[i]);
		rc = cstate_del(c->st, REC_MESSAGE, key, klen);
	}
	if (rc == 0)
		rc = cstate_del(c->st, REC_CONVERSATION, k.conv, RECORD_ID_LEN);
	if (rc == 0)
		rc = cstate_del(c->st, REC_CONTACT, k.id, RECORD_ID_LEN);
	if (rc == 0)
		rc = reject_ek(c, &k);
	if (rc == 0 && block)
		rc = intake_block(c, k.peer_identity);
	if (rc == 0)
		rc = pending_done(c);
	if (rc == 0)
		rc = cstate_commit(c->st);
	else
		cstate_rollback(c->st);
	free(s.ids);
	sodium_memzero(&s, sizeof(s));
	contact_wipe(&k);
	return rc;
}

int cairn_request_reject(struct cairn *c, const char *id)
{
	return reject(c, id, false);
}

int cairn_request_block(struct cairn *c, const char *id)
{
	return reject(c, id, true);
}
