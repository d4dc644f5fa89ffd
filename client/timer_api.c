/* SPDX-License-Identifier: MIT */
/*
 * The disappearing-message timer's API (include/cairn/cairn.h: cairn_timer_queue,
 * cairn_timer_set, cairn_timer_get, PROTOCOL.md 8.11): a change is a timer message queued
 * like a text (cairn.c), and applied as ours when it is stored (expiry.c). Above both the
 * message store and the sending path, so that neither needs to call up into it.
 */
#include <string.h>

#include "client.h"
#include "group.h"

/* The conversation of contact or group NAME into *V (conversation_wipe). */
static int named_conversation(struct cairn *c, const char *name, struct conversation *v)
{
	uint8_t conv[RECORD_ID_LEN];
	struct contact k;
	int rc = client_load_contact(c, name, &k);
	if (rc == 0)
		memcpy(conv, k.conv, RECORD_ID_LEN);
	contact_wipe(&k);
	if (rc == CAIRN_ENOTFOUND) {
		uint8_t gid[GROUP_ID_LEN];
		struct group_state *g = NULL;
		if ((rc = client_group_find(c, name, gid)) == 0 &&
		    (rc = group_load(c, gid, &g)) == 0)
			memcpy(conv, g->conv, RECORD_ID_LEN);
		group_free(g);
	}
	return rc == 0 ? client_load_conversation(c, conv, v) : rc;
}

/*
 * Queues a timer message of SECONDS for contact or group NAME (kept and applied as ours); ID
 * receives its id. Its sent_at is our clock, or one second after the change we hold when that
 * is not earlier (two changes within a second, or a clock set back): the order of 8.11 would
 * otherwise let a random id put our older change after our newer one.
 */
static int timer_queue(struct cairn *c, const char *name, uint32_t seconds,
                       uint8_t id[APPMSG_ID_LEN])
{
	uint8_t data[APPMSG_TIMER_DATA_LEN];
	struct conversation v;
	int rc = appmsg_timer_encode(seconds, data);
	if (rc != 0 || (rc = named_conversation(c, name, &v)) != 0)
		return rc;
	int64_t at = client_now_s(c);
	if (v.timer_sent_at >= (uint64_t)at && v.timer_sent_at < INT64_MAX)
		at = (int64_t)v.timer_sent_at + 1;
	conversation_wipe(&v);
	return client_queue_appmsg(c, name, APPMSG_TIMER, data, sizeof(data), at, id);
}

int cairn_timer_queue(struct cairn *c, const char *name, uint32_t seconds)
{
	uint8_t id[APPMSG_ID_LEN];
	if (c == NULL || name == NULL)
		return CAIRN_EINVAL;
	return timer_queue(c, name, seconds, id);
}

int cairn_timer_set(struct cairn *c, const char *name, uint32_t seconds)
{
	if (c == NULL || name == NULL)
		return CAIRN_EINVAL;
	if (c->engine != NULL)
		return CAIRN_ESTATE; /* the engine owns the relays: cairn_timer_queue */
	uint8_t id[APPMSG_ID_LEN];
	int rc = timer_queue(c, name, seconds, id);
	return rc != 0 ? rc : client_send_queued(c, name, id);
}

int cairn_timer_get(struct cairn *c, const char *name, uint32_t *seconds)
{
	if (c == NULL || name == NULL || seconds == NULL)
		return CAIRN_EINVAL;
	*seconds = 0;
	struct conversation v;
	int rc = named_conversation(c, name, &v);
	if (rc == 0) {
		*seconds = v.timer;
		conversation_wipe(&v);
	}
	return rc;
}
