/* SPDX-License-Identifier: MIT */
/*
 * Sealing a message for a contact into the outbox (client.h): the message is cut into parts
 * that fit an envelope, each part sealed with the contact's ratchet (a first message carries
 * the X3DH prefix and our reply: type 1 after an invite, type 3 through an intake address),
 * every envelope stored as an outbox entry, and the stepped ratchet stored with them, all
 * inside the caller's transaction.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client.h"
#include "e2e.h"

/* The part size a contact's messages can carry: first messages carry the X3DH prefix and our
 * reply too. */
static size_t part_capacity(const struct contact *k, size_t reply_len)
{
	if (k->state == CONTACT_ACCEPTED)
		return CAIRN_ENVELOPE_MAX - E2E_FIRST_OVERHEAD - 2 - 2 - reply_len -
		       APPMSG_HEADER_LEN;
	return APPMSG_PART_MAX;
}

/* Our reply for first messages (client.h). */
int client_build_reply(const struct contact *k, uint8_t *out, size_t cap, size_t *len)
{
	struct mailbox_list l;
	contact_current_mailboxes(k, &l);
	int rc = appmsg_reply_encode(&l, out, cap, len);
	sodium_memzero(&l, sizeof(l));
	return rc;
}

/* Seals and queues (client.h). */
int client_queue_message(struct cairn *c, struct contact *k, uint8_t kind, const uint8_t *text,
                         size_t len, const uint8_t id[APPMSG_ID_LEN], int64_t sent_at)
{
	if (k->state == CONTACT_INVITED || k->ratchet == NULL)
		return CAIRN_ESTATE; /* no session until their first message arrives */
	struct ratchet *r = NULL;
	int rc = ratchet_deserialize(&r, k->ratchet, k->ratchet_len);
	if (rc != 0)
		return rc == CAIRN_ENOMEM ? rc : CAIRN_ECORRUPT;
	uint8_t reply[APPMSG_REPLY_MAX];
	size_t reply_len = 0;
	/* Per call, never static: two struct cairn on two threads must not share them. */
	uint8_t *plain = NULL, *env = NULL;
	if (k->state == CONTACT_ACCEPTED &&
	    (rc = client_build_reply(k, reply, sizeof(reply), &reply_len)))
		goto out;
	size_t cap = part_capacity(k, reply_len);
	size_t parts = len == 0 ? 1 : (len + cap - 1) / cap;
	if (parts > APPMSG_PARTS_MAX) {
		rc = CAIRN_ETOOBIG;
		goto out;
	}
	if ((plain = malloc(2 * (size_t)CAIRN_ENVELOPE_MAX)) == NULL) {
		rc = CAIRN_ENOMEM;
		goto out;
	}
	env = plain + CAIRN_ENVELOPE_MAX;
	for (size_t i = 0; i < parts && rc == 0; i++) {
		size_t off = i * cap, n = len - off < cap ? len - off : cap;
		struct appmsg am = {.kind = kind,
		                    .sent_at = (uint64_t)sent_at,
		                    .part_index = (uint16_t)i,
		                    .part_count = (uint16_t)parts,
		                    .data = text ? text + off : NULL,
		                    .data_len = len ? n : 0};
		memcpy(am.id, id, APPMSG_ID_LEN);
		size_t plen = 0, elen = 0;
		rc = appmsg_encode(&am, plain, CAIRN_ENVELOPE_MAX, &plen);
		/* Through an intake address, type 3 until the owner moves us (10.4). */
		if (rc == 0 && k->state == CONTACT_ACCEPTED && contact_from_intake(k))
			rc = e2e_seal_intake(r, k->prefix, reply, reply_len, plain, plen, env,
			                     CAIRN_ENVELOPE_MAX, &elen);
		else if (rc == 0 && k->state == CONTACT_ACCEPTED)
			rc = e2e_seal_first(r, k->prefix, reply, reply_len, plain, plen, env,
			                    CAIRN_ENVELOPE_MAX, &elen);
		else if (rc == 0)
			rc = e2e_seal(r, plain, plen, env, CAIRN_ENVELOPE_MAX, &elen);
		if (rc != 0)
			break;
		struct outbox_entry e = {.kind = kind, .envelope = env, .envelope_len = elen};
		memcpy(e.conv, k->conv, RECORD_ID_LEN);
		memcpy(e.contact, k->id, RECORD_ID_LEN);
		memcpy(e.message_id, id, APPMSG_ID_LEN);
		client_random(c, e.outbox_id, sizeof(e.outbox_id));
		uint8_t *v = NULL;
		size_t vlen = 0;
		rc = outbox_encode(&e, &v, &vlen);
		if (rc == 0)
			rc = cstate_put(c->st, REC_OUTBOX, e.outbox_id, sizeof(e.outbox_id), v,
			                vlen);
		free(v);
	}
	if (rc != 0)
		goto out;
	/* The ratchet moved on: store it with the envelopes it sealed. */
	size_t slen = ratchet_serialized_len(r);
	uint8_t *s = malloc(slen);
	if (s == NULL) {
		rc = CAIRN_ENOMEM;
		goto out;
	}
	rc = ratchet_serialize(r, s, slen, &slen);
	if (rc == 0) {
		sodium_memzero(k->ratchet, k->ratchet_len);
		free(k->ratchet);
		k->ratchet = s;
		k->ratchet_len = slen;
		rc = client_store_contact(c, k);
	} else {
		free(s);
	}
out:
	if (plain != NULL) {
		sodium_memzero(plain, CAIRN_ENVELOPE_MAX); /* the envelope is ciphertext */
		free(plain);
	}
	sodium_memzero(reply, sizeof(reply));
	ratchet_free(r);
	return rc;
}
