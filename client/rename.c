/* SPDX-License-Identifier: MIT */
/*
 * Local names that change (names.c holds the index they live in): the local name a group gets
 * when its own is taken here (group_name_pick), cairn_rename of a contact or a group (its label,
 * its conversation's label and the index entries, in one transaction), and the upgrade that
 * gave the groups of a home written before the index their entries.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "group.h"

/* Writes BASE cut to at most ROOM bytes at a character boundary (BASE is valid UTF-8 when
 * it is a group's own name, 9.8; a cut inside a character of anything else is harmless, the
 * name is shown through termsafe), then SUFFIX, into OUT. */
static void name_with(char out[CAIRN_NAME_MAX + 1], const char *base, const char *suffix)
{
	size_t room = CAIRN_NAME_MAX - strlen(suffix), n = strlen(base);
	if (n > room) {
		n = room;
		while (n > 0 && ((uint8_t)base[n] & 0xC0) == 0x80)
			n--;
	}
	memcpy(out, base, n);
	strcpy(out + n, suffix);
}

/*
 * The rule for a group's local name when its own name WANTED is taken here (by a contact or
 * another group; a welcome's name is the inviter's choice): WANTED, else "WANTED (2)" up to
 * "WANTED (99)", cut so that the suffix fits CAIRN_NAME_MAX. An empty own name (9.8 allows it)
 * is replaced by the group id's short id (CAIRN_MEMBER_ID_LEN hex characters) first. The
 * person renames it as they like afterwards. Never overwrites: CAIRN_EEXIST when all 99 are
 * taken.
 */
int group_name_pick(struct cairn *c, const char *wanted, const uint8_t gid[GROUP_ID_LEN],
                    char out[CAIRN_NAME_MAX + 1])
{
	char base[CAIRN_NAME_MAX + 1];
	if (wanted[0] == '\0')
		client_short_id(gid, base);
	else
		snprintf(base, sizeof(base), "%s", wanted);
	for (unsigned i = 1; i < 100; i++) {
		char suffix[8] = "";
		struct name_entry n;
		if (i > 1)
			snprintf(suffix, sizeof(suffix), " (%u)", i);
		name_with(out, base, suffix);
		int rc = client_name_lookup(c, out, &n);
		if (rc == CAIRN_ENOTFOUND)
			return 0; /* free */
		if (rc != 0)
			return rc;
	}
	return CAIRN_EEXIST;
}

/* Sets the label of the thing index entry N names to NEW_NAME: a contact's own label and its
 * 1:1 conversation's, or a group's conversation (its own name, which members see, stays). The
 * contact is read inside the caller's transaction and stored at once, never a copy from
 * before: that would undo a ratchet step another process made meanwhile. */
static int relabel(struct cairn *c, const struct name_entry *n, const char *new_name)
{
	uint8_t conv[RECORD_ID_LEN];
	int rc;
	if (n->kind == NAME_GROUP) {
		struct group_state *g = NULL;
		rc = group_load(c, n->id, &g);
		if (rc == 0)
			memcpy(conv, g->conv, RECORD_ID_LEN);
		group_free(g);
	} else if (n->kind == NAME_CONTACT) {
		struct contact k;
		rc = client_load_contact_id(c, n->id, &k);
		if (rc == 0) {
			snprintf(k.name, sizeof(k.name), "%s", new_name);
			memcpy(conv, k.conv, RECORD_ID_LEN);
			rc = client_store_contact(c, &k);
		}
		contact_wipe(&k);
	} else {
		rc = CAIRN_ENOTFOUND; /* a conversation of no one (upgrade.c): not renamed */
	}
	struct conversation v;
	if (rc == 0 && (rc = client_load_conversation(c, conv, &v)) == 0) {
		snprintf(v.label, sizeof(v.label), "%s", new_name);
		rc = client_store_conversation(c, &v);
		conversation_wipe(&v);
	}
	return rc;
}

/*
 * A contact or a group: the label, the conversation's label and the name index change in one
 * transaction. The new name is claimed in the same transaction that frees the old one, so two
 * processes renaming at once cannot both take it.
 */
int cairn_rename(struct cairn *c, const char *old_name, const char *new_name)
{
	if (c == NULL || !client_valid_name(new_name))
		return CAIRN_EINVAL;
	int rc = cstate_begin(c->st);
	if (rc != 0)
		return rc;
	struct name_entry n;
	rc = client_name_lookup(c, old_name, &n);
	if (rc == 0 && n.kind == NAME_CONVERSATION)
		rc = CAIRN_ENOTFOUND;
	if (rc == 0 && strcmp(old_name, new_name) == 0)
		goto done; /* nothing to change */
	if (rc == 0)
		rc = client_name_claim(c, new_name, n.kind, n.id);
	if (rc == 0)
		rc = relabel(c, &n, new_name);
	if (rc == 0)
		rc = cstate_del(c->st, REC_NAME, old_name, strlen(old_name));
done:
	if (rc == 0)
		return cstate_commit(c->st);
	cstate_rollback(c->st);
	return rc;
}

/* ---- homes of data model 2, whose groups were found by a scan ---- */

struct unnamed_group {
	uint8_t gid[GROUP_ID_LEN];
	uint8_t conv[RECORD_ID_LEN];
	char name[GROUP_NAME_MAX + 1];
};

struct unnamed {
	size_t n, cap;
	struct unnamed_group *g;
};

static int collect_group(void *ctx, const struct group_state *g)
{
	struct unnamed *u = ctx;
	if (u->n == u->cap) {
		size_t cap = u->cap ? 2 * u->cap : 8;
		void *p = realloc(u->g, cap * sizeof(*u->g));
		if (p == NULL)
			return CAIRN_ENOMEM;
		u->g = p;
		u->cap = cap;
	}
	memcpy(u->g[u->n].gid, g->group_id, GROUP_ID_LEN);
	memcpy(u->g[u->n].conv, g->conv, RECORD_ID_LEN);
	memcpy(u->g[u->n].name, g->name, sizeof(u->g[0].name));
	u->n++;
	return 0;
}

/*
 * Model 2 homes kept no index entry for groups: each group gets one now, under the name it was
 * found by (its own name), or by group_name_pick's rule when that is taken, by a contact (the
 * contact keeps it: model 2 let both share it, and the contact came first) or by an earlier
 * group of the same name (model 2 found only the first); its conversation is labelled so. In
 * the caller's transaction (client_upgrade).
 */
int client_names_upgrade(struct cairn *c)
{
	struct unnamed u = {0};
	int rc = group_each(c, collect_group, &u);
	for (size_t i = 0; rc == 0 && i < u.n; i++) {
		struct conversation v;
		char name[CAIRN_NAME_MAX + 1];
		rc = group_name_pick(c, u.g[i].name, u.g[i].gid, name);
		if (rc == 0)
			rc = client_name_claim(c, name, NAME_GROUP, u.g[i].gid);
		if (rc == 0 && (rc = client_load_conversation(c, u.g[i].conv, &v)) == 0) {
			snprintf(v.label, sizeof(v.label), "%s", name);
			rc = client_store_conversation(c, &v);
			conversation_wipe(&v);
		}
	}
	free(u.g);
	return rc;
}
