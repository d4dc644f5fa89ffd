/* SPDX-License-Identifier: MIT */
/*
 * Disappearing messages (docs/PROTOCOL.md 8.11): the deletion of each message when its time
 * comes, here at the next open, read or tick. A conversation's timer is changed by timer
 * messages (kind 7) that every device orders the same way (expiry.c; the API is timer_api.c).
 *
 * Every message stored while the timer is on (client_put_message) gets an expiry time (our
 * clock when it was stored + the timer), kept sealed in its record and in an entry of the
 * expiry index (REC_EXPIRY, one per message, expiry.c), so that a sweep reads only the index,
 * never every message. A sweep deletes, in one transaction, each due message's record, its parts
 * still being reassembled, its unsent outbox entries, its part of the unread count and its
 * index entry, then checkpoints the store with a truncated log (cstate_checkpoint): with
 * secure_delete the deleted cells were zeroed in the pages written, and the older page images
 * leave the WAL with its truncation.
 *
 * The unread count is a count, not a mark per message: the unread messages are the newest
 * UNREAD incoming texts of the conversation (cairn_read marks the oldest as read first), so a
 * deleted incoming text counts as unread when fewer than UNREAD incoming texts follow it.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client.h"
#include "files.h"

/* How long the engine goes without a sweep at most: another process (a `cairn send`) may
 * store messages under a timer that this one's next expiry time does not know of. */
#define EXPIRY_RESWEEP_MS 30000

int client_expiry_note_part(struct cairn *c, const uint8_t conv[RECORD_ID_LEN],
                            const uint8_t id[APPMSG_ID_LEN])
{
	uint8_t key[RECORD_KEY_MAX], *old = NULL;
	size_t klen = message_key(key, conv, id), oldlen = 0;
	int rc = cstate_get(c->st, REC_EXPIRY, key, klen, &old, &oldlen);
	cstate_free_value(old, oldlen);
	if (rc != CAIRN_ENOTFOUND)
		return rc; /* 0: the first part set it already */
	struct conversation v;
	if ((rc = client_load_conversation(c, conv, &v)) != 0)
		return rc == CAIRN_ENOTFOUND ? 0 : rc;
	uint32_t timer = v.timer;
	conversation_wipe(&v);
	return timer == 0 ? 0 : client_expiry_note(c, conv, id, client_now_s(c) + timer);
}

/* ---- the sweep --------------------------------------------------------------------------- */

/* Makes room for one more of the N elements of SIZE bytes at *ARRAY (capacity *CAP, doubled
 * when full). Returns 0 or CAIRN_ENOMEM (*ARRAY unchanged). */
static int grow(void **array, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return 0;
	size_t more = *cap ? 2 * *cap : 16;
	void *p = realloc(*array, more * size);
	if (p == NULL)
		return CAIRN_ENOMEM;
	*array = p;
	*cap = more;
	return 0;
}

struct sweep {
	int64_t now, next;
	struct expiry_entry *due;
	size_t n, cap;
	int rc;
};

static int sweep_one(void *ctx, const uint8_t *v, size_t len)
{
	struct sweep *s = ctx;
	struct expiry_entry x;
	if (expiry_entry_parse(v, len, &x) != 0)
		return 0; /* a damaged entry names nothing we can find */
	if (x.expires_at > s->now) {
		if (s->next == 0 || x.expires_at < s->next)
			s->next = x.expires_at;
		return 0;
	}
	if ((s->rc = grow((void **)&s->due, &s->cap, s->n, sizeof(*s->due))) != 0)
		return 1;
	s->due[s->n++] = x;
	return 0;
}

/* A conversation's incoming texts, in order: their ids. */
struct incoming {
	uint8_t (*ids)[APPMSG_ID_LEN];
	size_t n, cap;
	int rc;
};

static int incoming_one(void *ctx, const uint8_t *v, size_t len)
{
	struct incoming *in = ctx;
	struct stored_message m;
	if (message_parse(v, len, &m) != 0 || m.outgoing || m.kind != APPMSG_TEXT)
		return 0;
	if ((in->rc = grow((void **)&in->ids, &in->cap, in->n, sizeof(*in->ids))) != 0)
		return 1;
	memcpy(in->ids[in->n++], m.id, APPMSG_ID_LEN);
	return 0;
}

/*
 * Takes from conversation CONV's unread count those of the N due messages DUE (the ones of
 * CONV among them) that are unread: among its newest UNREAD incoming texts. One listing of
 * the conversation whatever the number due (the caller's transaction).
 */
static int forget_unread(struct cairn *c, const uint8_t conv[RECORD_ID_LEN],
                         const struct expiry_entry *due, size_t n)
{
	struct conversation v;
	int rc = client_load_conversation(c, conv, &v);
	if (rc != 0)
		return rc == CAIRN_ENOTFOUND ? 0 : rc;
	struct incoming in = {0};
	if (v.unread > 0 &&
	    (rc = cstate_list_scope(c->st, REC_MESSAGE, conv, RECORD_ID_LEN, incoming_one, &in)) >=
	        0 &&
	    (rc = in.rc) == 0) {
		size_t from = in.n > v.unread ? in.n - v.unread : 0;
		uint32_t drop = 0;
		for (size_t i = 0; i < n; i++) {
			if (memcmp(due[i].conv, conv, RECORD_ID_LEN) != 0)
				continue;
			for (size_t j = from; j < in.n; j++)
				if (memcmp(in.ids[j], due[i].id, APPMSG_ID_LEN) == 0) {
					drop++;
					break;
				}
		}
		if (drop > 0) {
			v.unread = drop >= v.unread ? 0 : v.unread - drop;
			rc = client_store_conversation(c, &v);
		}
	}
	free(in.ids);
	conversation_wipe(&v);
	return rc;
}

/* The unsent outbox entries of X (their ids, collected before any is deleted). */
struct outbox_match {
	const struct expiry_entry *x;
	uint8_t (*ids)[16];
	size_t n, cap;
	int rc;
};

static int outbox_one(void *ctx, const uint8_t *v, size_t len)
{
	struct outbox_match *o = ctx;
	struct outbox_entry e;
	if (outbox_parse(v, len, &e) != 0 || memcmp(e.conv, o->x->conv, RECORD_ID_LEN) != 0 ||
	    memcmp(e.message_id, o->x->id, APPMSG_ID_LEN) != 0)
		return 0;
	if ((o->rc = grow((void **)&o->ids, &o->cap, o->n, sizeof(*o->ids))) != 0)
		return 1;
	memcpy(o->ids[o->n++], e.outbox_id, 16);
	return 0;
}

/*
 * What else a deleted message leaves in the home besides its record, parts and outbox
 * entries: a file (kind 8, PROTOCOL.md 11), whose record and spool go with it. The one place
 * where a message's other belongings are deleted with it, in the sweep's transaction.
 */
static int expire_message_extras(struct cairn *c, const struct stored_message *m)
{
	/* A file's line in the conversation has the file message's id, which is the file's id
	 * (PROTOCOL.md 11.2); for any other message there is no file, and absent is no error. */
	return cfile_forget(c, m->id);
}

/* Deletes everything of X (the caller's transaction). */
static int expire_one(struct cairn *c, const struct expiry_entry *x)
{
	uint8_t key[RECORD_KEY_MAX], *v = NULL;
	size_t klen = message_key(key, x->conv, x->id), vlen = 0;
	/* Still due? Another process may have swept it since the index was read. */
	int rc = cstate_get(c->st, REC_EXPIRY, key, klen, &v, &vlen);
	cstate_free_value(v, vlen);
	if (rc != 0)
		return rc == CAIRN_ENOTFOUND ? 0 : rc;
	v = NULL;
	vlen = 0;
	rc = cstate_get(c->st, REC_MESSAGE, key, klen, &v, &vlen);
	struct stored_message m;
	if (rc == 0 && message_parse(v, vlen, &m) == 0)
		rc = expire_message_extras(c, &m);
	cstate_free_value(v, vlen);
	if (rc != 0 && rc != CAIRN_ENOTFOUND && rc != CAIRN_ECORRUPT)
		return rc;
	if ((rc = cstate_del(c->st, REC_MESSAGE, key, klen)) != 0)
		return rc;
	/* Parts still being reassembled: their count is in the parts themselves. */
	for (uint16_t i = 0; i < APPMSG_PARTS_MAX && rc == 0; i++) {
		uint8_t pkey[RECORD_KEY_MAX];
		size_t plen = part_key(pkey, x->conv, x->id, i);
		rc = cstate_del(c->st, REC_PART, pkey, plen);
	}
	struct outbox_match o = {.x = x};
	if (rc == 0 && (rc = cstate_list(c->st, REC_OUTBOX, outbox_one, &o)) >= 0)
		rc = o.rc;
	for (size_t i = 0; i < o.n && rc == 0; i++)
		rc = cstate_del(c->st, REC_OUTBOX, o.ids[i], 16);
	free(o.ids);
	if (rc == 0)
		rc = cstate_del(c->st, REC_EXPIRY, key, klen);
	return rc;
}

int client_expire(struct cairn *c)
{
	struct sweep s = {.now = client_now_s(c)};
	c->expiry_swept_ms = client_mono_ms(c);
	int rc = cstate_list(c->st, REC_EXPIRY, sweep_one, &s);
	if (rc >= 0)
		rc = s.rc;
	if (rc == 0 && s.n > 0 && (rc = cstate_begin(c->st)) == 0) {
		/* The unread counts first, each conversation once, while the messages are there. */
		for (size_t i = 0; i < s.n && rc == 0; i++) {
			bool seen = false;
			for (size_t j = 0; j < i && !seen; j++)
				seen = memcmp(s.due[j].conv, s.due[i].conv, RECORD_ID_LEN) == 0;
			if (!seen)
				rc = forget_unread(c, s.due[i].conv, s.due, s.n);
		}
		for (size_t i = 0; i < s.n && rc == 0; i++)
			rc = expire_one(c, &s.due[i]);
		if (rc == 0)
			rc = cstate_commit(c->st);
		else
			cstate_rollback(c->st);
		c->expiry_unflushed |= rc == 0;
	}
	/* The deleted bytes leave the log; a reader in another process may hold it back: then
	 * the next sweep tries again (and the last connection's close truncates it). */
	if (rc == 0 && c->expiry_unflushed && cstate_checkpoint(c->st) == 0)
		c->expiry_unflushed = false;
	if (s.due != NULL) {
		sodium_memzero(s.due, s.cap * sizeof(*s.due));
		free(s.due);
	}
	if (rc != 0)
		return rc;
	c->expiry_next = s.next;
	return (int)(s.n > INT32_MAX ? INT32_MAX : s.n);
}

void client_expire_due(struct cairn *c)
{
	bool due = (c->expiry_next != 0 && client_now_s(c) >= c->expiry_next) ||
	           c->expiry_unflushed;
	if (due || client_mono_ms(c) - c->expiry_swept_ms >= EXPIRY_RESWEEP_MS) {
		int rc = client_expire(c);
		(void)rc; /* tried again at the next tick */
	}
}

void client_timer_message(const struct cairn *c, const struct stored_message *m,
                          struct cairn_message *out)
{
	(void)c;
	out->expires_at = m->expires_at;
	uint32_t seconds;
	if (m->kind == APPMSG_TIMER && appmsg_timer_parse(m->text, m->len, &seconds) == 0) {
		out->kind = CAIRN_MESSAGE_TIMER;
		out->timer = seconds;
		out->text = NULL;
		out->len = 0;
	}
}
