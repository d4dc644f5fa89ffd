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

/* Contacts and outbox entries changed layout with several relays per contact (version 2);
 * stored messages did not. */
#define RECORD_VERSION         1
#define CONTACT_RECORD_VERSION 2
#define OUTBOX_RECORD_VERSION  2

/* ---- a bounded writer and reader ----------------------------------------------------- */

struct writer {
	uint8_t *buf;
	size_t len, cap;
	int err;
};

static void w_bytes(struct writer *w, const void *p, size_t n)
{
	if (w->err)
		return;
	if (w->cap - w->len < n) {
		size_t ncap = w->cap ? w->cap : 256;
		while (ncap - w->len < n)
			ncap *= 2;
		uint8_t *nb = sodium_malloc(ncap);
		if (nb == NULL) {
			w->err = CAIRN_ENOMEM;
			return;
		}
		if (w->buf != NULL) {
			memcpy(nb, w->buf, w->len);
			sodium_free(w->buf);
		}
		w->buf = nb;
		w->cap = ncap;
	}
	if (n > 0)
		memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void w_u8(struct writer *w, uint8_t v)
{
	w_bytes(w, &v, 1);
}

static void w_u64(struct writer *w, uint64_t v)
{
	uint8_t b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (56 - 8 * i));
	w_bytes(w, b, 8);
}

static void w_var(struct writer *w, const void *p, size_t n)
{
	uint8_t b[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
	w_bytes(w, b, 4);
	w_bytes(w, p, n);
}

static void w_str(struct writer *w, const char *s, size_t max)
{
	w_var(w, s, strnlen(s, max));
}

/* Hands the buffer over as a malloc'd copy so callers free it with free(). */
static int w_finish(struct writer *w, uint8_t **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	if (w->err == 0) {
		*out = malloc(w->len ? w->len : 1);
		if (*out == NULL)
			w->err = CAIRN_ENOMEM;
		else
			memcpy(*out, w->buf, w->len);
		*len = w->len;
	}
	if (w->buf != NULL)
		sodium_free(w->buf); /* sodium_free wipes */
	return w->err;
}

struct reader {
	const uint8_t *p;
	size_t left;
	int err;
};

static const uint8_t *r_take(struct reader *r, size_t n)
{
	if (r->err || r->left < n) {
		r->err = CAIRN_ECORRUPT;
		return NULL;
	}
	const uint8_t *p = r->p;
	r->p += n;
	r->left -= n;
	return p;
}

static void r_bytes(struct reader *r, void *out, size_t n)
{
	const uint8_t *p = r_take(r, n);
	if (p != NULL)
		memcpy(out, p, n);
}

static uint8_t r_u8(struct reader *r)
{
	const uint8_t *p = r_take(r, 1);
	return p ? p[0] : 0;
}

static uint64_t r_u64(struct reader *r)
{
	const uint8_t *p = r_take(r, 8);
	uint64_t v = 0;
	for (int i = 0; p != NULL && i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* A variable field of at most MAX bytes; returns a pointer into the input. */
static const uint8_t *r_var(struct reader *r, size_t max, size_t *n)
{
	const uint8_t *b = r_take(r, 4);
	*n = 0;
	if (b == NULL)
		return NULL;
	size_t len = ((size_t)b[0] << 24) | ((size_t)b[1] << 16) | ((size_t)b[2] << 8) | b[3];
	if (len > max) {
		r->err = CAIRN_ECORRUPT;
		return NULL;
	}
	*n = len;
	return r_take(r, len);
}

/* A string field into OUT (capacity MAX + 1), NUL-terminated; no embedded NULs. */
static void r_str(struct reader *r, char *out, size_t max)
{
	size_t n;
	const uint8_t *p = r_var(r, max, &n);
	out[0] = '\0';
	if (p == NULL)
		return;
	if (memchr(p, '\0', n) != NULL) {
		r->err = CAIRN_ECORRUPT;
		return;
	}
	memcpy(out, p, n);
	out[n] = '\0';
}

static int r_finish(struct reader *r)
{
	if (r->err == 0 && r->left != 0)
		r->err = CAIRN_ECORRUPT;
	return r->err;
}

/* ---- contacts ------------------------------------------------------------------------ */

int contact_encode(const struct contact *c, uint8_t **out, size_t *len)
{
	struct writer w = {0};
	if (c->nmine > CONTACT_MINE_MAX || c->peer.count > CAIRN_MAILBOXES_MAX)
		return CAIRN_EINVAL;
	w_u8(&w, CONTACT_RECORD_VERSION);
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
	w_u64(&w, c->unread);
	return w_finish(&w, out, len);
}

int contact_parse(const uint8_t *in, size_t len, struct contact *c)
{
	struct reader r = {in, len, 0};
	memset(c, 0, sizeof(*c));
	if (r_u8(&r) != CONTACT_RECORD_VERSION)
		return CAIRN_ECORRUPT;
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
		flags_bad |= m->flags & (uint8_t) ~(MAILBOX_INVITE | MAILBOX_RETIRED);
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
	uint64_t unread = r_u64(&r);
	int rc = r_finish(&r);
	if (rc == 0 &&
	    (c->state < CONTACT_INVITED || c->state > CONTACT_ESTABLISHED || c->name[0] == '\0' ||
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
	c->unread = (uint32_t)unread;
	c->my_serial = (uint32_t)my_serial;
	c->peer_serial = (uint32_t)peer_serial;
	if (rc != 0)
		contact_wipe(c);
	return rc;
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
	w_u8(&w, RECORD_VERSION);
	w_str(&w, m->contact, CAIRN_NAME_MAX);
	w_u8(&w, m->outgoing);
	w_u64(&w, (uint64_t)m->sent_at);
	w_u64(&w, (uint64_t)m->received_at);
	w_bytes(&w, m->id, APPMSG_ID_LEN);
	w_var(&w, m->text, m->len);
	return w_finish(&w, out, len);
}

int message_parse(const uint8_t *in, size_t len, struct stored_message *m)
{
	struct reader r = {in, len, 0};
	memset(m, 0, sizeof(*m));
	if (r_u8(&r) != RECORD_VERSION)
		return CAIRN_ECORRUPT;
	r_str(&r, m->contact, CAIRN_NAME_MAX);
	m->outgoing = r_u8(&r);
	m->sent_at = (int64_t)r_u64(&r);
	m->received_at = (int64_t)r_u64(&r);
	r_bytes(&r, m->id, APPMSG_ID_LEN);
	m->text = r_var(&r, CAIRN_MESSAGE_MAX, &m->len);
	int rc = r_finish(&r);
	return rc == 0 && m->outgoing > 1 ? CAIRN_ECORRUPT : rc;
}

int outbox_encode(const struct outbox_entry *e, uint8_t **out, size_t *len)
{
	struct writer w = {0};
	w_u8(&w, OUTBOX_RECORD_VERSION);
	w_str(&w, e->contact, CAIRN_NAME_MAX);
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
	r_str(&r, e->contact, CAIRN_NAME_MAX);
	r_bytes(&r, e->message_id, APPMSG_ID_LEN);
	r_bytes(&r, e->outbox_id, sizeof(e->outbox_id));
	e->kind = r_u8(&r);
	e->envelope = r_var(&r, CAIRN_ENVELOPE_MAX, &e->envelope_len);
	return r_finish(&r);
}

size_t message_key(uint8_t *out, const char *name, const uint8_t id[static APPMSG_ID_LEN])
{
	size_t n = strnlen(name, CAIRN_NAME_MAX);
	memcpy(out, name, n);
	out[n] = 0;
	memcpy(out + n + 1, id, APPMSG_ID_LEN);
	return n + 1 + APPMSG_ID_LEN;
}

size_t part_key(uint8_t *out, const char *name, const uint8_t id[static APPMSG_ID_LEN],
                uint16_t index)
{
	size_t n = message_key(out, name, id);
	out[n] = (uint8_t)(index >> 8);
	out[n + 1] = (uint8_t)index;
	return n + 2;
}
