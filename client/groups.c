/* SPDX-License-Identifier: MIT */
/*
 * Groups in the public API (cairn.h, PROTOCOL.md 9) over the group state (group.h): naming
 * members (a contact's name, else a short id), the admin's
 * operations, and the 1:1 carriage of 9.8 (offers sent with cairn_group_add; offers, joins and
 * welcomes that arrive are handled by client_group_appmsg from receive.c, inside the
 * envelope's transaction; welcomes made when
 * our commit completes are sent by client_groups_tick). The log transport is logio.c's; this
 * file only tells it that there is something new (client_engine_wake, logio_logs_changed).
 *
 * Offers from established contacts are accepted automatically (9.8 allows it): the offer
 * came over a session the person already trusts, and the group's members can be checked
 * afterwards (cairn_group_members, cairn_group_safety_number).
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client.h"
#include "group.h"
#include "group_bytes.h"
#include "logio.h"

static const struct group_settings default_settings = {.rotate_seconds = 604800,
                                                       .rotate_messages = 1000};

/* ---- names ---------------------------------------------------------------------------- */

/* The label of member IDENTITY: its contact's name (returns 1) or its short id (0). */
static int member_label(struct cairn *c, const uint8_t identity[CAIRN_KEY_LEN],
                        char name[CAIRN_NAME_MAX + 1], char id[CAIRN_MEMBER_ID_LEN + 1])
{
	uint8_t cid[RECORD_ID_LEN];
	client_short_id(identity, id);
	int rc = group_sender_id(c, identity, cid);
	if (rc == 1) {
		client_group_sender_name(c, cid, name);
		return 1;
	}
	memcpy(name, id, CAIRN_MEMBER_ID_LEN + 1);
	return rc < 0 ? rc : 0;
}

/* The roster index of MEMBER in G (a contact's name or a short id), or CAIRN_ENOTFOUND. */
static int member_find(struct cairn *c, const struct group_state *g, const char *member)
{
	if (member == NULL)
		return CAIRN_ENOTFOUND;
	for (uint16_t i = 0; i < g->roster.count; i++) {
		char name[CAIRN_NAME_MAX + 1], id[CAIRN_MEMBER_ID_LEN + 1];
		int rc = member_label(c, g->roster.member[i].identity, name, id);
		if (rc < 0)
			return rc;
		if (strcmp(member, name) == 0 || strcmp(member, id) == 0)
			return i;
	}
	return CAIRN_ENOTFOUND;
}

/* Loads group NAME (outside a transaction: reading only). */
static int load_named(struct cairn *c, const char *name, struct group_state **g)
{
	uint8_t gid[GROUP_ID_LEN];
	*g = NULL;
	int rc = client_group_find(c, name, gid);
	return rc != 0 ? rc : group_load(c, gid, g);
}

/* Ends a transaction that carries group data DATA (LEN bytes) of KIND to contact K over 1:1:
 * with RC 0 queued (as client_queue_message seals a text) and committed, else rolled back. */
static int queue_and_end(struct cairn *c, struct contact *k, uint8_t kind, const uint8_t *data,
                         size_t len, int rc)
{
	uint8_t id[APPMSG_ID_LEN];
	client_random(c, id, sizeof(id));
	if (rc == 0)
		rc = client_queue_message(c, k, kind, data, len, id, client_now_s(c));
	if (rc == 0)
		rc = cstate_commit(c->st);
	else
		cstate_rollback(c->st);
	return rc;
}

/* ---- operations ----------------------------------------------------------------------- */

int cairn_group_create(struct cairn *c, const char *name, const char *relay)
{
	struct cairn_address a;
	uint8_t gid[GROUP_ID_LEN];
	if (c == NULL || !client_valid_name(name))
		return CAIRN_EINVAL;
	if (relay == NULL || cairn_address_parse(relay, &a) != 0)
		return CAIRN_EADDRESS;
	/* The name is claimed by group_create, in its transaction (names.c). */
	int rc = group_create(c, relay, name, &default_settings, gid);
	if (rc == 0)
		client_groups_changed(c);
	return rc;
}

void client_groups_changed(struct cairn *c)
{
	logio_logs_changed(c);
	client_engine_wake(c);
}

int cairn_group_add(struct cairn *c, const char *group, const char *contact)
{
	uint8_t gid[GROUP_ID_LEN], offer[GROUP_OFFER_MAX];
	size_t len = 0;
	struct group_state *g = NULL;
	int rc = load_named(c, group, &g);
	if (rc != 0)
		return rc;
	memcpy(gid, g->group_id, GROUP_ID_LEN);
	struct contact k;
	if ((rc = cstate_begin(c->st)) != 0) {
		group_free(g);
		return rc;
	}
	/* The contact is read inside the transaction: its ratchet steps (cairn_queue says why). */
	rc = client_load_contact(c, contact, &k);
	if (rc == 0 && k.state != CONTACT_ESTABLISHED)
		rc = CAIRN_ESTATE;
	if (rc == 0 && group_roster_find(&g->roster, k.peer_identity) >= 0)
		rc = CAIRN_ESTATE; /* a member already */
	if (rc == 0)
		rc = group_offer_make(c, gid, k.peer_identity, offer, &len);
	rc = queue_and_end(c, &k, APPMSG_GROUP_OFFER, offer, len, rc);
	contact_wipe(&k);
	group_free(g);
	if (rc == 0)
		client_engine_wake(c);
	return rc;
}

/* Commits one change of KIND (ROLE for a role change) to MEMBER of GROUP. */
static int commit_member(struct cairn *c, const char *group, const char *member, uint8_t kind,
                         uint8_t role)
{
	struct group_state *g = NULL;
	int rc = load_named(c, group, &g);
	if (rc != 0)
		return rc;
	struct group_request q = {.kind = kind, .role = role};
	int at = member_find(c, g, member);
	if (at < 0)
		rc = at;
	else if (g->removed || g->roster.member[g->self].role != GROUP_ROLE_ADMIN)
		rc = CAIRN_EDENIED;
	else if (at == g->self)
		rc = CAIRN_EINVAL;
	else if (kind == GROUP_CHANGE_ROLE && g->roster.member[at].role == role)
		rc = CAIRN_ESTATE;
	if (rc == 0) {
		memcpy(q.identity, g->roster.member[at].identity, CAIRN_KEY_LEN);
		rc = group_commit(c, g->group_id, &q, 1);
	}
	group_free(g);
	if (rc == 0)
		client_groups_changed(c);
	return rc;
}

int cairn_group_remove(struct cairn *c, const char *group, const char *member)
{
	return commit_member(c, group, member, GROUP_CHANGE_REMOVE, 0);
}

int cairn_group_admin(struct cairn *c, const char *group, const char *member)
{
	return commit_member(c, group, member, GROUP_CHANGE_ROLE, GROUP_ROLE_ADMIN);
}

int cairn_group_rotation(struct cairn *c, const char *group, uint32_t seconds, uint32_t messages)
{
	if (seconds < CAIRN_ROTATE_SECONDS_MIN || seconds > CAIRN_ROTATE_SECONDS_MAX ||
	    messages < CAIRN_ROTATE_MESSAGES_MIN || messages > CAIRN_ROTATE_MESSAGES_MAX)
		return CAIRN_EINVAL;
	struct group_state *g = NULL;
	int rc = load_named(c, group, &g);
	if (rc != 0)
		return rc;
	if (g->removed || g->roster.member[g->self].role != GROUP_ROLE_ADMIN)
		rc = CAIRN_EDENIED;
	struct group_request q = {
	    .kind = GROUP_CHANGE_SETTINGS,
	    .settings = {.rotate_seconds = seconds, .rotate_messages = messages}};
	if (rc == 0)
		rc = group_commit(c, g->group_id, &q, 1);
	group_free(g);
	if (rc == 0)
		client_groups_changed(c);
	return rc;
}

int cairn_group_leave(struct cairn *c, const char *group)
{
	struct group_state *g = NULL;
	int rc = load_named(c, group, &g);
	if (rc == 0 && g->removed)
		rc = CAIRN_ESTATE;
	if (rc == 0)
		rc = group_leave(c, g->group_id);
	group_free(g);
	if (rc == 0)
		client_engine_wake(c);
	return rc;
}

int cairn_group_members(struct cairn *c, const char *group, cairn_group_member_cb cb, void *ctx)
{
	if (cb == NULL)
		return CAIRN_EINVAL;
	struct group_state *g = NULL;
	int rc = load_named(c, group, &g);
	for (uint16_t i = 0; rc == 0 && i < g->roster.count; i++) {
		char name[CAIRN_NAME_MAX + 1], id[CAIRN_MEMBER_ID_LEN + 1];
		int is_contact = member_label(c, g->roster.member[i].identity, name, id);
		if (is_contact < 0) {
			rc = is_contact;
			break;
		}
		struct cairn_group_member m = {
		    .name = name,
		    .id = id,
		    .contact = is_contact,
		    .admin = g->roster.member[i].role == GROUP_ROLE_ADMIN,
		    .self = i == g->self,
		};
		rc = cb(ctx, &m);
	}
	group_free(g);
	return rc;
}

int cairn_group_safety_number(struct cairn *c, const char *group,
                              char out[CAIRN_SAFETY_NUMBER_LEN + 1], uint64_t *epoch)
{
	_Static_assert(GROUP_SAFETY_TEXT_LEN == CAIRN_SAFETY_NUMBER_LEN + 1, "safety number length");
	if (out == NULL)
		return CAIRN_EINVAL;
	struct group_state *g = NULL;
	int rc = load_named(c, group, &g);
	if (rc == 0) {
		group_safety_number(g->group_id, g->epoch, g->head, out);
		if (epoch != NULL)
			*epoch = g->epoch;
	}
	group_free(g);
	return rc;
}

/* ---- the 1:1 carriage (9.8) and the clock --------------------------------------------- */

/* An offer from contact CID: answered with a join over the same session, in one
 * transaction. */
static int on_offer(struct cairn *c, const uint8_t cid[RECORD_ID_LEN], const uint8_t *data,
                    size_t len)
{
	struct group_offer o;
	uint8_t join[GROUP_JOIN_LEN];
	if (group_offer_decode(data, len, &o) != 0)
		return 0;
	struct group_state *g = NULL;
	int rc = group_load(c, o.group_id, &g);
	bool member = rc == 0 && !g->removed;
	group_free(g);
	if (rc != 0 && rc != CAIRN_ENOTFOUND)
		return rc;
	if (member)
		return 0; /* an offer for a group we are in: nothing to join */
	struct contact k;
	if ((rc = cstate_begin(c->st)) != 0)
		return rc;
	rc = client_load_contact_id(c, cid, &k);
	if (rc == 0 && k.state != CONTACT_ESTABLISHED)
		rc = CAIRN_ESTATE;
	if (rc == 0)
		rc = group_join_make(c, o.group_id, join);
	rc = queue_and_end(c, &k, APPMSG_GROUP_JOIN, join, sizeof(join), rc);
	sodium_memzero(join, sizeof(join));
	contact_wipe(&k);
	return rc == CAIRN_ENOTFOUND || rc == CAIRN_ESTATE ? 0 : rc;
}

/* The join JOIN from IDENTITY, kept with its offer while a commit of ours is pending
 * (group_join_accept said CAIRN_EEXIST): client_groups_tick tries it again. The record ends
 * with when it was kept (our clock, u64 big-endian): a join is not kept forever (retry_joins).
 * Records of the previous version have no time (KEPT_JOIN_LEN alone). */
#define KEPT_JOIN_LEN    (CAIRN_KEY_LEN + GROUP_JOIN_LEN)
#define KEPT_JOIN_AT_LEN (KEPT_JOIN_LEN + 8)
#define KEPT_JOIN_LIFE_S GROUP_LOG_TTL

static int keep_join(struct cairn *c, const uint8_t identity[CAIRN_KEY_LEN],
                     const uint8_t *join, size_t len)
{
	uint8_t key[GROUP_MEMBER_KEY_LEN], v[KEPT_JOIN_AT_LEN];
	if (len != GROUP_JOIN_LEN)
		return 0;
	group_member_key(key, join, identity); /* a join begins with its group's id (9.8) */
	memcpy(v, identity, CAIRN_KEY_LEN);
	memcpy(v + CAIRN_KEY_LEN, join, GROUP_JOIN_LEN);
	group_put_u64(v + KEPT_JOIN_LEN, (uint64_t)client_now_s(c));
	return cstate_put(c->st, REC_GROUP_OFFER, key, sizeof(key), v, sizeof(v));
}

int client_group_join_in(struct cairn *c, const uint8_t identity[CAIRN_KEY_LEN],
                         const uint8_t *data, size_t len, struct receive_effects *fx)
{
	fx->groups = true;
	/* group_join_accept is a level of its own (a savepoint inside the caller's
	 * transaction): what it refuses is undone without the enclosing envelope. */
	int rc = group_join_accept(c, identity, data, len);
	if (rc == CAIRN_EEXIST)
		return keep_join(c, identity, data, len);
	/* No offer, another group, keys that would spoil our commit: dropped. */
	return rc == CAIRN_ENOTFOUND || rc == CAIRN_EINVAL || rc == CAIRN_EDENIED ? 0 : rc;
}

int client_group_appmsg(struct cairn *c, const uint8_t cid[RECORD_ID_LEN], uint8_t kind,
                        const uint8_t *data, size_t len, struct receive_effects *fx)
{
	struct contact k;
	int rc = client_load_contact_id(c, cid, &k);
	if (rc == 0 && k.state != CONTACT_ESTABLISHED)
		rc = CAIRN_ESTATE;
	uint8_t identity[CAIRN_KEY_LEN];
	memcpy(identity, k.peer_identity, CAIRN_KEY_LEN);
	contact_wipe(&k);
	if (rc != 0)
		return rc == CAIRN_ESTATE || rc == CAIRN_ENOTFOUND ? 0 : rc;
	if (kind == APPMSG_GROUP_OFFER) {
		rc = on_offer(c, cid, data, len);
		fx->redispatch = true;
	} else if (kind == APPMSG_GROUP_JOIN) {
		rc = client_group_join_in(c, identity, data, len, fx);
	} else if (kind == APPMSG_GROUP_WELCOME) {
		rc = group_join_welcome(c, data, len);
		/* A welcome that answers no join of ours, or fails a check: dropped (9.8). */
		if (rc != 0 && rc != CAIRN_ENOMEM && rc != CAIRN_EIO && rc != CAIRN_ECORRUPT)
			rc = 0;
		fx->groups = true;
	}
	return rc;
}

/* Sends over 1:1 the welcome stored for member IDENTITY of group GID if it is one of our
 * established contacts (taken and queued in one transaction). */
static int send_welcome(struct cairn *c, const uint8_t gid[GROUP_ID_LEN],
                        const uint8_t identity[CAIRN_KEY_LEN])
{
	uint8_t cid[RECORD_ID_LEN];
	int rc = group_sender_id(c, identity, cid);
	if (rc != 1)
		return rc < 0 ? rc : 0; /* not a contact: no session to carry it */
	uint8_t *w = NULL;
	size_t wlen = 0;
	struct contact k;
	if ((rc = cstate_begin(c->st)) != 0)
		return rc;
	rc = client_load_contact_id(c, cid, &k);
	if (rc == 0)
		rc = group_welcome_take(c, gid, identity, &w, &wlen);
	rc = queue_and_end(c, &k, APPMSG_GROUP_WELCOME, w, wlen, rc);
	if (w != NULL) {
		sodium_memzero(w, wlen);
		free(w);
	}
	contact_wipe(&k);
	return rc == CAIRN_ENOTFOUND ? 0 : rc;
}

struct gids {
	size_t n, cap;
	uint8_t (*id)[GROUP_ID_LEN];
	/* members to welcome: group index into ID, identity */
	size_t nw, capw;
	struct {
		size_t g;
		uint8_t identity[CAIRN_KEY_LEN];
	} *w;
};

static int collect(void *ctx, const struct group_state *g)
{
	struct gids *s = ctx;
	if (group_grow((void **)&s->id, &s->cap, s->n, sizeof(*s->id)) != 0)
		return CAIRN_ENOMEM;
	memcpy(s->id[s->n], g->group_id, GROUP_ID_LEN);
	for (uint16_t i = 0; i < g->roster.count && !g->removed; i++) {
		if (i == g->self)
			continue;
		if (group_grow((void **)&s->w, &s->capw, s->nw, sizeof(*s->w)) != 0)
			return CAIRN_ENOMEM;
		s->w[s->nw].g = s->n;
		memcpy(s->w[s->nw].identity, g->roster.member[i].identity, CAIRN_KEY_LEN);
		s->nw++;
	}
	s->n++;
	return 0;
}

struct kept_join {
	uint8_t v[KEPT_JOIN_LEN];
	bool timed; /* the record holds when it was kept */
	int64_t at;
};

struct kept {
	size_t n, cap;
	struct kept_join *v;
};

static int collect_join(void *ctx, const uint8_t *v, size_t len)
{
	struct kept *k = ctx;
	if (len != KEPT_JOIN_LEN && len != KEPT_JOIN_AT_LEN)
		return 0; /* an offer still waiting for its join */
	if (group_grow((void **)&k->v, &k->cap, k->n, sizeof(*k->v)) != 0)
		return CAIRN_ENOMEM;
	struct kept_join *j = &k->v[k->n++];
	memcpy(j->v, v, KEPT_JOIN_LEN);
	j->timed = len == KEPT_JOIN_AT_LEN;
	j->at = j->timed ? (int64_t)group_get_u64(v + KEPT_JOIN_LEN) : 0;
	return 0;
}

/* Forgets kept join J (its offer with it: the joiner has to be offered the group again). */
static int drop_join(struct cairn *c, const struct kept_join *j)
{
	uint8_t key[GROUP_MEMBER_KEY_LEN];
	group_member_key(key, j->v + CAIRN_KEY_LEN, j->v);
	return cstate_del(c->st, REC_GROUP_OFFER, key, sizeof(key));
}

/* What becomes of kept join J after its commit was tried with verdict RC: dropped when it can
 * never be committed (its group gone from this home: CAIRN_ENOTFOUND; we are no longer its
 * admin: CAIRN_EDENIED, or no longer in it: CAIRN_ESTATE; it does not parse: CAIRN_EINVAL),
 * kept when a commit of ours is still pending (CAIRN_EEXIST; a join of the previous version's
 * layout is given the time of this retry). */
static int after_retry(struct cairn *c, const struct kept_join *j, int rc)
{
	if (rc == CAIRN_ENOTFOUND || rc == CAIRN_EINVAL || rc == CAIRN_EDENIED ||
	    rc == CAIRN_ESTATE)
		return drop_join(c, j); /* never ours to commit */
	if (rc == CAIRN_EEXIST)
		return j->timed ? 0 : keep_join(c, j->v, j->v + CAIRN_KEY_LEN, GROUP_JOIN_LEN);
	return rc;
}

/* Commits the kept joins K->v[FROM..TO) of one group together (one commit for all, 9.5
 * allows any number of changes in one), and settles each by its verdict. */
static int retry_group(struct cairn *c, const struct kept *k, size_t from, size_t to)
{
	struct group_join_in in[GROUP_REQUESTS_MAX] = {0};
	int verdict[GROUP_REQUESTS_MAX];
	unsigned n = 0;
	for (size_t i = from; i < to; i++) {
		memcpy(in[n].identity, k->v[i].v, CAIRN_KEY_LEN);
		in[n].data = k->v[i].v + CAIRN_KEY_LEN;
		in[n].len = GROUP_JOIN_LEN;
		n++;
	}
	int rc = group_joins_accept(c, k->v[from].v + CAIRN_KEY_LEN, in, n, verdict);
	sodium_memzero(in, sizeof(in));
	/* Any other code is the store's: every join stays for the next tick. */
	bool settled = rc == 0 || rc == CAIRN_ENOTFOUND || rc == CAIRN_EDENIED ||
	               rc == CAIRN_ESTATE || rc == CAIRN_EEXIST;
	for (unsigned i = 0; i < n && settled; i++) {
		int r = after_retry(c, &k->v[from + i], rc != 0 ? rc : verdict[i]);
		if (r != 0)
			return r;
	}
	return settled ? 0 : rc;
}

/* Kept joins in the order of their groups (the record's key begins with the group's id). */
static int by_group(const void *x, const void *y)
{
	const struct kept_join *a = x, *b = y;
	return memcmp(a->v + CAIRN_KEY_LEN, b->v + CAIRN_KEY_LEN, GROUP_ID_LEN);
}

/*
 * Joins kept while a commit of ours was pending, committed now if it is not any more: all
 * those of one group in one commit (up to GROUP_REQUESTS_MAX), so an admin who adds fifty
 * contacts commits twice (the first join to come, then the others), not fifty times. A join
 * lives at most KEPT_JOIN_LIFE_S (a relay's default log ttl: a commit of ours pending that
 * long will not complete) and is dropped at once when it can never be committed
 * (after_retry). So a dead join costs one tick, not every tick.
 */
static int retry_joins(struct cairn *c)
{
	struct kept k = {0};
	int rc = cstate_list(c->st, REC_GROUP_OFFER, collect_join, &k);
	if (rc > 0)
		rc = 0;
	int64_t now = client_now_s(c);
	size_t live = 0;
	for (size_t i = 0; i < k.n && rc == 0; i++) {
		if (k.v[i].timed && now - k.v[i].at > KEPT_JOIN_LIFE_S)
			rc = drop_join(c, &k.v[i]);
		else
			k.v[live++] = k.v[i];
	}
	if (rc == 0 && live > 1)
		qsort(k.v, live, sizeof(*k.v), by_group);
	for (size_t from = 0; from < live && rc == 0;) {
		size_t to = from + 1;
		while (to < live && to - from < GROUP_REQUESTS_MAX &&
		       by_group(&k.v[from], &k.v[to]) == 0)
			to++;
		rc = retry_group(c, &k, from, to);
		from = to;
	}
	if (k.v != NULL) {
		sodium_memzero(k.v, k.cap * sizeof(*k.v));
		free(k.v);
	}
	return rc;
}

int client_groups_tick(struct cairn *c)
{
	struct gids s = {0};
	int rc = retry_joins(c);
	if (rc == 0)
		rc = group_joining_sweep(c);
	if (rc == 0)
		rc = group_each(c, collect, &s);
	if (rc > 0)
		rc = 0;
	for (size_t i = 0; i < s.n && rc == 0; i++)
		rc = group_tick(c, s.id[i]);
	/* Welcomes wait in the store until taken; a member without one finds none. */
	for (size_t i = 0; i < s.nw && rc == 0; i++)
		rc = send_welcome(c, s.id[s.w[i].g], s.w[i].identity);
	free(s.id);
	free(s.w);
	if (s.n > 0)
		client_groups_changed(c);
	return rc;
}
