/* SPDX-License-Identifier: MIT */
/*
 * The one namespace of local names (client.h): contacts and groups are found by name only
 * through the name index (REC_NAME: a name's keyed hash -> what it names), one store look-up,
 * so a contact and a group can never share a name, and renaming either is a change of label
 * and index entry that nothing else sees. Every entry point that gives a name claims it here
 * inside its own transaction: cairn_invite_create and cairn_invite_accept (client_add_contact),
 * cairn_group_create (group_create), a welcome that makes a group (group_conversation_new), and
 * cairn_rename.
 *
 * A group has two names. Its own name travels in offers and welcomes (group_state's name, set
 * by its creator, never changed here). Its local name is the label of its conversation and the
 * key of its index entry: it starts as the group's own name, unless that is taken on this
 * device (group_name_pick says what it becomes then), and cairn_rename changes it. Members never
 * see a local name.
 *
 * This file is the index itself, beneath contacts.c and groups; picking a group's local name,
 * renaming and the upgrade that indexed the groups of older homes are in rename.c, above them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "group.h"

int client_valid_name(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	return n > 0 && n <= CAIRN_NAME_MAX;
}

int client_name_lookup(struct cairn *c, const char *name, struct name_entry *n)
{
	memset(n, 0, sizeof(*n));
	if (!client_valid_name(name))
		return CAIRN_ENOTFOUND;
	uint8_t *v = NULL;
	size_t vlen = 0;
	int rc = cstate_get(c->st, REC_NAME, name, strlen(name), &v, &vlen);
	if (rc == 0)
		rc = name_entry_parse(v, vlen, n);
	cstate_free_value(v, vlen);
	return rc;
}

int client_name_claim(struct cairn *c, const char *name, uint8_t kind,
                      const uint8_t id[RECORD_ID_LEN])
{
	struct name_entry n = {.kind = kind};
	if (!client_valid_name(name))
		return CAIRN_EINVAL;
	int rc = client_name_lookup(c, name, &n);
	if (rc == 0)
		return CAIRN_EEXIST;
	if (rc != CAIRN_ENOTFOUND)
		return rc;
	uint8_t v[NAME_ENTRY_LEN];
	n.kind = kind;
	memcpy(n.id, id, RECORD_ID_LEN);
	name_entry_encode(&n, v);
	return cstate_put(c->st, REC_NAME, name, strlen(name), v, sizeof(v));
}

int client_group_find(struct cairn *c, const char *name, uint8_t gid[GROUP_ID_LEN])
{
	_Static_assert(GROUP_ID_LEN == RECORD_ID_LEN, "a name entry holds a group id");
	struct name_entry n;
	if (c == NULL)
		return CAIRN_ENOTFOUND;
	int rc = client_name_lookup(c, name, &n);
	if (rc == 0 && n.kind != NAME_GROUP)
		rc = CAIRN_ENOTFOUND; /* a contact's name: not a group */
	if (rc == 0)
		memcpy(gid, n.id, GROUP_ID_LEN);
	return rc;
}
