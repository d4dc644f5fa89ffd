/* SPDX-License-Identifier: MIT */
/*
 * Invites (include/cairn/cairn.h, PROTOCOL.md 8.2, 8.3, 9.8): making one (fresh mailboxes on
 * each relay named, a one-time key, the text), for a contact (cairn_invite_create) or into a
 * group (cairn_group_invite, version 3), and accepting either (cairn_invite_accept: our own
 * mailboxes, the first message, with a join when the invite names a group). What a group
 * invite changes in the group is group_invite.c's, beneath this file.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client.h"
#include "e2e.h"
#include "group.h"
#include "invite.h"

#define INVITE_SCHEME "cairn-invite:"

int client_invite_make(struct cairn *c, const char *const *relays, size_t nrelays, const char *name,
                       const struct group_invite *grp, char **invite)
{
	*invite = NULL;
	_Static_assert(CAIRN_RELAYS_MAX == CAIRN_MAILBOXES_MAX, "one mailbox per relay");
	int rc = client_check_relays(relays, nrelays);
	if (rc != 0)
		return rc;
	if (!client_valid_name(name))
		return CAIRN_EINVAL;
	/* A contact's or a group's (one namespace, names.c): refused before any mailbox is
	 * made; client_add_contact checks again in its transaction. */
	struct contact k;
	struct name_entry taken;
	rc = client_name_lookup(c, name, &taken);
	if (rc == 0)
		return CAIRN_EEXIST;
	if (rc != CAIRN_ENOTFOUND)
		return rc;
	memset(&k, 0, sizeof(k));
	strcpy(k.name, name);
	k.state = CONTACT_INVITED;
	char *text = NULL;
	rc = 0;
	for (size_t i = 0; i < nrelays && rc == 0; i++) {
		rc = client_create_mailbox(c, relays[i], &k.mine[k.nmine]);
		if (rc == 0)
			k.mine[k.nmine++].flags = MAILBOX_INVITE;
	}
	if (rc != 0)
		goto out;
	x3dh_onetime_generate(&k.onetime, NULL);
	struct group_invite gi;
	memset(&gi, 0, sizeof(gi));
	if (grp != NULL) {
		memcpy(gi.group_id, grp->group_id, GROUP_ID_LEN);
		memcpy(gi.name, grp->name, sizeof(gi.name));
	}
	memcpy(gi.invite.identity, c->identity_pk, CAIRN_KEY_LEN);
	memcpy(gi.invite.onetime, k.onetime.pub, CAIRN_KEY_LEN);
	contact_current_mailboxes(&k, &gi.invite.mailboxes);
	uint8_t bin[INVITE_GROUP_MAX_LEN];
	size_t blen = 0;
	rc = grp != NULL ? group_invite_encode(&gi, bin, sizeof(bin), &blen)
	                 : invite_encode(&gi.invite, bin, sizeof(bin), &blen);
	sodium_memzero(&gi, sizeof(gi));
	if (rc != 0)
		goto out;
	rc = client_scheme_encode(INVITE_SCHEME, bin, blen, &text);
	sodium_memzero(bin, sizeof(bin));
	if (rc != 0)
		goto out;
	/* Stored before it is shown: an invite handed out always has its keys kept, and a
	 * group invite its group, with them. */
	rc = cstate_begin(c->st);
	if (rc == 0)
		rc = client_add_contact(c, &k, 0);
	if (rc == 0 && grp != NULL)
		rc = cstate_put(c->st, REC_GROUP_INVITE, k.id, RECORD_ID_LEN, grp->group_id,
		                GROUP_ID_LEN);
	if (rc == 0)
		rc = cstate_commit(c->st);
	else
		cstate_rollback(c->st);
	if (rc == 0) {
		*invite = text;
		text = NULL;
	}
out:
	cairn_free(text);
	if (rc != 0)
		client_drop_mailboxes(c, &k);
	contact_wipe(&k);
	return rc;
}

int cairn_invite_create(struct cairn *c, const char *const *relays, size_t nrelays,
                        const char *name, char **invite)
{
	return client_invite_make(c, relays, nrelays, name, NULL, invite);
}

/* Parses invite text: the scheme, then base64url; surrounding blanks are forgiven. A group
 * invite (version 3, 9.8) sets *GROUP and fills GI's trailer; any other only GI->invite. */
static int parse_invite_text(const char *text, struct group_invite *gi, bool *group)
{
	uint8_t bin[INVITE_GROUP_MAX_LEN];
	size_t blen = 0;
	int rc = client_scheme_decode(text, INVITE_SCHEME, bin, sizeof(bin), &blen);
	*group = rc == 0 && blen > 0 && bin[0] == INVITE_GROUP_VERSION;
	if (rc == 0)
		rc = *group ? group_invite_parse(bin, blen, gi)
		            : invite_parse(bin, blen, &gi->invite);
	if (rc != 0)
		rc = CAIRN_EINVITE;
	sodium_memzero(bin, sizeof(bin));
	return rc;
}

int cairn_invite_accept(struct cairn *c, const char *invite, const char *name,
                        const char *const *relays, size_t nrelays)
{
	if (invite != NULL && client_is_intake_text(invite))
		return client_intake_accept(c, invite, name, relays, nrelays);
	int rc = client_accept_args(c, name, relays, nrelays);
	if (rc != 0)
		return rc;
	struct group_invite gi;
	const struct invite *inv = &gi.invite;
	bool group = false;
	rc = invite == NULL ? CAIRN_EINVITE : parse_invite_text(invite, &gi, &group);
	if (rc == 0 && group)
		rc = group_invite_acceptable(c, &gi);
	if (rc != 0) {
		sodium_memzero(&gi, sizeof(gi));
		return rc;
	}
	struct contact k;
	memset(&k, 0, sizeof(k));
	struct ratchet *r = NULL;
	/* Our mailboxes: the relays asked for, or the invite's. */
	const char *ours[CAIRN_RELAYS_MAX];
	size_t nours = nrelays;
	for (size_t i = 0; i < nrelays; i++)
		ours[i] = relays[i];
	for (size_t i = 0; nrelays == 0 && i < inv->mailboxes.count; i++)
		ours[nours++] = inv->mailboxes.box[i].relay;
	if ((rc = client_accept_check(c, inv->identity, name)) != 0)
		goto out;
	memset(&k, 0, sizeof(k));
	strcpy(k.name, name);
	k.state = CONTACT_ACCEPTED;
	memcpy(k.peer_identity, inv->identity, CAIRN_KEY_LEN);
	k.peer = inv->mailboxes;
	/* Our own mailboxes for this contact come first: the first message names them. */
	if ((rc = client_accept_mailboxes(c, &k, ours, nours, false)) != 0 ||
	    (rc = client_accept_mailboxes(c, &k, ours, nours, true)) != 0)
		goto out;
	rc = x3dh_initiate(inv->identity, inv->onetime, c->identity_sk, NULL, k.prefix, &r);
	if (rc == 0)
		rc = client_keep_session(&k, r);
	uint8_t id[APPMSG_ID_LEN], join[GROUP_JOIN_LEN];
	client_random(c, id, sizeof(id));
	if (rc == 0 && (rc = cstate_begin(c->st)) == 0) {
		/* Written only if the name is still free: the check above was before the
		 * network, and another process may have taken the name meanwhile. A group
		 * invite's first message carries a join, with fresh keys kept for the welcome,
		 * instead of the hello (9.8). */
		rc = client_add_contact(c, &k, 0);
		if (rc == 0 && group)
			rc = group_join_make(c, gi.group_id, join);
		if (rc == 0)
			rc = group ? client_queue_message(c, &k, APPMSG_GROUP_JOIN, join,
			                                  sizeof(join), id, client_now_s(c))
			           : client_queue_message(c, &k, APPMSG_HELLO, NULL, 0, id,
			                                  client_now_s(c));
		sodium_memzero(join, sizeof(join));
		if (rc == 0)
			rc = cstate_commit(c->st);
		else
			cstate_rollback(c->st);
	}
	if (rc != 0) {
		client_drop_mailboxes(c, &k);
		goto out;
	}
	/* The contact exists now; the first message goes out now or with the next sync
	 * (CAIRN_ECONNECT, as documented: added, first message still queued). */
	rc = client_send_now(c, id);
out:
	ratchet_free(r);
	sodium_memzero(&gi, sizeof(gi));
	contact_wipe(&k);
	return rc;
}

int cairn_group_invite(struct cairn *c, const char *group, const char *const *relays,
                       size_t nrelays, const char *name, char **invite)
{
	if (invite != NULL)
		*invite = NULL;
	if (c == NULL || invite == NULL)
		return CAIRN_EINVAL;
	uint8_t gid[GROUP_ID_LEN];
	struct group_state *g = NULL;
	int rc = client_group_find(c, group, gid);
	if (rc == 0)
		rc = group_load(c, gid, &g);
	if (rc != 0)
		return rc;
	if (g->removed || g->roster.member[g->self].role != GROUP_ROLE_ADMIN)
		rc = CAIRN_EDENIED; /* only an admin can commit the add */
	struct group_invite gi;
	memset(&gi, 0, sizeof(gi));
	memcpy(gi.group_id, gid, GROUP_ID_LEN);
	memcpy(gi.name, g->name, sizeof(gi.name));
	/* No relay given: the invite mailbox goes on the relay of the group's log, which the
	 * admin reaches anyway. */
	const char *log_relay[1] = {g->log.relay};
	if (rc == 0)
		rc = client_invite_make(c, nrelays > 0 ? relays : log_relay,
		                        nrelays > 0 ? nrelays : 1, name, &gi, invite);
	group_free(g);
	return rc;
}
