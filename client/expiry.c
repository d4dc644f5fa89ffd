/* SPDX-License-Identifier: MIT */
/*
 * What storing a message does for disappearing messages (PROTOCOL.md 8.11), below the message
 * store (contacts.c) that calls it: a timer message takes effect in the order of 8.11, and a
 * message stored under a timer gets its entry in the expiry index (REC_EXPIRY). The sweep
 * that reads the index, and the timer's API, are above the store (timer.c, timer_api.c).
 */
#include <string.h>

#include "client.h"

bool client_timer_take(struct conversation *v, const struct stored_message *m)
{
	uint32_t seconds;
	if (m->kind != APPMSG_TIMER || appmsg_timer_parse(m->text, m->len, &seconds) != 0 ||
	    !appmsg_timer_later((uint64_t)m->sent_at, m->id, v->timer_sent_at, v->timer_id))
		return false;
	v->timer = seconds;
	v->timer_sent_at = (uint64_t)m->sent_at;
	memcpy(v->timer_id, m->id, APPMSG_ID_LEN);
	return true;
}

int client_expiry_note(struct cairn *c, const uint8_t conv[RECORD_ID_LEN],
                       const uint8_t id[APPMSG_ID_LEN], int64_t expires_at)
{
	struct expiry_entry x = {.expires_at = expires_at};
	memcpy(x.conv, conv, RECORD_ID_LEN);
	memcpy(x.id, id, APPMSG_ID_LEN);
	uint8_t key[RECORD_KEY_MAX], v[EXPIRY_ENTRY_LEN];
	size_t klen = message_key(key, conv, id);
	expiry_entry_encode(&x, v);
	int rc = cstate_put(c->st, REC_EXPIRY, key, klen, v, sizeof(v));
	if (rc == 0 && (c->expiry_next == 0 || expires_at < c->expiry_next))
		c->expiry_next = expires_at;
	return rc;
}
