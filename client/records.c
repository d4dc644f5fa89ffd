/* SPDX-License-Identifier: MIT */
/*
 * Byte layouts of the client's records. Each starts with a version byte; fields follow in a
 * fixed order, fixed-size ones raw and variable ones behind a big-endian u32 length. The reader
 * checks every length against what remains and rejects trailing bytes.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "records.h"
#include "records_io.h"
#include "records_v1.h"
#include "work.h"

/* Contacts and outbox entries changed layout with several relays per contact (version 2);
 * contacts, messages and outbox entries again with ids (contacts 3, messages 2, outbox 3).
 * The versions before ids are read only by the upgrade (records_v1.h). */
#define MESSAGE_RECORD_VERSION      2
#define CONTACT_RECORD_VERSION      3
#define OUTBOX_RECORD_VERSION       3
#define CONVERSATION_RECORD_VERSION 1
#define NAME_ENTRY_VERSION          1
#define GROUP_OUT_RECORD_VERSION    1
#define EXPIRY_ENTRY_VERSION        1

/* ---- contacts ------------------------------------------------------------------------ */

int contact_encode(const struct contact *c, uint8_t **out, size_t *len)
{
	struct writer w = {0};
	if (c->nmine > CONTACT_MINE_MAX || c->peer.count > CAIRN_MAILBOXES_MAX)
		return CAIRN_EINVAL;
	w_u8(&w, CONTACT_RECORD_VERSION);
	w_bytes(&w, c->id, RECORD_ID_LEN);
	w_bytes(&w, c->conv, RECORD_ID_LEN);
	w_str(&w, c->name, CAIRN_NAME_MAX);
	w_u8(&w, c->state);
	w_bytes(&w, c->peer_identity, sizeof(c->peer_identity));
	w_u8(&w, c->nmine);
	for (size_t i = 0; i < c->nmine; i++) {
		const struct my_mailbox *m = &c->mine[i];
		w_str(&w, m->relay, CAIRN_ADDRESS_MAX);
		w_bytes(&w, m->recipient_id, CAIRN_MAILBOX_ID_LEN);
		w_bytes(&w, m->sender_id, CAIRN_MAILBOX_ID_LEN);
		w_bytes(&w, m->sign_sk, sizeof(m->sign_sk));
		w_bytes(&w, m->credential, CAIRN_CREDENTIAL_LEN);
		w_u8(&w, m->flags);
	}
	w_u8(&w, c->peer.count);
	for (size_t i = 0; i < c->peer.count; i++) {
		const struct mailbox_addr *m = &c->peer.box[i];
		w_str(&w, m->relay, CAIRN_ADDRESS_MAX);
		w_bytes(&w, m->sender_id, CAIRN_MAILBOX_ID_LEN);
		w_bytes(&w, m->credential, CAIRN_CREDENTIAL_LEN);
	}
	w_u8(&w, c->move);
	w_u64(&w, c->my_serial);
	w_u64(&w, c->peer_serial);
	w_bytes(&w, c->onetime.pub, CAIRN_KEY_LEN);
	w_bytes(&w, c->onetime.priv, CAIRN_KEY_LEN);
	w_u8(&w, c->onetime.used ? 1 : 0);
	w_bytes(&w, c->prefix, X3DH_PREFIX_LEN);
	w_var(&w, c->ratchet, c->ratchet ? c->ratchet_len : 0);
	/* The intake trailer (a record written before intake addresses ends before it). */
	w_bytes(&w, c->peer_work_bits, sizeof(c->peer_work_bits));
	w_bytes(&w, c->peer_log_id, sizeof(c->peer_log_id));
	w_bytes(&w, c->intake, sizeof(c->intake));
	w_bytes(&w, c->ek, sizeof(c->ek));
	return w_finish(&w, out, len);
}

/*
 * Parses a contact record of version VERSION: CONTACT_RECORD_VERSION, or 2 (before ids: no
 * ids, and the unread count at the end, returned in *UNREAD).
 */
static int contact_parse_version(const uint8_t *in, size_t len, uint8_t version, struct contact *c,
                                 uint32_t *unread_out)
{
	struct reader r = {in, len, 0};
	memset(c, 0, sizeof(*c));
	if (r_u8(&r) != version)
		return CAIRN_ECORRUPT;
	if (version == CONTACT_RECORD_VERSION) {
		r_bytes(&r, c->id, RECORD_ID_LEN);
		r_bytes(&r, c->conv, RECORD_ID_LEN);
	}
	r_str(&r, c->name, CAIRN_NAME_MAX);
	c->state = r_u8(&r);
	r_bytes(&r, c->peer_identity, sizeof(c->peer_identity));
	uint8_t nmine = r_u8(&r), flags_bad = 0;
	if (nmine > CONTACT_MINE_MAX)
		r.err = CAIRN_ECORRUPT;
	for (size_t i = 0; r.err == 0 && i < nmine; i++) {
		struct my_mailbox *m = &c->mine[i];
		r_str(&r, m->relay, CAIRN_ADDRESS_MAX);
		r_bytes(&r, m->recipient_id, CAIRN_MAILBOX_ID_LEN);
		r_bytes(&r, m->sender_id, CAIRN_MAILBOX_ID_LEN);
		r_bytes(&r, m->sign_sk, sizeof(m->sign_sk));
		r_bytes(&r, m->credential, CAIRN_CREDENTIAL_LEN);
		m->flags = r_u8(&r);
		flags_bad |=
		    m->flags & (uint8_t) ~(MAILBOX_INVITE | MAILBOX_RETIRED | MAILBOX_INTAKE);
	}
	c->nmine = nmine;
	uint8_t npeer = r_u8(&r);
	if (npeer > CAIRN_MAILBOXES_MAX)
		r.err = CAIRN_ECORRUPT;
	for (size_t i = 0; r.err == 0 && i < npeer; i++) {
		struct mailbox_addr *m = &c->peer.box[i];
		r_str(&r, m->relay, CAIRN_ADDRESS_MAX);
		r_bytes(&r, m->sender_id, CAIRN_MAILBOX_ID_LEN);
		r_bytes(&r, m->credential, CAIRN_CREDENTIAL_LEN);
	}
	c->peer.count = npeer;
	c->move = r_u8(&r);
	uint64_t my_serial = r_u64(&r), peer_serial = r_u64(&r);
	r_bytes(&r, c->onetime.pub, CAIRN_KEY_LEN);
	r_bytes(&r, c->onetime.priv, CAIRN_KEY_LEN);
	uint8_t used = r_u8(&r);
	c->onetime.used = used == 1;
	r_bytes(&r, c->prefix, X3DH_PREFIX_LEN);
	size_t rlen;
	const uint8_t *rat = r_var(&r, RATCHET_STATE_MAX, &rlen);
	uint64_t unread = version == CONTACT_V1_RECORD_VERSION ? r_u64(&r) : 0;
	if (version == CONTACT_RECORD_VERSION && r.err == 0 && r.left > 0) {
		r_bytes(&r, c->peer_work_bits, sizeof(c->peer_work_bits));
		r_bytes(&r, c->peer_log_id, sizeof(c->peer_log_id));
		r_bytes(&r, c->intake, sizeof(c->intake));
		r_bytes(&r, c->ek, sizeof(c->ek));
	}
	bool bits_bad = false;
	for (size_t i = 0; i < CAIRN_MAILBOXES_MAX; i++)
		bits_bad |= c->peer_work_bits[i] > WORK_BITS_MAX;
	int rc = r_finish(&r);
	/* Only a request has no name yet. */
	bool nameless = c->name[0] == '\0' && c->state != CONTACT_REQUEST;
	if (rc == 0 &&
	    (c->state < CONTACT_INVITED || c->state > CONTACT_REQUEST || nameless || bits_bad ||
	     unread > UINT32_MAX || used > 1 || flags_bad || c->move > MOVE_CONFIRMED ||
	     my_serial > UINT32_MAX || peer_serial > UINT32_MAX))
		rc = CAIRN_ECORRUPT;
	if (rc == 0 && rlen > 0) {
		c->ratchet = malloc(rlen);
		if (c->ratchet == NULL)
			rc = CAIRN_ENOMEM;
		else
			memcpy(c->ratchet, rat, rlen);
		c->ratchet_len = rlen;
	}
	if (unread_out != NULL)
		*unread_out = (uint32_t)unread;
	c->my_serial = (uint32_t)my_serial;
	c->peer_serial = (uint32_t)peer_serial;
	if (rc != 0)
		contact_wipe(c);
	return rc;
}

int contact_parse(const uint8_t *in, size_t len, struct contact *c)
{
	return contact_parse_version(in, len, CONTACT_RECORD_VERSION, c, NULL);
}

int contact_v1_parse(const uint8_t *in, size_t len, struct contact *c, uint32_t *unread)
{
	return contact_parse_version(in, len, CONTACT_V1_RECORD_VERSION, c, unread);
}

void contact_wipe(struct contact *c)
{
	if (c->ratchet != NULL) {
		sodium_memzero(c->ratchet, c->ratchet_len);
		free(c->ratchet);
	}
	sodium_memzero(c, sizeof(*c));
}

/* ---- messages and the outbox --------------------------------------------------------- */

int message_encode(const struct stored_message *m, uint8_t **out, size_t *len)
{
	struct writer w = {0};
	w_u8(&w, MESSAGE_RECORD_VERSION);
	w_bytes(&w, m->conv, RECORD_ID_LEN);
	w_bytes(&w, m->sender, RECORD_ID_LEN);
	w_u8(&w, m->outgoing);
	w_u64(&w, (uint64_t)m->sent_at);
	w_u64(&w, (uint64_t)m->received_at);
	w_bytes(&w, m->id, APPMSG_ID_LEN);
	w_var(&w, m->text, m->len);
	/* The timer trailer. */
	w_u8(&w, m->kind == 0 ? APPMSG_TEXT : m->kind);
	w_u64(&w, (uint64_t)m->expires_at);
	return w_finish(&w, out, len);
}

int message_parse(const uint8_t *in, size_t len, struct stored_message *m)
{
	struct reader r = {in, len, 0};
	memset(m, 0, sizeof(*m));
	if (r_u8(&r) != MESSAGE_RECORD_VERSION)
		return CAIRN_ECORRUPT;
	r_bytes(&r, m->conv, RECORD_ID_LEN);
	r_bytes(&r, m->sender, RECORD_ID_LEN);
	m->outgoing = r_u8(&r);
	m->sent_at = (int64_t)r_u64(&r);
	m->received_at = (int64_t)r_u64(&r);
	r_bytes(&r, m->id, APPMSG_ID_LEN);
	m->text = r_var(&r, CAIRN_MESSAGE_MAX, &m->len);
	m->kind = APPMSG_TEXT;
	uint64_t expires = 0;
	if (r.err == 0 && r.left > 0) { /* the timer trailer */
		m->kind = r_u8(&r);
		expires = r_u64(&r);
	}
	int rc = r_finish(&r);
	if (rc == 0 && (m->outgoing > 1 || (m->kind != APPMSG_TEXT && m->kind != APPMSG_TIMER) ||
	                expires > INT64_MAX))
		rc = CAIRN_ECORRUPT;
	m->expires_at = (int64_t)expires;
	return rc;
}

int outbox_encode(const struct outbox_entry *e, uint8_t **out, size_t *len)
{
	struct writer w = {0};
	w_u8(&w, OUTBOX_RECORD_VERSION);
	w_bytes(&w, e->conv, RECORD_ID_LEN);
	w_bytes(&w, e->contact, RECORD_ID_LEN);
	w_bytes(&w, e->message_id, APPMSG_ID_LEN);
	w_bytes(&w, e->outbox_id, sizeof(e->outbox_id));
	w_u8(&w, e->kind);
	w_var(&w, e->envelope, e->envelope_len);
	return w_finish(&w, out, len);
}

int outbox_parse(const uint8_t *in, size_t len, struct outbox_entry *e)
{
	struct reader r = {in, len, 0};
	memset(e, 0, sizeof(*e));
	if (r_u8(&r) != OUTBOX_RECORD_VERSION)
		return CAIRN_ECORRUPT;
	r_bytes(&r, e->conv, RECORD_ID_LEN);
	r_bytes(&r, e->contact, RECORD_ID_LEN);
	r_bytes(&r, e->message_id, APPMSG_ID_LEN);
	r_bytes(&r, e->outbox_id, sizeof(e->outbox_id));
	e->kind = r_u8(&r);
	e->envelope = r_var(&r, CAIRN_ENVELOPE_MAX, &e->envelope_len);
	return r_finish(&r);
}

/* ---- the group outbox ----------------------------------------------------------------- */

int group_out_encode(const struct group_out_item *g, uint8_t **out, size_t *len)
{
	struct writer w = {0};
	w_u8(&w, GROUP_OUT_RECORD_VERSION);
	w_bytes(&w, g->out_id, sizeof(g->out_id));
	w_u8(&w, g->op);
	w_str(&w, g->log.relay, CAIRN_ADDRESS_MAX);
	w_bytes(&w, g->log.log_id, CAIRN_LOG_ID_LEN);
	w_bytes(&w, g->log.credential, CAIRN_CREDENTIAL_LEN);
	w_bytes(&w, g->digest_a, CAIRN_CREDENTIAL_LEN);
	w_bytes(&w, g->digest_b, CAIRN_CREDENTIAL_LEN);
	w_var(&w, g->entry, g->op == GROUP_OUT_APPEND ? g->len : 0);
	return w_finish(&w, out, len);
}

int group_out_parse(const uint8_t *in, size_t len, struct group_out_item *g)
{
	struct reader r = {in, len, 0};
	memset(g, 0, sizeof(*g));
	if (r_u8(&r) != GROUP_OUT_RECORD_VERSION)
		return CAIRN_ECORRUPT;
	r_bytes(&r, g->out_id, sizeof(g->out_id));
	g->op = r_u8(&r);
	r_str(&r, g->log.relay, CAIRN_ADDRESS_MAX);
	r_bytes(&r, g->log.log_id, CAIRN_LOG_ID_LEN);
	r_bytes(&r, g->log.credential, CAIRN_CREDENTIAL_LEN);
	r_bytes(&r, g->digest_a, CAIRN_CREDENTIAL_LEN);
	r_bytes(&r, g->digest_b, CAIRN_CREDENTIAL_LEN);
	g->entry = r_var(&r, CAIRN_LOG_ENTRY_MAX, &g->len);
	int rc = r_finish(&r);
	if (rc != 0)
		return rc;
	if (g->op < GROUP_OUT_CREATE || g->op > GROUP_OUT_DELETE || g->log.relay[0] == '\0' ||
	    (g->op == GROUP_OUT_APPEND) != (g->len > 0))
		return CAIRN_ECORRUPT;
	if (g->len == 0)
		g->entry = NULL;
	return 0;
}

size_t message_key(uint8_t *out, const uint8_t conv[static RECORD_ID_LEN],
                   const uint8_t id[static APPMSG_ID_LEN])
{
	memcpy(out, conv, RECORD_ID_LEN);
	memcpy(out + RECORD_ID_LEN, id, APPMSG_ID_LEN);
	return RECORD_ID_LEN + APPMSG_ID_LEN;
}

size_t part_key(uint8_t *out, const uint8_t conv[static RECORD_ID_LEN],
                const uint8_t id[static APPMSG_ID_LEN], uint16_t index)
{
	size_t n = message_key(out, conv, id);
	out[n] = (uint8_t)(index >> 8);
	out[n + 1] = (uint8_t)index;
	return n + 2;
}

/* ---- conversations and the name index ------------------------------------------------ */

int conversation_encode(const struct conversation *v, uint8_t **out, size_t *len)
{
	struct writer w = {0};
	if (v->nmembers > CONV_MEMBERS_MAX || (v->nmembers > 0 && v->members == NULL))
		return CAIRN_EINVAL;
	w_u8(&w, CONVERSATION_RECORD_VERSION);
	w_bytes(&w, v->id, RECORD_ID_LEN);
	w_u8(&w, v->kind);
	w_str(&w, v->label, CAIRN_NAME_MAX);
	w_u64(&w, v->unread);
	w_var(&w, v->members, (size_t)v->nmembers * RECORD_ID_LEN);
	/* The timer trailer. */
	w_u64(&w, v->timer);
	w_u64(&w, v->timer_sent_at);
	w_bytes(&w, v->timer_id, APPMSG_ID_LEN);
	return w_finish(&w, out, len);
}

int conversation_parse(const uint8_t *in, size_t len, struct conversation *v)
{
	struct reader r = {in, len, 0};
	memset(v, 0, sizeof(*v));
	if (r_u8(&r) != CONVERSATION_RECORD_VERSION)
		return CAIRN_ECORRUPT;
	r_bytes(&r, v->id, RECORD_ID_LEN);
	v->kind = r_u8(&r);
	r_str(&r, v->label, CAIRN_NAME_MAX);
	uint64_t unread = r_u64(&r);
	size_t mlen;
	const uint8_t *m = r_var(&r, (size_t)CONV_MEMBERS_MAX * RECORD_ID_LEN, &mlen);
	uint64_t timer = 0;
	if (r.err == 0 && r.left > 0) { /* the timer trailer */
		timer = r_u64(&r);
		v->timer_sent_at = r_u64(&r);
		r_bytes(&r, v->timer_id, APPMSG_ID_LEN);
	}
	int rc = r_finish(&r);
	if (rc == 0 && (unread > UINT32_MAX || timer > CAIRN_TIMER_MAX_S || mlen % RECORD_ID_LEN != 0 ||
	                (v->kind == CONV_DIRECT && mlen != RECORD_ID_LEN) ||
	                (v->kind != CONV_DIRECT && v->kind != CONV_GROUP)))
		rc = CAIRN_ECORRUPT;
	if (rc == 0 && mlen > 0) {
		v->members = malloc(mlen);
		if (v->members == NULL)
			rc = CAIRN_ENOMEM;
		else
			memcpy(v->members, m, mlen);
	}
	v->unread = (uint32_t)unread;
	v->timer = (uint32_t)timer;
	v->nmembers = (uint32_t)(mlen / RECORD_ID_LEN);
	if (rc != 0)
		conversation_wipe(v);
	return rc;
}

void conversation_wipe(struct conversation *v)
{
	free(v->members);
	sodium_memzero(v, sizeof(*v));
}

void name_entry_encode(const struct name_entry *n, uint8_t out[static NAME_ENTRY_LEN])
{
	out[0] = NAME_ENTRY_VERSION;
	out[1] = n->kind;
	memcpy(out + 2, n->id, RECORD_ID_LEN);
}

int name_entry_parse(const uint8_t *in, size_t len, struct name_entry *n)
{
	memset(n, 0, sizeof(*n));
	if (len != NAME_ENTRY_LEN || in[0] != NAME_ENTRY_VERSION ||
	    (in[1] != NAME_CONTACT && in[1] != NAME_CONVERSATION && in[1] != NAME_GROUP))
		return CAIRN_ECORRUPT;
	n->kind = in[1];
	memcpy(n->id, in + 2, RECORD_ID_LEN);
	return 0;
}

void expiry_entry_encode(const struct expiry_entry *x, uint8_t out[static EXPIRY_ENTRY_LEN])
{
	out[0] = EXPIRY_ENTRY_VERSION;
	memcpy(out + 1, x->conv, RECORD_ID_LEN);
	memcpy(out + 1 + RECORD_ID_LEN, x->id, APPMSG_ID_LEN);
	for (int i = 0; i < 8; i++)
		out[1 + RECORD_ID_LEN + APPMSG_ID_LEN + i] =
		    (uint8_t)((uint64_t)x->expires_at >> (56 - 8 * i));
}

int expiry_entry_parse(const uint8_t *in, size_t len, struct expiry_entry *x)
{
	memset(x, 0, sizeof(*x));
	if (len != EXPIRY_ENTRY_LEN || in[0] != EXPIRY_ENTRY_VERSION)
		return CAIRN_ECORRUPT;
	memcpy(x->conv, in + 1, RECORD_ID_LEN);
	memcpy(x->id, in + 1 + RECORD_ID_LEN, APPMSG_ID_LEN);
	uint64_t t = 0;
	for (int i = 0; i < 8; i++)
		t = (t << 8) | in[1 + RECORD_ID_LEN + APPMSG_ID_LEN + i];
	if (t > INT64_MAX)
		return CAIRN_ECORRUPT;
	x->expires_at = (int64_t)t;
	return 0;
}
