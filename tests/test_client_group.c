/* SPDX-License-Identifier: MIT */
/*
 * The group state of a client (client/group*.c), in-process and deterministic: homes with
 * the fast KDF, the relay played by tests/group_world.h. A group is created, members are
 * added through joins and welcomes, messages go through the log and are read by everyone in
 * log order; removals and leaves move the log; two admins race; members offline across
 * adds, a removal and a rotation catch up; a committer crashes between storing its commit and
 * hearing that it landed.
 */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "group_world.h"

static const struct group_settings settings = {.rotate_seconds = 604800, .rotate_messages = 1000};

static void same_history(struct world *w, const uint8_t gid[GROUP_ID_LEN], unsigned n,
                         const bool *out);

/* Home 0 creates a group; the genesis lands and is read back. */
static void make_group(struct world *w, uint8_t gid[GROUP_ID_LEN])
{
	assert_int_equal(group_create(w->h[0].c, GW_RELAY, "friends", &settings, gid), 0);
	gw_sync(w);
	struct group_state *g = gw_state(w, 0, gid);
	assert_int_equal(g->epoch, 0);
	assert_int_equal(g->position, 1); /* appended() told where epoch 0 began */
	assert_int_equal(g->cursor, 1);
	group_free(g);
}

struct sender_check {
	const uint8_t *contact, *two;
	unsigned seen;
};

static int check_sender(void *ctx, const uint8_t *v, size_t len)
{
	struct sender_check *sc = ctx;
	struct stored_message m;
	assert_int_equal(message_parse(v, len, &m), 0);
	if (m.len == 16 && memcmp(m.text, "one as a contact", 16) == 0) {
		assert_memory_equal(m.sender, sc->contact, RECORD_ID_LEN);
		sc->seen++;
	}
	if (m.len == 15 && memcmp(m.text, "two, no contact", 15) == 0) {
		assert_memory_equal(m.sender, sc->two, RECORD_ID_LEN);
		sc->seen++;
	}
	return 0;
}

static void test_create_add_talk(void **state)
{
	(void)state;
	struct world *w = gw_new();
	gw_homes(w, 3);
	uint8_t gid[GROUP_ID_LEN];
	make_group(w, gid);
	gw_add(w, 0, gid, (unsigned[]){1, 2}, 2);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(gw_epoch(w, i, gid), 1);
	gw_say(w, 1, gid, "hello from one");
	gw_say(w, 2, gid, "hello from two");
	gw_say(w, 0, gid, "hello from zero");
	gw_sync(w);
	for (unsigned i = 0; i < 3; i++) {
		assert_true(gw_has(w, i, gid, "hello from one"));
		assert_true(gw_has(w, i, gid, "hello from two"));
		assert_true(gw_has(w, i, gid, "hello from zero"));
		assert_int_equal(gw_messages(w, i, gid, NULL, NULL), 3);
	}
	/* Home 0 knows 1 as a contact: 1's message names that contact; 2's, 2's identity. */
	struct contact k = {.state = CONTACT_ESTABLISHED};
	strcpy(k.name, "one");
	memcpy(k.peer_identity, w->h[1].c->identity_pk, CAIRN_KEY_LEN);
	assert_int_equal(client_add_contact(w->h[0].c, &k, 0), 0);
	gw_say(w, 1, gid, "one as a contact");
	gw_say(w, 2, gid, "two, no contact");
	gw_sync(w);
	struct group_state *g0 = gw_state(w, 0, gid);
	struct sender_check sc = {.contact = k.id, .two = w->h[2].c->identity_pk};
	assert_int_equal(cstate_list_scope(w->h[0].c->st, REC_MESSAGE, g0->conv, RECORD_ID_LEN,
	                                   check_sender, &sc),
	                 0);
	assert_int_equal(sc.seen, 2);
	group_free(g0);
	/* Each sent a key update before its first message: all three count. */
	struct group_state *g = gw_state(w, 0, gid);
	assert_int_equal(g->nupd, 3);
	assert_false(g->copied);
	group_free(g);
	gw_free(w);
}

/* Every online member of GID among homes [0, N) but those in SKIP is in the same epoch with
 * the same head as home 0 (skip: a NULL-terminated... a bitmap of homes). */
static void same_history(struct world *w, const uint8_t gid[GROUP_ID_LEN], unsigned n,
                         const bool *out)
{
	struct group_state *a = gw_state(w, 0, gid);
	for (unsigned i = 1; i < n; i++) {
		if (out != NULL && out[i])
			continue;
		struct group_state *g = gw_state(w, i, gid);
		assert_false(g->removed);
		assert_int_equal(g->epoch, a->epoch);
		assert_memory_equal(g->head, a->head, GROUP_HEAD_LEN);
		assert_memory_equal(g->log.log_id, a->log.log_id, CAIRN_LOG_ID_LEN);
		assert_false(g->copied);
		assert_false(g->bad_commit);
		assert_false(g->withheld);
		group_free(g);
	}
	group_free(a);
}

static bool removed(struct world *w, unsigned i, const uint8_t gid[GROUP_ID_LEN])
{
	struct group_state *g = gw_state(w, i, gid);
	bool r = g->removed;
	group_free(g);
	return r;
}

/* Fifty members: adds in batches, everyone talks, two go offline across an add, a removal,
 * a leave and a rotation, then catch up and read everything in order; two admins commit at
 * once. */
static void test_fifty(void **state)
{
	(void)state;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct world *w = gw_new();
	gw_homes(w, 50);
	uint8_t gid[GROUP_ID_LEN];
	make_group(w, gid);
	unsigned j[10];
	for (unsigned b = 0; b < 4; b++) { /* homes 1..40 */
		for (unsigned k = 0; k < 10; k++)
			j[k] = 1 + 10 * b + k;
		gw_add(w, 0, gid, j, 10);
	}
	unsigned late[] = {41, 42, 43, 44};
	gw_add(w, 0, gid, late, 4);
	char text[64];
	for (unsigned i = 0; i < 45; i++) {
		snprintf(text, sizeof(text), "hi from %u", i);
		gw_say(w, i, gid, text);
	}
	gw_sync(w);
	for (unsigned i = 0; i < 45; i++)
		assert_int_equal(gw_messages(w, i, gid, NULL, NULL), 45);

	/* 10 and 11 go offline across an add, a removal, a leave and a rotation. */
	w->h[10].offline = w->h[11].offline = true;
	unsigned later[] = {45, 46, 47, 48, 49};
	gw_add(w, 0, gid, later, 5);
	gw_say(w, 45, gid, "new here");
	gw_remove(w, 0, gid, 44); /* moves the log */
	gw_sync(w);
	assert_true(removed(w, 44, gid));
	assert_int_equal(group_leave(w->h[43].c, gid), 0);
	gw_sync(w);
	assert_int_equal(group_tick(w->h[0].c, gid), 0); /* the admin acts on the leave */
	gw_sync(w);
	assert_true(removed(w, 43, gid));
	uint64_t before = gw_epoch(w, 0, gid);
	struct group_state *g = gw_state(w, 0, gid);
	uint32_t jitter = g->jitter_s;
	assert_true(jitter <= settings.rotate_seconds / 10);
	group_free(g);
	w->now += settings.rotate_seconds + jitter - 1;
	assert_int_equal(group_tick(w->h[0].c, gid), 0); /* not yet: a week and the delay */
	gw_sync(w);
	assert_int_equal(gw_epoch(w, 0, gid), before);
	w->now += 1;
	assert_int_equal(group_tick(w->h[0].c, gid), 0);
	gw_sync(w);
	assert_int_equal(gw_epoch(w, 0, gid), before + 1);
	gw_say(w, 2, gid, "after the rotation");
	gw_sync(w);
	assert_false(gw_has(w, 10, gid, "new here"));

	w->h[10].offline = w->h[11].offline = false;
	gw_sync(w);
	bool out[50] = {0};
	out[43] = out[44] = true;
	same_history(w, gid, 50, out);
	for (unsigned i = 10; i < 12; i++) {
		assert_true(gw_has(w, i, gid, "new here"));
		assert_true(gw_has(w, i, gid, "after the rotation"));
	}
	assert_false(gw_has(w, 44, gid, "after the rotation"));

	/* Two admins at once: 0 makes 1 an admin; then both remove someone before either
	 * reads the other's commit. One wins; the other re-commits on the new epoch. */
	struct group_request q = {.kind = GROUP_CHANGE_ROLE, .role = GROUP_ROLE_ADMIN};
	memcpy(q.identity, w->h[1].c->identity_pk, CAIRN_KEY_LEN);
	assert_int_equal(group_commit(w->h[0].c, gid, &q, 1), 0);
	gw_sync(w);
	before = gw_epoch(w, 0, gid);
	gw_remove(w, 0, gid, 42);
	gw_remove(w, 1, gid, 41);
	gw_sync(w);
	assert_true(removed(w, 42, gid));
	assert_true(removed(w, 41, gid));
	out[41] = out[42] = true;
	same_history(w, gid, 50, out);
	assert_int_equal(gw_epoch(w, 0, gid), before + 2);
	gw_say(w, 3, gid, "after the race");
	gw_sync(w);
	for (unsigned i = 0; i < 50; i++)
		assert_true(out[i] != gw_has(w, i, gid, "after the race"));
	gw_free(w);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	print_message("fifty members: %.1f s\n",
	              (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
}

/* Every record of a group's state: parses back to the same bytes; cut short anywhere, with a
 * byte more, another version or a count out of range, it is refused (CAIRN_ECORRUPT), and so
 * is the group when a record in the store is damaged. With CAIRN_GROUP_SEEDS set, the records
 * are written there as fuzz/corpus/group_records/ seeds. */
static void check_record(struct world *w, uint32_t kind, const uint8_t *key, size_t klen,
                         unsigned pick)
{
	uint8_t *v = NULL, *out = NULL;
	size_t vlen = 0, olen = 0;
	assert_int_equal(cstate_get(w->h[0].c->st, kind, key, klen, &v, &vlen), 0);
	void *obj = calloc(1, sizeof(struct group_state) + sizeof(struct group_pending));
	assert_int_equal(group_record_parse(kind, v, vlen, obj), 0);
	assert_int_equal(group_record_encode(kind, obj, &out, &olen), 0);
	assert_int_equal(olen, vlen);
	assert_memory_equal(out, v, vlen);
	free(out);
	if (kind == REC_GROUP_PENDING)
		group_pending_wipe(obj);
	for (size_t cut = 0; cut < vlen; cut += 1 + cut / 64)
		assert_int_equal(group_record_parse(kind, v, cut, obj), CAIRN_ECORRUPT);
	uint8_t *more = malloc(vlen + 1);
	memcpy(more, v, vlen);
	more[vlen] = 0;
	assert_int_equal(group_record_parse(kind, more, vlen + 1, obj), CAIRN_ECORRUPT);
	more[0] ^= 0x80; /* the version */
	assert_int_equal(group_record_parse(kind, more, vlen, obj), CAIRN_ECORRUPT);
	const char *dir = getenv("CAIRN_GROUP_SEEDS");
	if (dir != NULL) {
		char path[512];
		snprintf(path, sizeof(path), "%s/kind%u", dir, (unsigned)kind);
		FILE *f = fopen(path, "wb");
		assert_non_null(f);
		uint8_t b = (uint8_t)pick;
		assert_int_equal(fwrite(&b, 1, 1, f), 1);
		assert_int_equal(fwrite(v, 1, vlen, f), vlen);
		fclose(f);
	}
	/* Damaged in the store: the group does not load. */
	more[0] ^= 0x80;
	assert_int_equal(cstate_put(w->h[0].c->st, kind, key, klen, more, vlen - 1), 0);
	struct group_state *g = NULL;
	if (kind != REC_GROUP_PENDING) {
		assert_int_equal(group_load(w->h[0].c, key, &g), CAIRN_ECORRUPT);
		assert_null(g);
	}
	assert_int_equal(cstate_put(w->h[0].c->st, kind, key, klen, v, vlen), 0);
	free(more);
	free(obj);
	cstate_free_value(v, vlen);
}

static void test_records(void **state)
{
	(void)state;
	uint8_t gid[GROUP_ID_LEN];
	struct world *w = gw_group(2, 2, "friends", &settings, gid);
	gw_say(w, 1, gid, "some skipped keys?");
	gw_sync(w);
	uint8_t key[GROUP_ID_LEN + 1];
	memcpy(key, gid, GROUP_ID_LEN);
	key[GROUP_ID_LEN] = 0;
	check_record(w, REC_GROUP, gid, GROUP_ID_LEN, 0);
	check_record(w, REC_GROUP_EPOCH, gid, GROUP_ID_LEN, 1);
	check_record(w, REC_GROUP_CHAINS, key, sizeof(key), 2);
	check_record(w, REC_GROUP_SKIPPED, gid, GROUP_ID_LEN, 3);
	/* A pending commit: made, not yet posted. */
	assert_int_equal(group_commit(w->h[0].c, gid, NULL, 0), 0);
	check_record(w, REC_GROUP_PENDING, gid, GROUP_ID_LEN, 4);
	/* A boolean that is neither 0 nor 1, a count past its bound. */
	uint8_t *v = NULL;
	size_t vlen = 0;
	assert_int_equal(cstate_get(w->h[0].c->st, REC_GROUP_SKIPPED, gid, GROUP_ID_LEN, &v, &vlen),
	                 0);
	struct group_skipped *sk = malloc(sizeof(*sk));
	v[1] = 0xff; /* count's top byte */
	assert_int_equal(group_record_parse(REC_GROUP_SKIPPED, v, vlen, sk), CAIRN_ECORRUPT);
	free(sk);
	cstate_free_value(v, vlen);
	gw_free(w);
}

/* Joins answer offers: a join with no offer is refused; a member that joins again with fresh
 * keys (its state lost) is removed and added in one commit, which moves the log, and reads
 * on. */
static void test_offer_rejoin(void **state)
{
	(void)state;
	struct world *w = gw_new();
	gw_homes(w, 3);
	uint8_t gid[GROUP_ID_LEN];
	make_group(w, gid);
	uint8_t offer[GROUP_OFFER_MAX], join[GROUP_JOIN_LEN];
	size_t len = 0;
	struct group_offer o;
	assert_int_equal(group_join_make(w->h[2].c, gid, join), 0);
	assert_int_equal(group_join_accept(w->h[0].c, w->h[2].c->identity_pk, join, sizeof(join)),
	                 CAIRN_ENOTFOUND);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(
		    group_offer_make(w->h[0].c, gid, w->h[1].c->identity_pk, offer, &len), 0);
		assert_int_equal(group_offer_decode(offer, len, &o), 0);
		assert_string_equal(o.name, "friends");
		assert_int_equal(group_join_make(w->h[1].c, o.group_id, join), 0);
		assert_int_equal(
		    group_join_accept(w->h[0].c, w->h[1].c->identity_pk, join, sizeof(join)), 0);
		gw_sync(w);
		uint8_t *wel = NULL;
		size_t wlen = 0;
		assert_int_equal(
		    group_welcome_take(w->h[0].c, gid, w->h[1].c->identity_pk, &wel, &wlen), 0);
		assert_int_equal(group_join_welcome(w->h[1].c, wel, wlen), 0);
		free(wel);
		gw_sync(w);
		same_history(w, gid, 2, NULL);
	}
	struct group_state *g = gw_state(w, 0, gid);
	assert_int_equal(g->roster.count, 2); /* one entry for 1, not two */
	assert_true(g->has_old);              /* the re-join moved the log */
	group_free(g);
	gw_say(w, 0, gid, "welcome back");
	gw_sync(w);
	assert_true(gw_has(w, 1, gid, "welcome back"));
	gw_free(w);
}

/* A welcome is taken only for a join we sent and only if the roster holds our join's keys at
 * its index; what is not an admin cannot commit or offer. */
/* An admin shortens the group's rotation (cairn_group_rotation, a settings commit): every
 * member holds the new settings, and the next key change comes after a day and its delay,
 * not a week; out-of-range values and a non-admin are refused. */
static void test_rotation_setting(void **state)
{
	(void)state;
	uint8_t gid[GROUP_ID_LEN];
	struct world *w = gw_group(3, 3, "friends", &settings, gid);
	struct cairn *admin = w->h[0].c;
	assert_int_equal(cairn_group_rotation(admin, "friends", 3599, 100), CAIRN_EINVAL);
	assert_int_equal(cairn_group_rotation(admin, "friends", 604801, 100), CAIRN_EINVAL);
	assert_int_equal(cairn_group_rotation(admin, "friends", 86400, 9), CAIRN_EINVAL);
	assert_int_equal(cairn_group_rotation(admin, "friends", 86400, 1001), CAIRN_EINVAL);
	assert_int_equal(cairn_group_rotation(admin, "nosuch", 86400, 100), CAIRN_ENOTFOUND);
	assert_int_equal(cairn_group_rotation(w->h[1].c, "friends", 86400, 100), CAIRN_EDENIED);
	assert_int_equal(cairn_group_rotation(admin, "friends", 86400, 100), 0);
	gw_sync(w);
	uint64_t before = gw_epoch(w, 0, gid);
	uint32_t jitter = 0;
	for (unsigned i = 0; i < 3; i++) {
		struct group_state *g = gw_state(w, i, gid);
		assert_int_equal(g->settings.rotate_seconds, 86400);
		assert_int_equal(g->settings.rotate_messages, 100);
		if (i == 0)
			jitter = g->jitter_s;
		group_free(g);
	}
	assert_true(jitter <= 86400 / 10);
	w->now += 86400 + jitter;
	assert_int_equal(group_tick(admin, gid), 0);
	gw_sync(w);
	assert_int_equal(gw_epoch(w, 0, gid), before + 1);
	assert_int_equal(gw_epoch(w, 2, gid), before + 1);
	gw_free(w);
}

/* Joins that come while a commit of ours is pending are kept, and the next tick commits all
 * those of one group in one commit: four contacts joining at once cost two commits (the first
 * join's, then the other three's), not four. */
static void test_kept_joins_one_commit(void **state)
{
	(void)state;
	struct world *w = gw_new();
	gw_homes(w, 5);
	uint8_t gid[GROUP_ID_LEN];
	make_group(w, gid);
	struct cairn *admin = w->h[0].c;
	uint8_t offer[GROUP_OFFER_MAX], join[5][GROUP_JOIN_LEN];
	size_t len = 0;
	for (unsigned i = 1; i < 5; i++) {
		assert_int_equal(group_offer_make(admin, gid, w->h[i].c->identity_pk, offer, &len),
		                 0);
		assert_int_equal(group_join_make(w->h[i].c, gid, join[i]), 0);
	}
	for (unsigned i = 1; i < 5; i++) {
		struct receive_effects fx = {0};
		assert_int_equal(client_group_join_in(admin, w->h[i].c->identity_pk, join[i],
		                                      GROUP_JOIN_LEN, &fx),
		                 0);
	}
	gw_sync(w); /* the first join's commit lands; the three others wait */
	assert_int_equal(gw_epoch(w, 0, gid), 1);
	assert_int_equal(client_groups_tick(admin), 0);
	gw_sync(w);
	struct group_state *g = gw_state(w, 0, gid);
	assert_int_equal(g->roster.count, 5);
	assert_int_equal(g->epoch, 2);
	group_free(g);
	/* Nothing is left to commit. */
	assert_int_equal(client_groups_tick(admin), 0);
	gw_sync(w);
	assert_int_equal(gw_epoch(w, 0, gid), 2);
	gw_free(w);
}

static void test_welcome_checks(void **state)
{
	(void)state;
	uint8_t gid[GROUP_ID_LEN];
	struct world *w = gw_group(3, 1, "friends", &settings, gid);
	uint8_t join[GROUP_JOIN_LEN];
	struct group_join jn;
	assert_int_equal(group_join_make(w->h[1].c, gid, join), 0);
	assert_int_equal(group_join_decode(join, sizeof(join), &jn), 0);
	struct group_request q = {.kind = GROUP_CHANGE_ADD, .role = GROUP_ROLE_MEMBER};
	memcpy(q.identity, w->h[1].c->identity_pk, CAIRN_KEY_LEN);
	memcpy(q.sign_key, jn.sign_key, CAIRN_KEY_LEN);
	memcpy(q.group_key, jn.group_key, CAIRN_KEY_LEN);
	assert_int_equal(group_commit(w->h[0].c, gid, &q, 1), 0);
	gw_sync(w);
	uint8_t *wel = NULL;
	size_t len = 0;
	assert_int_equal(group_welcome_take(w->h[0].c, gid, q.identity, &wel, &len), 0);
	uint8_t *again = NULL;
	size_t again_len = 0;
	assert_int_equal(group_welcome_take(w->h[0].c, gid, q.identity, &again, &again_len),
	                 CAIRN_ENOTFOUND); /* taken once */
	assert_null(again);
	/* Home 2 sent no join: dropped. */
	assert_int_equal(group_join_welcome(w->h[2].c, wel, len), CAIRN_ENOTFOUND);
	/* Cut short, or naming another index (the admin's entry): refused, the join kept. */
	assert_int_equal(group_join_welcome(w->h[1].c, wel, len - 1), CAIRN_EINVAL);
	size_t at = GROUP_ID_LEN + 8 + GROUP_HEAD_LEN + GROUP_SECRET_LEN; /* index (u16) */
	assert_int_equal(group_get_u16(wel + at), 1);
	group_put_u16(wel + at, 0);
	assert_int_equal(group_join_welcome(w->h[1].c, wel, len), CAIRN_EINVAL);
	group_put_u16(wel + at, 1);
	assert_int_equal(group_join_welcome(w->h[1].c, wel, len), 0);
	assert_int_equal(group_join_welcome(w->h[1].c, wel, len), CAIRN_ENOTFOUND); /* used */
	free(wel);
	gw_sync(w);
	assert_int_equal(gw_epoch(w, 1, gid), 1);
	/* A member is no admin. */
	uint8_t offer[GROUP_OFFER_MAX];
	assert_int_equal(group_commit(w->h[1].c, gid, NULL, 0), CAIRN_EDENIED);
	assert_int_equal(group_offer_make(w->h[1].c, gid, w->h[2].c->identity_pk, offer, &len),
	                 CAIRN_EDENIED);
	gw_free(w);
}

/* A commit of two parts (170 adds, 16.9 KB): the first part is stored, the member restarts,
 * the second completes it from the store. */
static void test_multipart_commit(void **state)
{
	(void)state;
	uint8_t gid[GROUP_ID_LEN];
	struct world *w = gw_group(3, 3, "friends", &settings, gid);
	enum { N = 170 };
	struct group_request *req = calloc(N, sizeof(*req));
	for (unsigned k = 0; k < N; k++) {
		uint8_t sk[64], x[32];
		req[k].kind = GROUP_CHANGE_ADD;
		req[k].role = GROUP_ROLE_MEMBER;
		crypto_sign_keypair(req[k].identity, sk);
		crypto_sign_keypair(req[k].sign_key, sk);
		randombytes_buf(x, sizeof(x));
		crypto_scalarmult_curve25519_base(req[k].group_key, x);
	}
	uint64_t epoch = gw_epoch(w, 0, gid);
	assert_int_equal(group_commit(w->h[0].c, gid, req, N), 0);
	free(req);
	struct group_state *g = gw_state(w, 1, gid);
	struct gw_log *lg = gw_find(w, g->log.log_id);
	group_free(g);
	uint64_t n0 = lg->n;
	assert_int_equal(gw_pump(w, 0), 2);
	g = gw_state(w, 1, gid);
	assert_int_equal(group_logio_handler.entry(w->h[1].c, NULL, &g->log, n0 + 1, lg->ent[n0].e,
	                                           lg->ent[n0].len),
	                 0);
	group_free(g);
	g = gw_state(w, 1, gid);
	assert_int_equal(g->nparts, 1); /* the first part, kept */
	assert_int_equal(g->epoch, epoch);
	group_free(g);
	gw_restart(w, 1);
	gw_sync(w);
	for (unsigned i = 0; i < 3; i++) {
		g = gw_state(w, i, gid);
		assert_int_equal(g->epoch, epoch + 1);
		assert_int_equal(g->roster.count, 3 + N);
		assert_int_equal(g->nparts, 0);
		group_free(g);
	}
	gw_say(w, 2, gid, "one hundred and seventy more");
	gw_sync(w);
	assert_true(gw_has(w, 1, gid, "one hundred and seventy more"));
	gw_free(w);
}

/* A text longer than one entry holds goes in parts and is read whole; a gap in the log
 * (LOG_STATE's first_seq past the cursor) and a log that is gone are remembered. */
static void test_long_text_gap_gone(void **state)
{
	(void)state;
	uint8_t gid[GROUP_ID_LEN];
	struct world *w = gw_group(2, 2, "friends", &settings, gid);
	size_t len = 2 * GROUP_TEXT_DATA_MAX + 100;
	char *text = malloc(len + 1);
	for (size_t i = 0; i < len; i++)
		text[i] = (char)('a' + i % 26);
	text[len] = '\0';
	gw_say(w, 0, gid, text);
	gw_sync(w);
	assert_true(gw_has(w, 1, gid, text));
	free(text);

	struct group_state *g = gw_state(w, 1, gid);
	struct group_log_ref log = g->log;
	uint64_t cursor = g->cursor;
	assert_false(g->gap);
	group_free(g);
	assert_int_equal(
	    group_logio_handler.log_state(w->h[1].c, NULL, &log, cursor + 1, cursor + 1), 0);
	g = gw_state(w, 1, gid);
	assert_false(g->gap);
	group_free(g);
	assert_int_equal(
	    group_logio_handler.log_state(w->h[1].c, NULL, &log, cursor + 3, cursor + 9), 0);
	g = gw_state(w, 1, gid);
	assert_true(g->gap);
	group_free(g);
	assert_int_equal(group_logio_handler.log_gone(w->h[1].c, NULL, &log), 0);
	struct gw_reads r = {0};
	assert_int_equal(group_logio_handler.logs(w->h[1].c, NULL, gw_each, &r), 0);
	assert_int_equal(r.n, 0);
	g = gw_state(w, 1, gid);
	assert_true(g->gone);
	group_free(g);
	gw_free(w);
}

/* A group of 1,000 members, with the most a state holds of updates, leaves, skipped keys and
 * a previous epoch, fits the store's records (CSTATE_VALUE_MAX each). */
static void test_thousand_fits(void **state)
{
	(void)state;
	struct group_state *g = calloc(1, sizeof(*g));
	g->roster.count = g->prev_roster.count = GROUP_MEMBERS_MAX;
	g->nupd = g->nleave = GROUP_MEMBERS_MAX;
	g->chains.count = GROUP_MEMBERS_MAX;
	g->skipped.count = GROUP_SKIPPED_MAX;
	g->nparts = GROUP_PARTS_KEPT;
	g->nkeys = GROUP_KEYS_MAX;
	const uint32_t kinds[] = {REC_GROUP, REC_GROUP_EPOCH};
	for (unsigned k = 0; k < 2; k++) {
		uint8_t *out = NULL;
		size_t len = 0;
		assert_int_equal(group_record_encode(kinds[k], g, &out, &len), 0);
		assert_true(len <= CSTATE_VALUE_MAX);
		free(out);
	}
	uint8_t *out = NULL;
	size_t len = 0;
	assert_int_equal(group_record_encode(REC_GROUP_CHAINS, &g->chains, &out, &len), 0);
	assert_true(len <= CSTATE_VALUE_MAX);
	free(out);
	assert_int_equal(group_record_encode(REC_GROUP_SKIPPED, &g->skipped, &out, &len), 0);
	assert_true(len <= CSTATE_VALUE_MAX);
	free(out);
	free(g);
}

int main(void)
{
	/* ctest runs test_fifty as an entry of its own (tests/CMakeLists.txt): a cmocka pattern
	 * to run, or to skip. */
	if (getenv("CAIRN_TEST_ONLY") != NULL)
		cmocka_set_test_filter(getenv("CAIRN_TEST_ONLY"));
	if (getenv("CAIRN_TEST_SKIP") != NULL)
		cmocka_set_skip_filter(getenv("CAIRN_TEST_SKIP"));
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_create_add_talk),  cmocka_unit_test(test_records),
	    cmocka_unit_test(test_offer_rejoin),     cmocka_unit_test(test_kept_joins_one_commit),
	    cmocka_unit_test(test_rotation_setting), cmocka_unit_test(test_welcome_checks),
	    cmocka_unit_test(test_multipart_commit), cmocka_unit_test(test_long_text_gap_gone),
	    cmocka_unit_test(test_thousand_fits),    cmocka_unit_test(test_fifty),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
