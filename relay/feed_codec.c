/* SPDX-License-Identifier: MIT */
/*
 * The change feed's row format (feed_codec.h) in a plain fixed layout, big-endian: a version
 * byte, then each op as its kind byte and that kind's fields in a fixed order (no lengths but
 * an id list's count, which the bytes that remain bound). Smaller and clearer than msgpack
 * for a format only relays write and read: every field has one width, so a decoder checks
 * one length per field and nothing else.
 *
 *   mailbox (PUT, SECURE, INTAKE): id, recipient_id, sender_id, recipient_key,
 *       credential_digest, secured (0/1), work_bits, touched
 *   MAILBOX_TOUCH: mailbox_id, stored_at       MAILBOX_DELETE: mailbox_id, ids
 *   ENVELOPE_PUT: envelope_id, mailbox_id, len (u32), stored_at, bundled (0/1)
 *       [, bundle_e, bundle_until]
 *   ENVELOPE_DELETE: envelope_id, mailbox_id   EXPIRE, ID_MARK: envelope_id
 *   LOG_PUT: id, log_id, credential_digest, delete_digest, next_seq, touched
 *   LOG_TOUCH: log_key, stored_at              LOG_DELETE: log_key, ids
 *   LOG_ENTRY_PUT: envelope_id, log_key, seq, len (u32), stored_at
 *   BUNDLE_EXPIRE: stored_at
 *   ids: a u32 count, then that many u64
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/error.h"
#include "feed_codec.h"

#define FEED_VERSION 1

/* Ids of a delete decoded on the stack up to this many; past it, a buffer the blob's own
 * length bounds (8 bytes of blob per id). */
#define FEED_IDS_STACK 64

/* A writer that only counts when OUT is NULL. */
struct feed_out {
	uint8_t *out;
	size_t cap, len;
	bool short_;
};

static void put(struct feed_out *w, const void *p, size_t n)
{
	if (w->out != NULL) {
		if (n > w->cap - w->len) {
			w->short_ = true;
			return;
		}
		memcpy(w->out + w->len, p, n);
	}
	w->len += n;
}

static void put_u8(struct feed_out *w, uint8_t v)
{
	put(w, &v, 1);
}

static void put_u64(struct feed_out *w, uint64_t v)
{
	uint8_t b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (56 - 8 * i));
	put(w, b, 8);
}

static void put_u32(struct feed_out *w, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	put(w, b, 4);
}

static void put_ids(struct feed_out *w, const uint64_t *ids, size_t n)
{
	if (n > UINT32_MAX) {
		w->short_ = true;
		return;
	}
	put_u32(w, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		put_u64(w, ids[i]);
}

/* An op whose kind needs a mailbox or log without one is written as a mailbox or log of
 * zeroes: the engine refuses such a batch before it commits, so it is never read. */
static void put_op(struct feed_out *w, const struct store_op *op)
{
	static const struct store_mailbox no_mailbox;
	static const struct store_log no_log;
	const struct store_mailbox *m = op->mailbox != NULL ? op->mailbox : &no_mailbox;
	const struct store_log *l = op->log != NULL ? op->log : &no_log;
	put_u8(w, (uint8_t)op->kind);
	switch (op->kind) {
	case STORE_MAILBOX_PUT:
	case STORE_MAILBOX_SECURE:
	case STORE_MAILBOX_INTAKE:
		put_u64(w, m->id);
		put(w, m->recipient_id, sizeof(m->recipient_id));
		put(w, m->sender_id, sizeof(m->sender_id));
		put(w, m->recipient_key, sizeof(m->recipient_key));
		put(w, m->credential_digest, sizeof(m->credential_digest));
		put_u8(w, m->secured ? 1 : 0);
		put_u8(w, m->work_bits);
		put_u64(w, (uint64_t)m->touched);
		break;
	case STORE_MAILBOX_TOUCH:
		put_u64(w, op->mailbox_id);
		put_u64(w, (uint64_t)op->stored_at);
		break;
	case STORE_MAILBOX_DELETE:
		put_u64(w, op->mailbox_id);
		put_ids(w, op->envelope_ids, op->n_envelope_ids);
		break;
	case STORE_ENVELOPE_PUT:
		put_u64(w, op->envelope_id);
		put_u64(w, op->mailbox_id);
		put_u32(w, op->len);
		put_u64(w, (uint64_t)op->stored_at);
		put_u8(w, op->bundle_e != NULL ? 1 : 0);
		if (op->bundle_e != NULL) {
			put(w, op->bundle_e, CAIRN_KEY_LEN);
			put_u64(w, (uint64_t)op->bundle_until);
		}
		break;
	case STORE_ENVELOPE_DELETE:
		put_u64(w, op->envelope_id);
		put_u64(w, op->mailbox_id);
		break;
	case STORE_EXPIRE:
	case STORE_ID_MARK:
		put_u64(w, op->envelope_id);
		break;
	case STORE_LOG_PUT:
		put_u64(w, l->id);
		put(w, l->log_id, sizeof(l->log_id));
		put(w, l->credential_digest, sizeof(l->credential_digest));
		put(w, l->delete_digest, sizeof(l->delete_digest));
		put_u64(w, l->next_seq);
		put_u64(w, (uint64_t)l->touched);
		break;
	case STORE_LOG_TOUCH:
		put_u64(w, op->log_key);
		put_u64(w, (uint64_t)op->stored_at);
		break;
	case STORE_LOG_DELETE:
		put_u64(w, op->log_key);
		put_ids(w, op->envelope_ids, op->n_envelope_ids);
		break;
	case STORE_LOG_ENTRY_PUT:
		put_u64(w, op->envelope_id);
		put_u64(w, op->log_key);
		put_u64(w, op->seq);
		put_u32(w, op->len);
		put_u64(w, (uint64_t)op->stored_at);
		break;
	case STORE_BUNDLE_EXPIRE:
		put_u64(w, (uint64_t)op->stored_at);
		break;
	default:
		w->short_ = true; /* a kind this file does not know: nothing sensible to write */
		break;
	}
}

static size_t encode(const struct store_op *ops, size_t n, struct feed_out *w)
{
	put_u8(w, FEED_VERSION);
	for (size_t i = 0; i < n && !w->short_; i++)
		put_op(w, &ops[i]);
	return w->short_ ? 0 : w->len;
}

size_t feed_encoded_len(const struct store_op *ops, size_t n)
{
	struct feed_out w = {0};
	return encode(ops, n, &w);
}

size_t feed_encode(const struct store_op *ops, size_t n, uint8_t *out, size_t cap)
{
	if (out == NULL)
		return 0;
	struct feed_out w = {.out = out, .cap = cap};
	return encode(ops, n, &w);
}

/* A cursor over the blob; every take checks what remains. */
struct feed_in {
	const uint8_t *p;
	size_t len, pos;
	bool bad;
};

static const uint8_t *take(struct feed_in *r, size_t n)
{
	if (r->bad || n > r->len - r->pos) {
		r->bad = true;
		return NULL;
	}
	const uint8_t *p = r->p + r->pos;
	r->pos += n;
	return p;
}

static void get(struct feed_in *r, void *out, size_t n)
{
	const uint8_t *p = take(r, n);
	if (p != NULL)
		memcpy(out, p, n);
}

static uint64_t be64(const uint8_t *b)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | b[i];
	return v;
}

static uint64_t get_u64(struct feed_in *r)
{
	const uint8_t *b = take(r, 8);
	return b != NULL ? be64(b) : 0;
}

static uint32_t get_u32(struct feed_in *r)
{
	const uint8_t *b = take(r, 4);
	return b != NULL ? (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]
	                 : 0;
}

/* 0 or 1, anything else is malformed. */
static bool get_flag(struct feed_in *r)
{
	const uint8_t *b = take(r, 1);
	if (b != NULL && *b > 1)
		r->bad = true;
	return b != NULL && *b == 1;
}

/* An id list, into STACK (FEED_IDS_STACK) or *HEAP (the caller frees it). Its count is checked
 * against the bytes that remain before anything is allocated. */
static void get_ids(struct feed_in *r, struct store_op *op, uint64_t *stack, uint64_t **heap)
{
	uint32_t n = get_u32(r);
	if (r->bad)
		return;
	if ((size_t)n > (r->len - r->pos) / 8) {
		r->bad = true;
		return;
	}
	uint64_t *ids = stack;
	if (n > FEED_IDS_STACK && (ids = *heap = malloc((size_t)n * sizeof(*ids))) == NULL) {
		r->bad = true;
		return;
	}
	const uint8_t *b = take(r, (size_t)n * 8);
	for (uint32_t i = 0; i < n; i++)
		ids[i] = be64(b + 8 * (size_t)i);
	op->envelope_ids = ids;
	op->n_envelope_ids = n;
}

int feed_decode(const uint8_t *blob, size_t len, int (*op_fn)(void *ctx, const struct store_op *op),
                void *ctx)
{
	if (blob == NULL || len < 1 || blob[0] != FEED_VERSION)
		return CAIRN_EMALFORMED;
	struct feed_in r = {.p = blob, .len = len, .pos = 1};
	while (r.pos < r.len) {
		struct store_op op = {0};
		struct store_mailbox m = {0};
		struct store_log l = {0};
		uint8_t bundle_e[CAIRN_KEY_LEN];
		uint64_t stack[FEED_IDS_STACK], *heap = NULL;
		uint8_t kind = *take(&r, 1);
		op.kind = (enum store_op_kind)kind;
		switch (kind) {
		case STORE_MAILBOX_PUT:
		case STORE_MAILBOX_SECURE:
		case STORE_MAILBOX_INTAKE:
			m.id = get_u64(&r);
			get(&r, m.recipient_id, sizeof(m.recipient_id));
			get(&r, m.sender_id, sizeof(m.sender_id));
			get(&r, m.recipient_key, sizeof(m.recipient_key));
			get(&r, m.credential_digest, sizeof(m.credential_digest));
			m.secured = get_flag(&r);
			get(&r, &m.work_bits, 1);
			m.touched = (int64_t)get_u64(&r);
			op.mailbox = &m;
			op.mailbox_id = m.id;
			break;
		case STORE_MAILBOX_TOUCH:
			op.mailbox_id = get_u64(&r);
			op.stored_at = (int64_t)get_u64(&r);
			break;
		case STORE_MAILBOX_DELETE:
			op.mailbox_id = get_u64(&r);
			get_ids(&r, &op, stack, &heap);
			break;
		case STORE_ENVELOPE_PUT:
			op.envelope_id = get_u64(&r);
			op.mailbox_id = get_u64(&r);
			op.len = get_u32(&r);
			op.stored_at = (int64_t)get_u64(&r);
			if (get_flag(&r)) {
				get(&r, bundle_e, sizeof(bundle_e));
				op.bundle_e = bundle_e;
				op.bundle_until = (int64_t)get_u64(&r);
			}
			break;
		case STORE_ENVELOPE_DELETE:
			op.envelope_id = get_u64(&r);
			op.mailbox_id = get_u64(&r);
			break;
		case STORE_EXPIRE:
		case STORE_ID_MARK:
			op.envelope_id = get_u64(&r);
			break;
		case STORE_LOG_PUT:
			l.id = get_u64(&r);
			get(&r, l.log_id, sizeof(l.log_id));
			get(&r, l.credential_digest, sizeof(l.credential_digest));
			get(&r, l.delete_digest, sizeof(l.delete_digest));
			l.next_seq = get_u64(&r);
			l.touched = (int64_t)get_u64(&r);
			op.log = &l;
			op.log_key = l.id;
			break;
		case STORE_LOG_TOUCH:
			op.log_key = get_u64(&r);
			op.stored_at = (int64_t)get_u64(&r);
			break;
		case STORE_LOG_DELETE:
			op.log_key = get_u64(&r);
			get_ids(&r, &op, stack, &heap);
			break;
		case STORE_LOG_ENTRY_PUT:
			op.envelope_id = get_u64(&r);
			op.log_key = get_u64(&r);
			op.seq = get_u64(&r);
			op.len = get_u32(&r);
			op.stored_at = (int64_t)get_u64(&r);
			break;
		case STORE_BUNDLE_EXPIRE:
			op.stored_at = (int64_t)get_u64(&r);
			break;
		default:
			r.bad = true;
			break;
		}
		int rc = r.bad ? CAIRN_EMALFORMED : op_fn(ctx, &op);
		free(heap);
		if (rc != 0)
			return rc;
	}
	return 0;
}

void store_feed_free(struct store_feed *feed)
{
	if (feed == NULL)
		return;
	for (size_t i = 0; i < feed->n; i++)
		free(feed->rows[i].ops);
	free(feed->rows);
	memset(feed, 0, sizeof(*feed));
}
