/* SPDX-License-Identifier: MIT */
/*
 * Sending into a group (group.h): entering an epoch (keys, chains, counters), sealing our
 * next message on our own chain and queueing it in the same transaction that stores the
 * stepped chain, key updates (PROTOCOL.md 9.6), texts cut at GROUP_TEXT_DATA_MAX, leaving,
 * the group's conversation and its stored messages, and creating a group with its genesis.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client.h"
#include "group.h"

void group_x25519_keypair(struct cairn *c, uint8_t pk[static CAIRN_KEY_LEN],
                          uint8_t sk[static CAIRN_KEY_LEN])
{
	client_random(c, sk, CAIRN_KEY_LEN);
	crypto_scalarmult_curve25519_base(pk, sk);
}

int group_conversation_new(struct cairn *c, struct group_state *g)
{
	struct group_state *old = NULL;
	int rc = group_load(c, g->group_id, &old);
	if (rc == 0)
		memcpy(g->conv, old->conv, RECORD_ID_LEN); /* joined again: the same history */
	group_free(old);
	if (rc != CAIRN_ENOTFOUND)
		return rc;
	struct conversation v = {.kind = CONV_GROUP};
	client_random(c, v.id, RECORD_ID_LEN);
	rc = group_name_pick(c, g->name, g->group_id, v.label);
	if (rc == 0)
		rc = client_name_claim(c, v.label, NAME_GROUP, g->group_id);
	memcpy(g->conv, v.id, RECORD_ID_LEN);
	return rc == 0 ? client_store_conversation(c, &v) : rc;
}

/* Finds the contact whose identity is IDENTITY (a scan of the contacts). */
struct contact_find {
	const uint8_t *identity;
	uint8_t *id;
	bool found;
};

static int find_contact(void *ctx, const uint8_t *v, size_t len)
{
	struct contact_find *f = ctx;
	struct contact k;
	if (contact_parse(v, len, &k) != 0)
		return 0; /* a damaged contact is not this member */
	if (k.state == CONTACT_ESTABLISHED &&
	    sodium_memcmp(k.peer_identity, f->identity, CAIRN_KEY_LEN) == 0) {
		memcpy(f->id, k.id, RECORD_ID_LEN);
		f->found = true;
	}
	contact_wipe(&k);
	return f->found ? 1 : 0;
}

int group_sender_id(struct cairn *c, const uint8_t identity[static CAIRN_KEY_LEN],
                    uint8_t id[static RECORD_ID_LEN])
{
	struct contact_find f = {.identity = identity, .id = id};
	int rc = cstate_list(c->st, REC_CONTACT, find_contact, &f);
	if (rc < 0)
		return rc;
	if (!f.found)
		memcpy(id, identity, RECORD_ID_LEN);
	return f.found ? 1 : 0;
}

int group_store_message(struct cairn *c, const struct group_state *g, const uint8_t *sender,
                        const uint8_t id[APPMSG_ID_LEN], int64_t sent_at, const uint8_t *text,
                        size_t len)
{
	return group_store_appmsg(c, g, sender, APPMSG_TEXT, id, sent_at, text, len);
}

int group_store_appmsg(struct cairn *c, const struct group_state *g, const uint8_t *sender,
                       uint8_t kind, const uint8_t id[APPMSG_ID_LEN], int64_t sent_at,
                       const uint8_t *text, size_t len)
{
	int rc;
	struct stored_message m = {.outgoing = sender == NULL,
	                           .kind = kind,
	                           .sent_at = sent_at,
	                           .received_at = client_now_s(c),
	                           .text = text,
	                           .len = len};
	memcpy(m.conv, g->conv, RECORD_ID_LEN);
	if (sender != NULL && (rc = group_sender_id(c, sender, m.sender)) < 0)
		return rc;
	memcpy(m.id, id, APPMSG_ID_LEN);
	/* 0: a message id seen before (8.9), our own coming back or a replay */
	rc = client_put_message(c, &m);
	struct conversation v;
	if (rc == 1 && sender != NULL && c->reporting != NULL &&
	    (rc = client_load_conversation(c, g->conv, &v)) == 0) {
		/* Named by its local name, the one cairn_read and cairn_send take. */
		char who[CAIRN_NAME_MAX + 1], label[CAIRN_NAME_MAX + 1];
		memcpy(label, v.label, sizeof(label));
		conversation_wipe(&v);
		rc = 1;
		client_group_sender_name(c, m.sender, who);
		struct cairn_message out = {.contact = label,
		                            .text = text,
		                            .len = len,
		                            .sent_at = sent_at,
		                            .received_at = m.received_at,
		                            .sender = who};
		memcpy(out.id, id, APPMSG_ID_LEN);
		client_timer_message(c, &m, &out);
		client_report_group(c, &out);
	}
	return rc;
}

int group_enter(struct cairn *c, struct group_state *g, const struct group_next *next,
                uint16_t self)
{
	if (!next->has_secret)
		return CAIRN_ESTATE;
	int64_t now = client_now_s(c);
	if (g->has_prev)
		group_skipped_drop_epoch(&g->skipped, g->prev_epoch); /* older than the grace */
	if (g->roster.count > 0) {
		/* The epoch we leave stays readable for its grace (9.3); init_secret and the
		 * commit key go now (the commit that ends it is processed). */
		g->has_prev = true;
		g->prev_epoch = g->epoch;
		memcpy(g->prev_head, g->head, GROUP_HEAD_LEN);
		memcpy(g->prev_header_key, g->header_key, GROUP_SECRET_LEN);
		memcpy(&g->prev_chains, &g->chains, sizeof(g->chains));
		memcpy(&g->prev_roster, &g->roster, sizeof(g->roster));
		g->prev_reads = 0;
		g->prev_since = now;
		g->prev_sent = g->send_n;
	}
	int rc =
	    group_chains_init(&g->chains, next->epoch, next->keys.sender_base, next->roster.count);
	if (rc != 0)
		return rc;
	g->epoch = next->epoch;
	memcpy(g->head, next->head, GROUP_HEAD_LEN);
	g->settings = next->settings;
	memcpy(&g->roster, &next->roster, sizeof(g->roster));
	g->self = self;
	memcpy(g->header_key, next->keys.header_key, GROUP_SECRET_LEN);
	memcpy(g->commit_key, next->keys.commit_key, GROUP_SECRET_LEN);
	memcpy(g->init_secret, next->keys.init_secret, GROUP_SECRET_LEN);
	group_sender_chain(next->keys.sender_base, self, g->send_ck);
	g->send_n = 0;
	g->update_sent = false;
	uint32_t r;
	client_random(c, &r, sizeof(r));
	g->epoch_start = now;
	g->update_at = now + (int64_t)(r % (GROUP_UPDATE_DELAY + 1));
	g->epoch_msgs = 0;
	g->nupd = 0;
	/* Leaves the commit did not act on stay asked for. */
	uint16_t kept = 0;
	for (uint16_t i = 0; i < g->nleave; i++)
		if (group_roster_find(&g->roster, g->leave[i]) >= 0)
			memmove(g->leave[kept++], g->leave[i], CAIRN_KEY_LEN);
	g->nleave = kept;
	return 0;
}

int group_seal_queue(struct cairn *c, struct group_state *g, const uint8_t *payload, size_t len)
{
	if (g->removed)
		return CAIRN_ESTATE;
	if (g->send_n == UINT32_MAX)
		return CAIRN_ELIMIT; /* 9.3: no 2^32-th message in an epoch */
	uint8_t mk[GROUP_SECRET_LEN], hnonce[GROUP_NONCE_LEN], ctx[GROUP_CTX_LEN], out_id[16];
	uint8_t *entry = malloc(GROUP_ENTRY_MAX);
	if (entry == NULL)
		return CAIRN_ENOMEM;
	group_chain_step(g->send_ck, mk);
	uint32_t n = g->send_n++;
	client_random(c, hnonce, sizeof(hnonce));
	group_state_ctx(g, ctx);
	size_t elen = 0;
	int rc = group_message_seal(g->header_key, hnonce, ctx, g->self, n, mk, g->sign_sk, payload,
	                            len, entry, GROUP_ENTRY_MAX, &elen);
	sodium_memzero(mk, sizeof(mk));
	if (rc == 0)
		rc = group_out_append(c, &g->log, entry, elen, out_id);
	if (rc == 0)
		rc = group_append_note(c, out_id, g->group_id, 2);
	free(entry);
	return rc;
}

/* Seals one single-part application message of KIND with DATA into G. */
static int seal_appmsg(struct cairn *c, struct group_state *g, uint8_t kind, const uint8_t *data,
                       size_t len)
{
	struct appmsg am = {.kind = kind,
	                    .sent_at = (uint64_t)client_now_s(c),
	                    .part_index = 0,
	                    .part_count = 1,
	                    .data = data,
	                    .data_len = len};
	client_random(c, am.id, APPMSG_ID_LEN);
	uint8_t buf[APPMSG_HEADER_LEN + GROUP_KEY_UPDATE_LEN + 8];
	size_t plen = 0;
	int rc = appmsg_encode(&am, buf, sizeof(buf), &plen);
	if (rc == 0)
		rc = group_seal_queue(c, g, buf, plen);
	sodium_memzero(buf, sizeof(buf));
	return rc;
}

int group_key_update_due(struct cairn *c, struct group_state *g, bool force)
{
	int64_t now = client_now_s(c);
	if (g->update_sent || g->removed)
		return 0;
	if (g->last_update_at != 0 && now - g->last_update_at < GROUP_UPDATE_MIN)
		return 0; /* at most one a day (9.6): messages go without meanwhile */
	if (!force && now < g->update_at)
		return 0;
	struct group_key_update u = {.key_serial = g->roster.member[g->self].key_serial + 1,
	                             .prev_count = g->prev_sent};
	uint8_t sk[CAIRN_KEY_LEN], data[GROUP_KEY_UPDATE_LEN];
	group_x25519_keypair(c, u.group_key, sk);
	size_t dlen = 0;
	int rc = group_key_update_encode(&u, data, sizeof(data), &dlen);
	if (rc == 0)
		rc = seal_appmsg(c, g, APPMSG_KEY_UPDATE, data, dlen);
	if (rc == 0) {
		/* An update that never counted left a key of this serial: it is replaced. */
		uint8_t i = 0;
		while (i < g->nkeys && g->keys[i].key_serial < u.key_serial)
			i++;
		if (i == GROUP_KEYS_MAX) {
			memmove(&g->keys[0], &g->keys[1],
			        (GROUP_KEYS_MAX - 1) * sizeof(g->keys[0]));
			i--;
		}
		g->keys[i].key_serial = u.key_serial;
		memcpy(g->keys[i].private_key, sk, CAIRN_KEY_LEN);
		g->nkeys = (uint8_t)(i + 1);
		g->update_sent = true;
		g->last_update_at = now;
	}
	sodium_memzero(sk, sizeof(sk));
	return rc;
}

int group_send_text(struct cairn *c, const uint8_t gid[static GROUP_ID_LEN], const uint8_t *text,
                    size_t len, uint8_t id[static APPMSG_ID_LEN])
{
	return group_send_appmsg(c, gid, APPMSG_TEXT, text, len, 0, id);
}

int group_send_appmsg(struct cairn *c, const uint8_t gid[static GROUP_ID_LEN], uint8_t kind,
                      const uint8_t *text, size_t len, int64_t sent_at,
                      uint8_t id[static APPMSG_ID_LEN])
{
	size_t parts = len == 0 ? 1 : (len + GROUP_TEXT_DATA_MAX - 1) / GROUP_TEXT_DATA_MAX;
	if (parts > APPMSG_PARTS_MAX || len > CAIRN_MESSAGE_MAX)
		return CAIRN_ETOOBIG;
	struct group_state *g;
	int rc = group_txn_load(c, gid, &g);
	if (rc != 0)
		return rc;
	uint8_t *buf = malloc(GROUP_PAYLOAD_MAX);
	rc = buf == NULL ? CAIRN_ENOMEM : g->removed ? CAIRN_ESTATE : 0;
	if (rc == 0)
		rc = group_key_update_due(c, g, true);
	client_random(c, id, APPMSG_ID_LEN);
	int64_t now = sent_at != 0 ? sent_at : client_now_s(c);
	for (size_t i = 0; i < parts && rc == 0; i++) {
		size_t off = i * GROUP_TEXT_DATA_MAX;
		size_t n = len - off < GROUP_TEXT_DATA_MAX ? len - off : GROUP_TEXT_DATA_MAX;
		struct appmsg am = {.kind = kind,
		                    .sent_at = (uint64_t)now,
		                    .part_index = (uint16_t)i,
		                    .part_count = (uint16_t)parts,
		                    .data = text ? text + off : NULL,
		                    .data_len = len ? n : 0};
		memcpy(am.id, id, APPMSG_ID_LEN);
		size_t plen = 0;
		rc = appmsg_encode(&am, buf, GROUP_PAYLOAD_MAX, &plen);
		if (rc == 0)
			rc = group_seal_queue(c, g, buf, plen);
	}
	if (rc == 0) {
		int s = group_store_appmsg(c, g, NULL, kind, id, now, text, len);
		rc = s < 0 ? s : 0;
	}
	if (buf != NULL) {
		sodium_memzero(buf, GROUP_PAYLOAD_MAX);
		free(buf);
	}
	return group_txn_end(c, g, rc);
}

int group_leave(struct cairn *c, const uint8_t gid[static GROUP_ID_LEN])
{
	struct group_state *g;
	int rc = group_txn_load(c, gid, &g);
	if (rc != 0)
		return rc;
	rc = seal_appmsg(c, g, APPMSG_LEAVE, NULL, 0);
	return group_txn_end(c, g, rc);
}

int group_tick(struct cairn *c, const uint8_t gid[static GROUP_ID_LEN])
{
	struct group_state *g;
	int rc = group_txn_load(c, gid, &g);
	if (rc != 0)
		return rc;
	if (g->removed)
		return group_txn_end(c, g, 0);
	rc = group_key_update_due(c, g, false);
	if (rc == 0 && g->has_old && g->has_old_delete &&
	    client_now_s(c) - g->old_since >= GROUP_LOG_TTL) {
		/* 9.7: every member had ttl to find the move; the log we made goes. */
		rc = group_out_delete(c, &g->old, g->old_delete);
		if (rc == 0) {
			g->has_old = g->has_old_delete = false;
			sodium_memzero(g->old_delete, sizeof(g->old_delete));
		}
	}
	int64_t age = client_now_s(c) - g->epoch_start;
	bool admin = g->roster.member[g->self].role == GROUP_ROLE_ADMIN;
	bool due = g->nleave > 0 ||
	           (g->settings.rotate_seconds &&
	            age >= (int64_t)g->settings.rotate_seconds + g->jitter_s) ||
	           (g->settings.rotate_messages &&
	            g->epoch_msgs >= (uint64_t)g->settings.rotate_messages + g->jitter_msgs);
	if (rc == 0 && admin && due) {
		rc = group_commit_in(c, g, NULL, 0);
		if (rc == CAIRN_EEXIST)
			rc = 0; /* ours is on its way */
	}
	return group_txn_end(c, g, rc);
}

int group_create(struct cairn *c, const char *relay, const char *name,
                 const struct group_settings *settings, uint8_t gid[static GROUP_ID_LEN])
{
	size_t rlen = strnlen(relay, CAIRN_ADDRESS_MAX + 1),
	       nlen = strnlen(name, GROUP_NAME_MAX + 1);
	if (rlen == 0 || rlen > CAIRN_ADDRESS_MAX || group_name_check((const uint8_t *)name, nlen))
		return CAIRN_EINVAL;
	struct group_state *g = malloc(sizeof(*g));
	struct group_next *next = malloc(sizeof(*next));
	uint8_t *buf = malloc(GROUP_COMMIT_MAX_LEN);
	int rc = g == NULL || next == NULL || buf == NULL ? CAIRN_ENOMEM : 0;
	if (rc != 0)
		goto out;
	memset(g, 0, sizeof(*g));
	client_random(c, g->group_id, GROUP_ID_LEN);
	memcpy(g->name, name, nlen);
	memcpy(g->log.relay, relay, rlen);
	client_random(c, g->log.log_id, CAIRN_LOG_ID_LEN);
	client_random(c, g->log.credential, CAIRN_CREDENTIAL_LEN);
	client_random(c, g->delete_secret, CAIRN_CREDENTIAL_LEN);
	g->has_delete = true;
	uint8_t seed[32], spk[32], gsk[CAIRN_KEY_LEN], secret[GROUP_SECRET_LEN], eph[CAIRN_KEY_LEN];
	client_random(c, seed, sizeof(seed));
	crypto_sign_seed_keypair(spk, g->sign_sk, seed);
	struct group_member me = {.role = GROUP_ROLE_ADMIN};
	memcpy(me.identity, c->identity_pk, CAIRN_KEY_LEN);
	memcpy(me.sign_key, spk, CAIRN_KEY_LEN);
	group_x25519_keypair(c, me.group_key, gsk);
	client_random(c, secret, sizeof(secret));
	client_random(c, eph, sizeof(eph));
	struct group_change ch[2];
	group_genesis_changes(&me, settings, ch);
	struct group_base base = {.genesis = true};
	memcpy(base.group_id, g->group_id, GROUP_ID_LEN);
	struct group_commit_request req = {.sign_secret = g->sign_sk,
	                                   .changes = ch,
	                                   .change_count = 2,
	                                   .commit_secret = secret,
	                                   .eph_private = eph};
	size_t clen = 0;
	uint8_t ctx[GROUP_CTX_LEN], commit_id[GROUP_COMMIT_ID_LEN];
	rc = group_commit_build(&base, &req, buf, GROUP_COMMIT_MAX_LEN, &clen, next);
	sodium_memzero(seed, sizeof(seed));
	sodium_memzero(secret, sizeof(secret));
	sodium_memzero(eph, sizeof(eph));
	if (rc != 0)
		goto wipe;
	g->keys[0].key_serial = 0;
	memcpy(g->keys[0].private_key, gsk, CAIRN_KEY_LEN);
	g->nkeys = 1;
	if ((rc = group_enter(c, g, next, 0)) != 0)
		goto wipe;
	/* The genesis is sealed under its own epoch 0's keys (9.5); we enter epoch 0 now, and
	 * our genesis, read back, names no epoch after ours: it is passed over. */
	group_ctx(g->group_id, 0, next->head, ctx);
	client_random(c, commit_id, sizeof(commit_id));
	if ((rc = cstate_begin(c->st)) != 0)
		goto wipe;
	/* Our own name is our local name: refused if taken, here, under the write lock, so that
	 * group_conversation_new cannot choose another. */
	struct name_entry taken;
	rc = client_name_lookup(c, name, &taken);
	rc = rc == 0 ? CAIRN_EEXIST : rc == CAIRN_ENOTFOUND ? 0 : rc;
	if (rc == 0)
		rc = group_out_create(c, &g->log, g->delete_secret);
	if (rc == 0)
		rc = group_post_commit(c, g, &next->keys, ctx, buf, clen, commit_id, 3, NULL);
	if (rc == 0)
		rc = group_log_bind(c, g->log.log_id, g->group_id);
	if (rc == 0)
		rc = group_conversation_new(c, g);
	if (rc == 0)
		rc = group_store(c, g);
	if (rc == 0)
		rc = cstate_commit(c->st);
	else
		cstate_rollback(c->st);
	if (rc == 0)
		memcpy(gid, g->group_id, GROUP_ID_LEN);
wipe:
	sodium_memzero(gsk, sizeof(gsk));
out:
	if (next != NULL) {
		group_next_wipe(next);
		free(next); /* wiped by group_next_wipe */
	}
	group_free(g);
	free(buf);
	return rc;
}
