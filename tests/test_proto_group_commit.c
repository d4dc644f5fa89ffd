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
static struct group_counted_update bob_update;

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
	bob_update = (struct group_counted_update){.index = 1, .key_serial = 1};
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
                   const struct group_counted_update *upd, size_t nupd, uint64_t first_seq,
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
	/* Its creator, with the commit secret she stored, gets epoch 0 (crash recovery). */
	uint8_t cs[KL];
	struct group_base gb = base_of(h, NULL);
	struct group_opener rec = {.commit_secret = cs};
	assert_int_equal(mdvec_hex("group/genesis", "commit_secret", cs, KL), KL);
	assert_int_equal(group_commit_open(&gb, commit_buf, len, NULL, 0, 1, 0, &rec, g), 0);
	assert_true(g->has_secret);
	want_hex("group/genesis", "epoch_secret", g->epoch_secret, KL);
	want_hex("group/genesis", "header_key", g->keys.header_key, KL);
	cs[0] ^= 1;
	assert_int_equal(group_commit_open(&gb, commit_buf, len, NULL, 0, 1, 0, &rec, g),
	                 CAIRN_ECRYPTO);
	/* And Alice recovers her removal the same way, move box included, with no group key. */
	struct group_base rb = base_of(h, h->n[1]);
	rec.self = 0;
	assert_int_equal(mdvec_hex("group/remove", "commit_secret", cs, KL), KL);
	assert_int_equal(group_commit_open(&rb, commit_buf, vec_commit("group/remove"), &bob_update,
	                                   1, 5, 2, &rec, g),
	                 0);
	want_hex("group/remove", "epoch_secret", g->epoch_secret, KL);
	assert_int_equal(g->location_len, location_len);
	len = vec_commit("group/genesis");

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

static struct group_commit forged;

/* Re-encodes FORGED into commit_buf, signed again by SK (its confirm kept); returns its
 * length. */
static size_t resign(const uint8_t *sk)
{
	static uint8_t msg[20 + GROUP_COMMIT_MAX_LEN];
	size_t len = 0;
	assert_int_equal(group_commit_encode(&forged, commit_buf, sizeof(commit_buf), &len), 0);
	size_t slen = len - 96;
	memcpy(msg, "cairn/1 group commit", 20);
	memcpy(msg + 20, commit_buf, slen);
	crypto_sign_detached(commit_buf + slen, NULL, msg, 20 + slen, sk);
	return len;
}

/* Decodes VEC's commit into FORGED. */
static void forge_from(const char *vec)
{
	size_t len = vec_commit(vec);
	assert_int_equal(group_commit_decode(commit_buf, len, &forged), 0);
}

static struct group_key_pair bob_keys[2];

/* Opens commit_buf as Bob in epoch 1, with his key update, as first part at seq 5. */
static int bob_opens(struct hist *h, size_t len)
{
	memset(bob_keys, 0, sizeof(bob_keys));
	memcpy(bob_keys[0].private_key, h->bob.group_private, KL);
	bob_keys[1].key_serial = 1;
	memcpy(bob_keys[1].private_key, h->bob_private1, KL);
	return open_as(h, h->n[1], len, &bob_update, 1, 5, 2, 1, bob_keys, 2);
}

/* A member's checks of 9.5, on the removal as Bob reads it. */
static void test_open_refuses(void **state)
{
	struct hist *h = *state;
	size_t len = vec_commit("group/remove");
	assert_int_equal(bob_opens(h, len), 0);
	/* Not this epoch: another group, epoch or head (the base is changed, not the commit). */
	struct group_base b = base_of(h, h->n[1]);
	struct group_opener op = {.self = 1, .keys = bob_keys, .key_count = 2};
	b.group_id[0] ^= 1;
	assert_int_equal(group_commit_open(&b, commit_buf, len, &bob_update, 1, 5, 2, &op, h->got),
	                 CAIRN_ESTATE);
	assert_true(sodium_is_zero((const uint8_t *)h->got, sizeof(*h->got)));
	b = base_of(h, h->n[1]);
	b.epoch = 0;
	assert_int_equal(group_commit_open(&b, commit_buf, len, &bob_update, 1, 5, 2, &op, h->got),
	                 CAIRN_ESTATE);
	b = base_of(h, h->n[1]);
	b.head[31] ^= 1;
	assert_int_equal(group_commit_open(&b, commit_buf, len, &bob_update, 1, 5, 2, &op, h->got),
	                 CAIRN_ESTATE);
	/* A replay of the previous commit names an older head. */
	assert_int_equal(
	    open_as(h, h->n[1], vec_commit("group/add"), NULL, 0, 5, 2, 1, bob_keys, 2),
	    CAIRN_ESTATE);

	/* last_seq must lie below the first part and at or after the previous commit. */
	len = vec_commit("group/remove");
	assert_int_equal(open_as(h, h->n[1], len, &bob_update, 1, 4, 2, 1, bob_keys, 2),
	                 CAIRN_EINVAL);
	assert_int_equal(open_as(h, h->n[1], len, &bob_update, 1, 9, 5, 1, bob_keys, 2),
	                 CAIRN_EINVAL);
	assert_int_equal(open_as(h, h->n[1], len, &bob_update, 1, 9, 4, 1, bob_keys, 2), 0);

	/* Key serials: without Bob's update the roster Bob computes differs from the signed one;
	 * an update that does not follow on from serial 0 is refused outright. */
	assert_int_equal(open_as(h, h->n[1], len, NULL, 0, 5, 2, 1, bob_keys, 2), CAIRN_ECRYPTO);
	struct group_counted_update skip = bob_update;
	skip.key_serial = 2;
	assert_int_equal(open_as(h, h->n[1], len, &skip, 1, 5, 2, 1, bob_keys, 2), CAIRN_EINVAL);

	/* Any signed byte changed: the signature fails. */
	static const size_t offsets[] = {0 + 17, 60, 68, 80, 300, 400};
	for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
		len = vec_commit("group/remove");
		commit_buf[offsets[i]] ^= 0x10;
		int rc = bob_opens(h, len);
		assert_true(rc == CAIRN_EAUTH || rc == CAIRN_EINVAL || rc == CAIRN_ESTATE);
	}
	len = vec_commit("group/remove");
	commit_buf[len - 96 - 40] ^= 1; /* a seal's masked secret */
	assert_int_equal(bob_opens(h, len), CAIRN_EAUTH);
	len = vec_commit("group/remove");
	commit_buf[len - 33] ^= 1; /* the signature's last byte */
	assert_int_equal(bob_opens(h, len), CAIRN_EAUTH);
	/* The confirm is not signed: Bob finds it wrong, Carol (no seal) cannot tell. */
	len = vec_commit("group/remove");
	commit_buf[len - 1] ^= 1;
	assert_int_equal(bob_opens(h, len), CAIRN_ECRYPTO);
	struct group_key_pair carol = {.key_serial = 0};
	memcpy(carol.private_key, h->carol.group_private, KL);
	assert_int_equal(open_as(h, h->n[1], len, &bob_update, 1, 5, 2, 2, &carol, 1), 0);
	assert_true(h->got->removed);

	/* Signed by Bob, who is no admin, as committer 1. */
	forge_from("group/remove");
	forged.committer = 1;
	assert_int_equal(bob_opens(h, resign(h->bob.sign_sk)), CAIRN_EINVAL);
	/* Committer 0 but signed by Bob. */
	forge_from("group/remove");
	assert_int_equal(bob_opens(h, resign(h->bob.sign_sk)), CAIRN_EAUTH);
	/* Re-signed by Alice unchanged: still fine (the forging itself is sound). */
	assert_int_equal(bob_opens(h, resign(h->alice.sign_sk)), 0);
	/* A roster hash that is not the roster's. */
	forge_from("group/remove");
	forged.roster_hash[0] ^= 1;
	assert_int_equal(bob_opens(h, resign(h->alice.sign_sk)), CAIRN_ECRYPTO);
	/* Bob's seal under serial 0, though his update counted. */
	forge_from("group/remove");
	forged.seals[1].key_serial = 0;
	assert_int_equal(bob_opens(h, resign(h->alice.sign_sk)), CAIRN_ECRYPTO);
	/* Carol, who has no seal to open, sees it too: the serials are the signed roster's. */
	assert_int_equal(
	    open_as(h, h->n[1], resign(h->alice.sign_sk), &bob_update, 1, 5, 2, 2, &carol, 1),
	    CAIRN_ECRYPTO);
	/* A seal missing, or one too many. */
	forge_from("group/remove");
	forged.seal_count = 1;
	assert_int_equal(bob_opens(h, resign(h->alice.sign_sk)), CAIRN_ECRYPTO);
	forge_from("group/remove");
	forged.seals[2] = forged.seals[1];
	forged.seal_count = 3;
	assert_int_equal(bob_opens(h, resign(h->alice.sign_sk)), CAIRN_ECRYPTO);
	/* A remove without a move. */
	forge_from("group/remove");
	forged.move_len = 0;
	assert_int_equal(bob_opens(h, resign(h->alice.sign_sk)), CAIRN_EINVAL);
	/* A move box that does not open. */
	forge_from("group/remove");
	forged.move_box[5] ^= 1;
	assert_int_equal(bob_opens(h, resign(h->alice.sign_sk)), CAIRN_ECRYPTO);
	/* A remove of index 3 in a roster of 3. */
	forge_from("group/remove");
	forged.changes[0].index = 3;
	assert_int_equal(bob_opens(h, resign(h->alice.sign_sk)), CAIRN_EINVAL);
	/* An add of an identity present (Alice), or of a low-order group key. */
	forge_from("group/remove");
	forged.changes[1] = add_of(&h->carol);
	memcpy(forged.changes[1].identity, h->alice.m.identity, 32);
	forged.change_count = 2;
	assert_int_equal(bob_opens(h, resign(h->alice.sign_sk)), CAIRN_EINVAL);
	forge_from("group/remove");
	forged.changes[1] = add_of(&h->carol);
	memset(forged.changes[1].group_key, 0, 32);
	forged.change_count = 2;
	assert_int_equal(bob_opens(h, resign(h->alice.sign_sk)), CAIRN_EINVAL);
	/* Alice demoted: no admin left. */
	forge_from("group/remove");
	forged.changes[1] =
	    (struct group_change){.kind = GROUP_CHANGE_ROLE, .index = 0, .role = GROUP_ROLE_MEMBER};
	forged.change_count = 2;
	assert_int_equal(bob_opens(h, resign(h->alice.sign_sk)), CAIRN_EINVAL);
}

/* What an admin may not build. */
static void test_build_refuses(void **state)
{
	struct hist *h = *state;
	struct group_base b = base_of(h, h->n[1]);
	uint8_t s[KL], e[KL];
	size_t len = 0;
	struct group_change ch[2] = {{.kind = GROUP_CHANGE_REMOVE, .index = 2}};
	struct group_commit_request req = request_of("group/remove", &h->alice, s, e);
	req.last_seq = 4;
	req.changes = ch;
	req.change_count = 1;
	req.updates = &bob_update;
	req.update_count = 1;
	req.location = location;
	req.location_len = location_len;
	assert_int_equal(group_commit_build(&b, &req, commit_buf, sizeof(commit_buf), &len, h->got),
	                 0);
#define REFUSED(what)                                                                              \
	do {                                                                                       \
		assert_int_equal(                                                                  \
		    group_commit_build(&b, &req, commit_buf, sizeof(commit_buf), &len, h->got),    \
		    what);                                                                         \
		assert_int_equal(len, 0);                                                          \
		assert_true(sodium_is_zero((const uint8_t *)h->got, sizeof(*h->got)));             \
	} while (0)
	/* Bob is no admin. */
	req.committer = 1;
	req.sign_secret = h->bob.sign_sk;
	REFUSED(CAIRN_EINVAL);
	req.committer = 0;
	req.sign_secret = h->alice.sign_sk;
	/* A remove without a move. */
	req.location = NULL;
	REFUSED(CAIRN_EINVAL);
	req.location = location;
	/* Locations: too short, a relay_len past the end, not an address. */
	req.location_len = location_len - 1;
	REFUSED(CAIRN_EINVAL);
	req.location_len = location_len;
	uint8_t loc[GROUP_LOCATION_MAX];
	memcpy(loc, location, location_len);
	req.location = loc;
	loc[2] = 'x';
	REFUSED(CAIRN_EINVAL);
	req.location = location;
	/* Index out of range; removing Alice leaves no admin. */
	ch[0].index = 3;
	REFUSED(CAIRN_EINVAL);
	ch[0].index = 0;
	REFUSED(CAIRN_EINVAL);
	ch[0].index = 2;
	/* An add of Bob, who is there. */
	ch[1] = add_of(&h->bob);
	req.change_count = 2;
	REFUSED(CAIRN_EINVAL);
	/* An add with a low-order key, or a bad role. */
	ch[1] = add_of(&h->bob);
	ch[1].identity[0] ^= 0x55;
	while (!group_ed25519_key_ok(ch[1].identity))
		ch[1].identity[1]++;
	assert_int_equal(group_commit_build(&b, &req, commit_buf, sizeof(commit_buf), &len, h->got),
	                 0);
	memset(ch[1].group_key, 0, 32);
	ch[1].group_key[0] = 1;
	REFUSED(CAIRN_EINVAL);
	/* A set role to 0 or 3, or past the roster. */
	ch[1] = (struct group_change){.kind = GROUP_CHANGE_ROLE, .index = 1, .role = 3};
	REFUSED(CAIRN_EINVAL);
	ch[1].role = 0;
	REFUSED(CAIRN_EINVAL);
	assert_int_equal(group_commit_apply(&b, ch, 2, NULL, 0, h->got), CAIRN_EINVAL);
	ch[1].role = GROUP_ROLE_MEMBER;
	assert_int_equal(group_commit_apply(&b, ch, 2, NULL, 0, h->got), 0);
	ch[1].role = GROUP_ROLE_ADMIN;
	ch[1].index = 2; /* Carol's index is gone once she is removed */
	REFUSED(CAIRN_EINVAL);
	ch[1].index = 1;
	assert_int_equal(group_commit_build(&b, &req, commit_buf, sizeof(commit_buf), &len, h->got),
	                 0);
	assert_int_equal(group_roster_admins(&h->got->roster), 2);
	/* An unknown change kind. */
	ch[1].kind = 5;
	REFUSED(CAIRN_EINVAL);
	ch[1] = add_of(&h->bob);
	req.change_count = 1;
	/* A key update of low order, or for a member not there. */
	struct group_counted_update u = bob_update;
	req.updates = &u;
	memset(u.group_key, 0, 32);
	REFUSED(CAIRN_EINVAL);
	u = bob_update;
	u.index = 3;
	REFUSED(CAIRN_EINVAL);
	/* Two updates in a row count, the second one wins. */
	struct group_counted_update two[2] = {bob_update, bob_update};
	two[1].key_serial = 2;
	memcpy(two[1].group_key, h->carol.m.group_key, 32);
	req.updates = two;
	req.update_count = 2;
	assert_int_equal(group_commit_build(&b, &req, commit_buf, sizeof(commit_buf), &len, h->got),
	                 0);
	assert_int_equal(h->got->roster.member[1].key_serial, 2);
	assert_int_equal(h->got->commit.seals[1].key_serial, 2);
	assert_memory_equal(h->got->roster.member[1].group_key, h->carol.m.group_key, 32);
	req.updates = &bob_update;
	req.update_count = 1;
	/* The output buffer one byte short. */
	size_t full = len;
	assert_int_equal(group_commit_build(&b, &req, commit_buf, full - 1, &len, h->got),
	                 CAIRN_ENOBUFS);
	/* A genesis other than "add the creator as admin, then settings". */
	b = base_of(h, NULL);
	struct group_settings set = {1, 2};
	group_genesis_changes(&h->alice.m, &set, ch);
	req = request_of("group/genesis", &h->alice, s, e);
	req.changes = ch;
	req.change_count = 2;
	assert_int_equal(group_commit_build(&b, &req, commit_buf, sizeof(commit_buf), &len, h->got),
	                 0);
	req.change_count = 1;
	REFUSED(CAIRN_EINVAL);
	req.change_count = 2;
	ch[0].role = GROUP_ROLE_MEMBER;
	REFUSED(CAIRN_EINVAL);
	ch[0].role = GROUP_ROLE_ADMIN;
	req.location = location;
	req.location_len = location_len;
	REFUSED(CAIRN_EINVAL);
#undef REFUSED
}

/* Decoding BUF (LEN bytes) fails and leaves FORGED zeroed. */
static void undecodable(const uint8_t *buf, size_t len)
{
	memset(&forged, 0xa5, sizeof(forged));
	assert_int_equal(group_commit_decode(buf, len, &forged), CAIRN_EINVAL);
	assert_true(sodium_is_zero((const uint8_t *)&forged, sizeof(forged)));
}

/* The remove commit with its move box resized to BOX bytes (move_len to match), into BUF. */
static size_t with_move_len(uint8_t *buf, size_t box)
{
	size_t len = vec_commit("group/remove");
	size_t at = 68 + 3; /* the move_len after the one remove change */
	size_t old = group_get_u16(commit_buf + at);
	memcpy(buf, commit_buf, at);
	group_put_u16(buf + at, (uint16_t)box);
	memset(buf + at + 2, 0x42, box);
	memcpy(buf + at + 2 + box, commit_buf + at + 2 + old, len - at - 2 - old);
	return len - old + box;
}

static void test_codec(void **state)
{
	(void)state;
	static uint8_t out[GROUP_COMMIT_MAX_LEN], buf[GROUP_COMMIT_MAX_LEN + 64];
	static const char *const vecs[] = {"group/genesis", "group/add", "group/remove"};
	for (size_t v = 0; v < 3; v++) {
		size_t len = vec_commit(vecs[v]), olen = 0;
		assert_int_equal(group_commit_decode(commit_buf, len, &forged), 0);
		assert_int_equal(group_commit_len(&forged), len);
		assert_int_equal(group_commit_encode(&forged, out, sizeof(out), &olen), 0);
		assert_int_equal(olen, len);
		assert_memory_equal(out, commit_buf, len);
		assert_int_equal(group_commit_encode(&forged, out, len - 1, &olen), CAIRN_ENOBUFS);
		/* Every truncation, and a byte more. */
		memcpy(buf, commit_buf, len);
		for (size_t cut = 0; cut < len; cut++)
			undecodable(buf, cut);
		buf[len] = 0;
		undecodable(buf, len + 1);
		/* Version 0 and 2. */
		buf[0] = 0;
		undecodable(buf, len);
		buf[0] = 2;
		undecodable(buf, len);
	}
	/* The sizes 9.11 gives: 232 bytes, 98 per add, 3 per remove, 9 for settings, 36 per seal,
	 * and the move box. */
	assert_int_equal(vec_commit("group/genesis"), GROUP_COMMIT_FIXED_LEN + 98 + 9);
	assert_int_equal(vec_commit("group/add"), GROUP_COMMIT_FIXED_LEN + 2 * 98 + 36);
	assert_int_equal(vec_commit("group/remove"), GROUP_COMMIT_FIXED_LEN + 3 + 148 + 2 * 36);

	/* Change kinds 0 and 5 in place of the remove (kind at offset 68). */
	size_t len = vec_commit("group/remove");
	memcpy(buf, commit_buf, len);
	buf[68] = 0;
	undecodable(buf, len);
	buf[68] = 5;
	undecodable(buf, len);
	/* A remove read as a set role takes one byte more: the lengths then fail. */
	buf[68] = GROUP_CHANGE_ROLE;
	undecodable(buf, len);
	/* Roles 0 and 3 in an add (the genesis's, role at 68 + 97). */
	len = vec_commit("group/genesis");
	memcpy(buf, commit_buf, len);
	assert_int_equal(buf[68 + 97], GROUP_ROLE_ADMIN);
	buf[68 + 97] = 0;
	undecodable(buf, len);
	buf[68 + 97] = 3;
	undecodable(buf, len);
	/* change_count one more or one less than the changes there. */
	memcpy(buf, commit_buf, len);
	buf[67] = 3;
	undecodable(buf, len);
	buf[67] = 1;
	undecodable(buf, len);
	/* move_len: 75 and 394 are the bounds of a box, 74 and 395 are not. */
	assert_int_equal(group_commit_decode(buf, with_move_len(buf, 75), &forged), 0);
	assert_int_equal(group_commit_decode(buf, with_move_len(buf, 394), &forged), 0);
	undecodable(buf, with_move_len(buf, 74));
	undecodable(buf, with_move_len(buf, 395));
	undecodable(buf, with_move_len(buf, 1));
	/* seal_count: 1,000 seals decode, 1,001 do not. */
	forge_from("group/remove");
	forged.seal_count = GROUP_MEMBERS_MAX;
	size_t olen = 0;
	assert_int_equal(group_commit_encode(&forged, buf, sizeof(buf), &olen), 0);
	assert_int_equal(group_commit_decode(buf, olen, &forged), 0);
	size_t at = olen - 96 - GROUP_MEMBERS_MAX * GROUP_SEAL_LEN - 2;
	assert_int_equal(group_get_u16(buf + at), GROUP_MEMBERS_MAX);
	memmove(buf + olen - 96 + GROUP_SEAL_LEN, buf + olen - 96, 96);
	group_put_u16(buf + at, GROUP_MEMBERS_MAX + 1);
	undecodable(buf, olen + GROUP_SEAL_LEN);
	/* And encode refuses what decode would. */
	forge_from("group/remove");
	forged.move_len = 74;
	assert_int_equal(group_commit_len(&forged), 0);
	assert_int_equal(group_commit_encode(&forged, buf, sizeof(buf), &olen), CAIRN_EINVAL);
	forge_from("group/remove");
	forged.changes[0].kind = 9;
	assert_int_equal(group_commit_encode(&forged, buf, sizeof(buf), &olen), CAIRN_EINVAL);
	forge_from("group/remove");
	forged.seal_count = GROUP_MEMBERS_MAX + 1;
	assert_int_equal(group_commit_encode(&forged, buf, sizeof(buf), &olen), CAIRN_EINVAL);
	/* The largest commit fits GROUP_COMMIT_MAX_LEN: 255 adds, the largest box, 1,000 seals. */
	forge_from("group/add");
	forged.change_count = GROUP_CHANGES_MAX;
	for (unsigned i = 0; i < GROUP_CHANGES_MAX; i++)
		forged.changes[i] = forged.changes[0];
	forged.move_len = GROUP_MOVE_BOX_MAX;
	forged.seal_count = GROUP_MEMBERS_MAX;
	assert_int_equal(group_commit_len(&forged), GROUP_COMMIT_MAX_LEN);
	assert_int_equal(group_commit_encode(&forged, buf, sizeof(buf), &olen), 0);
	assert_int_equal(group_commit_decode(buf, olen, &forged), 0);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_build),        cmocka_unit_test(test_open),
	    cmocka_unit_test(test_open_refuses), cmocka_unit_test(test_build_refuses),
	    cmocka_unit_test(test_codec),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
