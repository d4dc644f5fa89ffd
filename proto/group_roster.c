/* SPDX-License-Identifier: MIT */
/*
 * The roster of a group (docs/PROTOCOL.md section 9.2): its one encoding, the checks every
 * roster must pass, and its hash. The checks are the same whether a roster comes from a
 * welcome or from applying a commit (group_commit.c), so both call these.
 */
#include <string.h>

#include <sodium.h>

#include "group_roster.h"

static const char ROSTER_LABEL[] = "cairn/1 group roster";

bool group_ed25519_key_ok(const uint8_t key[static CAIRN_KEY_LEN])
{
	uint8_t x[CAIRN_KEY_LEN];
	bool ok = crypto_sign_ed25519_pk_to_curve25519(x, key) == 0;
	sodium_memzero(x, sizeof(x));
	return ok;
}

bool group_x25519_key_ok(const uint8_t key[static CAIRN_KEY_LEN])
{
	/* Any scalar will do: clamping clears the cofactor, so a low-order point gives an
	 * all-zero result (which libsodium reports) whatever the scalar. */
	static const uint8_t probe[CAIRN_KEY_LEN] = {1};
	uint8_t out[CAIRN_KEY_LEN];
	bool ok = crypto_scalarmult(out, probe, key) == 0;
	sodium_memzero(out, sizeof(out));
	return ok;
}

int group_member_check(const struct group_member *m)
{
	if (m->role != GROUP_ROLE_MEMBER && m->role != GROUP_ROLE_ADMIN)
		return CAIRN_EINVAL;
	if (!group_ed25519_key_ok(m->identity) || !group_ed25519_key_ok(m->sign_key) ||
	    !group_x25519_key_ok(m->group_key))
		return CAIRN_EINVAL;
	return 0;
}

int group_roster_find(const struct group_roster *r, const uint8_t identity[static CAIRN_KEY_LEN])
{
	for (int i = 0; i < r->count; i++)
		if (memcmp(r->member[i].identity, identity, CAIRN_KEY_LEN) == 0)
			return i;
	return -1;
}

unsigned group_roster_admins(const struct group_roster *r)
{
	unsigned n = 0;
	for (unsigned i = 0; i < r->count; i++)
		n += r->member[i].role == GROUP_ROLE_ADMIN;
	return n;
}

int group_roster_check(const struct group_roster *r)
{
	if (r->count < 1 || r->count > GROUP_MEMBERS_MAX || group_roster_admins(r) == 0)
		return CAIRN_EINVAL;
	/* Identities first: the pairwise compare (half a million at 1,000 members, about a
	 * millisecond) is cheaper than the point checks it can spare. */
	for (unsigned i = 1; i < r->count; i++)
		for (unsigned j = 0; j < i; j++)
			if (memcmp(r->member[i].identity, r->member[j].identity, CAIRN_KEY_LEN) ==
			    0)
				return CAIRN_EINVAL;
	for (unsigned i = 0; i < r->count; i++)
		if (group_member_check(&r->member[i]) != 0)
			return CAIRN_EINVAL;
	return 0;
}

size_t group_roster_len(const struct group_roster *r)
{
	return 2 + (size_t)r->count * GROUP_MEMBER_LEN;
}

static void member_encode(const struct group_member *m, uint8_t out[static GROUP_MEMBER_LEN])
{
	memcpy(out, m->identity, CAIRN_KEY_LEN);
	memcpy(out + 32, m->sign_key, CAIRN_KEY_LEN);
	memcpy(out + 64, m->group_key, CAIRN_KEY_LEN);
	group_put_u32(out + 96, m->key_serial);
	out[100] = m->role;
}

int group_roster_encode(const struct group_roster *r, uint8_t *out, size_t cap, size_t *outlen)
{
	*outlen = 0;
	if (r->count > GROUP_MEMBERS_MAX)
		return CAIRN_EINVAL;
	size_t len = group_roster_len(r);
	if (cap < len)
		return CAIRN_ENOBUFS;
	group_put_u16(out, r->count);
	for (unsigned i = 0; i < r->count; i++)
		member_encode(&r->member[i], out + 2 + (size_t)i * GROUP_MEMBER_LEN);
	*outlen = len;
	return 0;
}

int group_roster_decode(const uint8_t *in, size_t len, struct group_roster *out)
{
	out->count = 0;
	if (len < 2)
		goto bad;
	unsigned count = group_get_u16(in);
	if (count < 1 || count > GROUP_MEMBERS_MAX || len != 2 + (size_t)count * GROUP_MEMBER_LEN)
		goto bad;
	for (unsigned i = 0; i < count; i++) {
		const uint8_t *p = in + 2 + (size_t)i * GROUP_MEMBER_LEN;
		struct group_member *m = &out->member[i];
		memcpy(m->identity, p, CAIRN_KEY_LEN);
		memcpy(m->sign_key, p + 32, CAIRN_KEY_LEN);
		memcpy(m->group_key, p + 64, CAIRN_KEY_LEN);
		m->key_serial = group_get_u32(p + 96);
		m->role = p[100];
	}
	out->count = (uint16_t)count;
	if (group_roster_check(out) != 0)
		goto bad;
	return 0;
bad:
	sodium_memzero(out, sizeof(*out));
	return CAIRN_EINVAL;
}

void group_roster_hash(const struct group_roster *r, uint8_t out[static GROUP_HEAD_LEN])
{
	/* Hashed member by member, so no 100 KB buffer is needed. */
	crypto_hash_sha256_state st;
	uint8_t buf[GROUP_MEMBER_LEN];
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const uint8_t *)ROSTER_LABEL, sizeof(ROSTER_LABEL) - 1);
	group_put_u16(buf, r->count);
	crypto_hash_sha256_update(&st, buf, 2);
	for (unsigned i = 0; i < r->count && i < GROUP_MEMBERS_MAX; i++) {
		member_encode(&r->member[i], buf);
		crypto_hash_sha256_update(&st, buf, sizeof(buf));
	}
	crypto_hash_sha256_final(&st, out);
}
