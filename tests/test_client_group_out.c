/* SPDX-License-Identifier: MIT */
/*
 * The group outbox (client/group_out.c, group_io.h): items queued inside the caller's
 * transaction (a rollback leaves none), listed in queue order and per relay, the digests of
 * LOG_CREATE as PROTOCOL.md 5.9's group/log-digests vector, marking done and dropping a gone
 * log's items, persistence across a reopen, the arguments refused, and the record's parser
 * against truncations, flipped bytes and trailing bytes.
 */
#define _GNU_SOURCE
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "cairn/cairn.h"
#include "client.h"
#include "logio.h"
#include "mdvec.h"

#define PASS  "correct horse battery staple"
#define RELAY "cairn://AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@relay.example:7400"
#define ITEMS 16

static char root[64];

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int group_setup(void **state)
{
	(void)state;
	strcpy(root, "/tmp/cairn-gout-XXXXXX");
	if (mkdtemp(root) == NULL || sodium_init() < 0)
		return -1;
	return cairn_init_kdf(root, PASS, CAIRN_KDF_INTERACTIVE);
}

static int group_teardown(void **state)
{
	(void)state;
	return nftw(root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static int setup(void **state)
{
	struct cairn *c = NULL;
	if (cairn_open(root, PASS, &c) != 0)
		return -1;
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	cairn_close(*state);
	return 0;
}

/* What a listing saw. */
struct seen {
	size_t n;
	struct group_out_item item[ITEMS];
	uint8_t entry[ITEMS][64];
};

static int record(void *ctx, const struct group_out_item *g)
{
	struct seen *s = ctx;
	assert_true(s->n < ITEMS);
	s->item[s->n] = *g;
	assert_true(g->len <= sizeof(s->entry[0]));
	if (g->len > 0)
		memcpy(s->entry[s->n], g->entry, g->len);
	s->item[s->n].entry = s->entry[s->n];
	s->n++;
	return 0;
}

static void list_all(struct cairn *c, const char *relay, struct seen *s)
{
	memset(s, 0, sizeof(*s));
	assert_int_equal(group_out_list(c, relay, record, s), 0);
}

/* Removes every queued item (tests share one home). */
static void clear(struct cairn *c)
{
	struct seen s;
	list_all(c, NULL, &s);
	for (size_t i = 0; i < s.n; i++)
		assert_int_equal(group_out_done(c, s.item[i].out_id), 0);
}

static void log_ref(struct group_log_ref *l, const char *relay, uint8_t id_byte)
{
	memset(l, 0, sizeof(*l));
	snprintf(l->relay, sizeof(l->relay), "%s", relay);
	memset(l->log_id, id_byte, sizeof(l->log_id));
	memset(l->credential, 0x66, sizeof(l->credential));
}

static void test_digests_vector(void **state)
{
	(void)state;
	struct group_log_ref l;
	log_ref(&l, RELAY, 0);
	uint8_t secret[32], want_cred[32], want_del[32], cred[32], del[32];
	assert_int_equal(mdvec_hex("group/log-digests", "log_id", l.log_id, sizeof(l.log_id)),
	                 sizeof(l.log_id));
	assert_int_equal(mdvec_hex("group/log-digests", "credential", l.credential, 32), 32);
	assert_int_equal(mdvec_hex("group/log-digests", "delete_secret", secret, 32), 32);
	assert_int_equal(mdvec_hex("group/log-digests", "credential_digest", want_cred, 32), 32);
	assert_int_equal(mdvec_hex("group/log-digests", "delete_digest", want_del, 32), 32);
	group_log_digests(&l, secret, cred, del);
	assert_memory_equal(cred, want_cred, 32);
	assert_memory_equal(del, want_del, 32);
}

static void test_queue_order(void **state)
{
	struct cairn *c = *state;
	clear(c);
	struct group_log_ref a, b;
	log_ref(&a, RELAY, 0x77);
	log_ref(&b, "cairn://BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBA@other.example:1", 0x78);
	uint8_t secret[32], ids[3][16], cred[32], del[32];
	memset(secret, 0x99, sizeof(secret));
	assert_int_equal(cstate_begin(c->st), 0);
	assert_int_equal(group_out_create(c, &a, secret), 0);
	assert_int_equal(group_out_append(c, &a, (const uint8_t *)"one", 3, ids[0]), 0);
	assert_int_equal(group_out_append(c, &b, (const uint8_t *)"other", 5, ids[1]), 0);
	assert_int_equal(group_out_append(c, &a, (const uint8_t *)"two", 3, ids[2]), 0);
	assert_int_equal(group_out_delete(c, &b, secret), 0);
	assert_int_equal(cstate_commit(c->st), 0);
	assert_memory_not_equal(ids[0], ids[2], 16);

	/* Reopened: durable, in queue order. */
	cairn_close(c);
	assert_int_equal(cairn_open(root, PASS, &c), 0);
	*state = c;
	struct seen s;
	list_all(c, NULL, &s);
	assert_int_equal(s.n, 5);
	unsigned count = 0;
	assert_int_equal(group_out_count(c, &count), 0);
	assert_int_equal(count, 5);
	group_log_digests(&a, secret, cred, del);
	assert_int_equal(s.item[0].op, GROUP_OUT_CREATE);
	assert_memory_equal(s.item[0].digest_a, cred, 32);
	assert_memory_equal(s.item[0].digest_b, del, 32);
	assert_string_equal(s.item[0].log.relay, RELAY);
	assert_int_equal(s.item[1].op, GROUP_OUT_APPEND);
	assert_memory_equal(s.item[1].out_id, ids[0], 16);
	assert_int_equal(s.item[1].len, 3);
	assert_memory_equal(s.item[1].entry, "one", 3);
	assert_memory_equal(s.item[1].log.credential, a.credential, 32);
	assert_memory_equal(s.item[2].out_id, ids[1], 16);
	assert_memory_equal(s.item[2].log.log_id, b.log_id, CAIRN_LOG_ID_LEN);
	assert_memory_equal(s.item[3].out_id, ids[2], 16);
	assert_memory_equal(s.item[3].entry, "two", 3);
	assert_int_equal(s.item[4].op, GROUP_OUT_DELETE);
	assert_memory_equal(s.item[4].digest_a, secret, 32);

	/* Per relay. */
	list_all(c, RELAY, &s);
	assert_int_equal(s.n, 3);
	assert_memory_equal(s.item[2].out_id, ids[2], 16);

	/* Done: that one leaves, the order of the rest holds. */
	assert_int_equal(group_out_done(c, ids[0]), 0);
	list_all(c, RELAY, &s);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.item[0].op, GROUP_OUT_CREATE);
	assert_memory_equal(s.item[1].out_id, ids[2], 16);

	/* A gone log: its items only. */
	assert_int_equal(group_out_drop_log(c, a.log_id), 0);
	list_all(c, NULL, &s);
	assert_int_equal(s.n, 2);
	assert_memory_equal(s.item[0].out_id, ids[1], 16);
	assert_int_equal(s.item[1].op, GROUP_OUT_DELETE);
	clear(c);
}

static void test_inside_callers_transaction(void **state)
{
	struct cairn *c = *state;
	clear(c);
	struct group_log_ref a;
	log_ref(&a, RELAY, 0x77);
	uint8_t id[16];
	assert_int_equal(cstate_begin(c->st), 0);
	assert_int_equal(group_out_append(c, &a, (const uint8_t *)"gone", 4, id), 0);
	cstate_rollback(c->st);
	struct seen s;
	list_all(c, NULL, &s);
	assert_int_equal(s.n, 0);
}

static void test_refused_arguments(void **state)
{
	struct cairn *c = *state;
	clear(c);
	struct group_log_ref a, bad;
	log_ref(&a, RELAY, 0x77);
	log_ref(&bad, "not an address", 0x77);
	uint8_t id[16], secret[32] = {0};
	static uint8_t big[CAIRN_LOG_ENTRY_MAX + 1];
	assert_int_equal(group_out_append(c, &a, big, 0, id), CAIRN_EINVAL);
	assert_int_equal(group_out_append(c, &a, big, sizeof(big), id), CAIRN_EINVAL);
	assert_int_equal(group_out_append(c, &a, NULL, 3, id), CAIRN_EINVAL);
	assert_int_equal(group_out_append(c, &bad, big, 3, id), CAIRN_EINVAL);
	assert_int_equal(group_out_create(c, &bad, secret), CAIRN_EINVAL);
	assert_int_equal(group_out_delete(c, &bad, secret), CAIRN_EINVAL);
	/* The largest entry fits. */
	assert_int_equal(group_out_append(c, &a, big, CAIRN_LOG_ENTRY_MAX, id), 0);
	assert_int_equal(group_out_done(c, id), 0);
	struct seen s;
	list_all(c, NULL, &s);
	assert_int_equal(s.n, 0);
}

static void test_record_parse_strict(void **state)
{
	(void)state;
	struct group_out_item g = {
	    .op = GROUP_OUT_APPEND, .entry = (const uint8_t *)"hello", .len = 5};
	log_ref(&g.log, RELAY, 0x77);
	uint8_t *v = NULL;
	size_t len = 0;
	assert_int_equal(group_out_encode(&g, &v, &len), 0);
	struct group_out_item p;
	assert_int_equal(group_out_parse(v, len, &p), 0);
	assert_int_equal(p.len, 5);
	assert_memory_equal(p.entry, "hello", 5);
	for (size_t n = 0; n < len; n++)
		assert_int_equal(group_out_parse(v, n, &p), CAIRN_ECORRUPT);
	uint8_t *more = malloc(len + 1);
	assert_non_null(more);
	memcpy(more, v, len);
	more[len] = 0;
	assert_int_equal(group_out_parse(more, len + 1, &p), CAIRN_ECORRUPT);
	/* The version, the op, and an append with no entry. */
	more[0] ^= 1;
	assert_int_equal(group_out_parse(more, len, &p), CAIRN_ECORRUPT);
	more[0] ^= 1;
	for (uint8_t op = 0; op < 5; op += 4) {
		more[17] = op;
		assert_int_equal(group_out_parse(more, len, &p), CAIRN_ECORRUPT);
	}
	more[17] = GROUP_OUT_CREATE; /* a create carrying an entry */
	assert_int_equal(group_out_parse(more, len, &p), CAIRN_ECORRUPT);
	free(more);
	free(v);
	g.len = 0;
	g.entry = NULL;
	assert_int_equal(group_out_encode(&g, &v, &len), 0);
	assert_int_equal(group_out_parse(v, len, &p), CAIRN_ECORRUPT);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_digests_vector),
	    cmocka_unit_test_setup_teardown(test_queue_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_inside_callers_transaction, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused_arguments, setup, teardown),
	    cmocka_unit_test(test_record_parse_strict),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
