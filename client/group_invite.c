/* SPDX-License-Identifier: MIT */
/*
 * The group invite (PROTOCOL.md 9.8, last bullet): an invite of 8.2 with version 3 and the
 * group's id and name, for someone who is not a contact yet.
 *
 * The inviter makes it as any invite (cairn_group_invite and client_invite_make in invites.c:
 * invite mailboxes, a one-time key, a contact waiting for its first message) and keeps the
 * group's id beside that contact (REC_GROUP_INVITE). When the first message opens,
 * group_invite_opened turns the kept id into an offer to the identity that opened it
 * (REC_GROUP_OFFER, as cairn_group_add writes), so the join that first message carries is
 * committed by the one path every join takes (client_group_appmsg in groups.c), and the
 * welcome goes over the new session. Single use: the one-time key opens one first message, and
 * the kept id goes with it.
 *
 * The accepter (cairn_invite_accept in invites.c) checks here that it is not in the group
 * already, then sends a join (group_join_make, as for an offer) in place of the hello.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client.h"
#include "group.h"
#include "invite.h"

int group_invite_acceptable(struct cairn *c, const struct group_invite *gi)
{
	if (!client_valid_name(gi->name))
		return CAIRN_EINVITE; /* a name of 0 bytes: nothing to call the group */
	/* A name taken here is no obstacle: the welcome names the group apart (rename.c). In
	 * the group already (an offer came first, say): nothing to join. */
	struct group_state *g = NULL;
	int rc = group_load(c, gi->group_id, &g);
	bool member = rc == 0 && !g->removed;
	group_free(g);
	if (rc != 0 && rc != CAIRN_ENOTFOUND)
		return rc;
	return member ? CAIRN_EEXIST : 0;
}

int group_invite_opened(struct cairn *c, const struct contact *k)
{
	uint8_t *v = NULL;
	size_t vlen = 0;
	int rc = cstate_get(c->st, REC_GROUP_INVITE, k->id, RECORD_ID_LEN, &v, &vlen);
	if (rc == CAIRN_ENOTFOUND)
		return 0; /* a contact invite */
	if (rc != 0)
		return rc;
	if (vlen == GROUP_ID_LEN)
		rc = group_offer_note(c, v, k->peer_identity);
	cstate_free_value(v, vlen);
	if (rc == 0)
		rc = cstate_del(c->st, REC_GROUP_INVITE, k->id, RECORD_ID_LEN);
	return rc;
}
