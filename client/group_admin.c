/* SPDX-License-Identifier: MIT */
/*
 * Committing as an admin (PROTOCOL.md 9.5, 9.7): changes asked by identity turned into the
 * changes of one commit against the roster as it is when the commit is made (so that a
 * commit made again after losing a race drops what the winner did), the move to a fresh log
 * that every removal brings, and the commit's parts queued with the commit stored as pending
 * in the same transaction (9.5 "Crashes": its entries and commit_secret are durable before
 * the first part goes). The epoch it leads to is entered when the commit is read back from
 * the log like anyone's (group_recv.c), opened with the stored commit_secret. Also the
 * welcomes of the members a commit of ours added.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client.h"
#include "group.h"

int group_post_commit(struct cairn *c, const struct group_state *g,
                      const struct group_epoch_keys *k, const uint8_t ctx[static GROUP_CTX_LEN],
                      const uint8_t *commit, size_t len,
                      const uint8_t commit_id[static GROUP_COMMIT_ID_LEN], uint8_t what,
                      struct group_pending *p)
{
	unsigned count = group_commit_part_count(len);
	if (count == 0)
		return CAIRN_ETOOBIG;
	uint8_t *content = malloc(GROUP_PART_CONTENT_MAX + GROUP_ENTRY_MAX);
	if (content == NULL)
		return CAIRN_ENOMEM;
	uint8_t *entry = content + GROUP_PART_CONTENT_MAX;
	int rc = 0;
	for (unsigned i = 0; i < count && rc == 0; i++) {
		uint8_t hnonce[GROUP_NONCE_LEN], out_id[16];
		size_t clen = 0, elen = 0;
		client_random(c, hnonce, sizeof(hnonce));
		rc = group_commit_part(commit, len, i, commit_id, ctx, g->sign_sk, content,
		                       GROUP_PART_CONTENT_MAX, &clen);
		if (rc == 0)
			rc = group_part_seal(k, hnonce, g->self, i, content, clen, entry,
			                     GROUP_ENTRY_MAX, &elen);
		if (rc == 0)
			rc = group_out_append(c, &g->log, entry, elen, out_id);
		if (rc == 0)
			rc = group_append_note(c, out_id, g->group_id, i + 1 < count ? 1 : what);
		if (rc == 0 && p != NULL) {
			if ((p->entry[i] = malloc(elen)) == NULL) {
				rc = CAIRN_ENOMEM;
				break;
			}
			memcpy(p->entry[i], entry, elen);
			p->entry_len[i] = elen;
			memcpy(p->out_id[i], out_id, 16);
			p->nentries = (uint8_t)(i + 1);
		}
	}
	free(content);
	return rc;
}

/* Appends request Q to P unless it is there already. */
static void add_request(struct group_pending *p, const struct group_request *q)
{
	for (uint8_t i = 0; i < p->nreq; i++)
		if (p->req[i].kind == q->kind &&
		    memcmp(p->req[i].identity, q->identity, CAIRN_KEY_LEN) == 0)
			return;
	if (p->nreq < GROUP_REQUESTS_MAX)
		p->req[p->nreq++] = *q;
}

/* Turns P's requests into changes CH (*N) against ROSTER (a scratch copy, changed): what the
 * roster already says (an add of a member, a removal of a non-member) is dropped. Returns
 * whether a removal is among them. */
static bool make_changes(const struct group_pending *p, struct group_roster *t,
                         struct group_change *ch, unsigned *n)
{
	bool removes = false;
	*n = 0;
	for (uint8_t i = 0; i < p->nreq; i++) {
		const struct group_request *q = &p->req[i];
		int idx = group_roster_find(t, q->identity);
		struct group_change x = {.kind = q->kind, .role = q->role};
		if (q->kind == GROUP_CHANGE_ADD) {
			if ((idx >= 0 && sodium_memcmp(t->member[idx].sign_key, q->sign_key,
			                               CAIRN_KEY_LEN) == 0) ||
			    t->count >= GROUP_MEMBERS_MAX)
				continue; /* in already, with these keys (a winner added it) */
			if (idx >= 0 && *n + 1 < GROUP_CHANGES_MAX) {
				/* 9.8: a member joining again (state lost or copied) with fresh
				 * keys: its old entry goes in the same commit, which moves. */
				struct group_change r = {.kind = GROUP_CHANGE_REMOVE,
				                         .index = (uint16_t)idx};
				ch[(*n)++] = r;
				memmove(&t->member[idx], &t->member[idx + 1],
				        (size_t)(t->count - idx - 1) * sizeof(t->member[0]));
				t->count--;
				removes = true;
			} else if (idx >= 0) {
				continue;
			}
			memcpy(x.identity, q->identity, CAIRN_KEY_LEN);
			memcpy(x.sign_key, q->sign_key, CAIRN_KEY_LEN);
			memcpy(x.group_key, q->group_key, CAIRN_KEY_LEN);
			struct group_member *m = &t->member[t->count++];
			memset(m, 0, sizeof(*m));
			memcpy(m->identity, q->identity, CAIRN_KEY_LEN);
			memcpy(m->sign_key, q->sign_key, CAIRN_KEY_LEN);
		} else if (q->kind == GROUP_CHANGE_REMOVE || q->kind == GROUP_CHANGE_ROLE) {
			if (idx < 0)
				continue;
			x.index = (uint16_t)idx;
			if (q->kind == GROUP_CHANGE_REMOVE) {
				memmove(&t->member[idx], &t->member[idx + 1],
				        (size_t)(t->count - idx - 1) * sizeof(t->member[0]));
				t->count--;
				removes = true;
			}
		} else if (q->kind == GROUP_CHANGE_SETTINGS) {
			x.settings = q->settings;
		} else {
			continue;
		}
		if (*n < GROUP_CHANGES_MAX)
			ch[(*n)++] = x;
	}
	return removes;
}

/* Builds and queues the commit of P's requests on G's epoch; P gets its id, secret, move and
 * entries. Returns 1 if a commit was queued, 0 if nothing was left to change (and REQUIRED
 * was not set), or a negative code. */
static int build_post(struct cairn *c, struct group_state *g, struct group_pending *p,
                      bool required)
{
	struct group_roster *t = malloc(sizeof(*t));
	struct group_change *ch = malloc(GROUP_CHANGES_MAX * sizeof(*ch));
	struct group_counted_update *upd = malloc((g->nupd + 1) * sizeof(*upd));
	struct group_next *next = malloc(sizeof(*next));
	uint8_t *buf = malloc(GROUP_COMMIT_MAX_LEN);
	int rc = t && ch && upd && next && buf ? 0 : CAIRN_ENOMEM;
	unsigned n = 0;
	bool removes = false;
	if (rc == 0) {
		memcpy(t, &g->roster, sizeof(*t));
		removes = make_changes(p, t, ch, &n);
		if (n == 0 && !required)
			rc = 1; /* nothing left: the winner did it all */
	}
	uint8_t loc[GROUP_LOCATION_MAX];
	size_t loclen = 0;
	if (rc == 0 && removes) {
		/* 9.7: a fresh log, id, credential and delete secret, on the same relay. */
		struct group_location l;
		memset(&l, 0, sizeof(l));
		p->moves = true;
		memcpy(p->to.relay, g->log.relay, sizeof(p->to.relay));
		client_random(c, p->to.log_id, CAIRN_LOG_ID_LEN);
		client_random(c, p->to.credential, CAIRN_CREDENTIAL_LEN);
		client_random(c, p->to_delete, CAIRN_CREDENTIAL_LEN);
		memcpy(l.relay, p->to.relay, sizeof(l.relay));
		memcpy(l.log_id, p->to.log_id, CAIRN_LOG_ID_LEN);
		memcpy(l.credential, p->to.credential, CAIRN_CREDENTIAL_LEN);
		rc = group_location_encode(&l, loc, sizeof(loc), &loclen);
		sodium_memzero(&l, sizeof(l));
		if (rc == 0)
			rc = group_out_create(c, &p->to, p->to_delete);
		if (rc == 0)
			rc = group_log_bind(c, p->to.log_id, g->group_id);
	}
	uint8_t eph[CAIRN_KEY_LEN];
	size_t clen = 0;
	if (rc == 0) {
		for (uint16_t i = 0; i < g->nupd; i++)
			upd[i] = g->upd[i].u;
		struct group_base base = {
		    .epoch = g->epoch, .settings = g->settings, .roster = &g->roster};
		memcpy(base.group_id, g->group_id, GROUP_ID_LEN);
		memcpy(base.head, g->head, GROUP_HEAD_LEN);
		memcpy(base.init_secret, g->init_secret, GROUP_SECRET_LEN);
		client_random(c, p->commit_secret, GROUP_SECRET_LEN);
		client_random(c, eph, sizeof(eph));
		client_random(c, p->commit_id, GROUP_COMMIT_ID_LEN);
		p->epoch = g->epoch + 1;
		struct group_commit_request req = {
		    .committer = g->self,
		    .sign_secret = g->sign_sk,
		    /* Every update we counted came at or before our cursor; the genesis's
		     * position may be known (appended) before we read it back. */
		    .last_seq = g->cursor > g->position ? g->cursor : g->position,
		    .changes = ch,
		    .change_count = n,
		    .updates = upd,
		    .update_count = g->nupd,
		    .location = removes ? loc : NULL,
		    .location_len = loclen,
		    .commit_secret = p->commit_secret,
		    .eph_private = eph};
		rc = group_commit_build(&base, &req, buf, GROUP_COMMIT_MAX_LEN, &clen, next);
		sodium_memzero(&base, sizeof(base));
		sodium_memzero(eph, sizeof(eph));
	}
	if (rc == 0) {
		/* The epoch is entered when the commit is read back; NEXT is not kept. */
		struct group_epoch_keys k;
		memset(&k, 0, sizeof(k));
		memcpy(k.header_key, g->header_key, GROUP_SECRET_LEN);
		memcpy(k.commit_key, g->commit_key, GROUP_SECRET_LEN);
		uint8_t ctx[GROUP_CTX_LEN];
		group_state_ctx(g, ctx);
		rc = group_post_commit(c, g, &k, ctx, buf, clen, p->commit_id, 4, p);
		sodium_memzero(&k, sizeof(k));
	}
	if (rc == 0)
		rc = group_pending_store(c, g->group_id, p);
	if (next != NULL) {
		group_next_wipe(next);
		free(next); /* wiped by group_next_wipe */
	}
	sodium_memzero(loc, sizeof(loc));
	free(t);
	free(ch);
	free(upd);
	free(buf);
	return rc == 0 ? 1 : rc == 1 ? 0 : rc;
}

int group_commit_in(struct cairn *c, struct group_state *g, const struct group_request *req,
                    unsigned n)
{
	if (g->removed)
		return CAIRN_ESTATE;
	if (g->roster.member[g->self].role != GROUP_ROLE_ADMIN)
		return CAIRN_EDENIED;
	if (n > GROUP_REQUESTS_MAX)
		return CAIRN_ETOOBIG;
	struct group_pending *p = malloc(sizeof(*p));
	if (p == NULL)
		return CAIRN_ENOMEM;
	int rc = group_pending_load(c, g->group_id, p);
	if (rc == 0) {
		group_pending_wipe(p);
		free(p);
		return CAIRN_EEXIST; /* one commit of ours at a time */
	}
	if (rc != CAIRN_ENOTFOUND) {
		free(p);
		return rc;
	}
	memset(p, 0, sizeof(*p));
	for (unsigned i = 0; i < n; i++)
		add_request(p, &req[i]);
	for (uint16_t i = 0; i < g->nleave; i++) {
		struct group_request q = {.kind = GROUP_CHANGE_REMOVE};
		memcpy(q.identity, g->leave[i], CAIRN_KEY_LEN);
		add_request(p, &q);
	}
	rc = build_post(c, g, p, true);
	group_pending_wipe(p);
	free(p);
	return rc < 0 ? rc : 0;
}

/* Re-commits what our pending commit P asked, on the epoch G has just entered (9.5 "Two
 * admins at once"). Called by group_recv.c after another commit won; P is consumed. */
int group_recommit(struct cairn *c, struct group_state *g, struct group_pending *p)
{
	struct group_pending *q = malloc(sizeof(*q));
	if (q == NULL)
		return CAIRN_ENOMEM;
	memset(q, 0, sizeof(*q));
	q->nreq = p->nreq;
	memcpy(q->req, p->req, sizeof(q->req));
	int rc = g->removed || g->roster.member[g->self].role != GROUP_ROLE_ADMIN
	             ? 0
	             : build_post(c, g, q, false);
	group_pending_wipe(q);
	free(q);
	return rc < 0 ? rc : 0;
}

int group_commit(struct cairn *c, const uint8_t gid[static GROUP_ID_LEN],
                 const struct group_request *req, unsigned n)
{
	struct group_state *g = NULL;
	int rc = group_txn_load(c, gid, &g);
	return rc != 0 ? rc : group_txn_end(c, g, group_commit_in(c, g, req, n));
}

/* ---- offers and joins, the admin's side (9.8) ---- */

int group_offer_note(struct cairn *c, const uint8_t gid[static GROUP_ID_LEN],
                     const uint8_t identity[static CAIRN_KEY_LEN])
{
	uint8_t key[GROUP_MEMBER_KEY_LEN], one = 1;
	group_member_key(key, gid, identity);
	return cstate_put(c->st, REC_GROUP_OFFER, key, sizeof(key), &one, 1);
}

int group_offer_make(struct cairn *c, const uint8_t gid[static GROUP_ID_LEN],
                     const uint8_t identity[static CAIRN_KEY_LEN],
                     uint8_t out[static GROUP_OFFER_MAX], size_t *len)
{
	struct group_state *g = NULL;
	int rc = group_txn_load(c, gid, &g);
	if (rc != 0)
		return rc;
	struct group_offer o;
	memcpy(o.group_id, gid, GROUP_ID_LEN);
	memcpy(o.name, g->name, sizeof(o.name));
	rc = g->removed || g->roster.member[g->self].role != GROUP_ROLE_ADMIN ? CAIRN_EDENIED : 0;
	if (rc == 0)
		rc = group_offer_encode(&o, out, GROUP_OFFER_MAX, len);
	if (rc == 0)
		rc = group_offer_note(c, gid, identity);
	return group_txn_end(c, g, rc);
}

/* Whether join J from IDENTITY may be committed in G: it answers an offer of ours (a kept
 * join is one too) and its keys would not spoil our commit. 0, CAIRN_ENOTFOUND, CAIRN_EINVAL
 * or a store error. */
static int join_ok(struct cairn *c, const struct group_state *g, const struct group_join *j,
                   const uint8_t identity[CAIRN_KEY_LEN])
{
	if (sodium_memcmp(j->group_id, g->group_id, GROUP_ID_LEN) != 0)
		return CAIRN_ENOTFOUND; /* another group's join */
	uint8_t key[GROUP_MEMBER_KEY_LEN];
	group_member_key(key, j->group_id, identity);
	uint8_t *v = NULL;
	size_t vlen = 0;
	int rc = cstate_get(c->st, REC_GROUP_OFFER, key, sizeof(key), &v, &vlen);
	cstate_free_value(v, vlen);
	if (rc == 0 && (!group_ed25519_key_ok(j->sign_key) || !group_x25519_key_ok(j->group_key)))
		rc = CAIRN_EINVAL; /* would make our commit invalid (9.2) */
	return rc;
}

int group_joins_accept(struct cairn *c, const uint8_t gid[static GROUP_ID_LEN],
                       const struct group_join_in *in, unsigned n, int *verdict)
{
	if (n > GROUP_REQUESTS_MAX)
		return CAIRN_ETOOBIG;
	struct group_state *g = NULL;
	int rc = group_txn_load(c, gid, &g);
	if (rc != 0)
		return rc;
	struct group_request *q = calloc(n ? n : 1, sizeof(*q));
	if (q == NULL)
		return group_txn_end(c, g, CAIRN_ENOMEM);
	unsigned nq = 0;
	for (unsigned i = 0; i < n && rc == 0; i++) {
		struct group_join j;
		verdict[i] = group_join_decode(in[i].data, in[i].len, &j);
		if (verdict[i] == 0)
			verdict[i] = join_ok(c, g, &j, in[i].identity);
		if (verdict[i] != 0 && verdict[i] != CAIRN_ENOTFOUND && verdict[i] != CAIRN_EINVAL)
			rc = verdict[i]; /* the store's */
		if (verdict[i] != 0)
			continue;
		q[nq] = (struct group_request){.kind = GROUP_CHANGE_ADD, .role = GROUP_ROLE_MEMBER};
		memcpy(q[nq].identity, in[i].identity, CAIRN_KEY_LEN);
		memcpy(q[nq].sign_key, j.sign_key, CAIRN_KEY_LEN);
		memcpy(q[nq].group_key, j.group_key, CAIRN_KEY_LEN);
		nq++;
	}
	if (rc == 0 && nq > 0)
		rc = group_commit_in(c, g, q, nq);
	/* Committed: the offers are answered. */
	for (unsigned i = 0; i < n && rc == 0 && nq > 0; i++) {
		uint8_t key[GROUP_MEMBER_KEY_LEN];
		group_member_key(key, gid, in[i].identity);
		if (verdict[i] == 0)
			rc = cstate_del(c->st, REC_GROUP_OFFER, key, sizeof(key));
	}
	sodium_memzero(q, (n ? n : 1) * sizeof(*q));
	free(q);
	return group_txn_end(c, g, rc);
}

int group_join_accept(struct cairn *c, const uint8_t identity[static CAIRN_KEY_LEN],
                      const uint8_t *data, size_t len)
{
	struct group_join j;
	int rc = group_join_decode(data, len, &j);
	if (rc != 0)
		return rc;
	struct group_join_in in = {.data = data, .len = len};
	memcpy(in.identity, identity, CAIRN_KEY_LEN);
	int verdict = 0;
	rc = group_joins_accept(c, j.group_id, &in, 1, &verdict);
	return rc != 0 ? rc : verdict;
}

/* ---- welcomes (9.8) ---- */

int group_welcomes_make(struct cairn *c, const struct group_state *g, const struct group_next *next,
                        uint64_t commit_seq)
{
	const struct group_commit *cm = &next->commit;
	uint8_t *roster = malloc(GROUP_ROSTER_MAX_LEN);
	uint8_t *out = malloc(GROUP_WELCOME_MAX);
	size_t rlen = 0;
	int rc = roster && out
	             ? group_roster_encode(&next->roster, roster, GROUP_ROSTER_MAX_LEN, &rlen)
	             : CAIRN_ENOMEM;
	for (unsigned i = 0; i < cm->change_count && rc == 0; i++) {
		if (cm->changes[i].kind != GROUP_CHANGE_ADD)
			continue;
		int idx = group_roster_find(&next->roster, cm->changes[i].identity);
		if (idx < 0)
			continue; /* added, then removed by the same commit */
		struct group_welcome w = {.epoch = next->epoch,
		                          .index = (uint16_t)idx,
		                          .rotate_seconds = next->settings.rotate_seconds,
		                          .rotate_messages = next->settings.rotate_messages,
		                          .commit_seq = next->location_len ? 0 : commit_seq,
		                          .roster = roster,
		                          .roster_len = rlen};
		memcpy(w.group_id, g->group_id, GROUP_ID_LEN);
		memcpy(w.head, next->head, GROUP_HEAD_LEN);
		memcpy(w.epoch_secret, next->epoch_secret, GROUP_SECRET_LEN);
		memcpy(w.name, g->name, sizeof(w.name));
		if (next->location_len)
			rc = group_location_decode(next->location, next->location_len, &w.location);
		else {
			memcpy(w.location.relay, g->log.relay, sizeof(w.location.relay));
			memcpy(w.location.log_id, g->log.log_id, CAIRN_LOG_ID_LEN);
			memcpy(w.location.credential, g->log.credential, CAIRN_CREDENTIAL_LEN);
		}
		size_t len = 0;
		if (rc == 0)
			rc = group_welcome_encode(&w, out, GROUP_WELCOME_MAX, &len);
		uint8_t key[GROUP_MEMBER_KEY_LEN];
		group_member_key(key, g->group_id, cm->changes[i].identity);
		if (rc == 0)
			rc = cstate_put(c->st, REC_GROUP_WELCOME, key, sizeof(key), out, len);
		group_welcome_clear(&w);
		sodium_memzero(out, len);
	}
	free(roster);
	free(out);
	return rc;
}

int group_welcome_take(struct cairn *c, const uint8_t gid[static GROUP_ID_LEN],
                       const uint8_t identity[static CAIRN_KEY_LEN], uint8_t **out, size_t *len)
{
	uint8_t key[GROUP_MEMBER_KEY_LEN];
	group_member_key(key, gid, identity);
	*out = NULL;
	*len = 0;
	uint8_t *v = NULL;
	size_t vlen = 0;
	int rc = cstate_begin(c->st);
	if (rc != 0)
		return rc;
	rc = cstate_get(c->st, REC_GROUP_WELCOME, key, sizeof(key), &v, &vlen);
	if (rc == 0 && (*out = malloc(vlen)) == NULL)
		rc = CAIRN_ENOMEM;
	if (rc == 0) {
		memcpy(*out, v, vlen);
		*len = vlen;
		rc = cstate_del(c->st, REC_GROUP_WELCOME, key, sizeof(key));
	}
	cstate_free_value(v, vlen);
	if (rc == 0)
		rc = cstate_commit(c->st);
	else
		cstate_rollback(c->st);
	if (rc != 0 && *out != NULL) {
		sodium_memzero(*out, *len);
		free(*out);
		*out = NULL;
		*len = 0;
	}
	return rc;
}
