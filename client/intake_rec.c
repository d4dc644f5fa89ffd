/* SPDX-License-Identifier: MIT */
/*
 * The owner's intake records (intakes.h): the intake itself (one sealed record holding its
 * address's mailboxes and bundle logs, current and old, and its prekeys), the ephemeral keys of
 * first messages per prekey (scoped by the prekey, so that they go with its private key),
 * blocked identities and the request counters. Parsing is strict: a damaged record fails
 * cleanly.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "intakes.h"
#include "records_io.h"
#include "work.h"

#define INTAKE_RECORD_VERSION 1

void intake_wipe(struct intake *in)
{
	sodium_memzero(in, sizeof(*in));
}

static void w_box(struct writer *w, const struct intake_box *b)
{
	w_str(w, b->mb.relay, CAIRN_ADDRESS_MAX);
	w_bytes(w, b->mb.recipient_id, CAIRN_MAILBOX_ID_LEN);
	w_bytes(w, b->mb.sender_id, CAIRN_MAILBOX_ID_LEN);
	w_bytes(w, b->mb.sign_sk, sizeof(b->mb.sign_sk));
	w_bytes(w, b->log_id, CAIRN_LOG_ID_LEN);
	w_bytes(w, b->log_cred, CAIRN_CREDENTIAL_LEN);
	w_bytes(w, b->log_del, CAIRN_CREDENTIAL_LEN);
}

static void r_box(struct reader *r, struct intake_box *b)
{
	r_str(r, b->mb.relay, CAIRN_ADDRESS_MAX);
	r_bytes(r, b->mb.recipient_id, CAIRN_MAILBOX_ID_LEN);
	r_bytes(r, b->mb.sender_id, CAIRN_MAILBOX_ID_LEN);
	r_bytes(r, b->mb.sign_sk, sizeof(b->mb.sign_sk));
	r_bytes(r, b->log_id, CAIRN_LOG_ID_LEN);
	r_bytes(r, b->log_cred, CAIRN_CREDENTIAL_LEN);
	r_bytes(r, b->log_del, CAIRN_CREDENTIAL_LEN);
	if (r->err == 0 && b->mb.relay[0] == '\0')
		r->err = CAIRN_ECORRUPT;
}

int intake_record_encode(const struct intake *in, uint8_t **out, size_t *len)
{
	struct writer w = {0};
	if (in->n == 0 || in->n > CAIRN_MAILBOXES_MAX || in->nold > CAIRN_MAILBOXES_MAX ||
	    in->nprekeys > INTAKE_PREKEYS_MAX)
		return CAIRN_EINVAL;
	w_u8(&w, INTAKE_RECORD_VERSION);
	w_bytes(&w, in->id, RECORD_ID_LEN);
	w_str(&w, in->label, CAIRN_NAME_MAX);
	w_u8(&w, in->work_bits);
	w_u8(&w, in->n);
	for (size_t i = 0; i < in->n; i++)
		w_box(&w, &in->cur[i]);
	w_u8(&w, in->nold);
	for (size_t i = 0; i < in->nold; i++)
		w_box(&w, &in->old[i]);
	w_u64(&w, (uint64_t)in->old_until);
	w_u8(&w, in->nprekeys);
	for (size_t i = 0; i < in->nprekeys; i++) {
		w_bytes(&w, in->pk[i].pub, CAIRN_KEY_LEN);
		w_bytes(&w, in->pk[i].priv, CAIRN_KEY_LEN);
		w_u64(&w, (uint64_t)in->pk[i].created);
		w_u64(&w, (uint64_t)in->pk[i].expires);
	}
	w_u64(&w, (uint64_t)in->appended_at);
	w_u8(&w, in->appended_bits);
	w_u8(&w, in->appended_prekey);
	return w_finish(&w, out, len);
}

int intake_record_parse(const uint8_t *b, size_t len, struct intake *in)
{
	struct reader r = {b, len, 0};
	memset(in, 0, sizeof(*in));
	if (r_u8(&r) != INTAKE_RECORD_VERSION)
		r.err = CAIRN_ECORRUPT;
	r_bytes(&r, in->id, RECORD_ID_LEN);
	r_str(&r, in->label, CAIRN_NAME_MAX);
	in->work_bits = r_u8(&r);
	in->n = r_u8(&r);
	if (in->n == 0 || in->n > CAIRN_MAILBOXES_MAX)
		r.err = CAIRN_ECORRUPT;
	for (size_t i = 0; r.err == 0 && i < in->n; i++)
		r_box(&r, &in->cur[i]);
	in->nold = r_u8(&r);
	if (in->nold > CAIRN_MAILBOXES_MAX)
		r.err = CAIRN_ECORRUPT;
	for (size_t i = 0; r.err == 0 && i < in->nold; i++)
		r_box(&r, &in->old[i]);
	in->old_until = (int64_t)r_u64(&r);
	in->nprekeys = r_u8(&r);
	if (in->nprekeys > INTAKE_PREKEYS_MAX)
		r.err = CAIRN_ECORRUPT;
	for (size_t i = 0; r.err == 0 && i < in->nprekeys; i++) {
		r_bytes(&r, in->pk[i].pub, CAIRN_KEY_LEN);
		r_bytes(&r, in->pk[i].priv, CAIRN_KEY_LEN);
		in->pk[i].created = (int64_t)r_u64(&r);
		in->pk[i].expires = (int64_t)r_u64(&r);
	}
	in->appended_at = (int64_t)r_u64(&r);
	in->appended_bits = r_u8(&r);
	in->appended_prekey = r_u8(&r);
	int rc = r_finish(&r);
	if (rc == 0 && (in->label[0] == '\0' || in->work_bits < WORK_BITS_MIN ||
	                in->work_bits > WORK_BITS_MAX || in->appended_prekey > 1))
		rc = CAIRN_ECORRUPT;
	if (rc != 0)
		intake_wipe(in);
	return rc;
}

int intake_load(struct cairn *c, const uint8_t id[RECORD_ID_LEN], struct intake *in)
{
	uint8_t *v = NULL;
	size_t vlen = 0;
	memset(in, 0, sizeof(*in));
	int rc = cstate_get(c->st, REC_INTAKE, id, RECORD_ID_LEN, &v, &vlen);
	if (rc == 0)
		rc = intake_record_parse(v, vlen, in);
	cstate_free_value(v, vlen);
	if (rc == 0 && sodium_memcmp(in->id, id, RECORD_ID_LEN) != 0) {
		intake_wipe(in);
		rc = CAIRN_ECORRUPT;
	}
	return rc;
}

int intake_store(struct cairn *c, const struct intake *in)
{
	uint8_t *v = NULL;
	size_t vlen = 0;
	int rc = intake_record_encode(in, &v, &vlen);
	if (rc == 0)
		rc = cstate_put(c->st, REC_INTAKE, in->id, RECORD_ID_LEN, v, vlen);
	if (v != NULL) {
		sodium_memzero(v, vlen); /* prekeys, signing keys, log secrets */
		free(v);
	}
	return rc;
}

struct each_ctx {
	intake_cb cb;
	void *ctx;
	int rc;
};

static int each_one(void *vctx, const uint8_t *v, size_t vlen)
{
	struct each_ctx *x = vctx;
	struct intake *in = malloc(sizeof(*in));
	if (in == NULL) {
		x->rc = CAIRN_ENOMEM;
		return 1;
	}
	int stop = 0;
	if (intake_record_parse(v, vlen, in) == 0)
		stop = x->cb(x->ctx, in); /* a damaged record must not hide the others */
	intake_wipe(in);
	free(in);
	if (stop != 0)
		x->rc = stop;
	return stop;
}

int intake_each(struct cairn *c, intake_cb cb, void *ctx)
{
	struct each_ctx x = {cb, ctx, 0};
	int rc = cstate_list(c->st, REC_INTAKE, each_one, &x);
	return rc < 0 ? rc : x.rc;
}

struct find_ctx {
	const char *label;
	struct intake *out;
};

static int find_one(void *vctx, const struct intake *in)
{
	struct find_ctx *x = vctx;
	if (strcmp(in->label, x->label) != 0)
		return 0;
	*x->out = *in;
	return 1;
}

int intake_find(struct cairn *c, const char *label, struct intake *in)
{
	struct find_ctx x = {label, in};
	memset(in, 0, sizeof(*in));
	if (label == NULL)
		return CAIRN_ENOTFOUND;
	int rc = intake_each(c, find_one, &x);
	return rc == 1 ? 0 : rc < 0 ? rc : CAIRN_ENOTFOUND;
}

/* ---- ephemeral keys, blocked identities, counters ----------------------------------- */

/* An EK record's value: kind || contact id || EK (the EK again, so that the records of one
 * prekey, listed by their scope, can be deleted by key). */
#define EK_VALUE_LEN (1 + RECORD_ID_LEN + CAIRN_KEY_LEN)

static void ek_key(uint8_t key[2 * CAIRN_KEY_LEN], const uint8_t prekey[CAIRN_KEY_LEN],
                   const uint8_t ek[CAIRN_KEY_LEN])
{
	memcpy(key, prekey, CAIRN_KEY_LEN);
	memcpy(key + CAIRN_KEY_LEN, ek, CAIRN_KEY_LEN);
}

int intake_ek_get(struct cairn *c, const uint8_t prekey[CAIRN_KEY_LEN],
                  const uint8_t ek[CAIRN_KEY_LEN], struct intake_ek *out)
{
	uint8_t key[2 * CAIRN_KEY_LEN], *v = NULL;
	size_t vlen = 0;
	ek_key(key, prekey, ek);
	memset(out, 0, sizeof(*out));
	int rc = cstate_get(c->st, REC_INTAKE_EK, key, sizeof(key), &v, &vlen);
	if (rc == 0 &&
	    (vlen != EK_VALUE_LEN || (v[0] != INTAKE_EK_CONTACT && v[0] != INTAKE_EK_REJECTED)))
		rc = CAIRN_ECORRUPT;
	if (rc == 0) {
		out->kind = v[0];
		memcpy(out->contact, v + 1, RECORD_ID_LEN);
	}
	cstate_free_value(v, vlen);
	return rc;
}

int intake_ek_put(struct cairn *c, const uint8_t prekey[CAIRN_KEY_LEN],
                  const uint8_t ek[CAIRN_KEY_LEN], const struct intake_ek *e)
{
	uint8_t key[2 * CAIRN_KEY_LEN], v[EK_VALUE_LEN];
	ek_key(key, prekey, ek);
	v[0] = e->kind;
	memcpy(v + 1, e->contact, RECORD_ID_LEN);
	memcpy(v + 1 + RECORD_ID_LEN, ek, CAIRN_KEY_LEN);
	return cstate_put_scoped(c->st, REC_INTAKE_EK, key, sizeof(key), prekey, CAIRN_KEY_LEN, v,
	                         sizeof(v));
}

/* The EKs of one prekey, collected before deleting (nothing changes while listing). */
struct ek_keys {
	uint8_t (*ek)[CAIRN_KEY_LEN];
	size_t n, cap;
	int rc;
};

static int collect_ek(void *vctx, const uint8_t *v, size_t vlen)
{
	struct ek_keys *x = vctx;
	if (vlen != EK_VALUE_LEN)
		return 0; /* damaged: left to the store */
	if (x->n == x->cap) {
		size_t ncap = x->cap ? 2 * x->cap : 64;
		void *p = realloc(x->ek, ncap * sizeof(*x->ek));
		if (p == NULL) {
			x->rc = CAIRN_ENOMEM;
			return 1;
		}
		x->ek = p;
		x->cap = ncap;
	}
	memcpy(x->ek[x->n++], v + 1 + RECORD_ID_LEN, CAIRN_KEY_LEN);
	return 0;
}

int intake_ek_drop_prekey(struct cairn *c, const uint8_t prekey[CAIRN_KEY_LEN])
{
	struct ek_keys x = {0};
	int rc = cstate_list_scope(c->st, REC_INTAKE_EK, prekey, CAIRN_KEY_LEN, collect_ek, &x);
	if (rc >= 0)
		rc = x.rc;
	for (size_t i = 0; rc >= 0 && i < x.n; i++) {
		uint8_t key[2 * CAIRN_KEY_LEN];
		ek_key(key, prekey, x.ek[i]);
		rc = cstate_del(c->st, REC_INTAKE_EK, key, sizeof(key));
	}
	free(x.ek);
	return rc < 0 ? rc : 0;
}

int intake_blocked(struct cairn *c, const uint8_t identity[CAIRN_KEY_LEN])
{
	uint8_t *v = NULL;
	size_t vlen = 0;
	int rc = cstate_get(c->st, REC_INTAKE_BLOCK, identity, CAIRN_KEY_LEN, &v, &vlen);
	cstate_free_value(v, vlen);
	return rc == 0 ? 1 : rc == CAIRN_ENOTFOUND ? 0 : rc;
}

int intake_block(struct cairn *c, const uint8_t identity[CAIRN_KEY_LEN])
{
	uint8_t one = 1;
	return cstate_put(c->st, REC_INTAKE_BLOCK, identity, CAIRN_KEY_LEN, &one, 1);
}

int intake_meta_get(struct cairn *c, uint32_t *pending, uint64_t *dropped)
{
	uint8_t *v = NULL;
	size_t vlen = 0;
	*pending = 0;
	*dropped = 0;
	int rc =
	    cstate_get(c->st, REC_INTAKE_META, INTAKE_META_KEY, strlen(INTAKE_META_KEY), &v, &vlen);
	if (rc == CAIRN_ENOTFOUND)
		return 0;
	if (rc == 0 && vlen != 12)
		rc = CAIRN_ECORRUPT;
	if (rc == 0) {
		for (int i = 0; i < 4; i++)
			*pending = (*pending << 8) | v[i];
		for (int i = 4; i < 12; i++)
			*dropped = (*dropped << 8) | v[i];
	}
	cstate_free_value(v, vlen);
	return rc;
}

int intake_meta_put(struct cairn *c, uint32_t pending, uint64_t dropped)
{
	uint8_t v[12];
	for (int i = 0; i < 4; i++)
		v[i] = (uint8_t)(pending >> (24 - 8 * i));
	for (int i = 0; i < 8; i++)
		v[4 + i] = (uint8_t)(dropped >> (56 - 8 * i));
	return cstate_put(c->st, REC_INTAKE_META, INTAKE_META_KEY, strlen(INTAKE_META_KEY), v,
	                  sizeof(v));
}
