/* SPDX-License-Identifier: MIT */
/*
 * BUNDLED in the relay's command layer (docs/PROTOCOL.md 5.12), on the rig of
 * test_relay_commands.c (support/cmdrig.h: no sockets, the in-memory storage, deferred work
 * inline): an item is stored once however often it arrives (OK again once durable, `storage`
 * while its first delivery is being written), answered unsealed; expired and too-far items,
 * a BUNDLED of its own or in a small seal, an intake mailbox, the seen set's bound (`full`)
 * and its expiry by the tick (memory and store); the write of a bundled envelope is never
 * cancelled, so its seen row reaches the store even when the owner acknowledges at once. The
 * SQLite engine's seen rows (written with the envelope, loaded, expired) are checked directly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "command_layer.h"
#include "forward.h"
#include "store.h"
#include "support/cmdrig.h"

#define DAY 86400

static uint8_t relay_sk[32];

static int bundle_setup(void **state)
{
	int rc = setup(state);
	memset(relay_sk, 0x72, sizeof(relay_sk));
	relay->private_key = relay_sk;
	crypto_scalarmult_base(relay->public_key, relay_sk);
	return rc;
}

/* A bundle item for B's mailbox on the relay under test: envelope "env-N", NOT_AFTER. */
static void make_item(const struct box *b, int n, uint64_t not_after,
                      uint8_t item[CAIRN_BUNDLE_ITEM_LEN])
{
	char body[32];
	int len = snprintf(body, sizeof(body), "env-%d", n);
	struct cairn_msg m = {.type = CAIRN_CMD_BUNDLED,
	                      .not_after = not_after,
	                      .sender_id = b->sender_id,
	                      .envelope = (const uint8_t *)body,
	                      .envelope_len = (size_t)len};
	uint8_t cmd[256];
	size_t clen;
	assert_int_equal(cairn_msg_encode(&m, cmd, sizeof(cmd), &clen), 0);
	assert_int_equal(bundle_seal(relay->public_key, cmd, clen, item), 0);
}

static void courier_send(struct conn *c, uint32_t rid, const uint8_t *item, size_t len)
{
	struct cairn_msg m = {
	    .type = CAIRN_CMD_FORWARDED, .request_id = rid, .sealed = item, .sealed_len = len};
	command(c, &m);
}

static void test_stored_once(void **state)
{
	(void)state;
	struct conn *owner = open_conn(), *courier = open_conn(), *other = open_conn();
	struct box b;
	create(owner, &b);
	settle();
	size_t before = memstorage_envelopes(relay->storage);
	static uint8_t item[CAIRN_BUNDLE_ITEM_LEN];
	make_item(&b, 1, (uint64_t)now_s + 14 * DAY, item);
	courier_send(courier, 5, item, sizeof(item));
	expect_nothing(courier); /* OK only once durable */
	/* A second courier while the first delivery is being written: try again. */
	courier_send(other, 6, item, sizeof(item));
	expect_error(other, 6, CAIRN_ESTORAGE);
	settle();
	expect_ok(courier, 5); /* unsealed: a plain OK under the FORWARDED's id */
	assert_int_equal(memstorage_envelopes(relay->storage), before + 1);
	assert_int_equal(memstorage_bundle_rows(relay->storage, NULL), 1);
	/* Again, by both: OK at once, nothing written. */
	courier_send(other, 7, item, sizeof(item));
	expect_ok(other, 7);
	courier_send(courier, 8, item, sizeof(item));
	expect_ok(courier, 8);
	settle();
	assert_int_equal(memstorage_envelopes(relay->storage), before + 1);
	assert_int_equal(memstorage_bundle_rows(relay->storage, NULL), 1);
	/* The owner reads it once. */
	on_mailbox(owner, CAIRN_CMD_SUBSCRIBE, &b, 9, 0);
	expect_ok(owner, 9);
	settle();
	assert_int_equal(expect_envelope(owner, 9, NULL), 1);
	expect_nothing(owner);
	/* The same envelope sealed again (a new E) is another item: stored again, as 12 says
	 * the recipient drops the duplicate. */
	make_item(&b, 1, (uint64_t)now_s + DAY, item);
	courier_send(courier, 10, item, sizeof(item));
	settle();
	expect_ok(courier, 10);
	assert_int_equal(memstorage_bundle_rows(relay->storage, NULL), 2);
}

static void test_refusals(void **state)
{
	(void)state;
	struct conn *owner = open_conn(), *courier = open_conn();
	struct box b;
	create(owner, &b);
	settle();
	size_t before = memstorage_envelopes(relay->storage);
	static uint8_t item[CAIRN_BUNDLE_ITEM_LEN];
	/* 1: past its not_after, or more than 30 days ahead. */
	make_item(&b, 1, (uint64_t)now_s - 1, item);
	courier_send(courier, 1, item, sizeof(item));
	expect_error(courier, 1, CAIRN_EEXPIRED);
	make_item(&b, 1, (uint64_t)now_s + CAIRN_BUNDLE_LIFETIME_MAX_S + 1, item);
	courier_send(courier, 2, item, sizeof(item));
	expect_error(courier, 2, CAIRN_EBADREQ);
	/* Exactly now and exactly 30 days ahead are fine. */
	make_item(&b, 1, (uint64_t)now_s, item);
	courier_send(courier, 3, item, sizeof(item));
	make_item(&b, 2, (uint64_t)now_s + CAIRN_BUNDLE_LIFETIME_MAX_S, item);
	courier_send(courier, 4, item, sizeof(item));
	settle();
	expect_ok(courier, 3);
	expect_ok(courier, 4);
	/* A flipped byte: does not open. A cut item: not a seal size. */
	make_item(&b, 3, (uint64_t)now_s + DAY, item);
	item[100] ^= 0x01;
	courier_send(courier, 5, item, sizeof(item));
	expect_error(courier, 5, CAIRN_EBADREQ);
	item[100] ^= 0x01;
	courier_send(courier, 6, item, sizeof(item) - 16);
	expect_error(courier, 6, CAIRN_EBADREQ);
	/* Sealed for another relay. */
	uint8_t other_pk[32], other_sk[32];
	crypto_box_keypair(other_pk, other_sk);
	struct cairn_msg m = {.type = CAIRN_CMD_BUNDLED,
	                      .not_after = (uint64_t)now_s + DAY,
	                      .sender_id = b.sender_id,
	                      .envelope = (const uint8_t *)"x",
	                      .envelope_len = 1};
	uint8_t cmd[256], k_rep[32];
	static uint8_t sealed[FORWARD_SEALED_MAX];
	size_t clen, slen;
	assert_int_equal(cairn_msg_encode(&m, cmd, sizeof(cmd), &clen), 0);
	assert_int_equal(bundle_seal(other_pk, cmd, clen, item), 0);
	courier_send(courier, 7, item, sizeof(item));
	expect_error(courier, 7, CAIRN_EBADREQ);
	/* A BUNDLED in a FORWARDED of the smallest size, and one of its own. */
	assert_int_equal(
	    forward_seal(relay->public_key, cmd, clen, sealed, sizeof(sealed), &slen, k_rep), 0);
	courier_send(courier, 8, sealed, slen);
	expect_error(courier, 8, CAIRN_EBADREQ);
	m.request_id = 9;
	command(courier, &m);
	expect_error(courier, 9, CAIRN_EBADREQ);
	/* A wrong credential: SEND's one answer, `denied`. */
	uint8_t cred[CAIRN_CREDENTIAL_LEN], right[CAIRN_CREDENTIAL_LEN], digest[32];
	memset(cred, 0x44, sizeof(cred));
	memset(right, 0x55, sizeof(right));
	crypto_generichash(digest, sizeof(digest), right, sizeof(right), b.sender_id,
	                   CAIRN_MAILBOX_ID_LEN);
	struct cairn_msg sec = {.type = CAIRN_CMD_SECURE,
	                        .request_id = 10,
	                        .recipient_id = b.recipient_id,
	                        .credential = digest};
	command(owner, &sec);
	settle();
	expect_ok(owner, 10);
	m.request_id = 0;
	m.credential = cred;
	assert_int_equal(cairn_msg_encode(&m, cmd, sizeof(cmd), &clen), 0);
	assert_int_equal(bundle_seal(relay->public_key, cmd, clen, item), 0);
	courier_send(courier, 11, item, sizeof(item));
	expect_error(courier, 11, CAIRN_EDENIED);
	settle();
	assert_int_equal(memstorage_envelopes(relay->storage), before + 2);
	assert_int_equal(memstorage_bundle_rows(relay->storage, NULL), 2);
	expect_nothing(courier);
}

static void test_seen_full_and_expiry(void **state)
{
	(void)state;
	cfg.bundle_seen_max = 16;
	cfg.mailbox_max_envelopes = 64; /* the seen set's bound comes first */
	struct conn *owner = open_conn(), *courier = open_conn();
	struct box b;
	create(owner, &b);
	settle();
	static uint8_t item[CAIRN_BUNDLE_ITEM_LEN];
	for (int i = 0; i < 16; i++) {
		make_item(&b, i, (uint64_t)now_s + 60 + (uint64_t)i, item);
		courier_send(courier, (uint32_t)(100 + i), item, sizeof(item));
	}
	settle();
	for (int i = 0; i < 16; i++)
		expect_ok(courier, (uint32_t)(100 + i));
	make_item(&b, 99, (uint64_t)now_s + DAY, item);
	courier_send(courier, 200, item, sizeof(item));
	expect_error(courier, 200, CAIRN_ECAPACITY); /* `full` */
	assert_int_equal(relay->bundles.count, 16);
	/* Past every not_after: the tick forgets them, and deletes the stored rows. */
	now_s += 120;
	commands_expire(relay, now_s);
	settle();
	assert_int_equal(relay->bundles.count, 0);
	uint64_t expires = 0;
	(void)memstorage_bundle_rows(relay->storage, &expires);
	assert_true(expires >= 1);
	courier_send(courier, 201, item, sizeof(item));
	settle();
	expect_ok(courier, 201);
}

static void test_online_owner_write_kept(void **state)
{
	(void)state;
	struct conn *owner = open_conn(), *courier = open_conn();
	struct box b;
	create(owner, &b);
	on_mailbox(owner, CAIRN_CMD_SUBSCRIBE, &b, 2, 0);
	settle();
	(void)next_reply(owner);
	static uint8_t item[CAIRN_BUNDLE_ITEM_LEN];
	make_item(&b, 1, (uint64_t)now_s + DAY, item);
	courier_send(courier, 5, item, sizeof(item));
	/* Delivered to the online owner at once, who acknowledges before the write is taken. */
	uint64_t id = 0;
	assert_int_equal(expect_envelope(owner, 2, &id), 1);
	struct cairn_msg ack = {.type = CAIRN_CMD_ACK,
	                        .request_id = 3,
	                        .recipient_id = b.recipient_id,
	                        .envelope_id = id};
	command(owner, &ack);
	settle();
	expect_ok(courier, 5);
	/* The seen row was written all the same: a second delivery stores nothing. */
	assert_int_equal(memstorage_bundle_rows(relay->storage, NULL), 1);
	courier_send(courier, 6, item, sizeof(item));
	expect_ok(courier, 6);
	settle();
	assert_int_equal(memstorage_bundle_rows(relay->storage, NULL), 1);
}

static void test_intake_refused(void **state)
{
	(void)state;
	struct conn *owner = open_conn(), *courier = open_conn();
	struct box b;
	create(owner, &b);
	struct cairn_msg in = {.type = CAIRN_CMD_INTAKE,
	                       .request_id = 4,
	                       .recipient_id = b.recipient_id,
	                       .work_bits = 8};
	command(owner, &in);
	settle();
	static uint8_t item[CAIRN_BUNDLE_ITEM_LEN];
	make_item(&b, 1, (uint64_t)now_s + DAY, item);
	courier_send(courier, 5, item, sizeof(item));
	expect_error(courier, 5, CAIRN_EWORK);
	assert_int_equal(relay->bundles.count, 0);
}

/* ---- the SQLite engine's seen rows ------------------------------------------------------ */

static uint8_t loaded[8][32];
static int64_t loaded_until[8];
static size_t nloaded;

static void on_seen(void *ctx, const uint8_t e[CAIRN_KEY_LEN], int64_t not_after)
{
	(void)ctx;
	if (nloaded < 8) {
		memcpy(loaded[nloaded], e, 32);
		loaded_until[nloaded] = not_after;
	}
	nloaded++;
}

static void test_sqlite_rows(void **state)
{
	(void)state;
	char dir[] = "/tmp/cairn-bundle-store-XXXXXX";
	assert_non_null(mkdtemp(dir));
	void *st;
	assert_int_equal(store_sqlite.open(&(struct store_params){.dir = dir}, &st), 0);
	struct store_mailbox mb = {.id = 7};
	uint8_t e1[32], e2[32];
	memset(e1, 0xe1, 32);
	memset(e2, 0xe2, 32);
	struct store_op ops[] = {
	    {.kind = STORE_MAILBOX_PUT, .mailbox = &mb},
	    {.kind = STORE_ENVELOPE_PUT,
	     .mailbox_id = 7,
	     .envelope_id = 1,
	     .body = (const uint8_t *)"a",
	     .len = 1,
	     .bundle_e = e1,
	     .bundle_until = 1000},
	    {.kind = STORE_ENVELOPE_PUT,
	     .mailbox_id = 7,
	     .envelope_id = 2,
	     .body = (const uint8_t *)"b",
	     .len = 1,
	     .bundle_e = e2,
	     .bundle_until = 2000},
	    {.kind = STORE_ENVELOPE_PUT,
	     .mailbox_id = 7,
	     .envelope_id = 3,
	     .body = (const uint8_t *)"c",
	     .len = 1},
	};
	assert_int_equal(store_sqlite.commit(st, ops, 4), 0);
	/* A failed batch writes no seen row either (a duplicate envelope id). */
	uint8_t e3[32];
	memset(e3, 0xe3, 32);
	struct store_op dup = {.kind = STORE_ENVELOPE_PUT,
	                       .mailbox_id = 7,
	                       .envelope_id = 3,
	                       .body = (const uint8_t *)"d",
	                       .len = 1,
	                       .bundle_e = e3,
	                       .bundle_until = 3000};
	assert_int_not_equal(store_sqlite.commit(st, &dup, 1), 0);
	store_sqlite.close(st);

	/* Restart: both rows come back, with their times. */
	assert_int_equal(store_sqlite.open(&(struct store_params){.dir = dir}, &st), 0);
	struct store_load_cb cb = {.bundle_seen = on_seen};
	nloaded = 0;
	assert_int_equal(store_sqlite.load(st, &cb, NULL), 0);
	assert_int_equal(nloaded, 2);
	bool saw1 = false, saw2 = false;
	for (size_t i = 0; i < 2; i++) {
		saw1 |= memcmp(loaded[i], e1, 32) == 0 && loaded_until[i] == 1000;
		saw2 |= memcmp(loaded[i], e2, 32) == 0 && loaded_until[i] == 2000;
	}
	assert_true(saw1 && saw2);
	/* Expiry at 1500 takes the first only; the envelopes stay (their own expiry). */
	struct store_op ex = {.kind = STORE_BUNDLE_EXPIRE, .stored_at = 1500};
	assert_int_equal(store_sqlite.commit(st, &ex, 1), 0);
	nloaded = 0;
	assert_int_equal(store_sqlite.load(st, &cb, NULL), 0);
	assert_int_equal(nloaded, 1);
	assert_memory_equal(loaded[0], e2, 32);
	uint8_t body[8];
	size_t blen;
	assert_int_equal(store_sqlite.read_envelope(st, 7, 1, body, sizeof(body), &blen), 0);
	store_sqlite.close(st);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* ---- the seen set's table -------------------------------------------------------------- */

static void test_seen_table(void **state)
{
	(void)state;
	struct bundleseen t = {0};
	enum { N = 5000 };
	uint8_t e[32];
	for (uint32_t i = 0; i < N; i++) {
		memset(e, 0, sizeof(e));
		memcpy(e, &i, sizeof(i));
		assert_int_equal(bundleseen_insert(&t, e, 100 + (int64_t)(i % 7), i % 2 == 0, N),
		                 0);
	}
	memset(e, 0xff, sizeof(e));
	assert_int_equal(bundleseen_insert(&t, e, 100, false, N), CAIRN_ECAPACITY);
	assert_int_equal(t.count, N);
	for (uint32_t i = 0; i < N; i++) {
		memset(e, 0, sizeof(e));
		memcpy(e, &i, sizeof(i));
		assert_int_equal(bundleseen_find(&t, e),
		                 i % 2 == 0 ? BUNDLE_PENDING : BUNDLE_STORED);
		if (i % 2 == 0)
			bundleseen_settle(&t, e);
	}
	/* Remove a third, then everything expired before 103 goes by sweeping. */
	for (uint32_t i = 0; i < N; i += 3) {
		memset(e, 0, sizeof(e));
		memcpy(e, &i, sizeof(i));
		bundleseen_remove(&t, e);
	}
	size_t gone = 0;
	for (int pass = 0; pass < 100; pass++)
		gone += bundleseen_expire(&t, 103, 4096);
	for (uint32_t i = 0; i < N; i++) {
		memset(e, 0, sizeof(e));
		memcpy(e, &i, sizeof(i));
		bool kept = i % 3 != 0 && 100 + (int64_t)(i % 7) >= 103;
		assert_int_equal(bundleseen_find(&t, e), kept ? BUNDLE_STORED : BUNDLE_UNSEEN);
	}
	assert_true(gone > 0);
	bundleseen_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_stored_once, bundle_setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refusals, bundle_setup, teardown),
	    cmocka_unit_test_setup_teardown(test_seen_full_and_expiry, bundle_setup, teardown),
	    cmocka_unit_test_setup_teardown(test_online_owner_write_kept, bundle_setup, teardown),
	    cmocka_unit_test_setup_teardown(test_intake_refused, bundle_setup, teardown),
	    cmocka_unit_test(test_sqlite_rows),
	    cmocka_unit_test(test_seen_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
