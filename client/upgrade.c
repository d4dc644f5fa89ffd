/* SPDX-License-Identifier: MIT */
/*
 * The upgrade of a home of an older data model to the current one (records.h), run by
 * cairn_open (client.h, client_upgrade): model 1, written before ids (records_v1.h), is
 * rewritten as below; model 2 lacked the name index entries of groups, which
 * client_names_upgrade (names.c) adds, to model 1 homes too (they have no groups).
 *
 * One transaction, whole or not at all: a crash or an error leaves the home exactly as it was,
 * and the next open tries again. Inside it, the model version is read again, so two processes
 * opening an old home at once upgrade it once. Every record is first listed (only small keys
 * are collected), then rewritten: no listing runs over a kind while it is being changed.
 *
 *   contacts      each gets an id, a 1:1 conversation holding its unread count, and its name
 *                 in the name index, in the order they were added
 *   messages      keyed and scoped by their conversation, in their order; incoming ones name
 *                 their contact as sender
 *   parts         of messages still being reassembled: rekeyed by conversation
 *   outbox        rewritten in place under the same outbox id (so in the same order), naming
 *                 the conversation and the contact
 *
 * Nothing is dropped silently: a message whose contact is missing (no client version could
 * delete one, but a damaged home might) gets a conversation of its own, labelled with that name.
 * Records that do not parse stay as they are (unreadable before, unreadable after).
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client.h"
#include "records_v1.h"

/* A name of model 1 and what it became. */
struct owner {
	char name[CAIRN_NAME_MAX + 1];
	uint8_t id[RECORD_ID_LEN]; /* zero for an orphan conversation */
	uint8_t conv[RECORD_ID_LEN];
};

/* What a model 1 record was stored under: a name, a message (or outbox) id, a part index. */
struct old_key {
	char name[CAIRN_NAME_MAX + 1];
	uint8_t id[APPMSG_ID_LEN];
	uint16_t index;
};

struct upgrade {
	struct cairn *c;
	struct owner *owner;
	size_t nowner;
	struct old_key *key;
	size_t nkey, capkey;
	int rc;
};

static struct owner *find_owner(struct upgrade *u, const char *name)
{
	for (size_t i = 0; i < u->nowner; i++)
		if (strcmp(u->owner[i].name, name) == 0)
			return &u->owner[i];
	return NULL;
}

static struct old_key *add_key(struct upgrade *u)
{
	if (u->nkey == u->capkey) {
		size_t ncap = u->capkey ? 2 * u->capkey : 64;
		struct old_key *p = realloc(u->key, ncap * sizeof(*p));
		if (p == NULL) {
			u->rc = CAIRN_ENOMEM;
			return NULL;
		}
		u->key = p;
		u->capkey = ncap;
	}
	struct old_key *k = &u->key[u->nkey++];
	memset(k, 0, sizeof(*k));
	return k;
}

/* ---- contacts ------------------------------------------------------------------------ */

static int collect_contact(void *vctx, const uint8_t *v, size_t vlen)
{
	struct upgrade *u = vctx;
	struct contact k;
	uint32_t unread;
	if (contact_v1_parse(v, vlen, &k, &unread) != 0)
		return 0; /* stays as it is */
	struct old_key *o = add_key(u);
	if (o != NULL)
		strcpy(o->name, k.name);
	contact_wipe(&k);
	return o == NULL;
}

/* Model 1 contact NAME: the same contact with ids, its conversation and its name. */
static int upgrade_contact(struct upgrade *u, const char *name)
{
	uint8_t *v = NULL;
	size_t vlen = 0;
	struct contact k;
	uint32_t unread = 0;
	memset(&k, 0, sizeof(k));
	int rc = cstate_get(u->c->st, REC_CONTACT, name, strlen(name), &v, &vlen);
	if (rc == 0)
		rc = contact_v1_parse(v, vlen, &k, &unread);
	cstate_free_value(v, vlen);
	if (rc == 0)
		rc = cstate_del(u->c->st, REC_CONTACT, name, strlen(name));
	if (rc == 0)
		rc = client_add_contact(u->c, &k, unread);
	if (rc == 0) {
		struct owner *o = &u->owner[u->nowner++];
		strcpy(o->name, name);
		memcpy(o->id, k.id, RECORD_ID_LEN);
		memcpy(o->conv, k.conv, RECORD_ID_LEN);
	}
	contact_wipe(&k);
	return rc;
}

/* A conversation for messages whose contact is gone: a group of no one, named NAME if that
 * name is free. */
static int orphan_owner(struct upgrade *u, const char *name, struct owner **out)
{
	struct owner *p = realloc(u->owner, (u->nowner + 1) * sizeof(*p));
	if (p == NULL)
		return CAIRN_ENOMEM;
	u->owner = p;
	struct owner *o = &p[u->nowner];
	memset(o, 0, sizeof(*o));
	strcpy(o->name, name);
	client_random(u->c, o->conv, RECORD_ID_LEN);
	struct conversation v = {.kind = CONV_GROUP};
	memcpy(v.id, o->conv, RECORD_ID_LEN);
	strcpy(v.label, name);
	int rc = client_store_conversation(u->c, &v);
	uint8_t *b = NULL;
	size_t blen = 0;
	if (rc == 0 &&
	    cstate_get(u->c->st, REC_NAME, name, strlen(name), &b, &blen) == CAIRN_ENOTFOUND) {
		struct name_entry n = {.kind = NAME_CONVERSATION};
		uint8_t e[NAME_ENTRY_LEN];
		memcpy(n.id, o->conv, RECORD_ID_LEN);
		name_entry_encode(&n, e);
		rc = cstate_put(u->c->st, REC_NAME, name, strlen(name), e, sizeof(e));
	}
	cstate_free_value(b, blen);
	if (rc == 0) {
		u->nowner++;
		*out = o;
	}
	return rc;
}

/* ---- messages and parts -------------------------------------------------------------- */

static int collect_message(void *vctx, const uint8_t *v, size_t vlen)
{
	struct upgrade *u = vctx;
	struct stored_message m;
	char name[CAIRN_NAME_MAX + 1];
	if (message_v1_parse(v, vlen, name, &m) != 0)
		return 0;
	struct old_key *o = add_key(u);
	if (o != NULL) {
		strcpy(o->name, name);
		memcpy(o->id, m.id, APPMSG_ID_LEN);
	}
	return o == NULL;
}

static int upgrade_message(struct upgrade *u, const struct old_key *o)
{
	uint8_t key[RECORD_V1_KEY_MAX], nkey[RECORD_KEY_MAX];
	size_t klen = message_v1_key(key, o->name, o->id), vlen = 0, nlen = 0;
	uint8_t *v = NULL, *nv = NULL;
	struct stored_message m;
	char name[CAIRN_NAME_MAX + 1];
	struct owner *w = find_owner(u, o->name);
	int rc = w != NULL ? 0 : orphan_owner(u, o->name, &w);
	if (rc == 0)
		rc = cstate_get(u->c->st, REC_MESSAGE, key, klen, &v, &vlen);
	if (rc == 0)
		rc = message_v1_parse(v, vlen, name, &m);
	if (rc == 0) {
		memcpy(m.conv, w->conv, RECORD_ID_LEN);
		if (!m.outgoing)
			memcpy(m.sender, w->id, RECORD_ID_LEN);
		rc = message_encode(&m, &nv, &nlen);
	}
	if (rc == 0)
		rc = cstate_del(u->c->st, REC_MESSAGE, key, klen);
	if (rc == 0) {
		size_t nklen = message_key(nkey, w->conv, o->id);
		rc = cstate_put_scoped(u->c->st, REC_MESSAGE, nkey, nklen, w->conv, RECORD_ID_LEN,
		                       nv, nlen);
	}
	cstate_free_value(v, vlen);
	cstate_free_value(nv, nlen);
	return rc;
}

/* A part's value is the raw application message: its id and index, not its contact. The
 * owner is the name under whose key it is stored. */
static int collect_part(void *vctx, const uint8_t *v, size_t vlen)
{
	struct upgrade *u = vctx;
	struct appmsg am;
	if (appmsg_parse(v, vlen, &am) != 0)
		return 0;
	for (size_t i = 0; i < u->nowner; i++) {
		uint8_t key[RECORD_V1_KEY_MAX], *b = NULL;
		size_t blen = 0;
		size_t klen = part_v1_key(key, u->owner[i].name, am.id, am.part_index);
		int rc = cstate_get(u->c->st, REC_PART, key, klen, &b, &blen);
		bool same = rc == 0 && blen == vlen && sodium_memcmp(b, v, vlen) == 0;
		cstate_free_value(b, blen);
		if (!same)
			continue;
		struct old_key *o = add_key(u);
		if (o == NULL)
			return 1;
		strcpy(o->name, u->owner[i].name);
		memcpy(o->id, am.id, APPMSG_ID_LEN);
		o->index = am.part_index;
		return 0;
	}
	return 0; /* no owner found: it stays as it is */
}

static int upgrade_part(struct upgrade *u, const struct old_key *o)
{
	uint8_t key[RECORD_V1_KEY_MAX], nkey[RECORD_KEY_MAX], *v = NULL;
	size_t klen = part_v1_key(key, o->name, o->id, o->index), vlen = 0;
	const struct owner *w = find_owner(u, o->name);
	int rc = cstate_get(u->c->st, REC_PART, key, klen, &v, &vlen);
	if (rc == 0 && w != NULL) {
		size_t nklen = part_key(nkey, w->conv, o->id, o->index);
		rc = cstate_del(u->c->st, REC_PART, key, klen);
		if (rc == 0)
			rc = cstate_put(u->c->st, REC_PART, nkey, nklen, v, vlen);
	}
	cstate_free_value(v, vlen);
	return rc;
}

/* ---- the outbox ---------------------------------------------------------------------- */

static int collect_outbox(void *vctx, const uint8_t *v, size_t vlen)
{
	struct upgrade *u = vctx;
	struct outbox_entry e;
	char name[CAIRN_NAME_MAX + 1];
	if (outbox_v1_parse(v, vlen, name, &e) != 0)
		return 0;
	struct old_key *o = add_key(u);
	if (o != NULL)
		memcpy(o->id, e.outbox_id, sizeof(e.outbox_id));
	return o == NULL;
}

/* Rewritten under the same key: a replaced record keeps its place in the order. */
static int upgrade_outbox(struct upgrade *u, const struct old_key *o)
{
	uint8_t *v = NULL, *nv = NULL;
	size_t vlen = 0, nlen = 0;
	struct outbox_entry e;
	char name[CAIRN_NAME_MAX + 1];
	int rc = cstate_get(u->c->st, REC_OUTBOX, o->id, 16, &v, &vlen);
	if (rc == 0 && outbox_v1_parse(v, vlen, name, &e) == 0) {
		const struct owner *w = find_owner(u, name);
		if (w != NULL && sodium_is_zero(w->id, RECORD_ID_LEN) == 0) {
			memcpy(e.conv, w->conv, RECORD_ID_LEN);
			memcpy(e.contact, w->id, RECORD_ID_LEN);
			rc = outbox_encode(&e, &nv, &nlen);
			if (rc == 0)
				rc = cstate_put(u->c->st, REC_OUTBOX, o->id, 16, nv, nlen);
		}
	}
	cstate_free_value(v, vlen);
	cstate_free_value(nv, nlen);
	return rc;
}

/* ---- the whole ----------------------------------------------------------------------- */

/* Reads the model version: 1 when there is no record of it (homes before ids had none). */
static int read_model(struct cairn *c, unsigned *model)
{
	uint8_t *v = NULL;
	size_t vlen = 0;
	int rc = cstate_get(c->st, REC_META, RECORD_META_KEY, strlen(RECORD_META_KEY), &v, &vlen);
	*model = 1;
	if (rc == 0) {
		if (vlen == 1 && v[0] >= 1 && v[0] <= RECORD_MODEL)
			*model = v[0];
		else
			rc = CAIRN_ECORRUPT; /* a newer client's home, or damage: not touched */
	}
	cstate_free_value(v, vlen);
	return rc == CAIRN_ENOTFOUND ? 0 : rc;
}

/* Lists KIND into U's keys, then runs FN on each. */
static int each(struct upgrade *u, uint32_t kind, cstate_list_cb collect,
                int (*fn)(struct upgrade *, const struct old_key *))
{
	u->nkey = 0;
	int rc = cstate_list(u->c->st, kind, collect, u);
	if (rc >= 0 && u->rc != 0)
		rc = u->rc;
	for (size_t i = 0; rc >= 0 && i < u->nkey; i++)
		rc = fn(u, &u->key[i]);
	return rc < 0 ? rc : 0;
}

static int contact_fn(struct upgrade *u, const struct old_key *o)
{
	return upgrade_contact(u, o->name);
}

int client_upgrade(struct cairn *c)
{
	unsigned model;
	int rc = read_model(c, &model);
	if (rc != 0 || model == RECORD_MODEL)
		return rc;
	if ((rc = cstate_begin(c->st)) != 0)
		return rc;
	struct upgrade u = {.c = c};
	rc = read_model(c, &model); /* again, under the write lock */
	if (rc == 0 && model == RECORD_MODEL)
		goto done;
	if (rc == 0 && model == 1) {
		rc = cstate_list(c->st, REC_CONTACT, collect_contact, &u);
		rc = rc >= 0 && u.rc != 0 ? u.rc : rc;
		if (rc >= 0 && (u.owner = calloc(u.nkey ? u.nkey : 1, sizeof(*u.owner))) == NULL)
			rc = CAIRN_ENOMEM;
		for (size_t i = 0; rc >= 0 && i < u.nkey; i++)
			rc = contact_fn(&u, &u.key[i]);
		if (rc >= 0)
			rc = each(&u, REC_MESSAGE, collect_message, upgrade_message);
		if (rc >= 0)
			rc = each(&u, REC_PART, collect_part, upgrade_part);
		if (rc >= 0)
			rc = each(&u, REC_OUTBOX, collect_outbox, upgrade_outbox);
	}
	/* Model 2 to 3: groups' names into the name index (names.c). A model 1 home has no
	 * groups; the step costs it one empty listing. */
	if (rc >= 0)
		rc = client_names_upgrade(c);
	if (rc >= 0) {
		const uint8_t m = RECORD_MODEL;
		rc = cstate_put(c->st, REC_META, RECORD_META_KEY, strlen(RECORD_META_KEY), &m, 1);
	}
done:
	if (rc >= 0)
		rc = cstate_commit(c->st);
	else
		cstate_rollback(c->st);
	if (u.key != NULL) {
		sodium_memzero(u.key, u.capkey * sizeof(*u.key));
		free(u.key);
	}
	if (u.owner != NULL) {
		sodium_memzero(u.owner, u.nowner * sizeof(*u.owner));
		free(u.owner);
	}
	return rc < 0 ? rc : 0;
}
