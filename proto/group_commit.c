/* SPDX-License-Identifier: MIT */
/*
 * Commits, part one (docs/PROTOCOL.md section 9.5): the one encoding of a commit, its decoder
 * with every bound checked before it is used, and the roster transition its changes and the
 * epoch's counting key updates make. Building and opening commits, which need secrets, are in
 * group_commit_seal.c.
 */
#include <string.h>

#include <sodium.h>

#include "group_commit.h"

void group_next_wipe(struct group_next *n)
{
	sodium_memzero(n, sizeof(*n));
}

static size_t change_len(const struct group_change *ch)
{
	switch (ch->kind) {
	case GROUP_CHANGE_ADD:
		return GROUP_CHANGE_ADD_LEN;
	case GROUP_CHANGE_REMOVE:
		return GROUP_CHANGE_REMOVE_LEN;
	case GROUP_CHANGE_ROLE:
		return GROUP_CHANGE_ROLE_LEN;
	case GROUP_CHANGE_SETTINGS:
		return GROUP_CHANGE_SETTINGS_LEN;
	default:
		return 0;
	}
}

static bool role_ok(uint8_t role)
{
	return role == GROUP_ROLE_MEMBER || role == GROUP_ROLE_ADMIN;
}

static bool move_len_ok(size_t len)
{
	return len == 0 || (len >= GROUP_MOVE_BOX_MIN && len <= GROUP_MOVE_BOX_MAX);
}

size_t group_commit_len(const struct group_commit *c)
{
	if (c->version != GROUP_COMMIT_VERSION || !move_len_ok(c->move_len) ||
	    c->seal_count > GROUP_MEMBERS_MAX)
		return 0;
	size_t len = GROUP_COMMIT_FIXED_LEN + c->move_len + (size_t)c->seal_count * GROUP_SEAL_LEN;
	for (unsigned i = 0; i < c->change_count; i++) {
		const struct group_change *ch = &c->changes[i];
		size_t n = change_len(ch);
		if (n == 0 || ((ch->kind == GROUP_CHANGE_ADD || ch->kind == GROUP_CHANGE_ROLE) &&
		               !role_ok(ch->role)))
			return 0;
		len += n;
	}
	return len;
}

static uint8_t *encode_change(const struct group_change *ch, uint8_t *p)
{
	*p++ = ch->kind;
	switch (ch->kind) {
	case GROUP_CHANGE_ADD:
		memcpy(p, ch->identity, CAIRN_KEY_LEN);
		memcpy(p + 32, ch->sign_key, CAIRN_KEY_LEN);
		memcpy(p + 64, ch->group_key, CAIRN_KEY_LEN);
		p[96] = ch->role;
		return p + 97;
	case GROUP_CHANGE_REMOVE:
		group_put_u16(p, ch->index);
		return p + 2;
	case GROUP_CHANGE_ROLE:
		group_put_u16(p, ch->index);
		p[2] = ch->role;
		return p + 3;
	default: /* GROUP_CHANGE_SETTINGS: group_commit_len has refused the rest */
		group_put_u32(p, ch->settings.rotate_seconds);
		group_put_u32(p + 4, ch->settings.rotate_messages);
		return p + 8;
	}
}

int group_commit_encode(const struct group_commit *c, uint8_t *out, size_t cap, size_t *outlen)
{
	*outlen = 0;
	size_t len = group_commit_len(c);
	if (len == 0)
		return CAIRN_EINVAL;
	if (cap < len)
		return CAIRN_ENOBUFS;
	uint8_t *p = out;
	*p++ = c->version;
	memcpy(p, c->group_id, GROUP_ID_LEN);
	p += GROUP_ID_LEN;
	group_put_u64(p, c->epoch);
	memcpy(p + 8, c->prev_head, GROUP_HEAD_LEN);
	group_put_u16(p + 40, c->committer);
	group_put_u64(p + 42, c->last_seq);
	p[50] = c->change_count;
	p += 51;
	for (unsigned i = 0; i < c->change_count; i++)
		p = encode_change(&c->changes[i], p);
	group_put_u16(p, c->move_len);
	memcpy(p + 2, c->move_box, c->move_len);
	p += 2 + c->move_len;
	memcpy(p, c->eph, CAIRN_KEY_LEN);
	memcpy(p + 32, c->roster_hash, GROUP_HEAD_LEN);
	group_put_u16(p + 64, c->seal_count);
	p += 66;
	for (unsigned i = 0; i < c->seal_count; i++, p += GROUP_SEAL_LEN) {
		group_put_u32(p, c->seals[i].key_serial);
		memcpy(p + 4, c->seals[i].masked, GROUP_SECRET_LEN);
	}
	memcpy(p, c->signature, CAIRN_SIGNATURE_LEN);
	memcpy(p + CAIRN_SIGNATURE_LEN, c->confirm, GROUP_SECRET_LEN);
	*outlen = len;
	return 0;
}

static int decode_change(struct group_reader *r, struct group_change *ch)
{
	const uint8_t *p = group_take(r, 1);
	if (p == NULL)
		return CAIRN_EINVAL;
	ch->kind = p[0];
	size_t n = change_len(ch);
	if (n == 0 || (p = group_take(r, n - 1)) == NULL)
		return CAIRN_EINVAL;
	switch (ch->kind) {
	case GROUP_CHANGE_ADD:
		memcpy(ch->identity, p, CAIRN_KEY_LEN);
		memcpy(ch->sign_key, p + 32, CAIRN_KEY_LEN);
		memcpy(ch->group_key, p + 64, CAIRN_KEY_LEN);
		ch->role = p[96];
		break;
	case GROUP_CHANGE_REMOVE:
		ch->index = group_get_u16(p);
		break;
	case GROUP_CHANGE_ROLE:
		ch->index = group_get_u16(p);
		ch->role = p[2];
		break;
	default:
		ch->settings.rotate_seconds = group_get_u32(p);
		ch->settings.rotate_messages = group_get_u32(p + 4);
		return 0;
	}
	return ch->kind == GROUP_CHANGE_REMOVE || role_ok(ch->role) ? 0 : CAIRN_EINVAL;
}

int group_commit_decode(const uint8_t *in, size_t len, struct group_commit *out)
{
	memset(out, 0, sizeof(*out));
	struct group_reader r = {in, len};
	const uint8_t *p = group_take(&r, 68); /* version .. change_count */
	if (p == NULL || p[0] != GROUP_COMMIT_VERSION)
		goto bad;
	out->version = p[0];
	memcpy(out->group_id, p + 1, GROUP_ID_LEN);
	out->epoch = group_get_u64(p + 17);
	memcpy(out->prev_head, p + 25, GROUP_HEAD_LEN);
	out->committer = group_get_u16(p + 57);
	out->last_seq = group_get_u64(p + 59);
	out->change_count = p[67];
	for (unsigned i = 0; i < out->change_count; i++)
		if (decode_change(&r, &out->changes[i]) != 0)
			goto bad;
	if ((p = group_take(&r, 2)) == NULL)
		goto bad;
	out->move_len = group_get_u16(p);
	if (!move_len_ok(out->move_len) || (p = group_take(&r, out->move_len)) == NULL)
		goto bad;
	memcpy(out->move_box, p, out->move_len);
	if ((p = group_take(&r, 66)) == NULL)
		goto bad;
	memcpy(out->eph, p, CAIRN_KEY_LEN);
	memcpy(out->roster_hash, p + 32, GROUP_HEAD_LEN);
	out->seal_count = group_get_u16(p + 64);
	if (out->seal_count > GROUP_MEMBERS_MAX ||
	    (p = group_take(&r, (size_t)out->seal_count * GROUP_SEAL_LEN)) == NULL)
		goto bad;
	for (unsigned i = 0; i < out->seal_count; i++, p += GROUP_SEAL_LEN) {
		out->seals[i].key_serial = group_get_u32(p);
		memcpy(out->seals[i].masked, p + 4, GROUP_SECRET_LEN);
	}
	if ((p = group_take(&r, CAIRN_SIGNATURE_LEN + GROUP_SECRET_LEN)) == NULL || r.left != 0)
		goto bad;
	memcpy(out->signature, p, CAIRN_SIGNATURE_LEN);
	memcpy(out->confirm, p + CAIRN_SIGNATURE_LEN, GROUP_SECRET_LEN);
	return 0;
bad:
	sodium_memzero(out, sizeof(*out));
	return CAIRN_EINVAL;
}

/*
 * The roster while changes are applied: each entry names its source, a member of roster_e
 * (below FROM_ADD) or an add change (FROM_ADD | change index), with its current role. Adds
 * append and removes close the gap, so the members of roster_e that stay always come first,
 * in their old order. It can hold 1,000 + 255 entries, since a commit may add before it
 * removes: only the result must fit 9.2's bound.
 */
#define FROM_ADD 0x8000u
#define WORK_MAX (GROUP_MEMBERS_MAX + GROUP_CHANGES_MAX)

struct work {
	unsigned n;
	uint16_t src[WORK_MAX];
	uint8_t role[WORK_MAX];
};

static const uint8_t *work_identity(const struct work *w, unsigned k, const struct group_roster *r,
                                    const struct group_change *ch)
{
	uint16_t s = w->src[k];
	return s & FROM_ADD ? ch[s & ~FROM_ADD].identity : r->member[s].identity;
}

static int work_change(struct work *w, const struct group_roster *r, const struct group_change *ch,
                       unsigned i, struct group_settings *set, bool *settings_seen)
{
	const struct group_change *c = &ch[i];
	switch (c->kind) {
	case GROUP_CHANGE_ADD:
		if (!role_ok(c->role) || !group_ed25519_key_ok(c->identity) ||
		    !group_ed25519_key_ok(c->sign_key) || !group_x25519_key_ok(c->group_key))
			return CAIRN_EINVAL;
		for (unsigned k = 0; k < w->n; k++)
			if (memcmp(work_identity(w, k, r, ch), c->identity, CAIRN_KEY_LEN) == 0)
				return CAIRN_EINVAL;
		w->src[w->n] = (uint16_t)(FROM_ADD | i);
		w->role[w->n++] = c->role;
		return 0;
	case GROUP_CHANGE_REMOVE:
		if (c->index >= w->n)
			return CAIRN_EINVAL;
		memmove(&w->src[c->index], &w->src[c->index + 1],
		        (w->n - c->index - 1) * sizeof(w->src[0]));
		memmove(&w->role[c->index], &w->role[c->index + 1], w->n - c->index - 1);
		w->n--;
		return 0;
	case GROUP_CHANGE_ROLE:
		if (c->index >= w->n || !role_ok(c->role))
			return CAIRN_EINVAL;
		w->role[c->index] = c->role;
		return 0;
	case GROUP_CHANGE_SETTINGS:
		*set = c->settings;
		*settings_seen = true;
		return 0;
	default:
		return CAIRN_EINVAL;
	}
}

/*
 * The latest counting key update of each member of R (9.6): LATEST[i] is an index into
 * UPDATES or -1. Each member's serials must follow on from its roster entry's, one by one.
 */
static int latest_updates(const struct group_roster *r, const struct group_counted_update *updates,
                          size_t nupd, int32_t latest[static GROUP_MEMBERS_MAX])
{
	for (unsigned i = 0; i < GROUP_MEMBERS_MAX; i++)
		latest[i] = -1;
	if (nupd > (size_t)GROUP_MEMBERS_MAX * 64)
		return CAIRN_EINVAL; /* far more than an epoch can hold; keeps the index an int32 */
	for (size_t u = 0; u < nupd; u++) {
		const struct group_counted_update *k = &updates[u];
		if (k->index >= r->count)
			return CAIRN_EINVAL;
		uint32_t prev = latest[k->index] < 0 ? r->member[k->index].key_serial
		                                     : updates[latest[k->index]].key_serial;
		if (prev == UINT32_MAX || k->key_serial != prev + 1 ||
		    !group_x25519_key_ok(k->group_key))
			return CAIRN_EINVAL;
		latest[k->index] = (int32_t)u;
	}
	return 0;
}

int group_commit_apply(const struct group_base *base, const struct group_change *changes,
                       unsigned count, const struct group_counted_update *updates, size_t nupd,
                       struct group_next *next)
{
	static const struct group_roster empty;
	const struct group_roster *r = base->genesis ? &empty : base->roster;
	struct group_settings set = base->genesis ? (struct group_settings){0, 0} : base->settings;
	bool settings_seen = false;
	struct work w;
	int32_t latest[GROUP_MEMBERS_MAX];

	if (count > GROUP_CHANGES_MAX || r->count > GROUP_MEMBERS_MAX ||
	    (base->genesis && nupd != 0))
		return CAIRN_EINVAL;
	if (latest_updates(r, updates, nupd, latest) != 0)
		return CAIRN_EINVAL;
	w.n = r->count;
	for (unsigned k = 0; k < w.n; k++) {
		w.src[k] = (uint16_t)k;
		w.role[k] = r->member[k].role;
	}
	for (unsigned i = 0; i < count; i++)
		if (work_change(&w, r, changes, i, &set, &settings_seen) != 0)
			return CAIRN_EINVAL;
	if (w.n < 1 || w.n > GROUP_MEMBERS_MAX || (base->genesis && !settings_seen))
		return CAIRN_EINVAL;

	struct group_roster *out = &next->roster;
	next->retained = 0;
	for (unsigned k = 0; k < w.n; k++) {
		struct group_member *m = &out->member[k];
		uint16_t s = w.src[k];
		if (s & FROM_ADD) {
			const struct group_change *c = &changes[s & ~FROM_ADD];
			memcpy(m->identity, c->identity, CAIRN_KEY_LEN);
			memcpy(m->sign_key, c->sign_key, CAIRN_KEY_LEN);
			memcpy(m->group_key, c->group_key, CAIRN_KEY_LEN);
			m->key_serial = 0;
		} else {
			*m = r->member[s];
			if (latest[s] >= 0) {
				memcpy(m->group_key, updates[latest[s]].group_key, CAIRN_KEY_LEN);
				m->key_serial = updates[latest[s]].key_serial;
			}
			next->from[next->retained++] = s;
		}
		m->role = w.role[k];
	}
	out->count = (uint16_t)w.n;
	next->settings = set;
	return group_roster_admins(out) > 0 ? 0 : CAIRN_EINVAL;
}
