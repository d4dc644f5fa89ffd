/* SPDX-License-Identifier: MIT */
/*
 * Reading a group's logs (PROTOCOL.md 9.4, 9.6, 9.9): the handler of group_io.h. Each entry
 * is processed in one store transaction with the group's state loaded inside it: its header
 * tried under the current epoch's key and the previous epoch's within its grace (9.3), a
 * message (kind 1) opened with the sender's chain and checked against its sign key before
 * any state moves, then acted on (a text stored once per message id, a key update counted
 * or found to be a copy's, a leave noted for the admins), a commit part handed to
 * group_apply.c; the cursor moves in the same transaction. Anything that fails a check is
 * dropped and only the cursor moves; a failure of the store itself stops the pass (the
 * transport offers the entry again).
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client.h"
#include "files.h"
#include "group.h"

/* A key update from member SENDER at SEQ (9.6): counted if it follows on; one from our own
 * index with a key we never made means our state was copied. */
static void key_update(struct group_state *g, uint16_t sender, uint64_t seq,
                       const struct appmsg *am)
{
	struct group_key_update u;
	if (group_key_update_parse(am->data, am->data_len, &u) != 0)
		return;
	if (sender == g->self) {
		bool mine = false;
		for (uint8_t i = 0; i < g->nkeys; i++) {
			uint8_t pk[CAIRN_KEY_LEN];
			crypto_scalarmult_curve25519_base(pk, g->keys[i].private_key);
			mine |= g->keys[i].key_serial == u.key_serial &&
			        sodium_memcmp(pk, u.group_key, CAIRN_KEY_LEN) == 0;
		}
		if (!mine)
			g->copied = true;
	}
	bool old_unread = g->has_old && (g->old_end == 0 || g->old_cursor < g->old_end);
	if (g->has_prev && !old_unread) {
		/* 9.9: the sender says how many entries it sent in the previous epoch; fewer
		 * reached us (the chain's next is past every n we saw) means some were withheld.
		 * Not while the old log after a move is still being read: they may be there. */
		int p = group_roster_find(&g->prev_roster, g->roster.member[sender].identity);
		if (p >= 0 && u.prev_count > g->prev_chains.chain[p].next)
			g->withheld = true;
	}
	uint32_t serial = g->roster.member[sender].key_serial;
	for (uint16_t i = 0; i < g->nupd; i++)
		if (g->upd[i].u.index == sender)
			serial = g->upd[i].u.key_serial;
	if (u.key_serial != serial + 1 || !group_x25519_key_ok(u.group_key) ||
	    g->nupd >= GROUP_MEMBERS_MAX)
		return;
	struct group_upd *d = &g->upd[g->nupd++];
	d->u.index = sender;
	d->u.key_serial = u.key_serial;
	memcpy(d->u.group_key, u.group_key, CAIRN_KEY_LEN);
	d->seq = seq;
}

/* Acts on the opened application message PAYLOAD of member SENDER (in ROSTER); OLD_LOG: it
 * came from the log the last move left. */
static int deliver(struct cairn *c, struct group_state *g, bool current, bool old_log,
                   uint16_t sender, const struct group_roster *roster, uint64_t seq,
                   const uint8_t *payload, size_t len)
{
	struct appmsg am;
	if (appmsg_parse(payload, len, &am) != 0 || appmsg_check(&am, APPMSG_GROUP) != 0)
		return 0;
	const uint8_t *identity = roster->member[sender].identity;
	if (old_log && am.kind == APPMSG_TEXT &&
	    memcmp(identity, c->identity_pk, CAIRN_KEY_LEN) == 0) {
		/* 9.7: ours, written before we read the move, after it in the old log, which
		 * the others may have finished reading: sent again in the new epoch, same id. */
		int rc = group_key_update_due(c, g, true);
		if (rc == 0)
			rc = group_seal_queue(c, g, payload, len);
		if (rc != 0)
			return rc;
	}
	if (am.kind == APPMSG_KEY_UPDATE && current)
		key_update(g, sender, seq, &am);
	if (am.kind == APPMSG_LEAVE && current && sender != g->self &&
	    g->nleave < GROUP_MEMBERS_MAX) {
		bool known = false;
		for (uint16_t i = 0; i < g->nleave; i++)
			known |= memcmp(g->leave[i], identity, CAIRN_KEY_LEN) == 0;
		if (!known)
			memcpy(g->leave[g->nleave++], identity, CAIRN_KEY_LEN);
	}
	if (am.kind == APPMSG_FILE) {
		/* section 11: an offered file and its line in the group's conversation */
		uint8_t from[RECORD_ID_LEN];
		char line[512];
		size_t n = 0;
		int rc = group_sender_id(c, identity, from);
		if (rc >= 0)
			rc = cfile_offered(c, g->conv, true, g->group_id, from, am.id, am.sent_at,
			                   am.data, am.data_len, line, sizeof(line), &n);
		if (rc == 1)
			rc = group_store_message(c, g, identity, am.id, (int64_t)am.sent_at,
			                         (const uint8_t *)line, n);
		return rc < 0 ? rc : 0;
	}
	if (am.kind != APPMSG_TEXT)
		return 0;
	if (current)
		g->epoch_msgs++;
	if (am.part_count == 1) {
		int rc = group_store_message(c, g, identity, am.id, (int64_t)am.sent_at, am.data,
		                             am.data_len);
		return rc < 0 ? rc : 0;
	}
	uint8_t *text = NULL;
	size_t tlen = 0;
	/* A text of several parts (9.4): each part kept until all are there, as 1:1 texts are. */
	int rc =
	    client_join_parts(c, g->conv, GROUP_TEXT_DATA_MAX, &am, payload, len, &text, &tlen);
	if (rc == 1)
		rc = group_store_message(c, g, identity, am.id, (int64_t)am.sent_at, text, tlen);
	if (text != NULL) {
		sodium_memzero(text, tlen);
		free(text);
	}
	return rc < 0 ? rc : 0;
}

/* A kind 1 entry whose header H opened under the current epoch's key (CURRENT) or the
 * previous one's: opened and verified before any state moves (9.4). */
static int message(struct cairn *c, struct group_state *g, bool current, bool old_log,
                   const struct group_header *h, uint64_t seq, const uint8_t *entry, size_t len)
{
	struct group_chains *ch = current ? &g->chains : &g->prev_chains;
	const struct group_roster *ro = current ? &g->roster : &g->prev_roster;
	if (h->sender >= ro->count)
		return 0;
	/* An epoch e message after its commit counts only from a retained member (9.7). */
	if (!current && group_roster_find(&g->roster, ro->member[h->sender].identity) < 0)
		return 0;
	uint8_t ctx[GROUP_CTX_LEN];
	if (current)
		group_state_ctx(g, ctx);
	else
		group_ctx(g->group_id, g->prev_epoch, g->prev_head, ctx);
	struct group_recv_step step;
	if (group_recv_lookup(ch, &g->skipped, h->sender, h->n, &step) != 0)
		return 0; /* used, deleted, or too far ahead */
	uint8_t *body = malloc(GROUP_ENTRY_MAX);
	if (body == NULL) {
		group_recv_discard(&step);
		return CAIRN_ENOMEM;
	}
	const uint8_t *payload = NULL;
	size_t plen = 0;
	int rc = group_message_open(ctx, h, step.mk, ro->member[h->sender].sign_key, entry, len,
	                            body, GROUP_ENTRY_MAX, &payload, &plen);
	if (rc != 0) {
		group_recv_discard(&step);
		free(body);
		return 0; /* forged, or garbage: no state moves */
	}
	rc = group_recv_commit(ch, &g->skipped, &step);
	if (rc == 0)
		rc = deliver(c, g, current, old_log, h->sender, ro, seq, payload, plen);
	sodium_memzero(body, GROUP_ENTRY_MAX);
	free(body);
	return rc;
}

/* The previous epoch's keys go once its grace is over (9.3). */
static void grace(struct cairn *c, struct group_state *g)
{
	if (!g->has_prev || g->prev_reads < GROUP_GRACE_READS ||
	    client_now_s(c) - g->prev_since < GROUP_GRACE_S)
		return;
	group_skipped_drop_epoch(&g->skipped, g->prev_epoch);
	g->has_prev = false;
	sodium_memzero(g->prev_header_key, sizeof(g->prev_header_key));
	sodium_memzero(&g->prev_chains, sizeof(g->prev_chains));
	memset(&g->prev_roster, 0, sizeof(g->prev_roster));
}

/* One entry of G's current log (OLD false) or old log. */
static int process(struct cairn *c, struct group_state *g, bool old, uint64_t seq,
                   const uint8_t *entry, size_t len)
{
	struct group_header h;
	if (g->removed)
		return 0;
	if (!old && group_entry_open_header(g->header_key, entry, len, &h) == 0) {
		if (g->has_prev)
			g->prev_reads++;
		int rc = 0;
		if (h.kind == GROUP_KIND_MESSAGE)
			rc = message(c, g, true, false, &h, seq, entry, len);
		else if (h.kind == GROUP_KIND_COMMIT_PART)
			rc = group_apply_part(c, g, seq, &h, entry, len);
		if (rc == 0)
			grace(c, g);
		return rc;
	}
	if (g->has_prev && group_entry_open_header(g->prev_header_key, entry, len, &h) == 0 &&
	    h.kind == GROUP_KIND_MESSAGE)
		return message(c, g, false, old, &h, seq, entry, len);
	return 0; /* opens under no key we hold (9.4): dropped */
}

/* Finds, loads and locks (a transaction) the group of LOG; *WHICH 0 current, 1 old. */
static int begin(struct cairn *c, const struct group_log_ref *log, struct group_state **g,
                 int *which)
{
	uint8_t gid[GROUP_ID_LEN];
	int rc = cstate_begin(c->st);
	if (rc != 0)
		return rc;
	rc = group_by_log(c, log->log_id, gid);
	if (rc == 0)
		rc = group_load(c, gid, g);
	if (rc == 0) {
		*which = sodium_memcmp((*g)->log.log_id, log->log_id, CAIRN_LOG_ID_LEN) == 0 ? 0
		         : (*g)->has_old &&
		                 sodium_memcmp((*g)->old.log_id, log->log_id, CAIRN_LOG_ID_LEN) == 0
		             ? 1
		             : -1;
		return 0;
	}
	cstate_rollback(c->st);
	return rc;
}

static int h_entry(struct cairn *c, void *ctx, const struct group_log_ref *log, uint64_t seq,
                   const uint8_t *entry, size_t len)
{
	(void)ctx;
	struct group_state *g = NULL;
	int which = -1;
	int rc = begin(c, log, &g, &which);
	if (rc == CAIRN_ENOTFOUND)
		return 0; /* no group of ours reads this log (any more) */
	if (rc != 0)
		return rc;
	uint64_t *cur = which == 0 ? &g->cursor : which == 1 ? &g->old_cursor : NULL;
	if (cur == NULL || seq <= *cur)
		return group_txn_end(c, g, 0); /* read already: the cursor is past it */
	rc = process(c, g, which == 1, seq, entry, len);
	/* process() may have moved G to a new log: the cursor of the log read stays right. */
	if (rc == 0 && which == 0 && memcmp(g->log.log_id, log->log_id, CAIRN_LOG_ID_LEN) == 0)
		g->cursor = seq;
	else if (rc == 0 && g->has_old && memcmp(g->old.log_id, log->log_id, CAIRN_LOG_ID_LEN) == 0)
		g->old_cursor = seq;
	return group_txn_end(c, g, rc);
}

struct logs_ctx {
	int (*each)(void *each_ctx, const struct group_log_ref *log, uint64_t from_seq);
	void *each_ctx;
};

static int list_one(void *ctx, const struct group_state *g)
{
	struct logs_ctx *l = ctx;
	if (g->removed)
		return 0;
	int rc = g->gone ? 0 : l->each(l->each_ctx, &g->log, g->cursor + 1);
	if (rc == 0 && g->has_old && (g->old_end == 0 || g->old_cursor < g->old_end))
		rc = l->each(l->each_ctx, &g->old, g->old_cursor + 1);
	return rc;
}

static int h_logs(struct cairn *c, void *ctx,
                  int (*each)(void *each_ctx, const struct group_log_ref *log, uint64_t from_seq),
                  void *each_ctx)
{
	(void)ctx;
	struct logs_ctx l = {.each = each, .each_ctx = each_ctx};
	return group_each(c, list_one, &l);
}

static int h_log_state(struct cairn *c, void *ctx, const struct group_log_ref *log,
                       uint64_t first_seq, uint64_t next_seq)
{
	(void)ctx;
	struct group_state *g = NULL;
	int which = -1;
	int rc = begin(c, log, &g, &which);
	if (rc == CAIRN_ENOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	uint64_t from = (which == 0 ? g->cursor : g->old_cursor) + 1;
	if (which >= 0 && first_seq > from)
		g->gap = true; /* entries expired unread (9.9) */
	if (which == 1)
		g->old_end = next_seq > 0 ? next_seq - 1 : 0; /* read on to here, then stop */
	return group_txn_end(c, g, 0);
}

static int h_log_gone(struct cairn *c, void *ctx, const struct group_log_ref *log)
{
	(void)ctx;
	struct group_state *g = NULL;
	int which = -1;
	int rc = begin(c, log, &g, &which);
	if (rc == CAIRN_ENOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (which == 0)
		g->gone = true;
	else if (which == 1)
		g->has_old = false;
	return group_txn_end(c, g, 0);
}

static int h_appended(struct cairn *c, void *ctx, const uint8_t out_id[16], uint64_t seq)
{
	(void)ctx;
	int rc = cstate_begin(c->st);
	if (rc != 0)
		return rc;
	uint8_t *v = NULL;
	size_t vlen = 0;
	rc = cstate_get(c->st, REC_GROUP_APPEND, out_id, 16, &v, &vlen);
	if (rc == CAIRN_ENOTFOUND) {
		cstate_rollback(c->st);
		return 0; /* not a group append of ours, or told before */
	}
	if (rc == 0 && vlen != GROUP_ID_LEN + 1)
		rc = CAIRN_ECORRUPT;
	uint8_t what = rc == 0 ? v[GROUP_ID_LEN] : 0;
	struct group_state *g = NULL;
	struct group_pending *p = NULL;
	if (rc == 0 && what == 3 && (rc = group_load(c, v, &g)) == 0 && g->position == 0) {
		g->position = seq; /* our genesis: epoch 0 began here */
		rc = group_store(c, g);
	}
	if (rc == CAIRN_ENOTFOUND)
		rc = 0; /* the group is gone: nothing to note */
	if (rc == 0 && what == 4 && (p = malloc(sizeof(*p))) != NULL) {
		int prc = group_pending_load(c, v, p);
		if (prc == 0 && p->last_part_seq == 0) {
			p->last_part_seq = seq; /* the position our commit completes at */
			prc = group_pending_store(c, v, p);
		}
		if (prc == 0)
			group_pending_wipe(p);
		rc = prc == CAIRN_ENOTFOUND ? 0 : prc;
	}
	if (rc == 0)
		rc = cstate_del(c->st, REC_GROUP_APPEND, out_id, 16);
	if (rc == 0)
		rc = cstate_commit(c->st);
	else
		cstate_rollback(c->st);
	cstate_free_value(v, vlen);
	group_free(g);
	free(p);
	return rc;
}

const struct logio_handler group_logio_handler = {
    .logs = h_logs,
    .log_state = h_log_state,
    .entry = h_entry,
    .appended = h_appended,
    .log_gone = h_log_gone,
};
