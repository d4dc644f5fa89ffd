/* SPDX-License-Identifier: MIT */
/*
 * Contacts and conversations (client.h): loading and storing contacts by id or by name,
 * adding a contact with its 1:1 conversation and its name, storing a message in its
 * conversation (and counting it unread there), listing contacts, and which of our mailboxes a
 * contact holds and writes to.
 *
 * A name is a label: the name index (names.c, shared with groups) points at the contact's id,
 * and everything else (messages, parts, the outbox, unread counts) hangs off the ids, so a
 * rename (rename.c) rewrites the contact's label, its 1:1 conversation's label and the two
 * index entries, and nothing else.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client.h"

int client_load_contact_id(struct cairn *c, const uint8_t id[RECORD_ID_LEN], struct contact *k)
{
	memset(k, 0, sizeof(*k));
	uint8_t *v = NULL;
	size_t vlen = 0;
	int rc = cstate_get(c->st, REC_CONTACT, id, RECORD_ID_LEN, &v, &vlen);
	if (rc == 0)
		rc = contact_parse(v, vlen, k);
	cstate_free_value(v, vlen);
	/* The record must be where its own id says: anything else is damage. */
	if (rc == 0 && sodium_memcmp(k->id, id, RECORD_ID_LEN) != 0) {
		contact_wipe(k);
		rc = CAIRN_ECORRUPT;
	}
	return rc;
}

int client_load_contact(struct cairn *c, const char *name, struct contact *k)
{
	struct name_entry n;
	memset(k, 0, sizeof(*k));
	int rc = client_name_lookup(c, name, &n);
	if (rc == 0 && n.kind != NAME_CONTACT)
		rc = CAIRN_ENOTFOUND; /* a group's name: not a contact */
	if (rc == 0)
		rc = client_load_contact_id(c, n.id, k);
	return rc;
}

int client_store_contact(struct cairn *c, const struct contact *k)
{
	uint8_t *v = NULL;
	size_t vlen = 0;
	int rc = contact_encode(k, &v, &vlen);
	if (rc == 0)
		rc = cstate_put(c->st, REC_CONTACT, k->id, RECORD_ID_LEN, v, vlen);
	if (v != NULL) {
		sodium_memzero(v, vlen);
		free(v);
	}
	return rc;
}

int client_load_conversation(struct cairn *c, const uint8_t id[RECORD_ID_LEN],
                             struct conversation *v)
{
	memset(v, 0, sizeof(*v));
	uint8_t *b = NULL;
	size_t blen = 0;
	int rc = cstate_get(c->st, REC_CONVERSATION, id, RECORD_ID_LEN, &b, &blen);
	if (rc == 0)
		rc = conversation_parse(b, blen, v);
	cstate_free_value(b, blen);
	if (rc == 0 && sodium_memcmp(v->id, id, RECORD_ID_LEN) != 0) {
		conversation_wipe(v);
		rc = CAIRN_ECORRUPT;
	}
	return rc;
}

int client_store_conversation(struct cairn *c, const struct conversation *v)
{
	uint8_t *b = NULL;
	size_t blen = 0;
	int rc = conversation_encode(v, &b, &blen);
	if (rc == 0)
		rc = cstate_put(c->st, REC_CONVERSATION, v->id, RECORD_ID_LEN, b, blen);
	if (b != NULL) {
		sodium_memzero(b, blen);
		free(b);
	}
	return rc;
}

/*
 * Stores K (ids, if still zero, made now) with its 1:1 conversation (UNREAD unread) and its
 * name, unless the name is taken (CAIRN_EEXIST): another process's `invite` or `accept` under
 * the same name must not be overwritten, ratchet and all. The check and the writes are one
 * transaction; a caller already inside one nests in it, and a failure rolls the whole of it
 * back.
 */
int client_add_contact(struct cairn *c, struct contact *k, uint32_t unread)
{
	static const uint8_t zero[RECORD_ID_LEN];
	if (!client_valid_name(k->name))
		return CAIRN_EINVAL;
	if (memcmp(k->id, zero, RECORD_ID_LEN) == 0)
		client_random(c, k->id, RECORD_ID_LEN);
	if (memcmp(k->conv, zero, RECORD_ID_LEN) == 0)
		client_random(c, k->conv, RECORD_ID_LEN);
	uint8_t member[1][RECORD_ID_LEN];
	memcpy(member[0], k->id, RECORD_ID_LEN);
	struct conversation v = {.kind = CONV_DIRECT, .unread = unread, .nmembers = 1};
	v.members = member;
	memcpy(v.id, k->conv, RECORD_ID_LEN);
	strcpy(v.label, k->name);
	int rc = cstate_begin(c->st);
	if (rc != 0)
		return rc;
	/* One namespace with groups (names.c): a group's name is taken too. */
	rc = client_name_claim(c, k->name, NAME_CONTACT, k->id);
	if (rc == 0)
		rc = client_store_contact(c, k);
	if (rc == 0)
		rc = client_store_conversation(c, &v);
	if (rc == 0)
		return cstate_commit(c->st);
	cstate_rollback(c->st);
	return rc;
}

int client_put_message(struct cairn *c, const struct stored_message *in)
{
	uint8_t key[RECORD_KEY_MAX];
	size_t klen = message_key(key, in->conv, in->id);
	uint8_t *old = NULL;
	size_t oldlen = 0;
	int rc = cstate_get(c->st, REC_MESSAGE, key, klen, &old, &oldlen);
	cstate_free_value(old, oldlen);
	if (rc == 0)
		return 0; /* a duplicate: stored already */
	if (rc != CAIRN_ENOTFOUND)
		return rc;
	/* The conversation holds the unread count and the timer: a timer message is applied
	 * first, so that it is kept under the timer it sets (8.11), and every message stored
	 * while a timer is on gets its expiry time. */
	struct stored_message m = *in;
	struct conversation v;
	rc = client_load_conversation(c, m.conv, &v);
	bool have_conv = rc == 0, changed = false;
	if (rc != 0 && !(rc == CAIRN_ENOTFOUND && m.outgoing))
		return rc;
	if (have_conv && m.kind == APPMSG_TIMER)
		changed = client_timer_take(&v, &m);
	m.expires_at = have_conv && v.timer > 0 ? client_now_s(c) + (int64_t)v.timer : 0;
	uint8_t *val = NULL;
	size_t vlen = 0;
	rc = message_encode(&m, &val, &vlen);
	if (rc == 0)
		rc = cstate_put_scoped(c->st, REC_MESSAGE, key, klen, m.conv, RECORD_ID_LEN, val,
		                       vlen);
	if (val != NULL) {
		sodium_memzero(val, vlen);
		free(val);
	}
	/* A timer change is a notice, not something to read: only texts count unread. */
	if (rc == 0 && !m.outgoing && m.kind != APPMSG_TIMER) {
		v.unread = v.unread == UINT32_MAX ? UINT32_MAX : v.unread + 1;
		changed = true;
	}
	if (rc == 0 && changed)
		rc = client_store_conversation(c, &v);
	if (rc == 0 && m.expires_at > 0)
		rc = client_expiry_note(c, m.conv, m.id, m.expires_at);
	if (have_conv)
		conversation_wipe(&v);
	return rc == 0 ? 1 : rc;
}

int client_store_message(struct cairn *c, const struct contact *k, int outgoing,
                         const uint8_t id[APPMSG_ID_LEN], int64_t sent_at, int64_t received_at,
                         const uint8_t *text, size_t len)
{
	return client_store_appmsg(c, k, outgoing, APPMSG_TEXT, id, sent_at, received_at, text,
	                           len);
}

int client_store_appmsg(struct cairn *c, const struct contact *k, int outgoing, uint8_t kind,
                        const uint8_t id[APPMSG_ID_LEN], int64_t sent_at, int64_t received_at,
                        const uint8_t *text, size_t len)
{
	struct stored_message m = {.outgoing = (uint8_t)outgoing,
	                           .kind = kind,
	                           .sent_at = sent_at,
	                           .received_at = received_at,
	                           .text = text,
	                           .len = len};
	memcpy(m.conv, k->conv, RECORD_ID_LEN);
	if (!outgoing)
		memcpy(m.sender, k->id, RECORD_ID_LEN);
	memcpy(m.id, id, APPMSG_ID_LEN);
	return client_put_message(c, &m);
}

struct contacts_ctx {
	struct cairn *c;
	cairn_contact_cb cb;
	void *ctx;
	int rc;
};

static int contact_one(void *vctx, const uint8_t *b, size_t blen)
{
	struct contacts_ctx *x = vctx;
	struct contact k;
	struct conversation v;
	if (contact_parse(b, blen, &k) != 0) {
		x->rc = CAIRN_ECORRUPT;
		return 1;
	}
	if (k.state == CONTACT_REQUEST) { /* not a contact until accepted (cairn_requests) */
		contact_wipe(&k);
		return 0;
	}
	int rc = client_load_conversation(x->c, k.conv, &v);
	if (rc != 0) {
		contact_wipe(&k);
		x->rc = rc;
		return 1;
	}
	struct cairn_contact out = {
	    .name = k.name, .established = k.state == CONTACT_ESTABLISHED, .unread = v.unread};
	int stop = x->cb(x->ctx, &out);
	conversation_wipe(&v);
	contact_wipe(&k);
	return stop;
}

int cairn_contacts(struct cairn *c, cairn_contact_cb cb, void *ctx)
{
	struct contacts_ctx x = {.c = c, .cb = cb, .ctx = ctx};
	int rc = cstate_list(c->st, REC_CONTACT, contact_one, &x);
	if (rc >= 0 && x.rc != 0)
		rc = x.rc;
	return rc < 0 ? rc : 0;
}

int contact_find_mine(const struct contact *k, const uint8_t recipient_id[CAIRN_MAILBOX_ID_LEN])
{
	for (size_t i = 0; i < k->nmine; i++)
		if (sodium_memcmp(k->mine[i].recipient_id, recipient_id, CAIRN_MAILBOX_ID_LEN) == 0)
			return (int)i;
	return -1;
}

void contact_current_mailboxes(const struct contact *k, struct mailbox_list *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < k->nmine && out->count < CAIRN_MAILBOXES_MAX; i++) {
		const struct my_mailbox *m = &k->mine[i];
		if (m->flags & MAILBOX_RETIRED)
			continue;
		struct mailbox_addr *a = &out->box[out->count++];
		memcpy(a->sender_id, m->sender_id, CAIRN_MAILBOX_ID_LEN);
		memcpy(a->credential, m->credential, CAIRN_CREDENTIAL_LEN);
		strcpy(a->relay, m->relay);
	}
}

/* A short id: the first 8 bytes of an identity key (or of the prefix stored with a message), in
 * lowercase hex. */
void client_short_id(const uint8_t *p, char out[CAIRN_MEMBER_ID_LEN + 1])
{
	sodium_bin2hex(out, CAIRN_MEMBER_ID_LEN + 1, p, CAIRN_MEMBER_ID_LEN / 2);
}

void client_group_sender_name(struct cairn *c, const uint8_t sender[RECORD_ID_LEN],
                              char out[CAIRN_NAME_MAX + 1])
{
	struct contact k;
	if (client_load_contact_id(c, sender, &k) == 0)
		snprintf(out, CAIRN_NAME_MAX + 1, "%s", k.name);
	else
		client_short_id(sender, out);
	contact_wipe(&k);
}
