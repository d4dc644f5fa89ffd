/* SPDX-License-Identifier: MIT */
/*
 * The group state's security properties at the client's level (PROTOCOL.md 9.3, 9.5, 9.6,
 * 9.7, 9.9), with the relay played by tests/group_world.h: a removed member's whole state
 * opens nothing after its removal and does not find the new log; a copy of a member's state
 * stops opening after the commit that counts the member's next key update, and the member
 * learns of a copy that speaks; today's state does not open what it read; a forged message,
 * a non-admin's commit and a replayed entry change nothing; a committer that crashes before
 * hearing that its commit landed posts it again, and it counts once.
 */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "group_world.h"

static const struct group_settings settings = {.rotate_seconds = 604800, .rotate_messages = 1000};

/* A group of N homes, 0 its admin, everyone past their first key update. */
static struct world *group_of(unsigned n, uint8_t gid[GROUP_ID_LEN])
{
	struct world *w = gw_group(n, n, "cell", &settings, gid);
	char text[32];
	for (unsigned i = 0; i < n; i++) {
		snprintf(text, sizeof(text), "first of %u", i);
		gw_say(w, i, gid, text);
	}
	gw_sync(w);
	return w;
}

/* What home I's client shows of group NAME (cairn_groups): its CAIRN_GROUP_WARN_* bits. */
struct warned {
	const char *name;
	unsigned warnings;
	bool found;
};

static int on_group(void *ctx, const struct cairn_group_info *g)
{
	struct warned *x = ctx;
	if (strcmp(g->name, x->name) == 0) {
		x->warnings = g->warnings;
		x->found = true;
	}
	return 0;
}

static unsigned warnings_shown(struct world *w, unsigned i, const char *name)
{
	struct warned x = {.name = name};
	assert_int_equal(cairn_groups(w->h[i].c, on_group, &x), 0);
	assert_true(x.found);
	return x.warnings;
}

static bool lists_log(struct world *w, unsigned i, const uint8_t log_id[CAIRN_LOG_ID_LEN])
{
	struct gw_reads r = {0};
	assert_int_equal(group_logio_handler.logs(w->h[i].c, NULL, gw_each, &r), 0);
	for (unsigned k = 0; k < r.n; k++)
		if (memcmp(r.ref[k].log_id, log_id, CAIRN_LOG_ID_LEN) == 0)
			return true;
	return false;
}

/* Hands home I every entry of every log the relay holds, whatever its state lists. */
static void feed_everything(struct world *w, unsigned i)
{
	for (unsigned l = 0; l < w->nlogs; l++) {
		struct group_log_ref ref = {0};
		memcpy(ref.log_id, w->logs[l].log_id, CAIRN_LOG_ID_LEN);
		for (uint64_t s = 1; s <= w->logs[l].n; s++)
			assert_int_equal(group_logio_handler.entry(w->h[i].c, NULL, &ref, s,
			                                           w->logs[l].ent[s - 1].e,
			                                           w->logs[l].ent[s - 1].len),
			                 0);
	}
}

static void test_removal_locks_out(void **state)
{
	(void)state;
	uint8_t gid[GROUP_ID_LEN];
	struct world *w = group_of(4, gid);
	unsigned copy = gw_copy(w, 3); /* the removed member's whole state, kept */
	w->h[copy].offline = true;
	gw_remove(w, 0, gid, 3);
	gw_sync(w);
	struct group_state *g = gw_state(w, 0, gid);
	uint8_t new_log[CAIRN_LOG_ID_LEN];
	memcpy(new_log, g->log.log_id, CAIRN_LOG_ID_LEN);
	group_free(g);
	gw_say(w, 1, gid, "without three");
	gw_sync(w);
	assert_true(gw_has(w, 2, gid, "without three"));
	assert_false(gw_has(w, 3, gid, "without three"));
	assert_false(lists_log(w, 3, new_log));

	/* The copy reads the removal, then is handed every entry of every log. */
	unsigned before = gw_messages(w, copy, gid, NULL, NULL);
	w->h[copy].offline = false;
	gw_feed(w, copy);
	feed_everything(w, copy);
	g = gw_state(w, copy, gid);
	assert_true(g->removed);
	assert_int_equal(g->nkeys, 0);
	group_free(g);
	assert_false(lists_log(w, copy, new_log));
	assert_int_equal(gw_messages(w, copy, gid, NULL, NULL), before);

	/* The old log's maker deletes it once ttl has passed since the move (9.7). */
	struct gw_log *old = &w->logs[0];
	assert_int_equal(group_tick(w->h[0].c, gid), 0);
	gw_sync(w);
	assert_false(old->deleted);
	w->now += GROUP_LOG_TTL;
	assert_int_equal(group_tick(w->h[0].c, gid), 0);
	gw_sync(w);
	assert_true(old->deleted);
	g = gw_state(w, 0, gid);
	assert_false(g->has_old);
	group_free(g);
	gw_free(w);
}

/* 9.7: a message written before its sender read a move lands in the old log after the
 * commit, where the others have stopped reading; the sender finds it there and sends it
 * again in the new epoch. */
static void test_resent_after_move(void **state)
{
	(void)state;
	uint8_t gid[GROUP_ID_LEN];
	struct world *w = group_of(4, gid);
	w->h[2].offline = true;
	gw_remove(w, 0, gid, 3);
	gw_sync(w);
	gw_say(w, 2, gid, "late");
	w->h[2].offline = false;
	assert_true(gw_pump(w, 2) > 0); /* into the old log, after the commit */
	gw_feed(w, 0);
	gw_feed(w, 1);
	assert_false(gw_has(w, 0, gid, "late"));
	gw_sync(w); /* 2 reads the move, finds "late" after it, sends it again */
	assert_true(gw_has(w, 0, gid, "late"));
	assert_true(gw_has(w, 1, gid, "late"));
	assert_int_equal(gw_messages(w, 2, gid, NULL, NULL), gw_messages(w, 0, gid, NULL, NULL));
	gw_free(w);
}

/* 9.9: the relay withholds the end of a sender's chain; the sender's next key update says
 * how many it sent, and the readers notice. */
static void test_withheld(void **state)
{
	(void)state;
	uint8_t gid[GROUP_ID_LEN];
	struct world *w = group_of(3, gid);
	gw_say(w, 1, gid, "kept");
	gw_say(w, 1, gid, "withheld");
	assert_int_equal(gw_pump(w, 1), 2);
	struct gw_log *lg = &w->logs[0];
	free(lg->ent[--lg->n].e); /* the relay drops the last */
	gw_sync(w);
	assert_true(gw_has(w, 0, gid, "kept"));
	assert_int_equal(group_commit(w->h[0].c, gid, NULL, 0), 0);
	gw_sync(w);
	struct group_state *g = gw_state(w, 0, gid);
	assert_false(g->withheld);
	group_free(g);
	assert_int_equal(warnings_shown(w, 0, "cell"), 0);
	w->now += 86400 + 1;
	gw_say(w, 1, gid, "next epoch"); /* its key update carries prev_count */
	gw_say(w, 2, gid, "nothing withheld from two");
	gw_sync(w);
	for (unsigned i = 0; i < 3; i += 2) {
		g = gw_state(w, i, gid);
		assert_true(g->withheld);
		group_free(g);
		/* The person is told. */
		assert_int_equal(warnings_shown(w, i, "cell"), CAIRN_GROUP_WARN_WITHHELD);
	}
	/* The sender too, reading its own entries back: the relay dropped one of them. */
	assert_int_equal(warnings_shown(w, 1, "cell"), CAIRN_GROUP_WARN_WITHHELD);
	gw_free(w);
}

static void test_healing(void **state)
{
	(void)state;
	uint8_t gid[GROUP_ID_LEN];
	struct world *w = group_of(3, gid);
	unsigned copy = gw_copy(w, 2); /* at t: member 2 has sent its update of epoch 1 */
	w->h[copy].offline = true;
	/* A rotation whose seal to 2 uses a key the copy holds: the copy follows it. */
	assert_int_equal(group_commit(w->h[0].c, gid, NULL, 0), 0);
	gw_sync(w);
	gw_say(w, 1, gid, "epoch two");
	gw_sync(w);
	w->h[copy].offline = false;
	gw_feed(w, copy);
	assert_true(gw_has(w, copy, gid, "epoch two"));
	w->h[copy].offline = true;
	/* A day on, 2 speaks (a key update made after t first); the next commit counts it. */
	w->now += 86400 + 1;
	gw_say(w, 2, gid, "two again");
	gw_sync(w);
	assert_int_equal(group_commit(w->h[0].c, gid, NULL, 0), 0);
	gw_sync(w);
	gw_say(w, 1, gid, "healed");
	gw_sync(w);
	assert_true(gw_has(w, 2, gid, "healed"));
	w->h[copy].offline = false;
	gw_feed(w, copy);
	assert_true(gw_has(w, copy, gid, "two again")); /* still its epoch */
	assert_false(gw_has(w, copy, gid, "healed"));
	assert_true(gw_epoch(w, copy, gid) < gw_epoch(w, 2, gid));
	gw_free(w);
}

static void test_copy_that_speaks(void **state)
{
	(void)state;
	uint8_t gid[GROUP_ID_LEN];
	struct world *w = group_of(3, gid);
	assert_int_equal(group_commit(w->h[0].c, gid, NULL, 0), 0); /* a fresh epoch */
	gw_sync(w);
	unsigned copy = gw_copy(w, 2);
	w->now += 86400 + 1;
	/* The copy, an active attacker, speaks as 2: its key update is one 2 never made. */
	gw_say(w, copy, gid, "not really two");
	gw_sync(w);
	struct group_state *g = gw_state(w, 2, gid);
	assert_true(g->copied);
	group_free(g);
	assert_int_equal(warnings_shown(w, 2, "cell"), CAIRN_GROUP_WARN_COPIED);
	g = gw_state(w, 1, gid);
	assert_false(g->copied);
	group_free(g);
	assert_int_equal(warnings_shown(w, 1, "cell"), 0);
	gw_free(w);
}

static void test_forward_secrecy(void **state)
{
	(void)state;
	uint8_t gid[GROUP_ID_LEN];
	struct world *w = group_of(2, gid);
	struct gw_log *lg = &w->logs[0];
	gw_say(w, 0, gid, "read once");
	gw_sync(w);
	assert_true(gw_has(w, 1, gid, "read once"));
	/* The entry just read: its header still opens, its message key is gone. */
	const uint8_t *e = lg->ent[lg->n - 1].e;
	size_t len = lg->ent[lg->n - 1].len;
	struct group_state *g = gw_state(w, 1, gid);
	struct group_header h;
	assert_int_equal(group_entry_open_header(g->header_key, e, len, &h), 0);
	struct group_recv_step step;
	assert_int_equal(group_recv_lookup(&g->chains, &g->skipped, h.sender, h.n, &step),
	                 CAIRN_EREPLAY);
	/* After the next commit, its epoch's keys go with the grace period. */
	group_free(g);
	assert_int_equal(group_commit(w->h[0].c, gid, NULL, 0), 0);
	gw_sync(w);
	w->now += 3600;
	for (unsigned i = 0; i < GROUP_GRACE_READS / 2 + 1; i++) {
		gw_say(w, 0, gid, "filler");
		gw_say(w, 1, gid, "filler");
		gw_sync(w);
	}
	g = gw_state(w, 1, gid);
	assert_false(g->has_prev);
	assert_int_not_equal(group_entry_open_header(g->header_key, e, len, &h), 0);
	group_free(g);
	gw_free(w);
}

/* Seals PAYLOAD as a kind 1 entry claiming SENDER, from home I's state (its chain key for
 * SENDER, its own sign key) and appends it to the group's log. */
static void forge(struct world *w, unsigned i, const uint8_t gid[GROUP_ID_LEN], uint16_t sender)
{
	struct group_state *g = gw_state(w, i, gid);
	uint8_t ck[GROUP_SECRET_LEN], mk[GROUP_SECRET_LEN], hn[GROUP_NONCE_LEN], ctx[GROUP_CTX_LEN];
	memcpy(ck, g->chains.chain[sender].ck, sizeof(ck));
	group_chain_step(ck, mk);
	randombytes_buf(hn, sizeof(hn));
	group_state_ctx(g, ctx);
	struct appmsg am = {
	    .kind = APPMSG_TEXT, .part_count = 1, .data = (const uint8_t *)"forged", .data_len = 6};
	randombytes_buf(am.id, sizeof(am.id));
	uint8_t payload[128], entry[GROUP_ENTRY_MAX];
	size_t plen = 0, elen = 0;
	assert_int_equal(appmsg_encode(&am, payload, sizeof(payload), &plen), 0);
	assert_int_equal(group_message_seal(g->header_key, hn, ctx, sender,
	                                    (uint32_t)g->chains.chain[sender].next, mk, g->sign_sk,
	                                    payload, plen, entry, sizeof(entry), &elen),
	                 0);
	(void)gw_append(gw_find(w, g->log.log_id), entry, elen);
	group_free(g);
}

static void test_authenticity(void **state)
{
	(void)state;
	uint8_t gid[GROUP_ID_LEN];
	struct world *w = group_of(3, gid);
	/* 1 forges a message as 2: the signature is 1's, the roster says 2's key. */
	forge(w, 1, gid, 2);
	gw_sync(w);
	assert_false(gw_has(w, 0, gid, "forged"));
	assert_false(gw_has(w, 2, gid, "forged"));
	gw_say(w, 2, gid, "really two"); /* 2's chain did not move: its n is still free */
	gw_sync(w);
	assert_true(gw_has(w, 0, gid, "really two"));

	/* A replayed entry: the same bytes again, later in the log. */
	struct gw_log *lg = gw_find(w, w->logs[0].log_id);
	unsigned n0 = gw_messages(w, 0, gid, NULL, NULL);
	(void)gw_append(lg, lg->ent[lg->n - 1].e, lg->ent[lg->n - 1].len);
	gw_sync(w);
	assert_int_equal(gw_messages(w, 0, gid, NULL, NULL), n0);

	/* A commit by a member who is no admin: built as if it were one, posted as itself. */
	struct group_state *g = gw_state(w, 1, gid);
	struct group_roster *fake = malloc(sizeof(*fake));
	memcpy(fake, &g->roster, sizeof(*fake));
	fake->member[1].role = GROUP_ROLE_ADMIN;
	struct group_base base = {.epoch = g->epoch, .settings = g->settings, .roster = fake};
	memcpy(base.group_id, g->group_id, GROUP_ID_LEN);
	memcpy(base.head, g->head, GROUP_HEAD_LEN);
	memcpy(base.init_secret, g->init_secret, GROUP_SECRET_LEN);
	uint8_t secret[32], eph[32], id[GROUP_COMMIT_ID_LEN], ctx[GROUP_CTX_LEN];
	randombytes_buf(secret, 32);
	randombytes_buf(eph, 32);
	randombytes_buf(id, sizeof(id));
	struct group_commit_request req = {.committer = 1,
	                                   .sign_secret = g->sign_sk,
	                                   .last_seq = g->cursor,
	                                   .commit_secret = secret,
	                                   .eph_private = eph};
	uint8_t *buf = malloc(GROUP_COMMIT_MAX_LEN);
	struct group_next *next = malloc(sizeof(*next));
	size_t clen = 0;
	assert_int_equal(group_commit_build(&base, &req, buf, GROUP_COMMIT_MAX_LEN, &clen, next),
	                 0);
	struct group_epoch_keys k = {0};
	memcpy(k.header_key, g->header_key, 32);
	memcpy(k.commit_key, g->commit_key, 32);
	group_state_ctx(g, ctx);
	uint64_t epoch = g->epoch;
	assert_int_equal(group_post_commit(w->h[1].c, g, &k, ctx, buf, clen, id, 4, NULL), 0);
	group_next_wipe(next);
	free(next);
	free(buf);
	free(fake);
	group_free(g);
	gw_sync(w);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(gw_epoch(w, i, gid), epoch);
	gw_free(w);
}

static void test_crash_repost(void **state)
{
	(void)state;
	uint8_t gid[GROUP_ID_LEN];
	struct world *w = group_of(3, gid);
	uint64_t epoch = gw_epoch(w, 0, gid);
	struct group_request q = {.kind = GROUP_CHANGE_ROLE, .role = GROUP_ROLE_ADMIN};
	memcpy(q.identity, w->h[2].c->identity_pk, CAIRN_KEY_LEN);
	assert_int_equal(group_commit(w->h[0].c, gid, &q, 1), 0);
	/* The parts land, but the committer dies before hearing so: they stay queued. */
	w->lose_replies = true;
	assert_true(gw_pump(w, 0) > 0);
	w->lose_replies = false;
	gw_restart(w, 0);
	struct group_pending *p = malloc(sizeof(*p));
	assert_int_equal(group_pending_load(w->h[0].c, gid, p), 0); /* stored before posting */
	group_pending_wipe(p);
	gw_sync(w); /* posted again: every part twice in the log */
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(gw_epoch(w, i, gid), epoch + 1);
	assert_int_equal(group_pending_load(w->h[0].c, gid, p), CAIRN_ENOTFOUND);
	free(p);
	gw_say(w, 1, gid, "after the crash");
	gw_sync(w);
	assert_true(gw_has(w, 0, gid, "after the crash"));
	assert_true(gw_has(w, 2, gid, "after the crash"));
	gw_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_removal_locks_out), cmocka_unit_test(test_resent_after_move),
	    cmocka_unit_test(test_withheld),          cmocka_unit_test(test_healing),
	    cmocka_unit_test(test_copy_that_speaks),  cmocka_unit_test(test_forward_secrecy),
	    cmocka_unit_test(test_authenticity),      cmocka_unit_test(test_crash_repost),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
