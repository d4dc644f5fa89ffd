/* SPDX-License-Identifier: MIT */
/*
 * The group key schedule (proto/group_keys.h) against the vectors of docs/PROTOCOL.md 9.12,
 * read from the spec at run time: every derived value of group/genesis, group/add,
 * group/remove, group/message and group/safety, from the vectors' own inputs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "group_keys.h"
#include "mdvec.h"

#define KL GROUP_SECRET_LEN

static void want_hex(const char *vec, const char *key, const uint8_t *got, size_t len)
{
	uint8_t want[64];
	assert_true(len <= sizeof(want));
	assert_int_equal(mdvec_hex(vec, key, want, sizeof(want)), len);
	assert_memory_equal(got, want, len);
}

static void group_id(uint8_t gid[static GROUP_ID_LEN])
{
	assert_int_equal(mdvec_hex("group/genesis", "group_id", gid, GROUP_ID_LEN), GROUP_ID_LEN);
}

/* The head of a vector's commit: the hash of its bytes up to and including the signature. */
static void head_of(const char *vec, uint8_t head[static GROUP_HEAD_LEN])
{
	static uint8_t commit[4096];
	size_t len = mdvec_hex(vec, "commit", commit, sizeof(commit));
	assert_true(len > 32 + 64);
	group_head(commit, len - 32, head);
	want_hex(vec, "head", head, GROUP_HEAD_LEN);
}

/* The commit's trailing confirm is HMAC(confirm_key, head). */
static void confirm_of(const char *vec, const uint8_t confirm_key[static KL],
                       const uint8_t head[static GROUP_HEAD_LEN])
{
	static uint8_t commit[4096];
	uint8_t c[KL];
	size_t len = mdvec_hex(vec, "commit", commit, sizeof(commit));
	group_confirm(confirm_key, head, c);
	assert_memory_equal(c, commit + len - 32, KL);
}

static void check_keys(const char *vec, const struct group_epoch_keys *k, int all)
{
	want_hex(vec, "confirm_key", k->confirm_key, KL);
	if (!all)
		return;
	want_hex(vec, "header_key", k->header_key, KL);
	want_hex(vec, "commit_key", k->commit_key, KL);
	want_hex(vec, "sender_base", k->sender_base, KL);
	want_hex(vec, "init_secret", k->init_secret, KL);
}

/* Epoch EPOCH of vector VEC from the previous epoch's INIT (0^32 for the genesis): head from
 * the commit, E, the five keys, the confirm. */
static void epoch_of(const char *vec, uint64_t epoch, const uint8_t init[static KL], int all,
                     struct group_epoch_keys *k, uint8_t head[static GROUP_HEAD_LEN])
{
	uint8_t gid[GROUP_ID_LEN], cs[KL], e[KL], ctx[GROUP_CTX_LEN];
	group_id(gid);
	head_of(vec, head);
	assert_int_equal(mdvec_hex(vec, "commit_secret", cs, KL), KL);
	group_next_epoch(init, cs, head, e);
	want_hex(vec, "epoch_secret", e, KL);
	group_ctx(gid, epoch, head, ctx);
	group_epoch_keys(e, ctx, k);
	check_keys(vec, k, all);
	confirm_of(vec, k->confirm_key, head);
}

static void test_ctx(void **state)
{
	(void)state;
	uint8_t gid[GROUP_ID_LEN], head[GROUP_HEAD_LEN], ctx[GROUP_CTX_LEN];
	memset(gid, 0x67, sizeof(gid));
	memset(head, 0xab, sizeof(head));
	group_ctx(gid, 0x0102030405060708ull, head, ctx);
	assert_memory_equal(ctx, gid, GROUP_ID_LEN);
	const uint8_t be[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	assert_memory_equal(ctx + GROUP_ID_LEN, be, 8);
	assert_memory_equal(ctx + GROUP_ID_LEN + 8, head, GROUP_HEAD_LEN);
}

static void test_genesis(void **state)
{
	(void)state;
	struct group_epoch_keys k;
	uint8_t zero[KL] = {0}, head[GROUP_HEAD_LEN];
	epoch_of("group/genesis", 0, zero, 1, &k, head);
}

static void test_add(void **state)
{
	(void)state;
	struct group_epoch_keys k0, k1;
	uint8_t zero[KL] = {0}, head0[GROUP_HEAD_LEN], head1[GROUP_HEAD_LEN];
	epoch_of("group/genesis", 0, zero, 1, &k0, head0);
	epoch_of("group/add", 1, k0.init_secret, 1, &k1, head1);

	/* pad_0: Alice's seal, from both ends (committer: eph.private and G; Alice: G.private
	 * and eph). */
	uint8_t gid[GROUP_ID_LEN], ephp[KL], eph[KL], gp[KL], g[KL], pad[KL], pad2[KL];
	group_id(gid);
	assert_int_equal(mdvec_hex("group/add", "ephemeral_private", ephp, KL), KL);
	crypto_scalarmult_base(eph, ephp);
	assert_int_equal(mdvec_hex("group/genesis", "alice_group_private", gp, KL), KL);
	crypto_scalarmult_base(g, gp);
	want_hex("group/genesis", "alice_group_key", g, KL);
	assert_int_equal(group_seal_pad(ephp, g, gid, 1, head0, eph, g, pad), 0);
	want_hex("group/add", "pad_0", pad, KL);
	assert_int_equal(group_seal_pad(gp, eph, gid, 1, head0, eph, g, pad2), 0);
	assert_memory_equal(pad, pad2, KL);
	/* Bound to the epoch, the head and both keys: any other value gives another pad. */
	assert_int_equal(group_seal_pad(gp, eph, gid, 2, head0, eph, g, pad2), 0);
	assert_memory_not_equal(pad, pad2, KL);
	assert_int_equal(group_seal_pad(gp, eph, gid, 1, head1, eph, g, pad2), 0);
	assert_memory_not_equal(pad, pad2, KL);
	assert_int_equal(group_seal_pad(gp, eph, gid, 1, head0, g, eph, pad2), 0);
	assert_memory_not_equal(pad, pad2, KL);
}

static void test_seal_pad_low_order(void **state)
{
	(void)state;
	/* A low-order point gives an all-zero DH: an error, and OUT is left as it was. */
	uint8_t gid[GROUP_ID_LEN] = {0}, head[GROUP_HEAD_LEN] = {0}, priv[KL], zero_pub[KL] = {0};
	uint8_t out[KL], before[KL];
	memset(priv, 0x42, sizeof(priv));
	memset(out, 0x5a, sizeof(out));
	memcpy(before, out, KL);
	assert_int_equal(group_seal_pad(priv, zero_pub, gid, 1, head, zero_pub, zero_pub, out),
	                 CAIRN_ECRYPTO);
	assert_memory_equal(out, before, KL);
}

static void test_remove(void **state)
{
	(void)state;
	struct group_epoch_keys k0, k1, k2;
	uint8_t zero[KL] = {0}, head0[GROUP_HEAD_LEN], head1[GROUP_HEAD_LEN], head2[GROUP_HEAD_LEN];
	epoch_of("group/genesis", 0, zero, 1, &k0, head0);
	epoch_of("group/add", 1, k0.init_secret, 1, &k1, head1);
	/* The vector lists only confirm_key of epoch 2's keys. */
	epoch_of("group/remove", 2, k1.init_secret, 0, &k2, head2);

	uint8_t cs[KL], mv[KL];
	assert_int_equal(mdvec_hex("group/remove", "commit_secret", cs, KL), KL);
	group_move_key(k1.init_secret, cs, mv);
	want_hex("group/remove", "move_key", mv, KL);
	/* Carol holds epoch 1's keys but not init_secret-with-commit_secret: her guesses differ. */
	group_move_key(k1.sender_base, cs, mv);
	uint8_t want[KL];
	assert_int_equal(mdvec_hex("group/remove", "move_key", want, KL), KL);
	assert_memory_not_equal(mv, want, KL);

	/* pad_0 to Alice's serial 0 key, pad_1 to Bob's key update's key (serial 1). */
	uint8_t gid[GROUP_ID_LEN], ephp[KL], eph[KL], gp[KL], g[KL], pad[KL], pad2[KL];
	group_id(gid);
	assert_int_equal(mdvec_hex("group/remove", "ephemeral_private", ephp, KL), KL);
	crypto_scalarmult_base(eph, ephp);
	const struct {
		const char *vec, *key, *pad;
	} who[] = {{"group/genesis", "alice_group_private", "pad_0"},
	           {"group/keyupdate", "group_private", "pad_1"}};
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(mdvec_hex(who[i].vec, who[i].key, gp, KL), KL);
		crypto_scalarmult_base(g, gp);
		assert_int_equal(group_seal_pad(ephp, g, gid, 2, head1, eph, g, pad), 0);
		want_hex("group/remove", who[i].pad, pad, KL);
		assert_int_equal(group_seal_pad(gp, eph, gid, 2, head1, eph, g, pad2), 0);
		assert_memory_equal(pad, pad2, KL);
	}
	want_hex("group/keyupdate", "group_key", g, KL);
}

static void test_message(void **state)
{
	(void)state;
	struct group_epoch_keys k0, k1;
	uint8_t zero[KL] = {0}, head0[GROUP_HEAD_LEN], head1[GROUP_HEAD_LEN];
	epoch_of("group/genesis", 0, zero, 1, &k0, head0);
	epoch_of("group/add", 1, k0.init_secret, 1, &k1, head1);

	uint8_t ck[KL], ck0[KL], mk[KL], key[KL], nonce[GROUP_NONCE_LEN];
	group_sender_chain(k1.sender_base, 1, ck);
	want_hex("group/message", "chain_key", ck, KL);
	memcpy(ck0, ck, KL);
	group_chain_step(ck, mk);
	want_hex("group/message", "message_key", mk, KL);
	assert_memory_not_equal(ck, ck0, KL); /* the chain moved */
	group_message_keys(mk, key, nonce);
	want_hex("group/message", "key", key, KL);
	want_hex("group/message", "body_nonce", nonce, GROUP_NONCE_LEN);

	/* Another index is another chain; the step is HMAC(ck, 1) then HMAC(ck, 2). */
	uint8_t other[KL];
	group_sender_chain(k1.sender_base, 2, other);
	assert_memory_not_equal(other, ck0, KL);
	uint8_t next[KL], one = 1, two = 2;
	crypto_auth_hmacsha256(next, &two, 1, ck0);
	assert_memory_equal(next, ck, KL);
	crypto_auth_hmacsha256(next, &one, 1, ck0);
	assert_memory_equal(next, mk, KL);
}

static void test_safety(void **state)
{
	(void)state;
	uint8_t gid[GROUP_ID_LEN], head[GROUP_HEAD_LEN];
	char num[GROUP_SAFETY_TEXT_LEN];
	group_id(gid);
	assert_int_equal(mdvec_hex("group/safety", "head", head, sizeof(head)), GROUP_HEAD_LEN);
	group_safety_number(gid, 2, head, num);
	assert_string_equal(num, mdvec_str("group/safety", "number"));
	assert_int_equal(strlen(num), GROUP_SAFETY_TEXT_LEN - 1);
	/* The epoch is bound: the same head at epoch 3 is another number. */
	char other[GROUP_SAFETY_TEXT_LEN];
	group_safety_number(gid, 3, head, other);
	assert_string_not_equal(num, other);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ctx),    cmocka_unit_test(test_genesis),
	    cmocka_unit_test(test_add),    cmocka_unit_test(test_seal_pad_low_order),
	    cmocka_unit_test(test_remove), cmocka_unit_test(test_message),
	    cmocka_unit_test(test_safety),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
