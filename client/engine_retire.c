/* SPDX-License-Identifier: MIT */
/*
 * Retiring mailboxes (engine.h): once a receiving session's relay has delivered everything
 * waiting, the engine deletes there every retired mailbox of a contact that has moved to the
 * fresh ones (docs/PROTOCOL.md section 8.10): nothing more can arrive in it, and an invite
 * seen later then opens nothing. The DELETE goes on the session that manages our mailboxes
 * on that relay, never on a connection of its own.
 */
#include <string.h>

#include <sodium.h>

#include "engine_state.h"

void engine_retire_check(struct engine *e, struct session *s)
{
	s->retire_checked = true;
	bool queued = false;
	for (size_t i = 0; i < s->nsubs; i++) {
		struct sub *sub = &s->subs[i];
		struct contact k;
		if (sub->rid == 0 || sub->delete_rid != 0 ||
		    client_load_contact_id(e->c, sub->contact, &k) != 0)
			continue;
		int at = contact_find_mine(&k, sub->recipient_id);
		if (at >= 0 && (k.mine[at].flags & MAILBOX_RETIRED) && k.move == MOVE_CONFIRMED) {
			struct cairn_msg del = {.type = CAIRN_CMD_DELETE,
			                        .request_id = cnet_next_id(s->net),
			                        .recipient_id = sub->recipient_id};
			if (cnet_queue(s->net, &del) == 0) {
				sub->delete_rid = del.request_id;
				s->deletes++;
				queued = true;
			}
		}
		contact_wipe(&k);
	}
	int rc;
	if (queued && (rc = cnet_flush(s->net)) != 0)
		session_failed(e, s, client_mono_ms(e->c), rc);
}

void engine_mailbox_gone(struct engine *e, struct session *s, size_t i)
{
	struct cairn *c = e->c;
	struct contact k;
	if (cstate_begin(c->st) != 0)
		return;
	int rc = client_load_contact_id(c, s->subs[i].contact, &k);
	if (rc == 0) {
		int at = contact_find_mine(&k, s->subs[i].recipient_id);
		if (at >= 0) {
			memmove(&k.mine[at], &k.mine[at + 1],
			        (size_t)(k.nmine - at - 1) * sizeof(k.mine[0]));
			k.nmine--;
			sodium_memzero(&k.mine[k.nmine], sizeof(k.mine[0]));
		}
		bool retired = false;
		for (size_t j = 0; j < k.nmine; j++)
			retired |= (k.mine[j].flags & MAILBOX_RETIRED) != 0;
		if (!retired && k.move == MOVE_CONFIRMED)
			k.move = MOVE_NONE;
		rc = client_store_contact(c, &k);
	}
	contact_wipe(&k);
	if (rc == 0 && cstate_commit(c->st) == 0) {
		s->subs[i] = s->subs[--s->nsubs];
	} else {
		cstate_rollback(c->st);
	}
}
