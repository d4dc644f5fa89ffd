/* SPDX-License-Identifier: MIT */
/*
 * The records of a group's state (group.h) in the sealed store: the fixed part with the
 * roster (REC_GROUP), the counted updates, leaves and previous roster (REC_GROUP_EPOCH), the
 * receiving chains of the current and previous epoch (REC_GROUP_CHAINS, one record each) and
 * the skipped keys (REC_GROUP_SKIPPED), each sized by what it holds so that a 1,000-member
 * group stays under CSTATE_VALUE_MAX per record; our pending commit (REC_GROUP_PENDING); the
 * index from a log id to its group (REC_GROUP_LOG) and from an append to its group
 * (REC_GROUP_APPEND). Layouts are the writer/reader of records_io.h: a version byte, then
 * fields in a fixed order. Parsing is strict: a record that does not parse is CAIRN_ECORRUPT.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client.h"
#include "group.h"
#include "records_io.h"

#define GROUP_RECORD_VERSION 1

/* Integers are written as u64 and must fit their field when read back, and booleans be 0 or
 * 1, so that a record that parses encodes back to the same bytes. */
static uint64_t r_max(struct reader *r, uint64_t max)
{
	uint64_t v = r_u64(r);
	if (v > max) {
		r->err = CAIRN_ECORRUPT;
		return 0;
	}
	return v;
}

/* Sizes the writer's buffer once: records_io.h grows it by doubling, each step a
 * sodium_malloc (guard pages, mlock), which cost a third of the time of reading a log. */
static void w_reserve(struct writer *w, size_t n)
{
	w->buf = sodium_malloc(n);
	w->cap = w->buf != NULL ? n : 0;
}

#define ROSTER_RESERVE(r) (8 + (size_t)(r).count * (3 * CAIRN_KEY_LEN + 9))

static bool r_bool(struct reader *r)
{
	uint8_t v = r_u8(r);
	if (v > 1)
		r->err = CAIRN_ECORRUPT;
	return v == 1;
}

static void w_log(struct writer *w, const struct group_log_ref *l)
{
	w_str(w, l->relay, CAIRN_ADDRESS_MAX);
	w_bytes(w, l->log_id, CAIRN_LOG_ID_LEN);
	w_bytes(w, l->credential, CAIRN_CREDENTIAL_LEN);
}

static void r_log(struct reader *r, struct group_log_ref *l)
{
	r_str(r, l->relay, CAIRN_ADDRESS_MAX);
	r_bytes(r, l->log_id, CAIRN_LOG_ID_LEN);
	r_bytes(r, l->credential, CAIRN_CREDENTIAL_LEN);
}

static void w_roster(struct writer *w, const struct group_roster *ro)
{
	w_u64(w, ro->count);
	for (uint16_t i = 0; i < ro->count; i++) {
		const struct group_member *m = &ro->member[i];
		w_bytes(w, m->identity, CAIRN_KEY_LEN);
		w_bytes(w, m->sign_key, CAIRN_KEY_LEN);
		w_bytes(w, m->group_key, CAIRN_KEY_LEN);
		w_u64(w, m->key_serial);
		w_u8(w, m->role);
	}
}

/* Members are not checked again here (group_roster_check costs 130 ms at 1,000): the store
 * is authenticated and only ever holds rosters a commit or welcome check passed. */
static void r_roster(struct reader *r, struct group_roster *ro)
{
	uint64_t n = r_u64(r);
	if (n > GROUP_MEMBERS_MAX) {
		r->err = CAIRN_ECORRUPT;
		return;
	}
	ro->count = (uint16_t)n;
	for (uint16_t i = 0; i < ro->count && !r->err; i++) {
		struct group_member *m = &ro->member[i];
		r_bytes(r, m->identity, CAIRN_KEY_LEN);
		r_bytes(r, m->sign_key, CAIRN_KEY_LEN);
		r_bytes(r, m->group_key, CAIRN_KEY_LEN);
		m->key_serial = (uint32_t)r_max(r, UINT32_MAX);
		m->role = r_u8(r);
	}
}

static int encode_main(const void *obj, uint8_t **out, size_t *len)
{
	const struct group_state *g = obj;
	struct writer w = {0};
	w_reserve(&w, 1024 + GROUP_PARTS_KEPT * 8 + ROSTER_RESERVE(g->roster));
	w_u8(&w, GROUP_RECORD_VERSION);
	w_bytes(&w, g->group_id, GROUP_ID_LEN);
	w_bytes(&w, g->conv, RECORD_ID_LEN);
	w_str(&w, g->name, GROUP_NAME_MAX);
	w_u64(&w, g->epoch);
	w_bytes(&w, g->head, GROUP_HEAD_LEN);
	w_u64(&w, g->settings.rotate_seconds);
	w_u64(&w, g->settings.rotate_messages);
	w_u64(&w, g->self);
	w_u8(&w, (uint8_t)(g->removed | g->copied << 1 | g->gap << 2 | g->gone << 3 |
	                   g->bad_commit << 4 | g->has_delete << 5 | g->has_old << 6 |
	                   g->has_old_delete << 7));
	w_u8(&w, g->withheld);
	w_bytes(&w, g->sign_sk, sizeof(g->sign_sk));
	w_u8(&w, g->nkeys);
	for (uint8_t i = 0; i < g->nkeys; i++) {
		w_u64(&w, g->keys[i].key_serial);
		w_bytes(&w, g->keys[i].private_key, CAIRN_KEY_LEN);
	}
	w_log(&w, &g->log);
	w_u64(&w, g->cursor);
	w_bytes(&w, g->delete_secret, CAIRN_CREDENTIAL_LEN);
	w_log(&w, &g->old);
	w_u64(&w, g->old_cursor);
	w_u64(&w, g->old_end);
	w_u64(&w, (uint64_t)g->old_since);
	w_bytes(&w, g->old_delete, CAIRN_CREDENTIAL_LEN);
	w_u64(&w, g->position);
	w_bytes(&w, g->header_key, GROUP_SECRET_LEN);
	w_bytes(&w, g->commit_key, GROUP_SECRET_LEN);
	w_bytes(&w, g->init_secret, GROUP_SECRET_LEN);
	w_u64(&w, (uint64_t)g->epoch_start);
	w_u64(&w, g->epoch_msgs);
	w_u64(&w, g->jitter_s);
	w_u64(&w, g->jitter_msgs);
	w_bytes(&w, g->send_ck, GROUP_SECRET_LEN);
	w_u64(&w, g->send_n);
	w_u64(&w, g->prev_sent);
	w_u8(&w, g->update_sent);
	w_u64(&w, (uint64_t)g->update_at);
	w_u64(&w, (uint64_t)g->last_update_at);
	w_u8(&w, g->has_prev);
	w_u64(&w, g->prev_epoch);
	w_bytes(&w, g->prev_head, GROUP_HEAD_LEN);
	w_bytes(&w, g->prev_header_key, GROUP_SECRET_LEN);
	w_u64(&w, g->prev_reads);
	w_u64(&w, (uint64_t)g->prev_since);
	w_u64(&w, g->prev_end);
	w_u8(&w, g->nparts);
	for (uint8_t i = 0; i < g->nparts; i++)
		w_u64(&w, g->part_seq[i]);
	w_roster(&w, &g->roster);
	return w_finish(&w, out, len);
}

static int parse_main(const uint8_t *in, size_t len, void *obj)
{
	struct group_state *g = obj;
	struct reader r = {.p = in, .left = len};
	if (r_u8(&r) != GROUP_RECORD_VERSION)
		return CAIRN_ECORRUPT;
	r_bytes(&r, g->group_id, GROUP_ID_LEN);
	r_bytes(&r, g->conv, RECORD_ID_LEN);
	r_str(&r, g->name, GROUP_NAME_MAX);
	g->epoch = r_u64(&r);
	r_bytes(&r, g->head, GROUP_HEAD_LEN);
	g->settings.rotate_seconds = (uint32_t)r_max(&r, UINT32_MAX);
	g->settings.rotate_messages = (uint32_t)r_max(&r, UINT32_MAX);
	g->self = (uint16_t)r_max(&r, UINT16_MAX);
	uint8_t f = r_u8(&r);
	g->removed = f & 1;
	g->copied = f >> 1 & 1;
	g->gap = f >> 2 & 1;
	g->gone = f >> 3 & 1;
	g->bad_commit = f >> 4 & 1;
	g->has_delete = f >> 5 & 1;
	g->has_old = f >> 6 & 1;
	g->has_old_delete = f >> 7 & 1;
	g->withheld = r_bool(&r);
	r_bytes(&r, g->sign_sk, sizeof(g->sign_sk));
	g->nkeys = r_u8(&r);
	if (g->nkeys > GROUP_KEYS_MAX)
		return CAIRN_ECORRUPT;
	for (uint8_t i = 0; i < g->nkeys; i++) {
		g->keys[i].key_serial = (uint32_t)r_max(&r, UINT32_MAX);
		r_bytes(&r, g->keys[i].private_key, CAIRN_KEY_LEN);
	}
	r_log(&r, &g->log);
	g->cursor = r_u64(&r);
	r_bytes(&r, g->delete_secret, CAIRN_CREDENTIAL_LEN);
	r_log(&r, &g->old);
	g->old_cursor = r_u64(&r);
	g->old_end = r_u64(&r);
	g->old_since = (int64_t)r_u64(&r);
	r_bytes(&r, g->old_delete, CAIRN_CREDENTIAL_LEN);
	g->position = r_u64(&r);
	r_bytes(&r, g->header_key, GROUP_SECRET_LEN);
	r_bytes(&r, g->commit_key, GROUP_SECRET_LEN);
	r_bytes(&r, g->init_secret, GROUP_SECRET_LEN);
	g->epoch_start = (int64_t)r_u64(&r);
	g->epoch_msgs = (uint32_t)r_max(&r, UINT32_MAX);
	g->jitter_s = (uint32_t)r_max(&r, UINT32_MAX);
	g->jitter_msgs = (uint32_t)r_max(&r, UINT32_MAX);
	r_bytes(&r, g->send_ck, GROUP_SECRET_LEN);
	g->send_n = (uint32_t)r_max(&r, UINT32_MAX);
	g->prev_sent = (uint32_t)r_max(&r, UINT32_MAX);
	g->update_sent = r_bool(&r);
	g->update_at = (int64_t)r_u64(&r);
	g->last_update_at = (int64_t)r_u64(&r);
	g->has_prev = r_bool(&r);
	g->prev_epoch = r_u64(&r);
	r_bytes(&r, g->prev_head, GROUP_HEAD_LEN);
	r_bytes(&r, g->prev_header_key, GROUP_SECRET_LEN);
	g->prev_reads = (uint32_t)r_max(&r, UINT32_MAX);
	g->prev_since = (int64_t)r_u64(&r);
	g->prev_end = r_u64(&r);
	g->nparts = r_u8(&r);
	if (g->nparts > GROUP_PARTS_KEPT)
		return CAIRN_ECORRUPT;
	for (uint8_t i = 0; i < g->nparts; i++)
		g->part_seq[i] = r_u64(&r);
	r_roster(&r, &g->roster);
	if (r_finish(&r) != 0 || g->roster.count == 0 || g->self >= g->roster.count)
		return CAIRN_ECORRUPT;
	return 0;
}

static int encode_epoch(const void *obj, uint8_t **out, size_t *len)
{
	const struct group_state *g = obj;
	struct writer w = {0};
	w_reserve(&w, 32 + (size_t)g->nupd * (24 + CAIRN_KEY_LEN) +
	                  (size_t)g->nleave * CAIRN_KEY_LEN + ROSTER_RESERVE(g->prev_roster));
	w_u8(&w, GROUP_RECORD_VERSION);
	w_u64(&w, g->nupd);
	for (uint16_t i = 0; i < g->nupd; i++) {
		w_u64(&w, g->upd[i].u.index);
		w_u64(&w, g->upd[i].u.key_serial);
		w_bytes(&w, g->upd[i].u.group_key, CAIRN_KEY_LEN);
		w_u64(&w, g->upd[i].seq);
	}
	w_u64(&w, g->nleave);
	for (uint16_t i = 0; i < g->nleave; i++)
		w_bytes(&w, g->leave[i], CAIRN_KEY_LEN);
	w_roster(&w, &g->prev_roster);
	return w_finish(&w, out, len);
}

static int parse_epoch(const uint8_t *in, size_t len, void *obj)
{
	struct group_state *g = obj;
	struct reader r = {.p = in, .left = len};
	if (r_u8(&r) != GROUP_RECORD_VERSION)
		return CAIRN_ECORRUPT;
	uint64_t n = r_u64(&r);
	if (n > GROUP_MEMBERS_MAX)
		return CAIRN_ECORRUPT;
	g->nupd = (uint16_t)n;
	for (uint16_t i = 0; i < g->nupd; i++) {
		g->upd[i].u.index = (uint16_t)r_max(&r, UINT16_MAX);
		g->upd[i].u.key_serial = (uint32_t)r_max(&r, UINT32_MAX);
		r_bytes(&r, g->upd[i].u.group_key, CAIRN_KEY_LEN);
		g->upd[i].seq = r_u64(&r);
	}
	n = r_u64(&r);
	if (n > GROUP_MEMBERS_MAX)
		return CAIRN_ECORRUPT;
	g->nleave = (uint16_t)n;
	for (uint16_t i = 0; i < g->nleave; i++)
		r_bytes(&r, g->leave[i], CAIRN_KEY_LEN);
	r_roster(&r, &g->prev_roster);
	return r_finish(&r);
}

static int encode_chains(const void *obj, uint8_t **out, size_t *len)
{
	const struct group_chains *ch = obj;
	struct writer w = {0};
	w_reserve(&w, 17 + (size_t)ch->count * (GROUP_SECRET_LEN + 8));
	w_u8(&w, GROUP_RECORD_VERSION);
	w_u64(&w, ch->epoch);
	w_u64(&w, ch->count);
	for (uint16_t i = 0; i < ch->count; i++) {
		w_bytes(&w, ch->chain[i].ck, GROUP_SECRET_LEN);
		w_u64(&w, ch->chain[i].next);
	}
	return w_finish(&w, out, len);
}

static int parse_chains(const uint8_t *in, size_t len, void *obj)
{
	struct group_chains *ch = obj;
	struct reader r = {.p = in, .left = len};
	if (r_u8(&r) != GROUP_RECORD_VERSION)
		return CAIRN_ECORRUPT;
	ch->epoch = r_u64(&r);
	uint64_t n = r_u64(&r);
	if (n > GROUP_MEMBERS_MAX)
		return CAIRN_ECORRUPT;
	ch->count = (uint16_t)n;
	for (uint16_t i = 0; i < ch->count; i++) {
		r_bytes(&r, ch->chain[i].ck, GROUP_SECRET_LEN);
		ch->chain[i].next = r_u64(&r);
	}
	return r_finish(&r);
}

static int encode_skipped(const void *obj, uint8_t **out, size_t *len)
{
	const struct group_skipped *s = obj;
	struct writer w = {0};
	w_reserve(&w, 9 + s->count * (24 + GROUP_SECRET_LEN));
	w_u8(&w, GROUP_RECORD_VERSION);
	w_u64(&w, s->count);
	for (size_t i = 0; i < s->count; i++) {
		w_u64(&w, s->key[i].epoch);
		w_u64(&w, s->key[i].n);
		w_u64(&w, s->key[i].sender);
		w_bytes(&w, s->key[i].mk, GROUP_SECRET_LEN);
	}
	return w_finish(&w, out, len);
}

static int parse_skipped(const uint8_t *in, size_t len, void *obj)
{
	struct group_skipped *s = obj;
	struct reader r = {.p = in, .left = len};
	if (r_u8(&r) != GROUP_RECORD_VERSION)
		return CAIRN_ECORRUPT;
	uint64_t n = r_u64(&r);
	if (n > GROUP_SKIPPED_MAX)
		return CAIRN_ECORRUPT;
	s->count = (size_t)n;
	for (size_t i = 0; i < s->count; i++) {
		s->key[i].epoch = r_u64(&r);
		s->key[i].n = (uint32_t)r_max(&r, UINT32_MAX);
		s->key[i].sender = (uint16_t)r_max(&r, UINT16_MAX);
		r_bytes(&r, s->key[i].mk, GROUP_SECRET_LEN);
	}
	return r_finish(&r);
}

/* Reads record (KIND, KEY) and parses it with PARSE into OBJ. */
static int get_parse(struct cairn *c, uint32_t kind, const uint8_t *key, size_t klen,
                     int (*parse)(const uint8_t *, size_t, void *), void *obj)
{
	uint8_t *v = NULL;
	size_t vlen = 0;
	int rc = cstate_get(c->st, kind, key, klen, &v, &vlen);
	if (rc == 0)
		rc = parse(v, vlen, obj);
	cstate_free_value(v, vlen);
	return rc;
}

/* Encodes OBJ with ENCODE and stores it as (KIND, KEY). */
static int encode_put(struct cairn *c, uint32_t kind, const uint8_t *key, size_t klen,
                      int (*encode)(const void *, uint8_t **, size_t *), const void *obj)
{
	uint8_t *v = NULL;
	size_t vlen = 0;
	int rc = encode(obj, &v, &vlen);
	if (rc == 0)
		rc = vlen > CSTATE_VALUE_MAX ? CAIRN_ETOOBIG
		                             : cstate_put(c->st, kind, key, klen, v, vlen);
	if (v != NULL) {
		sodium_memzero(v, vlen);
		free(v);
	}
	return rc;
}

int group_load(struct cairn *c, const uint8_t gid[static GROUP_ID_LEN], struct group_state **out)
{
	*out = NULL;
	struct group_state *g = malloc(sizeof(*g));
	if (g == NULL)
		return CAIRN_ENOMEM;
	memset(g, 0, sizeof(*g));
	uint8_t key[GROUP_ID_LEN + 1];
	memcpy(key, gid, GROUP_ID_LEN);
	int rc = get_parse(c, REC_GROUP, gid, GROUP_ID_LEN, parse_main, g);
	if (rc == 0)
		rc = get_parse(c, REC_GROUP_EPOCH, gid, GROUP_ID_LEN, parse_epoch, g);
	if (rc == 0)
		rc = get_parse(c, REC_GROUP_SKIPPED, gid, GROUP_ID_LEN, parse_skipped, &g->skipped);
	key[GROUP_ID_LEN] = 0;
	if (rc == 0)
		rc = get_parse(c, REC_GROUP_CHAINS, key, sizeof(key), parse_chains, &g->chains);
	key[GROUP_ID_LEN] = 1;
	if (rc == 0 && g->has_prev)
		rc =
		    get_parse(c, REC_GROUP_CHAINS, key, sizeof(key), parse_chains, &g->prev_chains);
	if (rc != 0) {
		group_free(g);
		return rc == CAIRN_ENOTFOUND || rc == CAIRN_ENOMEM ? rc : CAIRN_ECORRUPT;
	}
	*out = g;
	return 0;
}

int group_store(struct cairn *c, const struct group_state *g)
{
	uint8_t key[GROUP_ID_LEN + 1];
	memcpy(key, g->group_id, GROUP_ID_LEN);
	int rc = encode_put(c, REC_GROUP, g->group_id, GROUP_ID_LEN, encode_main, g);
	if (rc == 0)
		rc = encode_put(c, REC_GROUP_EPOCH, g->group_id, GROUP_ID_LEN, encode_epoch, g);
	if (rc == 0)
		rc = encode_put(c, REC_GROUP_SKIPPED, g->group_id, GROUP_ID_LEN, encode_skipped,
		                &g->skipped);
	key[GROUP_ID_LEN] = 0;
	if (rc == 0)
		rc = encode_put(c, REC_GROUP_CHAINS, key, sizeof(key), encode_chains, &g->chains);
	key[GROUP_ID_LEN] = 1;
	if (rc == 0 && g->has_prev)
		rc = encode_put(c, REC_GROUP_CHAINS, key, sizeof(key), encode_chains,
		                &g->prev_chains);
	else if (rc == 0)
		rc = cstate_del(c->st, REC_GROUP_CHAINS, key, sizeof(key));
	return rc;
}

int group_txn_load(struct cairn *c, const uint8_t gid[static GROUP_ID_LEN], struct group_state **g)
{
	int rc = cstate_begin(c->st);
	if (rc != 0)
		return rc;
	rc = group_load(c, gid, g);
	if (rc != 0)
		cstate_rollback(c->st);
	return rc;
}

int group_txn_end(struct cairn *c, struct group_state *g, int rc)
{
	if (rc == 0)
		rc = group_store(c, g);
	if (rc == 0)
		rc = cstate_commit(c->st);
	else
		cstate_rollback(c->st);
	group_free(g);
	return rc;
}

void group_free(struct group_state *g)
{
	if (g != NULL) {
		/* Plain heap, wiped here: sodium_malloc's guard pages and mlock cost a few
		 * system calls per entry read, for 400 KB that live a few milliseconds. */
		sodium_memzero(g, sizeof(*g));
		free(g);
	}
}

/* ---- our pending commit ---- */

static int encode_pending(const void *obj, uint8_t **out, size_t *len)
{
	const struct group_pending *p = obj;
	struct writer w = {0};
	w_u8(&w, GROUP_RECORD_VERSION);
	w_u64(&w, p->epoch);
	w_bytes(&w, p->commit_id, GROUP_COMMIT_ID_LEN);
	w_bytes(&w, p->commit_secret, GROUP_SECRET_LEN);
	w_u8(&w, p->nreq);
	for (uint8_t i = 0; i < p->nreq; i++) {
		const struct group_request *q = &p->req[i];
		w_u8(&w, q->kind);
		w_u8(&w, q->role);
		w_bytes(&w, q->identity, CAIRN_KEY_LEN);
		w_bytes(&w, q->sign_key, CAIRN_KEY_LEN);
		w_bytes(&w, q->group_key, CAIRN_KEY_LEN);
		w_u64(&w, q->settings.rotate_seconds);
		w_u64(&w, q->settings.rotate_messages);
	}
	w_u8(&w, p->moves);
	w_log(&w, &p->to);
	w_bytes(&w, p->to_delete, CAIRN_CREDENTIAL_LEN);
	w_u64(&w, p->last_part_seq);
	w_u8(&w, p->nentries);
	for (uint8_t i = 0; i < p->nentries; i++) {
		w_var(&w, p->entry[i], p->entry_len[i]);
		w_bytes(&w, p->out_id[i], 16);
	}
	return w_finish(&w, out, len);
}

static int parse_pending(const uint8_t *in, size_t len, void *obj)
{
	struct group_pending *p = obj;
	struct reader r = {.p = in, .left = len};
	memset(p, 0, sizeof(*p));
	if (r_u8(&r) != GROUP_RECORD_VERSION)
		return CAIRN_ECORRUPT;
	p->epoch = r_u64(&r);
	r_bytes(&r, p->commit_id, GROUP_COMMIT_ID_LEN);
	r_bytes(&r, p->commit_secret, GROUP_SECRET_LEN);
	p->nreq = r_u8(&r); /* at most 255 = GROUP_REQUESTS_MAX */
	for (uint8_t i = 0; i < p->nreq; i++) {
		struct group_request *q = &p->req[i];
		q->kind = r_u8(&r);
		q->role = r_u8(&r);
		r_bytes(&r, q->identity, CAIRN_KEY_LEN);
		r_bytes(&r, q->sign_key, CAIRN_KEY_LEN);
		r_bytes(&r, q->group_key, CAIRN_KEY_LEN);
		q->settings.rotate_seconds = (uint32_t)r_max(&r, UINT32_MAX);
		q->settings.rotate_messages = (uint32_t)r_max(&r, UINT32_MAX);
	}
	p->moves = r_bool(&r);
	r_log(&r, &p->to);
	r_bytes(&r, p->to_delete, CAIRN_CREDENTIAL_LEN);
	p->last_part_seq = r_u64(&r);
	p->nentries = r_u8(&r);
	if (p->nentries > GROUP_PARTS_MAX)
		return CAIRN_ECORRUPT;
	for (uint8_t i = 0; i < p->nentries && !r.err; i++) {
		size_t n;
		const uint8_t *e = r_var(&r, CAIRN_LOG_ENTRY_MAX, &n);
		if (e == NULL || (p->entry[i] = malloc(n ? n : 1)) == NULL) {
			group_pending_wipe(p);
			return e == NULL ? CAIRN_ECORRUPT : CAIRN_ENOMEM;
		}
		memcpy(p->entry[i], e, n);
		p->entry_len[i] = n;
		r_bytes(&r, p->out_id[i], 16);
	}
	int rc = r_finish(&r);
	if (rc != 0)
		group_pending_wipe(p);
	return rc;
}

int group_pending_load(struct cairn *c, const uint8_t gid[static GROUP_ID_LEN],
                       struct group_pending *p)
{
	memset(p, 0, sizeof(*p));
	return get_parse(c, REC_GROUP_PENDING, gid, GROUP_ID_LEN, parse_pending, p);
}

int group_pending_store(struct cairn *c, const uint8_t gid[static GROUP_ID_LEN],
                        const struct group_pending *p)
{
	return encode_put(c, REC_GROUP_PENDING, gid, GROUP_ID_LEN, encode_pending, p);
}

int group_pending_del(struct cairn *c, const uint8_t gid[static GROUP_ID_LEN])
{
	return cstate_del(c->st, REC_GROUP_PENDING, gid, GROUP_ID_LEN);
}

void group_pending_wipe(struct group_pending *p)
{
	for (uint8_t i = 0; i < p->nentries && i < GROUP_PARTS_MAX; i++)
		free(p->entry[i]);
	sodium_memzero(p, sizeof(*p));
}

/* ---- indexes ---- */

int group_by_log(struct cairn *c, const uint8_t log_id[static CAIRN_LOG_ID_LEN],
                 uint8_t gid[static GROUP_ID_LEN])
{
	uint8_t *v = NULL;
	size_t vlen = 0;
	int rc = cstate_get(c->st, REC_GROUP_LOG, log_id, CAIRN_LOG_ID_LEN, &v, &vlen);
	if (rc == 0 && vlen != GROUP_ID_LEN)
		rc = CAIRN_ECORRUPT;
	if (rc == 0)
		memcpy(gid, v, GROUP_ID_LEN);
	cstate_free_value(v, vlen);
	return rc;
}

int group_log_bind(struct cairn *c, const uint8_t log_id[static CAIRN_LOG_ID_LEN],
                   const uint8_t gid[static GROUP_ID_LEN])
{
	return cstate_put(c->st, REC_GROUP_LOG, log_id, CAIRN_LOG_ID_LEN, gid, GROUP_ID_LEN);
}

int group_append_note(struct cairn *c, const uint8_t out_id[16],
                      const uint8_t gid[static GROUP_ID_LEN], uint8_t what)
{
	uint8_t v[GROUP_ID_LEN + 1];
	memcpy(v, gid, GROUP_ID_LEN);
	v[GROUP_ID_LEN] = what;
	return cstate_put(c->st, REC_GROUP_APPEND, out_id, 16, v, sizeof(v));
}

/* One group's record for group_each: parsed into the caller's scratch state. */
struct each_ctx {
	struct group_state *g;
	int (*cb)(void *ctx, const struct group_state *g);
	void *ctx;
};

static int each_one(void *ctx, const uint8_t *value, size_t vlen)
{
	struct each_ctx *e = ctx;
	memset(e->g, 0, sizeof(*e->g));
	if (parse_main(value, vlen, e->g) != 0)
		return 0; /* a damaged group is skipped, not the others */
	return e->cb(e->ctx, e->g);
}

int group_each(struct cairn *c, int (*cb)(void *ctx, const struct group_state *g), void *ctx)
{
	struct each_ctx e = {.g = malloc(sizeof(struct group_state)), .cb = cb, .ctx = ctx};
	if (e.g == NULL)
		return CAIRN_ENOMEM;
	int rc = cstate_list(c->st, REC_GROUP, each_one, &e);
	group_free(e.g);
	return rc;
}

/* The layouts by kind, for the fuzz target and the tests. */
static const struct {
	uint32_t kind;
	int (*parse)(const uint8_t *, size_t, void *);
	int (*encode)(const void *, uint8_t **, size_t *);
} layouts[] = {
    {REC_GROUP, parse_main, encode_main},
    {REC_GROUP_EPOCH, parse_epoch, encode_epoch},
    {REC_GROUP_CHAINS, parse_chains, encode_chains},
    {REC_GROUP_SKIPPED, parse_skipped, encode_skipped},
    {REC_GROUP_PENDING, parse_pending, encode_pending},
};

int group_record_parse(uint32_t kind, const uint8_t *in, size_t len, void *obj)
{
	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++)
		if (layouts[i].kind == kind)
			return layouts[i].parse(in, len, obj);
	return CAIRN_EINVAL;
}

int group_record_encode(uint32_t kind, const void *obj, uint8_t **out, size_t *len)
{
	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++)
		if (layouts[i].kind == kind)
			return layouts[i].encode(obj, out, len);
	return CAIRN_EINVAL;
}

int group_grow(void **p, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return 0;
	size_t want = *cap ? 2 * *cap : 8;
	void *q = realloc(*p, want * size);
	if (q == NULL)
		return CAIRN_ENOMEM;
	*p = q;
	*cap = want;
	return 0;
}
