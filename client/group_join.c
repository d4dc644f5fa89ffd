/* SPDX-License-Identifier: MIT */
/*
 * Joining a group (PROTOCOL.md 9.8), the joiner's side: fresh keys for a join (kept, sealed,
 * until the welcome that answers it), and entering the group from a welcome after the checks
 * of 9.8 (the roster valid, our own entry at `index` with our identity, the join's keys and
 * serial 0). The welcome's epoch secret gives the epoch's keys and is wiped at once.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client.h"
#include "group.h"

/* REC_GROUP_JOINING: sign secret (64) || group key private (32) || sign key || group key. */
#define JOINING_LEN (64 + 3 * CAIRN_KEY_LEN)

int group_join_make(struct cairn *c, const uint8_t gid[static GROUP_ID_LEN],
                    uint8_t out[static GROUP_JOIN_LEN])
{
	uint8_t rec[JOINING_LEN], seed[32];
	struct group_join j;
	memcpy(j.group_id, gid, GROUP_ID_LEN);
	client_random(c, seed, sizeof(seed));
	crypto_sign_seed_keypair(j.sign_key, rec, seed);
	group_x25519_keypair(c, j.group_key, rec + 64);
	memcpy(rec + 64 + CAIRN_KEY_LEN, j.sign_key, CAIRN_KEY_LEN);
	memcpy(rec + 64 + 2 * CAIRN_KEY_LEN, j.group_key, CAIRN_KEY_LEN);
	size_t len = 0;
	int rc = group_join_encode(&j, out, GROUP_JOIN_LEN, &len);
	if (rc == 0)
		rc = cstate_put(c->st, REC_GROUP_JOINING, gid, GROUP_ID_LEN, rec, sizeof(rec));
	if (rc == 0)
		rc = group_joining_note(c, gid);
	sodium_memzero(rec, sizeof(rec));
	sodium_memzero(seed, sizeof(seed));
	return rc;
}

/* Builds G from welcome W and the keys of our join REC; the roster is decoded into NEXT. */
static int enter_welcome(struct cairn *c, const struct group_welcome *w, const uint8_t *rec,
                         struct group_next *next, struct group_state *g)
{
	int rc = group_roster_decode(w->roster, w->roster_len, &next->roster);
	if (rc != 0)
		return rc;
	const struct group_member *m = &next->roster.member[w->index];
	if (sodium_memcmp(m->identity, c->identity_pk, CAIRN_KEY_LEN) != 0 ||
	    sodium_memcmp(m->sign_key, rec + 64 + CAIRN_KEY_LEN, CAIRN_KEY_LEN) != 0 ||
	    sodium_memcmp(m->group_key, rec + 64 + 2 * CAIRN_KEY_LEN, CAIRN_KEY_LEN) != 0 ||
	    m->key_serial != 0)
		return CAIRN_EINVAL; /* not the join we sent */
	uint8_t ctx[GROUP_CTX_LEN];
	group_ctx(w->group_id, w->epoch, w->head, ctx);
	group_epoch_keys(w->epoch_secret, ctx, &next->keys);
	next->has_secret = true;
	next->epoch = w->epoch;
	memcpy(next->head, w->head, GROUP_HEAD_LEN);
	next->settings.rotate_seconds = w->rotate_seconds;
	next->settings.rotate_messages = w->rotate_messages;
	memcpy(g->group_id, w->group_id, GROUP_ID_LEN);
	memcpy(g->name, w->name, sizeof(g->name));
	memcpy(g->sign_sk, rec, 64);
	g->keys[0].key_serial = 0;
	memcpy(g->keys[0].private_key, rec + 64, CAIRN_KEY_LEN);
	g->nkeys = 1;
	memcpy(g->log.relay, w->location.relay, sizeof(g->log.relay));
	memcpy(g->log.log_id, w->location.log_id, CAIRN_LOG_ID_LEN);
	memcpy(g->log.credential, w->location.credential, CAIRN_CREDENTIAL_LEN);
	/* We read from commit_seq + 1; the commit that began the epoch is at commit_seq in
	 * this log, or began it elsewhere (0: the log moved). */
	g->cursor = w->commit_seq;
	g->position = w->commit_seq;
	rc = group_enter(c, g, next, w->index);
	if (rc == 0)
		rc = group_log_bind(c, g->log.log_id, g->group_id);
	if (rc == 0)
		rc = group_conversation_new(c, g);
	return rc;
}

int group_join_welcome(struct cairn *c, const uint8_t *data, size_t len)
{
	struct group_welcome w;
	int rc = group_welcome_decode(data, len, &w);
	if (rc != 0)
		return rc;
	struct group_state *g = malloc(sizeof(*g));
	struct group_next *next = malloc(sizeof(*next));
	uint8_t *rec = NULL;
	size_t rlen = 0;
	rc = g && next ? cstate_begin(c->st) : CAIRN_ENOMEM;
	if (rc != 0)
		goto out;
	memset(g, 0, sizeof(*g));
	memset(next, 0, sizeof(*next));
	rc = cstate_get(c->st, REC_GROUP_JOINING, w.group_id, GROUP_ID_LEN, &rec, &rlen);
	if (rc == 0 && rlen != JOINING_LEN)
		rc = CAIRN_ECORRUPT;
	if (rc == 0)
		rc = enter_welcome(c, &w, rec, next, g);
	if (rc == 0)
		rc = group_store(c, g);
	if (rc == 0)
		rc = cstate_del(c->st, REC_GROUP_JOINING, w.group_id, GROUP_ID_LEN);
	if (rc == 0)
		rc = cstate_commit(c->st);
	else
		cstate_rollback(c->st);
out:
	cstate_free_value(rec, rlen);
	group_welcome_clear(&w);
	if (next != NULL) {
		group_next_wipe(next);
		free(next); /* wiped by group_next_wipe */
	}
	group_free(g);
	return rc;
}

/* ---- joins we sent that no welcome answers --------------------------------------------- */

#define JOINING_AT_LEN (GROUP_ID_LEN + 8)

int group_joining_note(struct cairn *c, const uint8_t gid[static GROUP_ID_LEN])
{
	uint8_t v[JOINING_AT_LEN];
	memcpy(v, gid, GROUP_ID_LEN);
	group_put_u64(v + GROUP_ID_LEN, (uint64_t)client_now_s(c));
	return cstate_put(c->st, REC_GROUP_JOINING_AT, gid, GROUP_ID_LEN, v, sizeof(v));
}

struct joining {
	size_t n, cap;
	uint8_t (*v)[JOINING_AT_LEN];
};

static int collect_joining(void *ctx, const uint8_t *v, size_t len)
{
	struct joining *j = ctx;
	if (len != JOINING_AT_LEN)
		return 0;
	if (group_grow((void **)&j->v, &j->cap, j->n, sizeof(*j->v)) != 0)
		return CAIRN_ENOMEM;
	memcpy(j->v[j->n++], v, JOINING_AT_LEN);
	return 0;
}

static uint64_t joining_at(const uint8_t v[JOINING_AT_LEN])
{
	return group_get_u64(v + GROUP_ID_LEN);
}

/* Whether record (KIND, GID) exists: 1, 0, or a negative code. */
static int joining_has(struct cairn *c, uint32_t kind, const uint8_t gid[GROUP_ID_LEN],
                       uint8_t out[JOINING_AT_LEN])
{
	uint8_t *v = NULL;
	size_t len = 0;
	int rc = cstate_get(c->st, kind, gid, GROUP_ID_LEN, &v, &len);
	if (rc == 0 && out != NULL && len == JOINING_AT_LEN)
		memcpy(out, v, JOINING_AT_LEN);
	cstate_free_value(v, len);
	return rc == 0 ? 1 : rc == CAIRN_ENOTFOUND ? 0 : rc;
}

/* The join of GID, under the write lock: its note removed once a welcome answered it; the
 * join and its note removed once older than GROUP_LOG_TTL. */
static int sweep_one(struct cairn *c, const uint8_t gid[GROUP_ID_LEN], int64_t now)
{
	uint8_t note[JOINING_AT_LEN];
	int rc = cstate_begin(c->st);
	if (rc != 0)
		return rc;
	int has_note = joining_has(c, REC_GROUP_JOINING_AT, gid, note);
	int has_join = has_note == 1 ? joining_has(c, REC_GROUP_JOINING, gid, NULL) : 0;
	rc = has_note < 0 ? has_note : has_join < 0 ? has_join : 0;
	bool young = has_note == 1 && now - (int64_t)joining_at(note) <= GROUP_LOG_TTL;
	if (rc == 0 && has_join == 1 && young) {
		cstate_rollback(c->st); /* a new join meanwhile */
		return 0;
	}
	if (rc == 0 && has_join == 1)
		rc = cstate_del(c->st, REC_GROUP_JOINING, gid, GROUP_ID_LEN);
	if (rc == 0 && has_note == 1)
		rc = cstate_del(c->st, REC_GROUP_JOINING_AT, gid, GROUP_ID_LEN);
	if (rc == 0)
		return cstate_commit(c->st);
	cstate_rollback(c->st);
	return rc;
}

/*
 * A join we sent (its keys in REC_GROUP_JOINING) lives until its welcome, or GROUP_LOG_TTL:
 * by then the admin is gone or the group's log has expired, and the keys, which are secrets,
 * should not stay on the device for nothing. The note of a join a welcome answered is removed
 * here too. Joins of the previous version have no note and stay as they were. A join waiting
 * for its welcome costs one read per tick, no write lock.
 */
int group_joining_sweep(struct cairn *c)
{
	struct joining j = {0};
	int rc = cstate_list(c->st, REC_GROUP_JOINING_AT, collect_joining, &j);
	if (rc > 0)
		rc = 0;
	int64_t now = client_now_s(c);
	for (size_t i = 0; i < j.n && rc == 0; i++) {
		bool young = now - (int64_t)joining_at(j.v[i]) <= GROUP_LOG_TTL;
		rc = joining_has(c, REC_GROUP_JOINING, j.v[i], NULL);
		if (rc >= 0 && !(rc == 1 && young))
			rc = sweep_one(c, j.v[i], now);
		else if (rc == 1)
			rc = 0;
	}
	free(j.v);
	return rc;
}
