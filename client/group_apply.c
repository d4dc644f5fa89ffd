/* SPDX-License-Identifier: MIT */
/*
 * Commit parts read from the log and the commit they complete (PROTOCOL.md 9.5, 9.6, 9.7):
 * each counted part is stored (REC_GROUP_PART) so that a commit whose parts span several
 * reads, or a restart, is put together again; the first complete commit that passes every
 * check of "which commit wins" (group_commit_open) is entered: new epoch, the move to the new
 * log, old group keys deleted, the welcomes of our own adds, and, when another admin's commit
 * won over ours, our changes committed again on the new epoch. Runs inside the handler's
 * transaction (group_recv.c).
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client.h"
#include "group.h"
#include "logio.h"

static void part_key_of(uint8_t key[GROUP_ID_LEN + 8], const uint8_t gid[GROUP_ID_LEN],
                        uint64_t seq)
{
	memcpy(key, gid, GROUP_ID_LEN);
	group_put_u64(key + GROUP_ID_LEN, seq);
}

/* Deletes the stored parts of G's epoch. */
static int drop_parts(struct cairn *c, struct group_state *g)
{
	int rc = 0;
	for (uint8_t i = 0; i < g->nparts && rc == 0; i++) {
		uint8_t key[GROUP_ID_LEN + 8];
		part_key_of(key, g->group_id, g->part_seq[i]);
		rc = cstate_del(c->st, REC_GROUP_PART, key, sizeof(key));
	}
	g->nparts = 0;
	return rc;
}

/* Offers the stored part at SEQ to AS again. */
static int replay_part(struct cairn *c, struct group_state *g, struct group_assembler *as,
                       uint64_t seq, uint8_t *out, size_t *outlen, uint64_t *first)
{
	uint8_t key[GROUP_ID_LEN + 8];
	part_key_of(key, g->group_id, seq);
	uint8_t *v = NULL;
	size_t vlen = 0;
	int rc = cstate_get(c->st, REC_GROUP_PART, key, sizeof(key), &v, &vlen);
	if (rc == 0 && vlen < 6)
		rc = CAIRN_ECORRUPT;
	if (rc == 0)
		(void)!group_assembler_add(as, seq, group_get_u16(v), group_get_u32(v + 2), v + 6,
		                           vlen - 6, out, GROUP_PARTS_BYTES_MAX, outlen, first);
	cstate_free_value(v, vlen);
	return rc;
}

/* The counting updates of G's epoch at or before LAST_SEQ into OUT (*N). */
static void updates_until(const struct group_state *g, uint64_t last_seq,
                          struct group_counted_update *out, size_t *n)
{
	*n = 0;
	for (uint16_t i = 0; i < g->nupd; i++)
		if (g->upd[i].seq <= last_seq)
			out[(*n)++] = g->upd[i].u;
}

/* Moves G to the log of the opened move box LOC: the current log becomes the old one, read
 * on to its end (9.7). */
static int follow_move(struct cairn *c, struct group_state *g, const struct group_next *next,
                       uint64_t seq, const struct group_pending *mine)
{
	struct group_location l;
	int rc = group_location_decode(next->location, next->location_len, &l);
	if (rc != 0)
		return rc;
	g->has_old = true;
	g->old = g->log;
	g->old_cursor = seq;
	g->old_end = 0;
	g->old_since = client_now_s(c);
	g->has_old_delete = g->has_delete;
	memcpy(g->old_delete, g->delete_secret, CAIRN_CREDENTIAL_LEN);
	memset(&g->log, 0, sizeof(g->log));
	memcpy(g->log.relay, l.relay, sizeof(g->log.relay));
	memcpy(g->log.log_id, l.log_id, CAIRN_LOG_ID_LEN);
	memcpy(g->log.credential, l.credential, CAIRN_CREDENTIAL_LEN);
	g->has_delete = mine != NULL && mine->moves;
	if (g->has_delete)
		memcpy(g->delete_secret, mine->to_delete, CAIRN_CREDENTIAL_LEN);
	else
		sodium_memzero(g->delete_secret, CAIRN_CREDENTIAL_LEN);
	g->cursor = 0;
	g->position = 0;
	sodium_memzero(&l, sizeof(l));
	logio_logs_changed(c); /* the new log is read from this step on */
	return group_log_bind(c, g->log.log_id, g->group_id);
}

/* Deletes our group keys older than the serial the commit sealed to us (9.6). */
static void drop_old_keys(struct group_state *g, const struct group_next *next, int self)
{
	if (self < 0 || self >= next->retained || (size_t)self >= next->commit.seal_count)
		return; /* added by it, or the genesis: nothing sealed to us */
	uint32_t sealed = next->commit.seals[self].key_serial;
	uint8_t kept = 0;
	for (uint8_t i = 0; i < g->nkeys; i++)
		if (g->keys[i].key_serial >= sealed)
			g->keys[kept++] = g->keys[i];
	sodium_memzero(&g->keys[kept], (size_t)(GROUP_KEYS_MAX - kept) * sizeof(g->keys[0]));
	g->nkeys = kept;
}

/* The complete commit BYTES (LEN) whose last part came at SEQ and first at FIRST_SEQ, with
 * id COMMIT_ID. */
static int open_commit(struct cairn *c, struct group_state *g, uint64_t seq, const uint8_t *bytes,
                       size_t len, uint64_t first_seq, const uint8_t commit_id[GROUP_COMMIT_ID_LEN])
{
	if (len < 67)
		return 0;
	uint64_t last_seq =
	    group_get_u64(bytes + 59); /* after version, id, epoch, head, committer */
	struct group_pending *p = malloc(sizeof(*p));
	struct group_next *next = malloc(sizeof(*next));
	struct group_counted_update *upd = malloc((g->nupd + 1) * sizeof(*upd));
	if (p == NULL || next == NULL || upd == NULL) {
		free(p);
		free(upd);
		if (next != NULL)
			free(next); /* never filled */
		return CAIRN_ENOMEM;
	}
	int rc = group_pending_load(c, g->group_id, p);
	bool have_pending = rc == 0;
	if (rc == CAIRN_ENOTFOUND)
		rc = 0;
	bool ours = have_pending && p->epoch == g->epoch + 1 &&
	            sodium_memcmp(p->commit_id, commit_id, GROUP_COMMIT_ID_LEN) == 0;
	size_t nupd = 0;
	updates_until(g, last_seq, upd, &nupd);
	struct group_base base = {.epoch = g->epoch, .settings = g->settings, .roster = &g->roster};
	memcpy(base.group_id, g->group_id, GROUP_ID_LEN);
	memcpy(base.head, g->head, GROUP_HEAD_LEN);
	memcpy(base.init_secret, g->init_secret, GROUP_SECRET_LEN);
	struct group_opener op = {.self = g->self,
	                          .keys = g->keys,
	                          .key_count = g->nkeys,
	                          .commit_secret = ours ? p->commit_secret : NULL};
	int orc = rc == 0 ? group_commit_open(&base, bytes, len, upd, nupd, first_seq, g->position,
	                                      &op, next)
	                  : rc;
	sodium_memzero(&base, sizeof(base));
	if (rc != 0)
		goto out;
	if (orc == CAIRN_ECRYPTO)
		g->bad_commit = true; /* signed by an admin, yet wrong for us: warn (9.5) */
	if (orc != 0)
		goto out; /* ignored: the state stays in epoch e */
	if ((rc = drop_parts(c, g)) != 0)
		goto out;
	if (have_pending && (rc = group_pending_del(c, g->group_id)) != 0)
		goto out;
	int self = group_roster_find(&next->roster, c->identity_pk);
	if (next->removed || self < 0 || !next->has_secret) {
		/* 9.7: removed (or, the same for us, not found by our identity): nothing more
		 * opens for us; the keys go. */
		g->removed = true;
		sodium_memzero(g->header_key, sizeof(g->header_key));
		sodium_memzero(g->commit_key, sizeof(g->commit_key));
		sodium_memzero(g->init_secret, sizeof(g->init_secret));
		sodium_memzero(g->send_ck, sizeof(g->send_ck));
		sodium_memzero(g->keys, sizeof(g->keys));
		g->nkeys = 0;
		goto out;
	}
	drop_old_keys(g, next, self);
	if (ours && (rc = group_welcomes_make(c, g, next, seq)) != 0)
		goto out;
	if (next->location_len > 0)
		rc = follow_move(c, g, next, seq, ours ? p : NULL);
	else
		g->position = seq;
	if (rc == 0)
		rc = group_enter(c, g, next, (uint16_t)self);
	if (rc == 0 && have_pending && !ours) {
		/* 9.5: another admin won; ours goes again. Requests the new epoch makes invalid
		 * (the last admin removed meanwhile, ...) are dropped rather than stopping the
		 * log; only a local failure (memory, the store) has the entry offered again. */
		rc = group_recommit(c, g, p);
		if (rc == CAIRN_EINVAL || rc == CAIRN_ECRYPTO || rc == CAIRN_ETOOBIG ||
		    rc == CAIRN_EADDRESS)
			rc = 0;
	}
out:
	if (have_pending)
		group_pending_wipe(p);
	free(p);
	free(upd);
	group_next_wipe(next);
	free(next); /* wiped by group_next_wipe */
	return rc;
}

int group_apply_part(struct cairn *c, struct group_state *g, uint64_t seq,
                     const struct group_header *h, const uint8_t *entry, size_t len)
{
	struct group_epoch_keys k;
	memset(&k, 0, sizeof(k));
	memcpy(k.header_key, g->header_key, GROUP_SECRET_LEN);
	memcpy(k.commit_key, g->commit_key, GROUP_SECRET_LEN);
	uint8_t *body = malloc(GROUP_ENTRY_MAX);
	uint8_t *out = malloc(GROUP_PARTS_BYTES_MAX);
	struct group_assembler *as = malloc(sizeof(*as));
	int rc = body && out && as ? 0 : CAIRN_ENOMEM;
	const uint8_t *content = NULL;
	size_t clen = 0, outlen = 0;
	uint64_t first = 0;
	if (rc == 0 && group_part_open(&k, h, entry, len, body, GROUP_ENTRY_MAX, &content, &clen))
		goto out; /* dropped */
	uint8_t ctx[GROUP_CTX_LEN];
	group_state_ctx(g, ctx);
	bool inited = rc == 0;
	if (inited) {
		group_assembler_init(as, &g->roster, ctx);
		for (uint8_t i = 0; i < g->nparts && rc == 0; i++)
			rc = replay_part(c, g, as, g->part_seq[i], out, &outlen, &first);
	}
	int arc = rc == 0 ? group_assembler_add(as, seq, h->sender, h->n, content, clen, out,
	                                        GROUP_PARTS_BYTES_MAX, &outlen, &first)
	                  : rc;
	if (rc == 0 && arc == GROUP_PART_COUNTED && g->nparts < GROUP_PARTS_KEPT) {
		uint8_t key[GROUP_ID_LEN + 8];
		part_key_of(key, g->group_id, seq);
		uint8_t *v = malloc(6 + clen);
		rc = v == NULL ? CAIRN_ENOMEM : 0;
		if (rc == 0) {
			group_put_u16(v, h->sender);
			group_put_u32(v + 2, h->n);
			memcpy(v + 6, content, clen);
			rc = cstate_put(c->st, REC_GROUP_PART, key, sizeof(key), v, 6 + clen);
			free(v);
		}
		if (rc == 0)
			g->part_seq[g->nparts++] = seq;
	}
	if (rc == 0 && arc == GROUP_PART_COMPLETE)
		rc = open_commit(c, g, seq, out, outlen, first, content); /* commit_id leads */
	if (inited)
		group_assembler_free(as);
out:
	if (body != NULL) {
		sodium_memzero(body, GROUP_ENTRY_MAX);
		free(body);
	}
	free(out);
	free(as);
	sodium_memzero(&k, sizeof(k));
	return rc;
}
