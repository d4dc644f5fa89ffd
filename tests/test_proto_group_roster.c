/* SPDX-License-Identifier: MIT */
/*
 * The group roster (proto/group_roster.h, docs/PROTOCOL.md 9.2): the rosters of group/genesis,
 * group/add and group/remove decode, encode back to the same bytes and hash to their
 * roster_hash; and every check of 9.2 refuses what it must: wrong lengths, trailing bytes,
 * counts out of range, bad roles, no admin, an identity twice, keys that do not decode or are
 * of low order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "group_roster.h"
#include "mdvec.h"

static const char *const VECS[] = {"group/genesis", "group/add", "group/remove"};

static uint8_t buf[GROUP_ROSTER_MAX_LEN + 8];

static struct group_roster *roster_new(void)
{
	struct group_roster *r = calloc(1, sizeof(*r));
	assert_non_null(r);
	return r;
}

static size_t vector_roster(const char *vec)
{
	return mdvec_hex(vec, "roster", buf, sizeof(buf));
}

static void test_vectors(void **state)
{
	(void)state;
	struct group_roster *r = roster_new();
	static uint8_t out[GROUP_ROSTER_MAX_LEN];
	for (size_t v = 0; v < sizeof(VECS) / sizeof(VECS[0]); v++) {
		size_t len = vector_roster(VECS[v]), olen = 0;
		uint8_t hash[GROUP_HEAD_LEN], want[GROUP_HEAD_LEN];
		assert_int_equal(group_roster_decode(buf, len, r), 0);
		assert_int_equal(group_roster_len(r), len);
		assert_int_equal(group_roster_encode(r, out, sizeof(out), &olen), 0);
		assert_int_equal(olen, len);
		assert_memory_equal(out, buf, len);
		group_roster_hash(r, hash);
		assert_int_equal(mdvec_hex(VECS[v], "roster_hash", want, sizeof(want)), 32);
		assert_memory_equal(hash, want, 32);
		assert_int_equal(group_roster_check(r), 0);
		assert_int_equal(group_roster_find(r, r->member[r->count - 1].identity),
		                 r->count - 1);
		assert_int_equal(group_roster_encode(r, out, len - 1, &olen), CAIRN_ENOBUFS);
	}
	/* The add roster: Alice admin, Bob and Carol members, every serial 0. */
	assert_int_equal(group_roster_decode(buf, vector_roster("group/add"), r), 0);
	assert_int_equal(r->count, 3);
	assert_int_equal(group_roster_admins(r), 1);
	assert_int_equal(r->member[0].role, GROUP_ROLE_ADMIN);
	assert_int_equal(r->member[2].role, GROUP_ROLE_MEMBER);
	uint8_t id[32];
	assert_int_equal(mdvec_hex("group/genesis", "alice_identity", id, 32), 32);
	assert_int_equal(group_roster_find(r, id), 0);
	id[0] ^= 1;
	assert_int_equal(group_roster_find(r, id), -1);
	/* The remove roster: Bob's key update gave him serial 1. */
	assert_int_equal(group_roster_decode(buf, vector_roster("group/remove"), r), 0);
	assert_int_equal(r->member[1].key_serial, 1);
	free(r);
}

/* Decoding BUF (LEN bytes) fails and leaves the roster empty. */
static void want_refused(struct group_roster *r, size_t len)
{
	memset(r, 0xa5, sizeof(*r));
	assert_int_equal(group_roster_decode(buf, len, r), CAIRN_EINVAL);
	assert_int_equal(r->count, 0);
	assert_true(sodium_is_zero((const uint8_t *)r->member, sizeof(r->member)));
}

static void test_lengths(void **state)
{
	(void)state;
	struct group_roster *r = roster_new();
	size_t len = vector_roster("group/add");
	for (size_t cut = 0; cut < len; cut++)
		want_refused(r, cut);
	buf[len] = 0;
	want_refused(r, len + 1); /* a trailing byte */
	buf[1] = 4;               /* a count above what follows */
	want_refused(r, len);
	buf[1] = 2; /* a count below what follows */
	want_refused(r, len);
	buf[1] = 0; /* count 0, nothing after it */
	want_refused(r, 2);
	buf[0] = 0x03; /* count 1001 */
	buf[1] = 0xe9;
	want_refused(r, 2 + 1001 * GROUP_MEMBER_LEN);
	free(r);
}

/* Member I of the add roster in BUF, at field offset OFF. */
static uint8_t *field(unsigned i, size_t off)
{
	return buf + 2 + i * GROUP_MEMBER_LEN + off;
}

static void test_members(void **state)
{
	(void)state;
	struct group_roster *r = roster_new();
	size_t len;
	static const uint8_t bad_roles[] = {0, 3, 0xff};
	for (size_t k = 0; k < sizeof(bad_roles); k++) {
		len = vector_roster("group/add");
		*field(1, 100) = bad_roles[k];
		want_refused(r, len);
	}
	/* No admin: Alice made a member. */
	len = vector_roster("group/add");
	*field(0, 100) = GROUP_ROLE_MEMBER;
	want_refused(r, len);
	/* Two admins are fine. */
	len = vector_roster("group/add");
	*field(2, 100) = GROUP_ROLE_ADMIN;
	assert_int_equal(group_roster_decode(buf, len, r), 0);
	assert_int_equal(group_roster_admins(r), 2);
	/* Carol's identity replaced by Alice's. */
	len = vector_roster("group/add");
	memcpy(field(2, 0), field(0, 0), 32);
	want_refused(r, len);
	/* The same sign key or group key twice is not what 9.2 forbids. */
	len = vector_roster("group/add");
	memcpy(field(2, 32), field(0, 32), 64);
	assert_int_equal(group_roster_decode(buf, len, r), 0);
	free(r);
}

/* A 32-byte value that is no Ed25519 point: the first y (as 0, 1, 2, ...) that does not
 * decode. */
static void no_point(uint8_t out[32])
{
	memset(out, 0, 32);
	for (out[0] = 2; out[0] < 255; out[0]++) {
		uint8_t x[32];
		if (crypto_sign_ed25519_pk_to_curve25519(x, out) != 0)
			return;
	}
	fail();
}

static void test_keys(void **state)
{
	(void)state;
	struct group_roster *r = roster_new();
	uint8_t bad[32], order[32] = {1}; /* the neutral point: small order */
	no_point(bad);
	assert_false(group_ed25519_key_ok(bad));
	assert_false(group_ed25519_key_ok(order));
	for (size_t off = 0; off <= 32; off += 32) {
		size_t len = vector_roster("group/add");
		memcpy(field(1, off), bad, 32);
		want_refused(r, len);
		len = vector_roster("group/add");
		memcpy(field(1, off), order, 32);
		want_refused(r, len);
	}
	/* X25519 keys of low order: 0 and 1, and one of order 8 (from libsodium's blocklist). */
	uint8_t low[3][32] = {{0}, {1}};
	test_unhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", low[2], 32);
	for (size_t k = 0; k < 3; k++) {
		assert_false(group_x25519_key_ok(low[k]));
		size_t len = vector_roster("group/add");
		memcpy(field(2, 64), low[k], 32);
		want_refused(r, len);
	}
	/* A group key need not be an Ed25519 point, nor a sign key an X25519 one: each is
	 * checked as what it is. */
	size_t len = vector_roster("group/add");
	assert_true(group_x25519_key_ok(field(0, 32)));
	assert_int_equal(group_roster_decode(buf, len, r), 0);
	free(r);
}

/* The hash covers every byte: changing the serial changes it. */
static void test_hash(void **state)
{
	(void)state;
	struct group_roster *r = roster_new();
	uint8_t h1[32], h2[32];
	assert_int_equal(group_roster_decode(buf, vector_roster("group/remove"), r), 0);
	group_roster_hash(r, h1);
	r->member[1].key_serial = 0;
	group_roster_hash(r, h2);
	assert_memory_not_equal(h1, h2, 32);
	r->count = GROUP_MEMBERS_MAX + 1;
	size_t olen = 1;
	assert_int_equal(group_roster_encode(r, buf, sizeof(buf), &olen), CAIRN_EINVAL);
	assert_int_equal(olen, 0);
	free(r);
}

/* A full roster of 1,000 members decodes, and the 1,001st member cannot be expressed. */
static void test_full(void **state)
{
	(void)state;
	struct group_roster *r = roster_new();
	r->count = GROUP_MEMBERS_MAX;
	for (unsigned i = 0; i < GROUP_MEMBERS_MAX; i++) {
		uint8_t seed[32], sk[64];
		memset(seed, 0, sizeof(seed));
		group_put_u32(seed, i + 1);
		crypto_sign_seed_keypair(r->member[i].identity, sk, seed);
		memcpy(r->member[i].sign_key, r->member[i].identity, 32);
		crypto_scalarmult_base(r->member[i].group_key, seed);
		r->member[i].role = i == 0 ? GROUP_ROLE_ADMIN : GROUP_ROLE_MEMBER;
	}
	size_t len = 0;
	assert_int_equal(group_roster_encode(r, buf, sizeof(buf), &len), 0);
	assert_int_equal(len, GROUP_ROSTER_MAX_LEN);
	assert_int_equal(group_roster_decode(buf, len, r), 0);
	assert_int_equal(r->count, GROUP_MEMBERS_MAX);
	/* The last member's identity made equal to the first's. */
	memcpy(buf + 2 + 999 * GROUP_MEMBER_LEN, buf + 2, 32);
	want_refused(r, len);
	free(r);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vectors), cmocka_unit_test(test_lengths),
	    cmocka_unit_test(test_members), cmocka_unit_test(test_keys),
	    cmocka_unit_test(test_hash),    cmocka_unit_test(test_full),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
