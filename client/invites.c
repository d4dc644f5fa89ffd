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

/*
 * Checks a list of relay addresses given for our own mailboxes: 1..CAIRN_RELAYS_MAX of them,
 * each an address (CAIRN_EADDRESS), no relay twice (CAIRN_EINVAL). The same relay under two
 * host names is one relay: the key decides.
 */
int client_check_relays(const char *const *relays, size_t n)
{
	struct cairn_address a[CAIRN_RELAYS_MAX];
	if (relays == NULL || n == 0 || n > CAIRN_RELAYS_MAX)
		return CAIRN_EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (relays[i] == NULL || cairn_address_parse(relays[i], &a[i]) != 0)
			return CAIRN_EADDRESS;
		for (size_t j = 0; j < i; j++)
			if (memcmp(a[i].key, a[j].key, CAIRN_KEY_LEN) == 0)
				return CAIRN_EINVAL;
	}
	return 0;
}

/* Deletes the mailboxes of K again, best effort: made for a contact that is not kept. */
void client_drop_mailboxes(struct cairn *c, const struct contact *k)
{
	for (size_t i = 0; i < k->nmine; i++) {
		int rc = client_delete_mailbox(c, &k->mine[i]);
		(void)rc; /* one left behind sits empty on its relay */
	}
}

int client_accept_args(struct cairn *c, const char *name, const char *const *relays, size_t nrelays)
{
	if (c->engine != NULL)
		return CAIRN_ESTATE; /* its first message would wait for the engine's relays */
	if (!client_valid_name(name))
		return CAIRN_EINVAL;
	return nrelays > 0 ? client_check_relays(relays, nrelays) : 0;
}

int client_accept_check(struct cairn *c, const uint8_t identity[CAIRN_KEY_LEN], const char *name)
{
	if (sodium_memcmp(identity, c->identity_pk, CAIRN_KEY_LEN) == 0)
		return CAIRN_EINVITE; /* our own */
	struct name_entry taken;
	int rc = client_name_lookup(c, name, &taken); /* a contact's or a group's */
	if (rc != CAIRN_ENOTFOUND)
		return rc == 0 ? CAIRN_EEXIST : rc;
	return 0;
}

int client_accept_mailboxes(struct cairn *c, struct contact *k, const char *const *ours,
                            size_t nours, bool create)
{
	if (!create) {
		/* Every first message names all our mailboxes: they must fit its reply. */
		uint8_t reply[APPMSG_REPLY_MAX];
		size_t reply_len = 0;
		for (size_t i = 0; i < nours; i++)
			strcpy(k->mine[i].relay, ours[i]);
		k->nmine = (uint8_t)nours;
		int rc = client_build_reply(k, reply, sizeof(reply), &reply_len);
		memset(k->mine, 0, sizeof(k->mine));
		k->nmine = 0;
		sodium_memzero(reply, sizeof(reply));
		return rc;
	}
	/* A relay that does not answer is left out; one that does is enough. */
	int first_rc = 0;
	for (size_t i = 0; i < nours; i++) {
		int one = client_create_mailbox(c, ours[i], &k->mine[k->nmine]);
		if (one == 0)
			k->nmine++;
		else if (first_rc == 0)
			first_rc = one;
	}
	return k->nmine > 0 ? 0 : first_rc;
}

int client_keep_session(struct contact *k, const struct ratchet *r)
{
	k->ratchet_len = ratchet_serialized_len(r);
	k->ratchet = malloc(k->ratchet_len);
	return k->ratchet ? ratchet_serialize(r, k->ratchet, k->ratchet_len, &k->ratchet_len)
	                  : CAIRN_ENOMEM;
}

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
	size_t tlen = strlen(INVITE_SCHEME) +
	              sodium_base64_ENCODED_LEN(blen, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	text = malloc(tlen);
	if (text == NULL) {
		rc = CAIRN_ENOMEM;
		goto out;
	}
	strcpy(text, INVITE_SCHEME);
	sodium_bin2base64(text + strlen(INVITE_SCHEME), tlen - strlen(INVITE_SCHEME), bin, blen,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(bin, sizeof(bin));
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

int client_scheme_decode(const char *text, const char *scheme, uint8_t *bin, size_t cap,
                         size_t *len)
{
	while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')
		text++;
	size_t n = strlen(text);
	while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\n' || text[n - 1] == '\r' ||
	                 text[n - 1] == '\t'))
		n--;
	size_t sl = strlen(scheme);
	*len = 0;
	if (n <= sl || strncmp(text, scheme, sl) != 0)
		return CAIRN_EINVITE;
	const char *end = NULL;
	int rc = sodium_base642bin(bin, cap, text + sl, n - sl, NULL, len, &end,
	                           sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return rc == 0 && end == text + n ? 0 : CAIRN_EINVITE;
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
