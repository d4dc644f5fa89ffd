/* SPDX-License-Identifier: MIT */
/*
 * Commits (proto/group_commit.h, docs/PROTOCOL.md 9.5 to 9.7) against the history of 9.12:
 * Alice's genesis, her commit adding Bob and Carol, and her commit removing Carol with a move
 * are rebuilt byte for byte from the vectors' inputs (commit, head, epoch secret, keys, move
 * box), then opened as each member would: Alice and Bob get the next epoch and the new
 * location, Carol learns only that she was removed. Then every check a member makes refuses
 * what it must, and the decoder every malformed commit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "group_commit.h"
#include "mdvec.h"

#define KL GROUP_SECRET_LEN

struct person {
	struct group_member m; /* identity, sign key, group key (serial 0) */
	uint8_t sign_sk[64];
	uint8_t group_private[KL];
};

/* The history of 9.12, rebuilt by the fixture. */
struct hist {
	struct person alice, bob, carol;
	uint8_t bob_private1[KL], bob_key1[KL]; /* Bob's key update (serial 1) */
	uint8_t gid[GROUP_ID_LEN];
	struct group_next *n[3]; /* epochs 0, 1, 2 as their committer made them */
	struct group_next *got;  /* what a test opens into */
};

static uint8_t commit_buf[GROUP_COMMIT_MAX_LEN], vec_buf[GROUP_COMMIT_MAX_LEN];

static void want_hex(const char *vec, const char *key, const uint8_t *got, size_t len)
{
	assert_int_equal(mdvec_hex(vec, key, vec_buf, sizeof(vec_buf)), len);
	assert_memory_equal(got, vec_buf, len);
}

static void person_from(struct person *p, const char *vec, const char *id_seed,
                        const char *sign_seed, const char *group_private, uint8_t role)
{
	uint8_t seed[KL], sk[64];
	memset(p, 0, sizeof(*p));
	assert_int_equal(mdvec_hex(vec, id_seed, seed, KL), KL);
	crypto_sign_seed_keypair(p->m.identity, sk, seed);
	assert_int_equal(mdvec_hex(vec, sign_seed, seed, KL), KL);
	crypto_sign_seed_keypair(p->m.sign_key, p->sign_sk, seed);
	assert_int_equal(mdvec_hex(vec, group_private, p->group_private, KL), KL);
	crypto_scalarmult_base(p->m.group_key, p->group_private);
	p->m.role = role;
}

static struct group_base base_of(const struct hist *h, const struct group_next *n)
{
	struct group_base b = {.genesis = n == NULL,
	                       .settings = n ? n->settings : (struct group_settings){0, 0},
	                       .roster = n ? &n->roster : NULL};
	memcpy(b.group_id, h->gid, GROUP_ID_LEN);
	if (n != NULL) {
		b.epoch = n->epoch;
		memcpy(b.head, n->head, GROUP_HEAD_LEN);
		memcpy(b.init_secret, n->keys.init_secret, KL);
	}
	return b;
}

static struct group_change add_of(const struct person *p)
{
	struct group_change c = {.kind = GROUP_CHANGE_ADD, .role = p->m.role};
	memcpy(c.identity, p->m.identity, 32);
	memcpy(c.sign_key, p->m.sign_key, 32);
	memcpy(c.group_key, p->m.group_key, 32);
	return c;
}

/* A request of VEC's commit secret and ephemeral key (read into S and E). */
static struct group_commit_request request_of(const char *vec, const struct person *by,
                                              uint8_t s[static KL], uint8_t e[static KL])
{
	assert_int_equal(mdvec_hex(vec, "commit_secret", s, KL), KL);
	assert_int_equal(mdvec_hex(vec, "ephemeral_private", e, KL), KL);
	return (struct group_commit_request){
	    .sign_secret = by->sign_sk, .commit_secret = s, .eph_private = e};
}

static uint8_t location[GROUP_LOCATION_MAX];
static size_t location_len;
static struct group_key_update bob_update;

/* Builds the commit of VEC on epoch PREV (NULL: the genesis) with REQ into commit_buf and
 * *N, and checks it against the vector. */
static size_t build_vec(struct hist *h, const char *vec, const struct group_next *prev,
                        const struct group_commit_request *req, struct group_next *n)
{
	struct group_base b = base_of(h, prev);
	size_t len = 0;
	assert_int_equal(group_commit_build(&b, req, commit_buf, sizeof(commit_buf), &len, n), 0);
	want_hex(vec, "commit", commit_buf, len);
	want_hex(vec, "head", n->head, GROUP_HEAD_LEN);
	want_hex(vec, "epoch_secret", n->epoch_secret, KL);
	want_hex(vec, "confirm_key", n->keys.confirm_key, KL);
	want_hex(vec, "roster_hash", n->commit.roster_hash, GROUP_HEAD_LEN);
	uint8_t r[GROUP_ROSTER_MAX_LEN];
	size_t rlen = 0;
	assert_int_equal(group_roster_encode(&n->roster, r, sizeof(r), &rlen), 0);
	want_hex(vec, "roster", r, rlen);
	assert_true(n->has_secret);
	assert_false(n->removed);
	return len;
}

static int setup(void **state)
{
	struct hist *h = calloc(1, sizeof(*h));
	assert_non_null(h);
	for (int i = 0; i < 3; i++)
		assert_non_null(h->n[i] = calloc(1, sizeof(struct group_next)));
	assert_non_null(h->got = calloc(1, sizeof(struct group_next)));
	person_from(&h->alice, "group/genesis", "alice_identity_seed", "alice_sign_seed",
	            "alice_group_private", GROUP_ROLE_ADMIN);
	person_from(&h->bob, "group/add", "bob_identity_seed", "bob_sign_seed", "bob_group_private",
	            GROUP_ROLE_MEMBER);
	person_from(&h->carol, "group/add", "carol_identity_seed", "carol_sign_seed",
	            "carol_group_private", GROUP_ROLE_MEMBER);
	assert_int_equal(mdvec_hex("group/keyupdate", "group_private", h->bob_private1, KL), KL);
	crypto_scalarmult_base(h->bob_key1, h->bob_private1);
	assert_int_equal(mdvec_hex("group/genesis", "group_id", h->gid, GROUP_ID_LEN),
	                 GROUP_ID_LEN);
	location_len = mdvec_hex("group/remove", "location", location, sizeof(location));
	bob_update = (struct group_key_update){.index = 1, .key_serial = 1};
	memcpy(bob_update.group_key, h->bob_key1, KL);

	uint8_t s[KL], e[KL];
	struct group_change ch[2];
	struct group_settings set = {604800, 1000};
	struct group_commit_request req = request_of("group/genesis", &h->alice, s, e);
	group_genesis_changes(&h->alice.m, &set, ch);
	req.changes = ch;
	req.change_count = 2;
	build_vec(h, "group/genesis", NULL, &req, h->n[0]);

	struct group_change add[2] = {add_of(&h->bob), add_of(&h->carol)};
	req = request_of("group/add", &h->alice, s, e);
	req.last_seq = 1;
	req.changes = add;
	req.change_count = 2;
	build_vec(h, "group/add", h->n[0], &req, h->n[1]);

	struct group_change rm = {.kind = GROUP_CHANGE_REMOVE, .index = 2};
	req = request_of("group/remove", &h->alice, s, e);
	req.last_seq = 4;
	req.changes = &rm;
	req.change_count = 1;
	req.updates = &bob_update;
	req.update_count = 1;
	req.location = location;
	req.location_len = location_len;
	build_vec(h, "group/remove", h->n[1], &req, h->n[2]);
	*state = h;
	return 0;
}

static int teardown(void **state)
{
	struct hist *h = *state;
	for (int i = 0; i < 3; i++)
		free(h->n[i]);
	free(h->got);
	free(h);
	return 0;
}

/* Loads VEC's commit into commit_buf. */
static size_t vec_commit(const char *vec)
{
	return mdvec_hex(vec, "commit", commit_buf, sizeof(commit_buf));
}

/* The builds of the fixture matched the vectors; here the rest of what they made. */
static void test_build(void **state)
{
	struct hist *h = *state;
	want_hex("group/genesis", "header_key", h->n[0]->keys.header_key, KL);
	want_hex("group/genesis", "commit_key", h->n[0]->keys.commit_key, KL);
	want_hex("group/genesis", "sender_base", h->n[0]->keys.sender_base, KL);
	want_hex("group/genesis", "init_secret", h->n[0]->keys.init_secret, KL);
	want_hex("group/add", "init_secret", h->n[1]->keys.init_secret, KL);
	want_hex("group/remove", "move_box", h->n[2]->commit.move_box, h->n[2]->commit.move_len);
	assert_int_equal(h->n[2]->location_len, location_len);
	assert_memory_equal(h->n[2]->location, location, location_len);
	assert_int_equal(h->n[0]->settings.rotate_seconds, 604800);
	assert_int_equal(h->n[2]->settings.rotate_messages, 1000);
	assert_int_equal(h->n[1]->retained, 1);
	assert_int_equal(h->n[2]->retained, 2);
	assert_int_equal(h->n[2]->epoch, 2);
}

/* Opens COMMIT_BUF (LEN) on epoch PREV as member SELF with KEYS. */
static int open_as(struct hist *h, const struct group_next *prev, size_t len,
                   const struct group_key_update *upd, size_t nupd, uint64_t first_seq,
                   uint64_t prev_pos, uint16_t self, const struct group_key_pair *keys,
                   size_t nkeys)
{
	struct group_base b = base_of(h, prev);
	struct group_opener op = {.self = self, .keys = keys, .key_count = nkeys};
	return group_commit_open(&b, commit_buf, len, upd, nupd, first_seq, prev_pos, &op, h->got);
}

static void test_open(void **state)
{
	struct hist *h = *state;
	struct group_next *g = h->got;
	struct group_key_pair alice[1], bob[2], carol[1];
	memset(alice, 0, sizeof(alice));
	memset(bob, 0, sizeof(bob));
	memset(carol, 0, sizeof(carol));
	bob[1].key_serial = 1;
	memcpy(alice[0].private_key, h->alice.group_private, KL);
	memcpy(bob[0].private_key, h->bob.group_private, KL);
	memcpy(bob[1].private_key, h->bob_private1, KL);
	memcpy(carol[0].private_key, h->carol.group_private, KL);

	/* The genesis checks out, but seals to nobody. */
	size_t len = vec_commit("group/genesis");
	assert_int_equal(open_as(h, NULL, len, NULL, 0, 1, 0, 0, NULL, 0), 0);
	assert_false(g->has_secret);
	assert_int_equal(g->roster.count, 1);
	want_hex("group/genesis", "head", g->head, GROUP_HEAD_LEN);
	assert_true(sodium_is_zero(g->epoch_secret, KL));

	/* Alice opens her own add, as a committer recovering from a crash would. */
	len = vec_commit("group/add");
	assert_int_equal(open_as(h, h->n[0], len, NULL, 0, 2, 1, 0, alice, 1), 0);
	assert_true(g->has_secret);
	want_hex("group/add", "epoch_secret", g->epoch_secret, KL);
	want_hex("group/add", "sender_base", g->keys.sender_base, KL);
	assert_int_equal(g->roster.count, 3);
	assert_int_equal(g->location_len, 0);

	/* The removal: Bob with his serial 1 key, Alice with her serial 0. */
	len = vec_commit("group/remove");
	assert_int_equal(open_as(h, h->n[1], len, &bob_update, 1, 5, 2, 1, bob, 2), 0);
	assert_true(g->has_secret);
	assert_false(g->removed);
	want_hex("group/remove", "epoch_secret", g->epoch_secret, KL);
	want_hex("group/remove", "confirm_key", g->keys.confirm_key, KL);
	assert_int_equal(g->location_len, location_len);
	assert_memory_equal(g->location, location, location_len);
	assert_int_equal(g->roster.member[1].key_serial, 1);
	assert_int_equal(open_as(h, h->n[1], len, &bob_update, 1, 5, 2, 0, alice, 1), 0);
	want_hex("group/remove", "epoch_secret", g->epoch_secret, KL);

	/* Carol reads it and learns she is out: no seal, no secret, no location. */
	assert_int_equal(open_as(h, h->n[1], len, &bob_update, 1, 5, 2, 2, carol, 1), 0);
	assert_true(g->removed);
	assert_false(g->has_secret);
	assert_true(sodium_is_zero(g->epoch_secret, KL));
	assert_true(sodium_is_zero((const uint8_t *)&g->keys, sizeof(g->keys)));
	assert_int_equal(g->location_len, 0);
	assert_true(sodium_is_zero(g->location, sizeof(g->location)));
	/* Posing as Bob, with her own key as his serial 1 or with only his serial 0 key, she
	 * opens nothing. */
	struct group_key_pair fake;
	fake.key_serial = 1;
	memcpy(fake.private_key, h->carol.group_private, KL);
	assert_int_equal(open_as(h, h->n[1], len, &bob_update, 1, 5, 2, 1, &fake, 1),
	                 CAIRN_ECRYPTO);
	assert_int_equal(open_as(h, h->n[1], len, &bob_update, 1, 5, 2, 1, bob, 1), CAIRN_ECRYPTO);
	/* Nor does the move box open under a move key from any secret she holds. */
	const uint8_t *guesses[] = {h->carol.group_private, h->n[1]->keys.init_secret,
	                            h->n[1]->keys.sender_base, h->n[1]->epoch_secret};
	uint8_t ad[GROUP_ID_LEN + 8], out[GROUP_LOCATION_MAX], key[KL];
	static const uint8_t nonce[GROUP_NONCE_LEN];
	memcpy(ad, h->gid, GROUP_ID_LEN);
	group_put_u64(ad + GROUP_ID_LEN, 2);
	const struct group_commit *c = &h->n[2]->commit;
	for (size_t i = 0; i < sizeof(guesses) / sizeof(guesses[0]); i++) {
		group_move_key(h->n[1]->keys.init_secret, guesses[i], key);
		assert_int_not_equal(
		    crypto_aead_xchacha20poly1305_ietf_decrypt(
		        out, NULL, NULL, c->move_box, c->move_len, ad, sizeof(ad), nonce, key),
		    0);
	}
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_build),
	    cmocka_unit_test(test_open),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
